"""Loaded models and their versions (see registry.py)."""

from serving.registry.loader import LoadedVersion, LoadError
from serving.registry.registry import Lease, ModelRegistry, ServedModel, VersionState

__all__ = ["Lease", "LoadError", "LoadedVersion", "ModelRegistry", "ServedModel", "VersionState"]
