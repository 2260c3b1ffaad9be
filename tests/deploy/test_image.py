"""The serve image, built for real with podman and run as the reference server's `docker run` line runs it.

Slow (a Debian base made by mmdebstrap, then the image): outside `make test`; `make image-test`
runs it (OVTEXT_IMAGE_TEST=1), and so does CI after the tests. The container uses the host's
network on a loopback port (`--network host`, OVTEXT_HOST=127.0.0.1) instead of `-p 8000:8000`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tools.server_process import free_port

from .conftest import EMBEDDER, RERANKER

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "ovtext:serve"
MAX_IMAGE_BYTES = 400_000_000
CONTAINERS_CONF = REPO_ROOT / "deploy" / "container" / "containers.conf"

pytestmark = pytest.mark.skipif(
    os.environ.get("OVTEXT_IMAGE_TEST") != "1", reason="builds the image with podman: make image-test"
)


def podman(*arguments: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "CONTAINERS_CONF": os.environ.get("CONTAINERS_CONF", str(CONTAINERS_CONF))}
    done = subprocess.run(["podman", *arguments], env=env, capture_output=True, text=True, timeout=timeout)
    assert not check or done.returncode == 0, f"podman {' '.join(arguments)}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    done = subprocess.run(
        ["bash", str(REPO_ROOT / "deploy" / "container" / "build.sh")],
        cwd=REPO_ROOT, env={**os.environ, "PYTHON": sys.executable, "TARGET": "serve", "IMAGE": IMAGE},
        capture_output=True, text=True, timeout=3600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    size = int(podman("image", "inspect", "--format", "{{.Size}}", IMAGE).stdout)
    print(f"\nimage {IMAGE}: {size / 1e6:.0f} MB, built in {time.monotonic() - started:.0f} s\n{done.stderr}")
    assert size < MAX_IMAGE_BYTES, f"{IMAGE} is {size / 1e6:.0f} MB"
    return IMAGE


def test_the_reference_docker_run_line_serves(image: str, deploy_repo: Path) -> None:
    port = free_port()
    name = f"ovtext-image-test-{os.getpid()}"
    # The reference server's line, with the host's network on a loopback port instead of -p, and a
    # read-only root filesystem (as the Kubernetes Deployment runs it).
    podman("run", "-d", "--rm", "--name", name, "--network", "host", "-e", "OVTEXT_HOST=127.0.0.1",
           "--read-only", "--tmpfs", "/tmp",
           "-v", f"{deploy_repo}:/workspace:ro", image,
           "--port", "9000", "--rest_port", str(port), "--config_path", "/workspace/config.json")  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 240
        while True:
            try:
                if httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, podman("logs", name, check=False).stderr[-3000:]
            time.sleep(0.5)
        response = httpx.post(
            f"{url}/v3/rerank",
            json={"model": RERANKER, "query": "welcome", "documents": ["good morning", "farewell"]},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        assert sorted(r["index"] for r in response.json()["results"]) == [0, 1]
        embeddings = httpx.post(f"{url}/v3/embeddings", json={"model": EMBEDDER, "input": ["hi"]}, timeout=60)
        assert embeddings.status_code == 200, embeddings.text
        assert podman("healthcheck", "run", name, check=False).returncode == 0  # the image's HEALTHCHECK
        assert podman("exec", name, "id", "-u").stdout.strip() == "1000"  # not root
        logs = podman("logs", name)
        assert "--port 9000 ignored" in logs.stdout + logs.stderr
        # SIGTERM (podman stop): the server drains and exits 0.
        waiter = subprocess.Popen(["podman", "wait", name], stdout=subprocess.PIPE, text=True,
                                  env={**os.environ, "CONTAINERS_CONF": str(CONTAINERS_CONF)})  # fmt: skip
        time.sleep(0.5)
        podman("stop", "--time", "40", name, timeout=60)
        assert waiter.communicate(timeout=60)[0].strip() == "0"
    finally:
        podman("rm", "--force", "--ignore", name, check=False)


def test_the_image_has_no_torch_and_its_declared_settings(image: str) -> None:
    probe = "import importlib.util as u, sys; print([m for m in sys.argv[1:] if u.find_spec(m)])"
    done = podman("run", "--rm", "--entrypoint", "python3", image, "-c", probe,
                  "torch", "transformers", "optimum", "pyarrow", "ray", "openvino")  # fmt: skip
    assert done.stdout.strip() == "['openvino']"
    (config,) = json.loads(podman("image", "inspect", image).stdout)
    settings = config["Config"]
    assert settings["Entrypoint"] == ["ovtext-serve"]
    assert settings["User"] == "1000:1000"
    assert "OVTEXT_HOST=0.0.0.0" in settings["Env"]
    healthcheck = config.get("Healthcheck") or settings.get("Healthcheck")  # podman: beside Config
    assert healthcheck["Test"] == ["CMD", "python3", "/usr/local/bin/ovtext-healthcheck"]
