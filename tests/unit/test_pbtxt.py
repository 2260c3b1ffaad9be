"""The protobuf text format parser of graph.pbtxt (serving/repository/pbtxt.py)."""

from __future__ import annotations

import re

import pytest

from serving.repository.pbtxt import PbtxtError, all_values, parse

# A graph as OVMS users write it: comments, repeated fields, an extension key with spaces,
# `key: { }` and `key < >` messages, both quote kinds, enum words.
GRAPH = """
# rerank graph
input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {
  name: "rerank"
  calculator: 'RerankCalculatorOV'
  input_side_packet: "LLM_NODE_RESOURCES:llm"
  input_stream: "REQUEST_PAYLOAD:input"
  input_stream: "EXTRA:x";
  node_options: {
    [type.googleapis.com / mediapipe.RerankCalculatorOVOptions]: {
      models_path: "./"
      max_allowed_chunks: 3,
      pooling: MEAN
      normalize: true
      threshold: 0.5f
    }
  }
}
node < name: "second" >
"""


def test_a_graph_parses_into_nested_messages():
    graph = parse(GRAPH)
    assert graph["input_stream"] == "REQUEST_PAYLOAD:input"
    first, second = all_values(graph, "node")
    assert second == {"name": "second"}
    assert first["calculator"] == "RerankCalculatorOV"
    assert all_values(first, "input_stream") == ["REQUEST_PAYLOAD:input", "EXTRA:x"]
    options = first["node_options"]["[type.googleapis.com/mediapipe.RerankCalculatorOVOptions]"]
    assert options == {
        "models_path": "./",
        "max_allowed_chunks": 3,
        "pooling": "MEAN",
        "normalize": True,
        "threshold": 0.5,
    }


def test_all_values_of_absent_single_and_repeated_fields():
    message = parse("a: 1 b: 2 b: 3 c: [4, 5]")
    assert all_values(message, "missing") == []
    assert all_values(message, "a") == [1]
    assert all_values(message, "b") == [2, 3]
    assert all_values(message, "c") == [[4, 5]]  # a list value is one value, not a repeated field


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: 42", 42),
        ("v: -7", -7),
        ("v: 0x1F", 31),
        ("v: 2.5e3", 2500.0),
        ("v: .25", 0.25),
        ("v: 1f", 1),  # the float suffix goes; the number reads as written
        ("v: false", False),
        ("v: True", True),
        ('v: "a" \'b\' "c"', "abc"),  # adjacent literals concatenate
        (r'v: "tab\there \"q\" \\"', 'tab\there "q" \\'),
        ("v: [1, {x: 2}, <y: 3>]", [1, {"x": 2}, {"y": 3}]),
        ("v: []", []),
        ("v {}", {}),
    ],
)
def test_scalar_and_list_values(text, value):
    assert parse(text) == {"v": value}


def test_an_empty_text_is_an_empty_message():
    assert parse("") == {}
    assert parse("  # only a comment\n") == {}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a: 1\nb: @", "line 2, column 4"),
        ("node {\n  name: 'x'\n", "missing '}'"),
        ("a 1", "line 1, column 3: expected ':' or '{' after a field name, found a number"),
        ("a: }", "line 1, column 4: expected a value, found '}'"),
        ("a: 'open", "line 1, column 4"),  # an unclosed string is not a string token
        ("[]: 1", "empty extension name"),
        ("a:", "unexpected end of text: expected a value"),
    ],
)
def test_errors_name_where_the_text_went_wrong(text, where):
    # Where and what kind of error, never the file's own words (a graph may be any file).
    with pytest.raises(PbtxtError, match=re.escape(where)):
        parse(text)
