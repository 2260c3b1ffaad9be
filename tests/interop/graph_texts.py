"""graph.pbtxt texts as other tools wrote them, shared by the interop tests."""

from __future__ import annotations

# OVMS's current rerank graph (its `rerank_ov` export): one node over a flat model folder.
OVMS_RERANK_OV = """# OVMS_GRAPH_QUEUE_MAX_SIZE: AUTO
input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {
  name: "RerankExecutor"
  input_side_packet: "RERANK_NODE_RESOURCES:rerank_servable"
  calculator: "RerankCalculatorOV"
  input_stream: "REQUEST_PAYLOAD:input"
  output_stream: "RESPONSE_PAYLOAD:output"
  node_options: {
    [type.googleapis.com / mediapipe.RerankCalculatorOVOptions]: {
      models_path: "./",
      plugin_config: '{"NUM_STREAMS": "1" }',
      target_device: "CPU"
    }
  }
}
"""


def old_ovtext_rerank(max_allowed_chunks: int) -> str:
    """What this project wrote before --graph_format (README of that time): OVMS rejects its
    max_doc_length field."""
    return f"""input_stream: "REQUEST_PAYLOAD:input"
output_stream: "RESPONSE_PAYLOAD:output"
node {{
  name: "RerankExecutor"
  calculator: "RerankCalculatorOV"
  input_side_packet: "RERANK_NODE_RESOURCES:rerank_servable"
  input_stream: "REQUEST_PAYLOAD:input"
  output_stream: "RESPONSE_PAYLOAD:output"
  node_options: {{
    [type.googleapis.com / mediapipe.RerankCalculatorOVOptions]: {{
      max_allowed_chunks: {max_allowed_chunks}
      max_doc_length: 16000
    }}
  }}
}}
"""
