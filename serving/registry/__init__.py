"""Loaded models and their versions (see registry.py)."""

from serving.registry.loader import LoadError, Servable
from serving.registry.registry import Lease, ModelRegistry, ServedModel, VersionState

__all__ = ["Lease", "LoadError", "ModelRegistry", "Servable", "ServedModel", "VersionState"]
