"""The properties the interpretable-cell finder correlates cells with, on strings whose answer is
known: nested brackets, comments across lines, quotes, CRLF line ends, wide characters."""

from __future__ import annotations

import numpy as np

from rnn_tui.core.text_properties import PROPERTIES, text_properties


def prop(text: str, name: str) -> list[int]:
    return text_properties(text)[name].astype(int).tolist()


def test_every_property_has_one_value_per_character():
    text = 'int f(a) { /* x */ return "y"; }\n'
    props = text_properties(text)
    assert set(props) == set(PROPERTIES)
    assert all(v.shape == (len(text),) and v.dtype == np.float64 for v in props.values())
    assert all(len(v) == 0 for v in text_properties("").values())


def test_nested_brackets_count_depth_after_each_character():
    assert prop("a(b(c)[d])e", "paren_depth") == [0, 1, 1, 2, 2, 1, 2, 2, 1, 0, 0]
    assert prop("{x{y}}z", "brace_depth") == [1, 1, 2, 2, 1, 0, 0]
    # a passage that starts inside a block: depth is relative, its lowest point is 0
    assert prop("x}}{", "brace_depth") == [2, 1, 0, 1]
    # brackets in a comment do not count
    assert prop("(/*)*/)", "paren_depth") == [1, 1, 1, 1, 1, 1, 0]


def test_block_comments_span_lines_and_line_comments_end_with_the_line():
    text = "a /* one\ntwo */ b // three\nc # four\nd"
    inside = prop(text, "comment")
    marked = "".join("C" if x else "." for x in inside)
    # "a /" | "* one\ntwo *" | "/ b /" | "/ three" | "\nc " | "# four" | "\nd"
    assert marked == "..." + "C" * 11 + "." * 5 + "C" * 7 + "." * 3 + "C" * 6 + ".."
    # the state after reading: '/' of '/*' is not yet inside, the closing '/' no longer is
    assert inside[text.index("/*")] == 0 and inside[text.index("/*") + 1] == 1
    assert inside[text.index("*/")] == 1 and inside[text.index("*/") + 1] == 0
    # a comment marker inside quotes is text
    assert sum(prop('"/* no */" x', "comment")) == 0


def test_a_hash_is_a_comment_except_a_c_preprocessor_line():
    python = "x = 1  # one\n# two\ny"
    assert "".join("C" if x else "." for x in prop(python, "comment")) == "." * 7 + "C" * 5 + "." + "C" * 5 + ".."
    c = "#include <a.h>\n  #  define N 1 /* n */\nint x; # not C, but not a directive\n"
    inside = prop(c, "comment")
    assert sum(inside[: c.index("/*")]) == 0  # directives are code
    assert inside[c.index("# not")] == 1  # a '#' within a line still starts a comment


def test_quotes_span_lines_with_escapes_and_char_literals():
    assert prop('a "b\nc" d', "quotes") == [0, 0, 1, 1, 1, 1, 0, 0, 0]
    assert prop(r'"a\"b"c', "quotes") == [1, 1, 1, 1, 1, 0, 0]
    assert prop("c = '\"'; x", "quotes") == [0] * 10  # a C character literal opens nothing
    assert prop('don\'t "go"', "quotes") == [0, 0, 0, 0, 0, 0, 1, 1, 1, 0]  # apostrophes are text
    assert prop("“hi” x", "quotes") == [1, 1, 1, 0, 0, 0]


def test_crlf_counts_as_one_line_break():
    lf, crlf = "ab\ncd\n", "ab\r\ncd\r\n"
    assert prop(lf, "line_position") == [1, 2, 0, 1, 2, 0]
    assert prop(crlf, "line_position") == [1, 2, 2, 0, 1, 2, 2, 0]
    assert prop(crlf, "line_start") == [1, 0, 0, 0, 1, 0, 0, 0]
    assert prop(crlf, "whitespace") == [0, 0, 1, 1, 0, 0, 1, 1]
    assert prop("a // x\r\nb", "comment") == prop("a // x\n\nb", "comment")  # ends at the line break


def test_wide_characters_are_letters_one_position_each():
    text = "漢字 ok\nÉtat"
    assert prop(text, "in_word") == [1, 1, 0, 1, 1, 0, 1, 1, 1, 1]
    assert prop(text, "upper_case") == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
    assert prop(text, "line_position") == [1, 2, 3, 4, 5, 0, 1, 2, 3, 4]
