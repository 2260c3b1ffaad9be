"""A sentence-transformers folder's whole module list, exported and served: vectors equal
SentenceTransformer.encode (raw values, not only cosines), a folder without Normalize is served
unnormalized, and a module the server cannot reproduce is refused in one line naming it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.support.exports import RunExport
from tests.support.repository import set_graph_options, write_config
from tests.support.sentence_folders import add_module, build_sentence_folder, set_pooling_config
from tests.support.server import REPO_ROOT, ServerProcess, embeddings_of

TEXTS = [
    "a short text",
    "The giant panda is a bear species endemic to China.",
    "Unterschiedlich lange Sätze, damit die Auffüllung zählt: eins, zwei, drei, vier, fünf, sechs.",
]
# fp32 IRs computed at f32: sentence-transformers' own float32 rounding (measured about 2e-6).
TOLERANCE = 1e-5

NORMALIZED = "dot-product-normalized"
# name -> build_sentence_folder arguments
FOLDERS: dict[str, dict[str, Any]] = {
    # Three poolings concatenated, a projection and a learned LayerNorm: all in the IR.
    "projected": {
        "pooling": ("max", "weightedmean", "mean_sqrt_len_tokens"),
        "dense": ((64, "Tanh"),),
        "layer_norm": True,
        "normalize": True,
    },
    # A dot-product model: CLS pooling on the server, no Normalize module.
    "dot-product": {"pooling": "cls", "normalize": False},
}


@pytest.fixture(scope="module")
def sentence_repo(
    minilm_source: Path, run_export: RunExport, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dict[str, Path]]:
    top = tmp_path_factory.mktemp("sentence-modules")
    repo, sources = top / "models", {}
    for name, arguments in FOLDERS.items():
        sources[name] = build_sentence_folder(minilm_source, top / "sources" / name, **arguments)
        result = run_export("embeddings", sources[name], repo, model_name=name)
        assert result.returncode == 0, result.stdout + result.stderr
    # The dot-product model served normalized: what dropping its missing Normalize would serve.
    shutil.copytree(repo / "dot-product", repo / NORMALIZED)
    set_graph_options(repo / NORMALIZED, normalize_embeddings=True)
    write_config(repo, [*FOLDERS, NORMALIZED])
    return repo, sources


@pytest.fixture(scope="module")
def http(
    sentence_repo: tuple[Path, dict[str, Path]], start_server: Callable[..., ServerProcess]
) -> Iterator[httpx.Client]:
    server = start_server(sentence_repo[0] / "config.json")
    server.wait_ready(models=[*FOLDERS, NORMALIZED])
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(("model", "passes"), [("dot-product", True), (NORMALIZED, False)])
def test_compare_results_compares_the_values_of_vectors_that_are_not_normalized(
    http: httpx.Client, sentence_repo: tuple[Path, dict[str, Path]], model: str, passes: bool
) -> None:
    command = [sys.executable, str(REPO_ROOT / "export_models" / "compare_results.py")]
    command += [
        "--base_url",
        f"{str(http.base_url).rstrip('/')}/v3",
        "--config_path",
        str(sentence_repo[0] / "config.json"),
    ]
    command += ["--model_name", model, "--input", TEXTS[0], "--input", TEXTS[1]]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    assert "Largest difference relative to the largest value" in result.stdout, result.stdout + result.stderr
    assert (result.returncode == 0) is passes, result.stdout + result.stderr


def served(http: httpx.Client, model: str) -> np.ndarray:
    response = http.post("/v3/embeddings", json={"model": model, "input": TEXTS})
    assert response.status_code == 200, response.text
    return embeddings_of(response.json())


def encoded(source: Path) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(source), device="cpu").encode(TEXTS).astype(np.float64)


@pytest.mark.parametrize("name", list(FOLDERS))
def test_served_vectors_equal_sentence_transformers(
    http: httpx.Client, sentence_repo: tuple[Path, dict[str, Path]], name: str
) -> None:
    got, expected = served(http, name), encoded(sentence_repo[1][name])
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() < TOLERANCE  # raw values: a dropped module cannot hide
    cosines = (got * expected).sum(axis=1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert np.abs(cosines - 1).max() < TOLERANCE


def test_a_model_without_normalize_is_not_normalized(http: httpx.Client) -> None:
    norms = np.linalg.norm(served(http, "dot-product"), axis=1)
    assert np.abs(norms - 1).min() > 0.1, norms
    assert np.allclose(np.linalg.norm(served(http, "projected"), axis=1), 1, atol=1e-5)


def test_the_model_list_says_which_modules_it_reproduces(http: httpx.Client) -> None:
    cards = {card["id"]: card for card in http.get("/v3/models").json()["data"]}
    assert cards["projected"]["inference_precision"] == "f32"
    assert cards["projected"]["sentence_modules"] == [
        "Pooling(max+weightedmean+mean_sqrt_len_tokens)",
        "Dense(1152->64, Tanh)",
        "LayerNorm(64)",
        "Normalize",
    ]
    assert cards["dot-product"]["sentence_modules"] == ["Pooling(cls)"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda folder: add_module(folder, "my_package.modules.Shift"), "my_package.modules.Shift"),
        (lambda folder: set_pooling_config(folder, include_prompt=False), "include_prompt false"),
        (lambda folder: set_pooling_config(folder, pooling_mode="median"), "pooling mode median"),
    ],
)
def test_a_module_that_cannot_be_reproduced_is_refused_in_one_line(
    minilm_source: Path, run_export: RunExport, tmp_path: Path, change: Callable[[Path], None], named: str
) -> None:
    folder = build_sentence_folder(minilm_source, tmp_path / "source", pooling="mean")
    change(folder)
    result = run_export("embeddings", folder, tmp_path / "models", model_name="refused")
    assert result.returncode != 0
    errors = [line for line in (result.stdout + result.stderr).splitlines() if named in line]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stdout + result.stderr
    assert not (tmp_path / "models" / "refused").exists()
