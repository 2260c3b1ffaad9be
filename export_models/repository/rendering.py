"""graph.pbtxt and subconfig.json, rendered from the Jinja2 templates in templates/."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import jinja2

from serving.repository.layout import (
    TOKENIZER_DIR,
    GraphFormat,
    Task,
    model_servable_name,
    tokenizer_servable_name,
)

# templates/ at the repository root (a checkout or an editable install); a wheel installs the same
# files as data under <prefix>/share/ovtext/templates (pyproject.toml, tool.setuptools.data-files).
_CHECKOUT_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TEMPLATES_DIR = (
    _CHECKOUT_TEMPLATES
    if _CHECKOUT_TEMPLATES.is_dir()
    else Path(sys.prefix) / "share" / "ovtext" / "templates"
)
GRAPH_TEMPLATES = {GraphFormat.LEGACY: "graph_legacy.pbtxt.j2", GraphFormat.OV: "graph_ov.pbtxt.j2"}
SUBCONFIG_TEMPLATE = "subconfig.json.j2"

# Names of the current-form graph node and its side packet, as in OpenVINO Model Server's graphs
# (its servables are found by node name).
_NODE_NAMES = {Task.RERANK: "RerankExecutor", Task.EMBEDDINGS: "EmbeddingsExecutor"}
_SIDE_PACKETS = {
    Task.RERANK: "RERANK_NODE_RESOURCES:rerank_servable",
    Task.EMBEDDINGS: "EMBEDDINGS_NODE_RESOURCES:embeddings_servable",
}


def pbtxt_string(value: str) -> str:
    """A protobuf text format string literal."""
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # protobuf text and JSON, not HTML; JSON strings go through tojson
    )
    environment.filters["pbtxt"] = pbtxt_string
    return environment


def render_graph(
    graph_format: GraphFormat,
    model_name: str,
    task: Task,
    node_options: dict[str, Any],
    target_device: str = "CPU",
    plugin_config: dict[str, str] | None = None,
) -> str:
    """graph.pbtxt of either form (templates/graph_legacy.pbtxt.j2, graph_ov.pbtxt.j2)."""
    return (
        _templates()
        .get_template(GRAPH_TEMPLATES[graph_format])
        .render(
            task=task.value,
            calculator=task.legacy_calculator if graph_format is GraphFormat.LEGACY else task.calculator,
            session_tag=task.session_tag,
            tokenizer_servable=tokenizer_servable_name(model_name),
            model_servable=model_servable_name(model_name, task),
            node_name=_NODE_NAMES[task],
            side_packet=_SIDE_PACKETS[task],
            target_device=target_device,
            plugin_config_json=json.dumps(plugin_config or {}),
            **node_options,
        )
    )


def render_subconfig(model_name: str, task: Task, target_device: str, plugin_config: dict[str, str]) -> str:
    """subconfig.json: the tokenizer servable (CPU) and the rerank/embeddings servable."""
    text = (
        _templates()
        .get_template(SUBCONFIG_TEMPLATE)
        .render(
            tokenizer_servable=tokenizer_servable_name(model_name),
            tokenizer_dir=TOKENIZER_DIR,
            model_servable=model_servable_name(model_name, task),
            model_dir=task.model_dir,
            target_device=target_device,
            plugin_config=plugin_config,
        )
    )
    json.loads(text)  # a template bug must fail here, not in the server
    return text
