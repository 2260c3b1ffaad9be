"""The text_pairs request's literal parser and grouping (serving/http/routes/text_pairs.py)."""

from __future__ import annotations

import re

import pytest

from serving.errors import InvalidRequest
from serving.http.routes.text_pairs import by_query, checked_pairs, parse_text_pairs


@pytest.mark.parametrize(
    ("text", "pairs"),
    [
        ("[['what is panda?', 'hi'], ['what is panda?', 'The giant panda.']]",
         [["what is panda?", "hi"], ["what is panda?", "The giant panda."]]),
        ("[('q', \"d\"),]", [["q", "d"]]),  # tuples, both quotes, a trailing comma
        ("[['q', 'd',]]", [["q", "d"]]),  # a trailing comma in the pair
        ("  [ [ 'q' , 'd' ] ]  ", [["q", "d"]]),
        ("[]", []),
        (r"[['it\'s', 'a\nb']]", [["it's", "a\nb"]]),  # escapes as Python reads them
        (r"[[r'\d', u'é']]", [["\\d", "é"]]),  # r and u prefixes
        ("[['[x]', '(y), z']]", [["[x]", "(y), z"]]),  # marks inside strings are text
        ("[['', '']]", [["", ""]]),
    ],
)  # fmt: skip
def test_lists_of_two_string_pairs_parse(text, pairs):
    assert parse_text_pairs(text) == pairs


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the text ends where '[' was expected"),
        ("['q', 'd']", "expected '[' or '(' or ']'"),  # not nested
        ("[['q']]", "expected ','"),
        ("[['q', 'd', 'e']]", "expected ']' before character 15"),  # after the pair's comma
        ("[('q', 'd']]", "expected ',' or ')'"),  # brackets that do not match
        ("[['q', 1]]", "unexpected '1' at character 7"),
        ("[['q', b'd']]", "unexpected 'b' at character 7"),
        ("[['q', 'd']] x", "unexpected 'x' at character 13"),
        ("[['q', 'd']], []", "unexpected text after the list"),
        ("[['q', 'd']", "the text ends where ',' or ']' was expected"),
        ("[['q', 'd]]", "the string at character 7 is not closed"),
        ("[['q\n', 'd']]", "the string at character 2 spans lines"),
        ("[['q', '\\N{nope}']]", "the string at character 7 is not a valid literal"),
        ("[" * 100_000, "expected a quoted string before character 3"),  # read forward, no recursion
    ],
)
def test_anything_else_is_refused_with_where_it_stopped(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_text_pairs(text)


def test_checked_pairs_refuses_with_the_field_named():
    for value in ("[['q']]", [], [["q", "d", "e"]]):
        with pytest.raises(InvalidRequest) as refused:
            checked_pairs(value)
        assert refused.value.field == "text_pairs"
    assert checked_pairs("[['q', 'd']]") == [["q", "d"]]


def test_pairs_group_by_query_and_scores_find_their_way_back():
    pairs = [["q1", "a"], ["q2", "b"], ["q1", "c"], ["q3", "d"], ["q2", "e"]]
    groups, position = by_query(pairs)
    assert groups == [("q1", ["a", "c"]), ("q2", ["b", "e"]), ("q3", ["d"])]
    # The groups' scores laid end to end: a c b e d. Pair i's score is at position[i].
    laid_out = ["a", "c", "b", "e", "d"]
    assert [laid_out[place] for place in position] == ["a", "b", "c", "d", "e"]
    assert position == [0, 2, 1, 4, 3]
