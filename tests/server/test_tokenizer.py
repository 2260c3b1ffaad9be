"""The server's own tokenizer wrapper (serving/pipelines/tokenize.py) against Hugging Face, token by token.

The server does not run the exported tokenizer IR as it is: it feeds packed UTF-8 bytes past the
graph's string unpacking (lone surrogates replaced), takes the ragged ids before the graph pads
them, and falls back to the plain string input and the padded outputs when the IR does not have
that shape. Every combination is checked here on the WordPiece and the Unigram/Metaspace
tokenizer; tests/export/test_tokenizer_ir.py checks the exported graph itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import openvino as ov
import pytest
from openvino import opset13
from transformers import AutoTokenizer

from serving.pipelines.blocking import run_blocking
from serving.pipelines.tokenize import Tokenizer
from tests.support.exports import Exported

pytestmark = pytest.mark.exports(("cross-encoder", "fp32"), ("xlmr", "fp32"))
TEXTS = [
    "what is a panda?",
    "The giant panda is a bear species endemic to China.",
    "パンダは中国の山に住んでいます。",  # Japanese
    "熊猫是中国特有的熊科动物。",  # Chinese
    "Кириллица и ελληνικά, العربية, हिन्दी",  # Cyrillic, Greek, Arabic, Devanagari
    "Crème brûlée à la française, naïve café, Straße, Ångström, tiếng Việt",  # accents
    "emoji 😀🐼🎉 👩‍💻 🇯🇵 ❤️ (ZWJ sequences, flags, variation selectors)",
    "",
    " ",
    "runs  of   spaces    and\t\ttabs\n\nnewlines  ",
    "   leading and trailing   ",
    "ＦＵＬＬ－ＷＩＤＴＨ ｶﾀｶﾅ",  # NFKC-normalized forms
    "UPPER lower MiXeD 123,456.78 ½ ⅞ x²",
    "zero\u200bwidth\u00a0no-break",
]
# Far longer than any model takes (12-15k tokens): the server tokenizes before it cuts or chunks.
LONG_TEXT = " ".join(["The panda eats bamboo; 熊猫吃竹子; パンダ; café 😀."] * 800)


def string_input(model: ov.Model) -> ov.Model:
    """The same graph with its string Parameter also feeding a Result: not the usual shape, so the
    server must feed strings instead of packed bytes."""
    (parameter,) = model.get_parameters()
    extra = opset13.result(parameter.output(0))
    return ov.Model([*model.get_results(), extra], model.get_sinks(), [parameter], "string-input")


def padded_outputs(model: ov.Model) -> ov.Model:
    """The same graph with an Add(0) between the padding and the input_ids output: the ragged ids
    cannot be found, so the server must unpad the dense outputs."""
    (result,) = [r for r in model.get_results() if r.output(0).get_any_name() == "input_ids"]
    source = result.input(0).get_source_output()
    zero = np.array(0, dtype=source.get_element_type().to_dtype())
    add = opset13.add(source, opset13.constant(zero))
    result.input(0).replace_source_output(add.output(0))
    source.get_tensor().set_names(set())
    add.output(0).get_tensor().set_names({"input_ids"})
    model.validate_nodes_and_infer_types()
    return model


GRAPHS: dict[str, Callable[[ov.Model], ov.Model]] = {
    "as-exported": lambda model: model,
    "string-input": string_input,
    "padded-outputs": padded_outputs,
    "string-input-padded-outputs": lambda model: string_input(padded_outputs(model)),
}


@pytest.fixture(scope="module", params=["cross-encoder", "xlmr"], ids=["bert-wordpiece", "xlmr-unigram"])
def export(request: pytest.FixtureRequest, exported: Callable[..., Exported]) -> Exported:
    return exported(request.param)


@pytest.fixture(scope="module")
def hf(export: Exported):
    return AutoTokenizer.from_pretrained(export.source)


# The tokenizers' Core lives as long as the process: a compiled tokenizer freed after its Core
# (as pytest would free a fixture value) crashes the interpreter.
CORE = ov.Core()


@contextlib.contextmanager
def server_tokenizer(export: Exported, graph: str) -> Iterator[Tokenizer]:
    """The server's wrapper on the export's tokenizer IR, reshaped by GRAPHS[graph]."""
    wrapper = Tokenizer(CORE, GRAPHS[graph](CORE.read_model(export.tokenizer_xml)), graph)
    try:
        yield wrapper
    finally:
        wrapper.close()


def rows(tokens) -> list[list[int]]:
    return [tokens.row(i).tolist() for i in range(len(tokens))]


@pytest.mark.parametrize("graph", GRAPHS)
def test_ids_equal_hugging_face_on_multilingual_emoji_and_whitespace(
    export: Exported, hf, graph: str
) -> None:
    with server_tokenizer(export, graph) as tokenizer:
        tokens = run_blocking(tokenizer.tokenize(TEXTS))
    expected = hf(TEXTS, add_special_tokens=False)["input_ids"]
    assert rows(tokens) == expected
    assert tokens.lengths.tolist() == [len(ids) for ids in expected]
    assert tokens.offsets[0] == 0 and tokens.offsets[-1] == len(tokens.ids)


@pytest.mark.parametrize("graph", GRAPHS)
def test_a_very_long_text_among_many_short_ones(export: Exported, hf, graph: str) -> None:
    texts = [TEXTS[i % len(TEXTS)] for i in range(150)]
    texts.insert(75, LONG_TEXT)
    expected = hf(texts, add_special_tokens=False)["input_ids"]
    assert len(expected[75]) > 10_000
    with server_tokenizer(export, graph) as tokenizer:
        assert rows(run_blocking(tokenizer.tokenize(texts))) == expected


@pytest.mark.parametrize("graph", GRAPHS)
def test_lone_surrogates_become_question_marks(export: Exported, hf, graph: str) -> None:
    """JSON may escape half a surrogate pair ("\\ud800"), which UTF-8 cannot carry: the server
    tokenizes it as '?' (Python's "replace" error handling), whichever way it feeds the graph."""
    texts = ["a\ud800b", "emoji \ud83d alone", "ok"]
    replaced = [text.encode("utf-8", "replace").decode("utf-8") for text in texts]
    assert replaced[0] == "a?b"
    with server_tokenizer(export, graph) as tokenizer:
        tokens = run_blocking(tokenizer.tokenize(texts))
    assert rows(tokens) == hf(replaced, add_special_tokens=False)["input_ids"]
