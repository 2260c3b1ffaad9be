"""The replicas stand for the recipes they are named after: every recipe of
serving/repository/families.py has one, and the export finds that recipe for it."""

from __future__ import annotations

import json

import pytest

from serving.repository.families import FAMILIES, find_family
from tools.replicas import REPLICAS, replica_source


def test_every_recipe_has_a_replica_named_after_it() -> None:
    names = {family.name for family in FAMILIES}
    declared = {replica.family for replica in REPLICAS.values()} - {None}
    assert declared <= names, f"replicas of no recipe: {sorted(declared - names)}"
    assert names <= declared, f"recipes without a replica: {sorted(names - declared)}"
    for key, replica in REPLICAS.items():
        if replica.family is not None:
            assert key.startswith(replica.family), f"{key} stands for {replica.family}: name it after it"


@pytest.mark.slow  # builds every replica on a cold cache
def test_the_export_finds_each_replicas_recipe() -> None:
    for key, replica in REPLICAS.items():
        source = replica_source(key)
        config = json.loads((source / "config.json").read_text())
        found = find_family(replica.task, config["architectures"][0], config["model_type"], str(source))
        assert (found.name if found else None) == replica.family, key
