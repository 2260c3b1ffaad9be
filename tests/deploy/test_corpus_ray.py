"""ovtext-batch on Ray Data: a two-node cluster on this machine gives the in-process output, row for row.

deploy/ray/local-cluster.sh starts the head and a second node (`ray start`, 2 CPUs each) in a
network namespace that has only the loopback interface and a PID namespace of its own (so
`ray stop` and the end of the script reach this cluster's processes only), runs the job there
and stops the cluster. It needs root (unshare), as CI has.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from benchmark.corpus import corpus_texts, rerank_rows, write_jsonl
from serving.jobs.corpus import read_output

from .conftest import EMBEDDER, RERANKER

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_CLUSTER = REPO_ROOT / "deploy" / "ray" / "local-cluster.sh"

# A two-node cluster (about a minute): `make check`; `make test` has the in-process job (test_corpus_job).
pytestmark = pytest.mark.slow


def test_two_node_ray_cluster_gives_the_in_process_output(deploy_repo: Path, tmp_path: Path) -> None:
    assert os.geteuid() == 0, "the local Ray cluster runs in namespaces of its own (unshare): run as root"
    ray_bin = Path(sys.executable).parent
    assert shutil.which("ray", path=f"{ray_bin}{os.pathsep}{os.environ['PATH']}"), (
        "ray CLI (pip install .[ray])"
    )
    env = {**os.environ, "PATH": f"{ray_bin}{os.pathsep}{os.environ['PATH']}"}
    config = str(deploy_repo / "config.json")
    texts = write_jsonl(
        [{"id": i, "text": t} for i, t in enumerate(corpus_texts(400, seed=7))], tmp_path / "t.jsonl"
    )
    queries = write_jsonl(rerank_rows(24, 6, seed=7), tmp_path / "q.jsonl")
    jobs = {
        "embeddings": ["embeddings", "--model", EMBEDDER, "--input", str(texts), "--shard_rows", "150"],
        "rerank": ["rerank", "--model", RERANKER, "--input", str(queries), "--shard_rows", "10"],
    }
    # Both jobs in one cluster: a small script run by local-cluster.sh, the in-process runs first.
    lines = ["set -e"]
    for name, arguments in jobs.items():
        for engine in ("local", "ray"):
            command = [sys.executable, "-m", "serving.jobs", *arguments, "--config_path", config,
                       "--output", str(tmp_path / f"{name}-{engine}"), "--no_progress"]  # fmt: skip
            if engine == "ray":
                command += ["--ray_address", "127.0.0.1:6379"]
            lines.append(f"{shlex.join(command)} > {shlex.quote(str(tmp_path / f'{name}-{engine}.json'))}")
    script = tmp_path / "jobs.sh"
    script.write_text("\n".join(lines) + "\n")
    # Ray's socket paths must stay short: its session folder goes under /tmp, not under tmp_path.
    ray_temp = Path(tempfile.mkdtemp(prefix="ovtext-ray-test."))
    try:
        done = subprocess.run(
            ["bash", str(LOCAL_CLUSTER), "bash", str(script)],
            cwd=REPO_ROOT, env={**env, "RAY_TEMP_DIR": str(ray_temp)},
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
        # The cluster is gone with the script: no process of it is left.
        leftover = subprocess.run(["pgrep", "-f", str(ray_temp)], capture_output=True, text=True, check=False)
        assert leftover.stdout == "", leftover.stdout
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-5000:]
    assert "local-cluster: second node joining" in done.stderr
    for name in jobs:
        ray_report = json.loads((tmp_path / f"{name}-ray.json").read_text())
        assert ray_report["engine"] == "ray at 127.0.0.1:6379"
        assert ray_report["rows_computed"] == ray_report["rows"] > 0
        local, on_ray = read_output(tmp_path / f"{name}-local"), read_output(tmp_path / f"{name}-ray")
        assert on_ray.column_names == local.column_names
        for column in local.column_names[:-1]:  # row, id (, query)
            assert on_ray.column(column).equals(local.column(column)), column
        result = local.column_names[-1]
        np.testing.assert_allclose(
            np.concatenate([np.ravel(v) for v in on_ray.column(result).to_pylist()]),
            np.concatenate([np.ravel(v) for v in local.column(result).to_pylist()]),
            rtol=0, atol=1e-6,
        )  # fmt: skip
        assert sorted(p.name for p in (tmp_path / f"{name}-ray").glob("part-*")) == sorted(
            p.name for p in (tmp_path / f"{name}-local").glob("part-*")
        )
