"""What the export refuses, with one line that says why, and the prompt-template proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from export_models.errors import InvalidOptionError, TokenizerConversionError
from export_models.prompt_framing import prove_template, template_info
from serving.repository.families import QWEN3_RERANKER_TEMPLATE
from serving.repository.layout import TokenizerInfo

pytestmark = pytest.mark.slow


def error_line(done) -> str:
    assert done.returncode == 1, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_custom_code_without_the_flag_is_refused(run_export, replica, tmp_path: Path) -> None:
    line = error_line(run_export("rerank", replica("custom-code"), tmp_path))
    assert "ships its own model code" in line and "--trust_remote_code" in line
    assert not (tmp_path / "config.json").exists()


def test_an_architecture_optimum_cannot_export_is_named(run_export, replica, tmp_path: Path) -> None:
    done = run_export("rerank", replica("custom-architecture"), tmp_path, "--trust_remote_code")
    line = error_line(done)
    assert line == (
        "Error: cannot export OvtextCustomForSequenceClassification (model_type 'ovtext-custom'): "
        "optimum-intel's OpenVINO exporter does not support it for text-classification"
    )


def test_mecab_tokenizer_is_refused(run_export, replica, tmp_path: Path) -> None:
    line = error_line(run_export("embeddings", replica("mecab-bert"), tmp_path))
    assert (
        "BertJapaneseTokenizer" in line and "mecab" in line and "openvino-tokenizers cannot convert" in line
    )


def test_instruction_for_a_model_without_a_template_is_refused(run_export, replica, tmp_path: Path) -> None:
    line = error_line(run_export("rerank", replica("deberta-v2"), tmp_path, "--instruction", "x"))
    assert line == "Error: --instruction: DebertaV2ForSequenceClassification takes no instruction"


def test_bad_prompt_option_is_refused(run_export, replica, tmp_path: Path) -> None:
    line = error_line(
        run_export("embeddings", replica("xlm-roberta-e5"), tmp_path, "--prompt", "no-equals-sign")
    )
    assert "--prompt 'no-equals-sign': expected NAME=TEXT" in line


def _tiny_tokenizer():
    """A BPE without a pre-tokenizer, trained so it merges ': ' with the word after it."""
    from tokenizers import Tokenizer, models, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    corpus = [f"<Document>: {word}" for word in ("the giant panda", "trailing space", "digits 2024")] * 50
    corpus += [chr(c) for c in range(32, 127)] + ["熊猫吃竹子。パンダ🐼🎋😀\n\t"]
    bpe.train_from_iterator(corpus, trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<pad>"]))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", pad_token="<pad>")


def _base_info() -> TokenizerInfo:
    return TokenizerInfo(
        max_length=512, pad_token_id=1, single_prefix=[], single_suffix=[], pair_prefix=[], pair_middle=[],
        pair_suffix=[],
    )  # fmt: skip


def test_a_template_that_does_not_split_is_refused() -> None:
    """A BPE without a pre-tokenizer merges across ': ' + document: the split cannot match the model
    card's tokenization, and the export must say so instead of serving different ids."""
    tokenizer = _tiny_tokenizer()
    base = _base_info()
    info = template_info(tokenizer, base, QWEN3_RERANKER_TEMPLATE, None, pad_token_id=1)
    with pytest.raises(TokenizerConversionError, match="cannot be tokenized in parts"):
        prove_template(tokenizer, info, QWEN3_RERANKER_TEMPLATE, compiled_ir=None)  # type: ignore[arg-type]


def test_export_instruction_becomes_the_default() -> None:
    """--instruction replaces the model card's default; a template without one refuses it."""
    from serving.repository.families import MXBAI_RERANK_V2_TEMPLATE, PromptTemplate

    tokenizer = _tiny_tokenizer()
    base = _base_info()
    info = template_info(tokenizer, base, QWEN3_RERANKER_TEMPLATE, "Find recipes", pad_token_id=1)
    assert info.default_instruction == "Find recipes"
    assert info.query_text("q") == "<Instruct>: Find recipes\n<Query>: q\n<Document>:"
    assert info.query_text("q", "Other") == "<Instruct>: Other\n<Query>: q\n<Document>:"
    mxbai = template_info(tokenizer, base, MXBAI_RERANK_V2_TEMPLATE, None, pad_token_id=1)
    assert mxbai.query_text("q") == "query: q"  # no instruction: mxbai drops the instruction line
    assert mxbai.query_text("q", "Be strict") == "instruction: Be strict\nquery: q"
    fixed = PromptTemplate(
        prefix=(), query="{query}", middle=(), document=" {document}", suffix=("!",), reference=()
    )
    with pytest.raises(InvalidOptionError, match="takes no instruction"):
        template_info(tokenizer, base, fixed, "x", pad_token_id=1)
