"""Prompts and templates: the texts the tokenizer IR sees for a request.

One mechanism for every API: the export records a model's prompts and templates in the
tokenizer info (layout.TokenizerInfo); a request picks a prompt by name (`prompt_name`, TEI
style) or by kind (`input_type`, Cohere style: search_query, search_document, ...), or gives a
reranker its `instruction`. The prompt is prepended to the text before tokenizing, as
sentence-transformers does, so truncation keeps it and `usage` counts its tokens.
"""

from __future__ import annotations

from serving.errors import InvalidRequest
from serving.repository.families import INPUT_TYPE_PROMPTS
from serving.repository.layout import TokenizerInfo


def choose_prompt(info: TokenizerInfo, prompt_name: str | None = None, input_type: str | None = None) -> str:
    """The prompt text a request asks for ("" for none).

    prompt_name must be one of the model's prompts. input_type maps to the first of its names the
    model has (query -> query or search_query, ...); a model without prompts ignores it, so clients
    that always send one (the Cohere SDK) work with any embedder. Neither: the model's default.
    """
    if prompt_name is not None:
        if prompt_name not in info.prompts:
            raise InvalidRequest(
                f"'{prompt_name}' is not one of this model's prompts ({_names(info)})", field="prompt_name"
            )
        return info.prompts[prompt_name]
    if input_type is not None and info.prompts:
        for name in INPUT_TYPE_PROMPTS.get(input_type, (input_type,)):
            if name in info.prompts:
                return info.prompts[name]
        raise InvalidRequest(
            f"'{input_type}' matches none of this model's prompts ({_names(info)})", field="input_type"
        )
    if info.default_prompt_name is not None:
        return info.prompts.get(info.default_prompt_name, "")
    return ""


def _names(info: TokenizerInfo) -> str:
    return ", ".join(info.prompts) or "it has none"


def prompted(texts: list[str], prompt: str) -> list[str]:
    return [prompt + text for text in texts] if prompt else texts


def pair_texts(info: TokenizerInfo, query: str, documents: list[str], instruction: str | None) -> list[str]:
    """The query part, then each document part, as the tokenizer IR sees them (one call for all)."""
    if instruction is not None and not info.takes_instruction:
        raise InvalidRequest("this model takes no instruction", field="instruction")
    if info.document_template == "{document}":
        return [info.query_text(query, instruction), *documents]
    return [info.query_text(query, instruction), *(info.document_text(d) for d in documents)]
