"""Step (prompt-template rerankers and embedders with prompts): record the templates and prompts
in the tokenizer info, and prove the server's split tokenization gives the model card's ids.

A template reranker's pair is, on the server,

    pair_prefix + tok(query part) + pair_middle + tok(document part) + pair_suffix

where the constant pieces are tokenized here by the Hugging Face tokenizer and the two parts by
the tokenizer IR at request time (the document part alone is chunked). The model card instead
tokenizes its own pieces (families.PromptTemplate.reference). The two agree only when every cut
falls on a boundary the tokenizer's pre-tokenizer keeps; the export checks it on probe pairs
(leading and trailing spaces, digits, newlines, CJK, emoji) with the Hugging Face tokenizer and
with the converted IR, and refuses the export when any differs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from export_models.convert_tokenizer import self_check
from export_models.errors import InvalidOptionError, TokenizerConversionError
from export_models.hf_reference import template_ids
from serving.repository.families import PromptTemplate
from serving.repository.layout import TokenizerInfo

if TYPE_CHECKING:
    import openvino as ov

PROBE_PAIRS: tuple[tuple[str, str], ...] = (
    ("what is a panda?", "The giant panda is a bear species endemic to China."),
    (" leading space", "trailing space "),
    ("digits 2024", "1889 was the year; 42 is the answer"),
    ("two\nlines", "\nstarts with a newline\n\nand has blank lines\n"),
    ("熊猫吃什么", "熊猫吃竹子。パンダは中国に住んでいます"),
    ("emoji 🐼", "🐼🎋 pandas eat bamboo 😀"),
    ("punctuation!", "!?-- starts with punctuation"),
    ("  two spaces", "  two spaces before and after  "),
    ("tab\tquery", "\ttab first"),
)
PROBE_INSTRUCTIONS = ("Given a web search query, retrieve relevant passages that answer the query", "")


def _ids(tokenizer: Any, pieces: Sequence[str]) -> list[int]:
    """Each piece tokenized on its own (no special tokens added), concatenated."""
    ids: list[int] = []
    for piece in pieces:
        ids += tokenizer(piece, add_special_tokens=False)["input_ids"]
    return [int(i) for i in ids]


def template_info(
    tokenizer: Any, info: TokenizerInfo, template: PromptTemplate, instruction: str | None, pad_token_id: int
) -> TokenizerInfo:
    """`info` with the template's pieces as pair framing and its query/document templates."""
    if instruction is not None and "{instruction}" not in template.query:
        raise InvalidOptionError("--instruction: this model's prompt template takes no instruction")
    suffix = _ids(tokenizer, template.suffix)
    if not suffix or suffix[-1] == pad_token_id:
        raise TokenizerConversionError(
            "the prompt template must end in a token other than the padding token: the classifier reads "
            "the last non-padding token"
        )
    return dataclasses.replace(
        info,
        pad_token_id=pad_token_id,
        pair_prefix=_ids(tokenizer, template.prefix),
        pair_middle=_ids(tokenizer, template.middle),
        pair_suffix=suffix,
        second_type_id=0,
        query_template=template.query,
        document_template=template.document,
        query_template_without_instruction=template.query_without_instruction,
        default_instruction=instruction if instruction is not None else template.default_instruction,
    )


def prove_template(
    tokenizer: Any, info: TokenizerInfo, template: PromptTemplate, compiled_ir: ov.CompiledModel
) -> None:
    """Refuse the export unless the server's split gives the model card's ids on every probe."""
    instructions = [info.default_instruction or "", *PROBE_INSTRUCTIONS]
    texts: list[str] = []
    for instruction in dict.fromkeys(instructions):
        for query, document in PROBE_PAIRS:
            query_part = info.query_text(query, instruction)
            document_part = info.document_text(document)
            texts += [query_part, document_part]
            split = (
                info.pair_prefix
                + _ids(tokenizer, [query_part])
                + info.pair_middle
                + _ids(tokenizer, [document_part])
                + info.pair_suffix
            )
            if split != template_ids(tokenizer, template, query, document, instruction, max_length=1 << 30):
                raise TokenizerConversionError(
                    f"the prompt template cannot be tokenized in parts: the pair ({query!r}, {document!r}) "
                    "tokenizes differently when split at the query and the document"
                )
    mismatches = self_check(compiled_ir, tokenizer, texts)
    if mismatches:
        raise TokenizerConversionError(
            f"the converted tokenizer splits the prompt text {mismatches[0]!r} differently from the Hugging "
            "Face tokenizer"
        )


def parse_prompts(options: Sequence[str]) -> dict[str, str]:
    """--prompt NAME=TEXT options as a dict (TEXT may be empty; later options win)."""
    prompts: dict[str, str] = {}
    for option in options:
        name, sep, text = option.partition("=")
        if not sep or not name.strip():
            raise InvalidOptionError(f"--prompt {option!r}: expected NAME=TEXT, e.g. query='query: '")
        prompts[name.strip()] = text
    return prompts


def prompt_info(
    info: TokenizerInfo,
    model_prompts: Mapping[str, str],
    model_default: str | None,
    given: Mapping[str, str],
    given_default: str | None,
) -> TokenizerInfo:
    """`info` with the embedder's prompts: the model's own (or its family's), then --prompt on top."""
    prompts = {**model_prompts, **given}
    default = given_default if given_default is not None else model_default
    if default is not None and default not in prompts:
        raise InvalidOptionError(
            f"default prompt {default!r} is not one of the prompts ({', '.join(prompts) or 'none'})"
        )
    return dataclasses.replace(info, prompts=prompts, default_prompt_name=default)
