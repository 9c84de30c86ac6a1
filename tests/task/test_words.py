"""The word rules, one at a time, and the places a streaming counter can get them wrong."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from task import topwords
from tests.task.conftest import count_with_cuts, decoded
from tests.task.reference import reference_counts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('"Hello," she said.', ["hello", "she", "said"]),
        ("(parenthesis) [bracket] {brace}", ["parenthesis", "bracket", "brace"]),
        ("$100 +1 <tag> a|b ~x^ `q`", ["100", "1", "tag", "a|b", "x", "q"]),
        ("don't e-mail 3.14 U.S.A.", ["don't", "e-mail", "3.14", "u.s.a"]),
        ("... --- !!! $$$", []),
    ],
)
def test_ascii_punctuation_and_symbols_are_stripped_at_the_ends_only(text, expected, count_bytes):
    assert count_bytes(text.encode()) == Counter(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("«Chère» ¿Qué? ¡Olé!", ["chère", "qué", "olé"]),
        ("“quoted” ‘single’ „low“", ["quoted", "single", "low"]),
        ("word™ €5 £3 ©2024 °C", ["word", "5", "3", "2024", "c"]),
        ("😀smile😀 ★star★ →arrow←", ["smile", "star", "arrow"]),
        ("— – … · •", []),
        ("l’amour mid·dot", ["l’amour", "mid·dot"]),
    ],
)
def test_unicode_punctuation_and_symbols_are_stripped(text, expected, count_bytes):
    assert count_bytes(text.encode()) == Counter(expected)


@pytest.mark.parametrize(
    "separator",
    [
        "\u00a0",
        "\u3000",
        "\u2028",
        "\u2029",
        "\u2003",
        "\u202f",
        "\u205f",
        "\u1680",
        "\x85",
        "\x1c",
        "\x1d",
        "\x1e",
        "\x1f",
        "\x0b",
        "\x0c",
        "\r\n",
        "\t",
    ],
)
def test_unicode_whitespace_separates_words(separator, count_bytes):
    text = f"alpha{separator}beta{separator}{separator}alpha"
    assert count_bytes(text.encode()) == Counter({"alpha": 2, "beta": 1})


def test_zero_width_space_is_not_whitespace(count_bytes):
    # U+200B is a format character (Cf), not whitespace for str.split().
    assert count_bytes("ab\u200bcd".encode()) == Counter({"ab\u200bcd": 1})


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("Straße STRASSE strasse", "strasse"),
        ("ﬁne FINE fine", "fine"),  # U+FB01 LATIN SMALL LIGATURE FI
        ("ΣΊΣΥΦΟΣ σίσυφος σίσυφοσ", "σίσυφοσ"),  # final sigma folds to sigma
        ("ǅemal Ǆemal ǆemal", "ǆemal"),  # titlecase digraph
    ],
)
def test_casefolding_merges_forms(text, word, count_bytes):
    assert count_bytes(text.encode()) == Counter({word: 3})


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"abc\xffdef", ["abc\ufffddef"]),
        (b"caf\xc3 ok", ["caf", "ok"]),  # a truncated sequence becomes U+FFFD, a symbol
        (b"\xff\xfe", []),
        (b"\xe2\x82 x", ["x"]),
        (b"a\xed\xa0\x80b", ["a\ufffd\ufffd\ufffdb"]),  # a surrogate's encoding is invalid
        (b"\xc0\xaf", []),  # an overlong encoding is invalid
    ],
)
def test_invalid_utf8_is_replaced(data, expected, count_bytes):
    assert count_bytes(data) == Counter(expected)
    assert count_bytes(data) == reference_counts(data)


def test_empty_and_blank_input(count_bytes):
    assert count_bytes(b"") == Counter()
    assert count_bytes(b" \n\t \xc2\xa0 ") == Counter()
    assert count_bytes(b"!!! ?? ..") == Counter()


SAMPLE = (
    "Ünïcödé words — «split» across chunks: Straße, ﬁne; ΣΊΣΥΦΟΣ!\u00a0naïve\u3000café 😀"
    " invalid \xff bytes and a long wordwordwordwordwordword at the end"
).encode("utf-8", "surrogateescape")


@pytest.mark.parametrize("chunk_bytes", [1, 2, 3, 5, 8, 64])
def test_any_chunk_size_gives_the_same_counts(chunk_bytes, count_bytes):
    assert count_bytes(SAMPLE, chunk_bytes=chunk_bytes) == reference_counts(SAMPLE)


def test_every_single_cut_point_gives_the_same_counts(tmp_path: Path):
    # Cuts inside words, inside multi-byte characters and inside invalid sequences.
    path = tmp_path / "sample.txt"
    path.write_bytes(SAMPLE)
    expected = reference_counts(SAMPLE)
    for cut in range(len(SAMPLE) + 1):
        assert count_with_cuts(path, [cut], chunk_bytes=4) == expected, cut


def test_many_cut_points_gives_the_same_counts(tmp_path: Path):
    path = tmp_path / "sample.txt"
    path.write_bytes(SAMPLE)
    assert count_with_cuts(path, range(0, len(SAMPLE), 3), 2) == reference_counts(SAMPLE)


def test_a_token_longer_than_several_ranges(tmp_path: Path):
    data = b"start " + "é".encode() * 5000 + b" end"
    path = tmp_path / "long.txt"
    path.write_bytes(data)
    assert count_with_cuts(path, range(1000, 10000, 1000), 64) == reference_counts(data)


def test_worker_processes_give_the_same_counts(tmp_path: Path):
    data = SAMPLE * 200
    path = tmp_path / "big.txt"
    path.write_bytes(data)
    results = list(topwords.count_files([str(path)], workers=3, piece_min_bytes=1000))
    assert decoded(results[0].counts) == reference_counts(data)


def test_folding_raw_tokens_often_gives_the_same_counts(monkeypatch, count_bytes):
    monkeypatch.setattr(topwords, "RAW_FOLD_LIMIT", 2)
    data = SAMPLE * 3
    assert count_bytes(data, chunk_bytes=16) == reference_counts(data)


def test_ties_are_broken_by_word_in_code_point_order():
    counts = Counter({b"b": 2, b"a": 2, "é".encode(): 2, b"z": 2, b"c": 3})
    assert topwords.top(counts, 4) == [("c", 3), ("a", 2), ("b", 2), ("z", 2)]
    assert topwords.top(counts, 10)[-1] == ("é", 2)


def test_top_returns_fewer_lines_when_there_are_fewer_words():
    assert topwords.top(Counter({b"only": 1}), 3) == [("only", 1)]
    assert topwords.top(Counter(), 3) == []
