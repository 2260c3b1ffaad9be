"""The documentation's table of model families, generated from the recipes in
serving/repository/families.py, so the table cannot drift from what the export and the server do.

    python -m tools.families_table               # print it
    python -m tools.families_table --write docs/families.md  # replace the table between its markers
"""

from __future__ import annotations

from pathlib import Path

import click

from serving.repository.families import FAMILIES, Conversion, Family
from serving.repository.layout import Task
from tools.generated_blocks import replace_block

START = "<!-- families:start -->"
END = "<!-- families:end -->"

CONVERSIONS = {
    Conversion.OPTIMUM: "optimum",
    Conversion.CAUSAL_LM_TO_CLASSIFIER: (
        "optimum, as a one-logit classifier (head row lm_head[yes] − lm_head[no])"
    ),
    Conversion.SENTENCE_TRANSFORMERS: "optimum's sentence-transformers export",
    Conversion.TORCH_EXPORT: "`torch.export` + `openvino.convert_model`",
}


def _cell(text: str) -> str:
    """Text for a table cell of the docs site: pipes, angle brackets and newlines written as entities
    and escapes, so the cell neither splits nor turns into HTML."""
    return (
        text.replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace("|", "&#124;")
        .replace("\n", "\\n")
    )


def _code(values: tuple[str, ...]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _scoring_or_pooling(family: Family) -> str:
    parts = []
    if family.scoring is not None:
        scoring = family.scoring
        parts.append(f'sigmoid(logit "{scoring.yes_token}" − logit "{scoring.no_token}") at the last token')
    elif Task.RERANK in family.tasks and family.template is not None:
        parts.append("sigmoid(logit)")
    if family.pooling is not None:
        parts.append(
            " then ".join(
                [f"{family.pooling.value.lower()} pooling", *(p.value for p in family.post_pooling)]
            )
        )
    if family.max_length is not None:
        parts.append(f"up to {family.max_length} tokens")
    return "; ".join(parts) or "the model's own head or sentence-transformers pooling"


def _prompts(family: Family) -> str:
    if family.template is not None:
        instruction = family.template.default_instruction
        return "its template; `instruction` per request" + (", with a default" if instruction else "")
    if family.prompts:
        return ", ".join(
            f'`{name}`: "{_cell(text)}"' if text else f"`{name}`: none"
            for name, text in family.prompts.items()
        )
    return ""


def table() -> str:
    lines = [
        "| family | examples | covers | task | scoring or pooling | prompts | converted with | notes |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for family in FAMILIES:
        covers = _code(family.architectures) or ""
        if family.model_types:
            covers = ", ".join(filter(None, [covers, "model_type " + _code(family.model_types)]))
        if family.source_pattern:
            covers += f" (source matching `{family.source_pattern}`)"
        cells = [
            f"`{family.name}`",
            ", ".join(family.examples),
            covers,
            ", ".join(task.value for task in family.tasks),
            _scoring_or_pooling(family),
            _prompts(family),
            CONVERSIONS[family.conversion],
            _cell(family.notes),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def replace_table(text: str, generated: str) -> str:
    """`text` with the table between the markers replaced (MissingMarkers when they are missing)."""
    return replace_block(text, START, END, generated)


@click.command()
@click.option(
    "--write", "path", type=click.Path(dir_okay=False, path_type=Path), help="Rewrite the table in FILE."
)
def main(path: Path | None) -> None:
    """Print the families table, or write it between the markers of FILE."""
    if path is None:
        click.echo(table(), nl=False)
        return
    path.write_text(replace_table(path.read_text(encoding="utf-8"), table()), encoding="utf-8")


if __name__ == "__main__":
    main()
