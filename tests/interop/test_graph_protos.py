"""Every graph.pbtxt the exporter writes parses strictly against OpenVINO Model Server's messages.

The graphs come from the exporter's own renderer (export_models/repository/rendering.py, the only writer of
graph.pbtxt) for both --graph_format values, both tasks and the option values the CLI allows. The
checker (tests/interop/ovms_protos.py) is shown to be strict on the graph this project wrote before
--graph_format (unknown field max_doc_length, no models_path), and to accept OVMS's own templates.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import descriptor_pool, text_format

from export_models.repository import render_graph
from serving.repository.layout import GraphFormat, Pooling, Task

from .graph_texts import OVMS_RERANK_OV, old_ovtext_rerank
from .ovms_protos import GraphError, compile_protos, options_of, parse_strictly, session_servables

# OVMS's export_model.py templates, rendered (v2024.5 rerank, v2025.3 embeddings, HEAD rerank_ov).
OVMS_SEED_RERANK = """input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {
  calculator: "OpenVINOModelServerSessionCalculator"
  output_side_packet: "SESSION:tokenizer"
  node_options: {
    [type.googleapis.com / mediapipe.OpenVINOModelServerSessionCalculatorOptions]: {
      servable_name: "m_tokenizer_model"
    }
  }
}
node {
  calculator: "OpenVINOModelServerSessionCalculator"
  output_side_packet: "SESSION:rerank"
  node_options: {
    [type.googleapis.com / mediapipe.OpenVINOModelServerSessionCalculatorOptions]: {
      servable_name: "m_rerank_model"
    }
  }
}
node {
    input_side_packet: "TOKENIZER_SESSION:tokenizer"
    input_side_packet: "RERANK_SESSION:rerank"
    calculator: "RerankCalculator"
    input_stream: "REQUEST_PAYLOAD:input"
    output_stream: "RESPONSE_PAYLOAD:output"
}
"""
OVMS_SEED_EMBEDDINGS = (
    OVMS_SEED_RERANK.replace("rerank", "embeddings")
    .replace("RERANK", "EMBEDDINGS")
    .replace("RerankCalculator", "EmbeddingsCalculator")
    .replace(
        '    output_stream: "RESPONSE_PAYLOAD:output"\n}',
        '    output_stream: "RESPONSE_PAYLOAD:output"\n    node_options: {\n'
        "      [type.googleapis.com / mediapipe.EmbeddingsCalculatorOptions]: {\n"
        "        normalize_embeddings: true,\n      }\n    }\n}",
    )
)

OLD_OVTEXT_RERANK = old_ovtext_rerank(10000)

RERANK_OPTIONS = [
    {"max_allowed_chunks": 10000, "max_position_embeddings": 512},
    {"max_allowed_chunks": 1, "max_position_embeddings": 8192},
]
EMBEDDINGS_OPTIONS = [
    {"pooling": pooling.value, "normalize_embeddings": normalize, "truncate": truncate}
    for pooling in Pooling
    for normalize, truncate in ((True, False), (False, True))
]
CASES = [
    pytest.param(graph_format, task, options, id=f"{graph_format.value}-{task.value}-{index}")
    for graph_format in GraphFormat
    for task in Task
    for index, options in enumerate(RERANK_OPTIONS if task is Task.RERANK else EMBEDDINGS_OPTIONS)
]
# Model names, devices and plugin configs the CLI lets through.
DEPLOYMENTS = [
    ("BAAI/bge-reranker-large", "CPU", {"NUM_STREAMS": "1", "INFERENCE_PRECISION_HINT": "f32"}),
    ("org/naïve model", "HETERO:GPU,CPU", {"NUM_STREAMS": "4"}),
]


@pytest.fixture(scope="module")
def pool(tmp_path_factory: pytest.TempPathFactory) -> descriptor_pool.DescriptorPool:
    return compile_protos(tmp_path_factory.mktemp("protos"))


@pytest.mark.parametrize(("graph_format", "task", "options"), CASES)
@pytest.mark.parametrize(("model_name", "device", "plugin_config"), DEPLOYMENTS)
def test_exported_graph_parses_strictly(
    pool: descriptor_pool.DescriptorPool,
    graph_format: GraphFormat,
    task: Task,
    options: dict,
    model_name: str,
    device: str,
    plugin_config: dict[str, str],
) -> None:
    text = render_graph(graph_format, model_name, task, options, device, plugin_config)
    graph = parse_strictly(pool, text)
    if graph_format is GraphFormat.LEGACY:
        assert session_servables(pool, graph) == {
            "tokenizer": f"{model_name}_tokenizer_model",
            task.value: f"{model_name}_{task.value}_model",
        }
        calculator = task.legacy_calculator
    else:
        calculator = task.calculator
    unpacked = options_of(pool, graph, calculator)
    for key, value in options.items():
        if unpacked.DESCRIPTOR.fields_by_name.get(key) is None:
            assert graph_format is GraphFormat.LEGACY and key in ("pooling", "truncate")
            continue
        got = getattr(unpacked, key)
        if key == "pooling":
            got = unpacked.DESCRIPTOR.fields_by_name["pooling"].enum_type.values_by_number[got].name
        assert got == value, key
    if graph_format is GraphFormat.OV:
        assert unpacked.models_path == "./" and unpacked.target_device == device
        assert json.loads(unpacked.plugin_config) == plugin_config


@pytest.mark.parametrize("text", [OVMS_SEED_RERANK, OVMS_SEED_EMBEDDINGS, OVMS_RERANK_OV])
def test_ovms_own_templates_parse(pool: descriptor_pool.DescriptorPool, text: str) -> None:
    parse_strictly(pool, text)


def test_the_old_graph_is_refused(pool: descriptor_pool.DescriptorPool) -> None:
    """The checker is strict: the graph this project wrote before --graph_format fails it twice over."""
    with pytest.raises(text_format.ParseError, match="max_doc_length"):
        parse_strictly(pool, OLD_OVTEXT_RERANK)
    without_unknown_field = OLD_OVTEXT_RERANK.replace("      max_doc_length: 16000\n", "")
    with pytest.raises((GraphError, text_format.ParseError), match="models_path"):
        parse_strictly(pool, without_unknown_field)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (("RERANK_SESSION:rerank", "RERANK_SESSION:other"), "no node gives"),
        (('servable_name: "m_rerank_model"', 'servable_version: "1"'), "servable_name"),
        (('RerankCalculator"', 'RerankCalculatorX"'), "unknown calculator"),
    ],
)
def test_broken_graphs_are_refused(
    pool: descriptor_pool.DescriptorPool, change: tuple[str, str], problem: str
) -> None:
    with pytest.raises((GraphError, text_format.ParseError), match=problem):
        parse_strictly(pool, OVMS_SEED_RERANK.replace(*change))


def test_every_template_is_checked() -> None:
    """The renderer's templates are the only graph.pbtxt writer: a new one must be added to CASES."""
    from export_models.repository.rendering import GRAPH_TEMPLATES, TEMPLATES_DIR

    assert {case.values[0] for case in CASES} == set(GRAPH_TEMPLATES)
    assert sorted(p.name for p in Path(TEMPLATES_DIR).glob("graph*.j2")) == sorted(GRAPH_TEMPLATES.values())
