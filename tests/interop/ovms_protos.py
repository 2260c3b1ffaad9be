"""OpenVINO Model Server's graph messages, compiled with protoc, and a strict check of a graph.pbtxt.

proto/ holds the message definitions, written from OVMS's sources (docs/repository.md):
MediaPipe's CalculatorGraphConfig (the fields rerank and embeddings graphs use),
CalculatorOptions, and the options of the five calculators. protoc (from grpcio-tools) compiles
them into a descriptor set; protobuf's text_format parses a graph with it the way OVMS's C++
parser does: an unknown field, an unknown option message or a wrong enum word is a ParseError.
The options of each node are then unpacked and must have their required fields, and each node
must fit its calculator's contract (the side-packet tags it takes and gives, its option message,
its streams).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format
from google.protobuf.message import EncodeError, Message

PROTO_DIR = Path(__file__).resolve().parent / "proto"
GRAPH_MESSAGE = "mediapipe.CalculatorGraphConfig"


@dataclass(frozen=True)
class Contract:
    """What a calculator takes and gives (tags of "TAG:name" side packets), and its option message."""

    options: str
    input_side_packets: frozenset[str] = frozenset()
    output_side_packets: frozenset[str] = frozenset()
    request_streams: bool = True  # REQUEST_PAYLOAD in, RESPONSE_PAYLOAD out
    needs_name: bool = False  # the *OV calculators find their servable by node name
    needs_options: bool = False


CONTRACTS = {
    "OpenVINOModelServerSessionCalculator": Contract(
        "OpenVINOModelServerSessionCalculatorOptions",
        output_side_packets=frozenset({"SESSION"}),
        request_streams=False,
        needs_options=True,
    ),
    "RerankCalculator": Contract(
        "RerankCalculatorOptions", input_side_packets=frozenset({"TOKENIZER_SESSION", "RERANK_SESSION"})
    ),
    "EmbeddingsCalculator": Contract(
        "EmbeddingsCalculatorOptions",
        input_side_packets=frozenset({"TOKENIZER_SESSION", "EMBEDDINGS_SESSION"}),
    ),
    "RerankCalculatorOV": Contract(
        "RerankCalculatorOVOptions",
        input_side_packets=frozenset({"RERANK_NODE_RESOURCES"}),
        needs_name=True,
        needs_options=True,
    ),
    "EmbeddingsCalculatorOV": Contract(
        "EmbeddingsCalculatorOVOptions",
        input_side_packets=frozenset({"EMBEDDINGS_NODE_RESOURCES"}),
        needs_name=True,
        needs_options=True,
    ),
}


class GraphError(AssertionError):
    """The graph would not load in OVMS: the message says why."""


def compile_protos(out_dir: Path) -> descriptor_pool.DescriptorPool:
    """protoc the .proto files of proto/ into a descriptor set and load it into a pool."""
    descriptor_set = out_dir / "ovms_graphs.pb"
    well_known = resources.files("grpc_tools") / "_proto"
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    subprocess.run(
        [
            sys.executable, "-m", "grpc_tools.protoc",
            f"-I{PROTO_DIR}", f"-I{well_known}",
            "--include_imports", f"--descriptor_set_out={descriptor_set}",
            *protos,
        ],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    files = descriptor_pb2.FileDescriptorSet.FromString(descriptor_set.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)
    return pool


def _message(pool: descriptor_pool.DescriptorPool, name: str) -> Message:
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(name))()


def _tags(values: list[str]) -> dict[str, str]:
    """TAG -> name of "TAG:name" stream or side packet names."""
    return {value.split(":")[0]: value.split(":")[-1] for value in values}


def parse_strictly(pool: descriptor_pool.DescriptorPool, text: str) -> Message:
    """The graph as OVMS would load it; GraphError (or text_format.ParseError) when it would not."""
    graph = _message(pool, GRAPH_MESSAGE)
    try:
        text_format.Parse(text, graph, descriptor_pool=pool)
    except EncodeError as err:  # an option message without its required fields cannot be packed
        raise GraphError(str(err)) from err
    produced = {name for node in graph.node for name in _tags(list(node.output_side_packet)).values()}
    for node in graph.node:
        contract = CONTRACTS.get(node.calculator)
        if contract is None:
            raise GraphError(f"unknown calculator {node.calculator!r}")
        where = f"node {node.name or node.calculator}"
        inputs, outputs = _tags(list(node.input_side_packet)), _tags(list(node.output_side_packet))
        if set(inputs) != contract.input_side_packets or set(outputs) != contract.output_side_packets:
            raise GraphError(f"{where}: side packets {sorted(inputs)} -> {sorted(outputs)}")
        if contract.needs_name and not node.name:
            raise GraphError(f"{where}: needs a name")
        sessions = {name for tag, name in inputs.items() if tag.endswith("_SESSION")}
        if sessions - produced:
            raise GraphError(f"{where}: no node gives {sorted(sessions - produced)}")
        if contract.request_streams and (
            _tags(list(node.input_stream)) != {"REQUEST_PAYLOAD": "input"}
            or _tags(list(node.output_stream)) != {"RESPONSE_PAYLOAD": "output"}
        ):
            raise GraphError(f"{where}: streams {list(node.input_stream)} -> {list(node.output_stream)}")
        if len(node.node_options) > 1 or (contract.needs_options and not node.node_options):
            raise GraphError(f"{where}: {len(node.node_options)} node_options")
        for packed in node.node_options:
            if packed.TypeName() != f"mediapipe.{contract.options}":
                raise GraphError(f"{where}: options {packed.TypeName()}, expected {contract.options}")
            options = _message(pool, packed.TypeName())
            packed.Unpack(options)
            if not options.IsInitialized():
                raise GraphError(f"{where}: required fields missing: {options.FindInitializationErrors()}")
    if list(graph.input_stream) != ["REQUEST_PAYLOAD:input"] or list(graph.output_stream) != [
        "RESPONSE_PAYLOAD:output"
    ]:
        raise GraphError(f"graph streams {list(graph.input_stream)} -> {list(graph.output_stream)}")
    return graph


def options_of(pool: descriptor_pool.DescriptorPool, graph: Message, calculator: str) -> Message:
    """The unpacked options of the graph's node of `calculator`."""
    (node,) = [node for node in graph.node if node.calculator == calculator]
    (packed,) = node.node_options
    options = _message(pool, packed.TypeName())
    packed.Unpack(options)
    return options


def session_servables(pool: descriptor_pool.DescriptorPool, graph: Message) -> dict[str, str]:
    """Side packet name -> servable_name of the graph's session nodes."""
    servables = {}
    for node in graph.node:
        if node.calculator == "OpenVINOModelServerSessionCalculator":
            options = _message(pool, node.node_options[0].TypeName())
            node.node_options[0].Unpack(options)
            servables[_tags(list(node.output_side_packet))["SESSION"]] = options.servable_name
    return servables
