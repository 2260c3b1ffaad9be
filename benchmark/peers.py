"""sentence-transformers' own static int8 OpenVINO model, for the st-openvino-static system.

Made the way sentence-transformers documents it: the model loaded with backend="openvino", then
export_static_quantized_openvino_model (optimum-intel's OVQuantizer, OVQuantizationConfig's
defaults but for the number of samples) into a copy of the source folder. Its default calibration
set (GLUE SST-2 from the hub) cannot be fetched here, so it reads ours instead (the texts of the
shipped calibration set, export_models/data/, as a local `datasets` folder with a "sentence"
column): the same data the server's static int8 export calibrates on. Its preprocessing is its
own: single texts padded to 384 tokens.

    python -m benchmark.peers <source folder> <output folder> <rerank|embeddings> <samples>

The harness runs this in a process of its own once per model and reuses the result while the
source and these settings are unchanged (a stamp file records them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from serving.repository.layout import Task

ST_STATIC_FILE = "openvino/openvino_model_qint8_quantized.xml"
STAMP_FILE = "bench_st_static_stamp.json"
REPO_ROOT = Path(__file__).resolve().parent.parent


def calibration_texts(task: Task) -> list[str]:
    from export_models import calibration_data

    texts: list[str] = []
    for request in calibration_data.shipped(task, "calibration"):
        if isinstance(request, calibration_data.RerankRequest):
            texts += request.documents
        else:
            texts += request.texts
    return texts


def quantize(source: Path, output: Path, task: Task, samples: int) -> None:
    """Copy `source` to `output` and write sentence-transformers' static int8 model into it."""
    from optimum.intel import OVQuantizationConfig
    from sentence_transformers import (
        CrossEncoder,
        SentenceTransformer,
        export_static_quantized_openvino_model,
    )

    shutil.copytree(source, output)
    dataset = output.parent / f"{output.name}-calibration"
    shutil.rmtree(dataset, ignore_errors=True)
    dataset.mkdir(parents=True)
    lines = [json.dumps({"sentence": text}, ensure_ascii=False) for text in calibration_texts(task)]
    (dataset / "train.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    model_class = CrossEncoder if task is Task.RERANK else SentenceTransformer
    model = model_class(str(output), device="cpu", backend="openvino")
    export_static_quantized_openvino_model(
        model,
        OVQuantizationConfig(num_samples=samples),
        str(output),
        dataset_name=str(dataset),
        dataset_config_name="default",
        dataset_split="train",
        column_name="sentence",
    )
    shutil.rmtree(dataset, ignore_errors=True)
    if not (output / ST_STATIC_FILE).is_file():
        raise RuntimeError(f"export_static_quantized_openvino_model wrote no {ST_STATIC_FILE} in {output}")


def prepare_st_static(
    key: str,
    task: Task,
    source: Path,
    source_digest: str,
    work_dir: Path,
    samples: int,
    log: Callable[[str], None],
) -> Path:
    """The folder sentence-transformers loads its static int8 model from (made once, then reused)."""
    import optimum.intel
    import sentence_transformers

    folder = work_dir / "st-static" / key
    stamp = {
        "source": str(source),
        "source_digest": source_digest,
        "samples": samples,
        "sentence_transformers": sentence_transformers.__version__,
        "optimum_intel": getattr(optimum.intel, "__version__", ""),
        "calibration": len(calibration_texts(task)),
    }
    stamp_path = folder.parent / f"{key}-{STAMP_FILE}"
    reusable = (folder / ST_STATIC_FILE).is_file() and stamp_path.is_file()
    if reusable and json.loads(stamp_path.read_text()) == stamp:
        log(f"  {key}: reusing sentence-transformers' static int8 model in {folder}")
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "logs" / f"st-static-{key}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log(f"  {key}: sentence-transformers' export_static_quantized_openvino_model ({samples} samples)")
    started = time.monotonic()
    with open(log_path, "w") as log_file:
        completed = subprocess.run(
            [sys.executable, "-m", "benchmark.peers", str(source), str(folder), task.value, str(samples)],
            cwd=REPO_ROOT,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            check=False,
            env={
                **os.environ,
                "HF_HUB_OFFLINE": "1",
                "HF_DATASETS_OFFLINE": "1",
                "HF_DATASETS_CACHE": str(work_dir / "datasets-cache"),  # not the user's cache
            },
        )
    if completed.returncode != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-5:]
        raise RuntimeError(
            f"sentence-transformers' static int8 export failed (log {log_path}): " + " | ".join(tail)
        )
    stamp_path.write_text(json.dumps(stamp, indent=1))
    log(f"  {key}: made in {time.monotonic() - started:.0f} s")
    return folder


def main() -> None:
    source, output, task, samples = sys.argv[1:5]
    quantize(Path(source), Path(output), Task(task), int(samples))


if __name__ == "__main__":
    main()
