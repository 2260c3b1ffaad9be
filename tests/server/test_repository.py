"""Reading the repository: the graph.pbtxt parser, config.json / subconfig.json, version folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import openvino as ov
import pytest

from serving.repository import pbtxt
from serving.repository.config import (
    ConfigError,
    EmbeddingsOptions,
    RerankOptions,
    ServableSpec,
    VersionPolicy,
    read_config,
    read_servable_spec,
    resolve_options,
)
from serving.repository.layout import Pooling, Task, read_model_info
from serving.repository.versions import scan_versions, stable_versions

REFERENCE_STYLE_GRAPH = """
# a comment
input_stream: "REQUEST_PAYLOAD:input"
output_stream: 'RESPONSE_PAYLOAD:output'
node {
  name: "EmbeddingsExecutor"
  calculator: "EmbeddingsCalculatorOV"
  input_side_packet: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable"
  node_options: {
    [type.googleapis.com / mediapipe.EmbeddingsCalculatorOVOptions]: {
      pooling: LAST, normalize_embeddings: false
      truncate: true;
    }
  }
}
"""


def test_pbtxt_reads_the_reference_graph_shape() -> None:
    graph = pbtxt.parse(REFERENCE_STYLE_GRAPH)
    assert graph["output_stream"] == "RESPONSE_PAYLOAD:output"
    options = graph["node"]["node_options"]["[type.googleapis.com/mediapipe.EmbeddingsCalculatorOVOptions]"]
    assert options == {"pooling": "LAST", "normalize_embeddings": False, "truncate": True}


def test_pbtxt_repeated_fields_lists_nesting_and_strings() -> None:
    message = pbtxt.parse('a: 1 a: -2.5e1 b: [1, 2] c < d: "x" "y" > e: "q\\"uote" f: 0x10')
    assert pbtxt.all_values(message, "a") == [1, -25.0]
    assert message["b"] == [1, 2] and pbtxt.all_values(message, "b") == [[1, 2]]
    assert message["c"] == {"d": "xy"}
    assert message["e"] == 'q"uote' and message["f"] == 16
    assert pbtxt.all_values(message, "missing") == []


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("node { a: 1", "missing '}'"),
        ("node { a: }", "line 1, column 11"),
        ("a: 'x", "line 1"),
        ("a 1", "expected ':'"),
    ],
)
def test_pbtxt_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(pbtxt.PbtxtError, match=where):
        pbtxt.parse(text)


def test_version_policies() -> None:
    on_disk = [1, 2, 3, 5]
    assert VersionPolicy.parse(None, "x").select(on_disk) == [5]
    assert VersionPolicy.parse({"latest": {"num_versions": 2}}, "x").select(on_disk) == [5, 3]
    assert VersionPolicy.parse({"specific": {"versions": [1, 3, 4]}}, "x").select(on_disk) == [3, 1]
    assert VersionPolicy.parse({"all": {}}, "x").select(on_disk) == [5, 3, 2, 1]
    for bad in ({"latest": {"num_versions": 0}}, {"newest": {}}, {"specific": {"versions": []}}, []):
        with pytest.raises(ConfigError, match="model_version_policy"):
            VersionPolicy.parse(bad, "x")


def served_options(spec: ServableSpec) -> RerankOptions | EmbeddingsOptions:
    """The settings version 1 is served with: the graph's, else its runtime info's."""
    model_info = read_model_info(ov.Core().read_model(spec.scan_versions()[1].model_xml))
    return resolve_options(spec.task, spec.options, model_info)


def test_exported_repository_reads_into_specs(main_repo: Path) -> None:
    """The shared server's repository: copies of fp32 exports, two with rewritten graph options."""
    entries = {e.name: e for e in read_config(main_repo / "config.json")}
    spec = read_servable_spec(entries["test/xlmr-few-chunks"])
    assert spec.task is Task.RERANK and served_options(spec) == RerankOptions(
        max_allowed_chunks=3, max_doc_length=16000
    )
    folder = main_repo / "test/xlmr-few-chunks"
    assert spec.tokenizer.base_path == folder / "tokenizer" and spec.tokenizer.target_device == "CPU"
    assert spec.model.base_path == folder / "rerank"
    assert spec.model.plugin_config["INFERENCE_PRECISION_HINT"] == "f32"  # fp32 export
    spec = read_servable_spec(entries["test/minilm-truncate"])
    assert served_options(spec) == EmbeddingsOptions(
        pooling=Pooling.MEAN, normalize_embeddings=True, truncate=True
    )


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    with pytest.raises(ConfigError, match="file not found"):
        read_config(config)
    config.write_text("{")
    with pytest.raises(ConfigError, match="invalid JSON"):
        read_config(config)
    config.write_text(json.dumps({"mediapipe_config_list": [{"name": "a"}, {"name": "a"}]}))
    with pytest.raises(ConfigError, match="duplicate name 'a'"):
        read_config(config)
    config.write_text(
        json.dumps({"mediapipe_config_list": [{"name": "m", "base_path": "/abs/m"}], "other": 1})
    )
    (entry,) = read_config(config)
    assert entry.base_path == Path("/abs/m") and entry.graph_path == Path("/abs/m/graph.pbtxt")


def test_versions_need_both_folders_complete_and_unchanging(tmp_path: Path) -> None:
    def write(path: Path, data: bytes = b"x") -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    tokenizer, model = tmp_path / "tokenizer", tmp_path / "rerank"
    for version in (1, 2):
        write(tokenizer / str(version) / "model.xml")
        write(tokenizer / str(version) / "model.bin")
    write(model / "1" / "model.xml")
    write(model / "1" / "model.bin")
    write(model / "2" / "model.xml")  # no model.bin yet
    write(model / "notaversion" / "model.xml")
    first = scan_versions(tokenizer, model)
    assert sorted(first) == [1]
    write(model / "2" / "model.bin", b"half")
    second = scan_versions(tokenizer, model)
    assert sorted(second) == [1, 2] and sorted(stable_versions(first, second)) == [1]
    with (model / "2" / "model.bin").open("ab") as growing:
        growing.write(b" and the rest")
    os.utime(model / "2" / "model.bin", ns=(0, 1))  # the size changed even if a copy kept the mtime
    third = scan_versions(tokenizer, model)
    assert sorted(stable_versions(second, third)) == [1]
    assert sorted(stable_versions(third, scan_versions(tokenizer, model))) == [1, 2]
