"""deploy/kubernetes: the rendered manifests pass the Kubernetes API schemas and match the server.

No cluster runs here. The overlays are rendered with `kubectl kustomize` (offline) and checked
with `kubernetes-validate --strict` (the API schemas of Kubernetes 1.25-1.37, bundled: misspelled
fields and wrong types fail) against the oldest and newest versions it has; then everything a
cluster would hand the server is checked against the server itself: flags, variables, probe
paths, the drain time, the plugin_config the pods compute from their CPU limit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from export_models.cli import main as export_main
from serving.cli import GRACEFUL_SHUTDOWN_S, _plugin_config
from serving.cli import main as serve_main

REPO_ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = REPO_ROOT / "deploy" / "kubernetes"
OVERLAYS = ("dev", "production")
VERSIONS = ("1.29.0", "1.37.0")  # kubernetes-validate's range is 1.25-1.37; 1.29: preStop sleep, sidecars
QUEUE_COMPONENT = KUBERNETES / "components" / "queue-size-hpa"


def render(folder: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for `kubectl kustomize`) is not on PATH"
    done = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def validate(resources: list[dict[str, Any]], path: Path) -> subprocess.CompletedProcess:
    """`kubernetes-validate --strict` on the resources, against each of VERSIONS (outputs joined)."""
    path.write_text(yaml.safe_dump_all(resources, sort_keys=False))
    runs = []
    for version in VERSIONS:
        command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--kubernetes-version", version]
        runs.append(subprocess.run([*command, str(path)], capture_output=True, text=True, timeout=300))
    return subprocess.CompletedProcess(
        runs[0].args, max(r.returncode for r in runs), "".join(r.stdout for r in runs), ""
    )


def by_kind(resources: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    kinds: dict[str, dict[str, Any]] = {}
    for resource in resources:
        assert resource["kind"] not in kinds, f"two {resource['kind']}s"
        kinds[resource["kind"]] = resource
    return kinds


@pytest.fixture(scope="module", params=[*OVERLAYS, "production+queue-size-hpa"])
def rendered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    if request.param in OVERLAYS:
        return render(KUBERNETES / "overlays" / request.param)
    # The documented way to add the queue-size autoscaling: the component on top of an overlay.
    overlay = tmp_path_factory.mktemp("overlay")
    production = os.path.relpath(KUBERNETES / "overlays" / "production", overlay)  # kustomize wants relative
    component = os.path.relpath(QUEUE_COMPONENT, overlay)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{production}]\ncomponents: [{component}]\n"
    )
    return render(overlay)


def test_every_manifest_passes_the_api_schemas(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    done = validate(rendered, tmp_path / "rendered.yaml")
    assert done.returncode == 0, done.stdout
    assert "WARN" not in done.stdout and "ERROR" not in done.stdout, done.stdout
    assert done.stdout.count(" passed for resource ") == len(rendered) * len(VERSIONS), done.stdout
    assert set(by_kind(rendered)) == {
        "Namespace", "PersistentVolumeClaim", "Job", "Deployment", "Service", "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
    }  # fmt: skip


def test_the_validation_catches_misspelled_fields_and_wrong_types(tmp_path: Path) -> None:
    deployment = by_kind(render(KUBERNETES / "overlays" / "dev"))["Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    misspelled = json.loads(json.dumps(deployment))
    misspelled["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = container["readinessProbe"]
    done = validate([misspelled], tmp_path / "misspelled.yaml")
    assert done.returncode != 0 and "readinesProbe" in done.stdout, done.stdout
    wrong_type = json.loads(json.dumps(deployment))
    wrong_type["spec"]["replicas"] = "two"
    done = validate([wrong_type], tmp_path / "wrong-type.yaml")
    assert done.returncode != 0 and "replicas" in done.stdout, done.stdout


def _option_names(command: Any) -> set[str]:
    return {option for param in command.params for option in getattr(param, "opts", [])}


def _flag(argument: str) -> str:
    return argument.split("=", 1)[0]


def _cpu_cores(quantity: str) -> int:
    """A CPU limit as the Downward API hands it with divisor 1: whole cores, rounded up."""
    match = re.fullmatch(r"(\d+)(m?)", str(quantity))
    assert match, quantity
    value = int(match.group(1))
    return -(-value // 1000) if match.group(2) else value


def test_the_deployment_says_what_the_server_reads(rendered: list[dict[str, Any]]) -> None:
    kinds = by_kind(rendered)
    deployment, service = kinds["Deployment"], kinds["Service"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    flags = {_flag(argument): argument.split("=", 1)[1] for argument in container["args"]}
    assert set(flags) <= _option_names(serve_main), flags  # real ovtext-serve flags
    port = int(flags["--rest_port"])
    (container_port,) = container["ports"]
    assert container_port["containerPort"] == port and container_port["name"] == "http"
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert service["spec"]["selector"].items() <= pod_labels(deployment).items()

    # Probes: readiness and startup on /v2/health/ready, liveness on /v2/health/live, on that port.
    for probe, path in (("readinessProbe", "/v2/health/ready"), ("startupProbe", "/v2/health/ready"),
                        ("livenessProbe", "/v2/health/live")):  # fmt: skip
        assert container[probe]["httpGet"] == {"path": path, "port": "http"}, probe
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 300  # time to compile the models

    # SIGTERM: the preStop pause, then the server's drain, within the grace period.
    pause = int(container["lifecycle"]["preStop"]["exec"]["command"][1])
    assert pod["terminationGracePeriodSeconds"] > pause + GRACEFUL_SHUTDOWN_S

    # The model repository: the PVC the export Job writes, mounted read-only where --config_path points.
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    (models,) = [name for name, volume in volumes.items() if "persistentVolumeClaim" in volume]
    assert mounts[models]["readOnly"] is True and volumes[models]["persistentVolumeClaim"]["readOnly"] is True
    assert flags["--config_path"] == f"{mounts[models]['mountPath']}/config.json"
    claim = volumes[models]["persistentVolumeClaim"]["claimName"]
    assert kinds["PersistentVolumeClaim"]["metadata"]["name"] == claim

    # Resources, and the plugin_config the server computes from the CPU limit.
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys()
    env = {item["name"]: item for item in container["env"]}
    assert set(name for name in env if name.startswith("OVTEXT_")) <= {
        f"OVTEXT_{option.lstrip('-').upper()}" for option in _option_names(serve_main)
    }
    assert env["CPU_LIMIT"]["valueFrom"]["resourceFieldRef"] == {
        "containerName": container["name"], "resource": "limits.cpu", "divisor": "1"
    }  # fmt: skip
    cores = _cpu_cores(limits["cpu"])
    values = {"CPU_LIMIT": str(cores), **{n: e["value"] for n, e in env.items() if "value" in e}}
    expanded = re.sub(r"\$\((\w+)\)", lambda m: values[m.group(1)], env["OVTEXT_PLUGIN_CONFIG"]["value"])
    plugin_config = _plugin_config(expanded)  # as the server parses it
    assert plugin_config["INFERENCE_NUM_THREADS"] == str(cores)
    streams = int(plugin_config["NUM_STREAMS"])
    assert 1 <= streams <= cores and cores % streams == 0


def pod_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_autoscaler_budget_and_export_job_fit_the_deployment(rendered: list[dict[str, Any]]) -> None:
    kinds = by_kind(rendered)
    deployment, hpa, pdb, job = (kinds[k] for k in ("Deployment", "HorizontalPodAutoscaler",
                                                     "PodDisruptionBudget", "Job"))  # fmt: skip
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["spec"]["minReplicas"] <= deployment["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    if "Pods" in metrics:
        assert metrics["Pods"]["pods"]["metric"]["name"] == "ovtext_queue_size"
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels(deployment).items()

    # The export Job: real ovtext-export commands, writing into the PVC the servers read.
    spec = job["spec"]["template"]["spec"]
    deployment_claims = {
        v["persistentVolumeClaim"]["claimName"]
        for v in deployment["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v
    }  # fmt: skip
    for container in spec["initContainers"] + spec["containers"]:
        task, *options = container["args"]
        assert task in export_main.commands, task
        flags = dict(argument.split("=", 1) for argument in options)
        assert set(flags) <= _option_names(export_main.commands[task]), flags
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        volume = mounts[flags["--model_repository_path"]]
        (claim,) = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if v["name"] == volume]
        assert claim in deployment_claims


def test_the_adapter_rule_serves_a_metric_the_server_exports(tmp_path: Path) -> None:
    config_map = yaml.safe_load((QUEUE_COMPONENT / "prometheus-adapter-config.yaml").read_text())
    done = validate([config_map], tmp_path / "adapter.yaml")
    assert done.returncode == 0, done.stdout
    (rule,) = yaml.safe_load(config_map["data"]["config.yaml"])["rules"]
    assert rule["name"]["as"] == "ovtext_queue_size"
    metrics = (REPO_ROOT / "serving" / "http" / "metrics.py").read_text()
    assert '"ovtext_queue_size"' in metrics
