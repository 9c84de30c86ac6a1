"""Words, names and stderr from the user's files never reach a terminal raw."""

from __future__ import annotations

import json

from runner.cli.outcome import json_document, table
from runner.finishing import Finished
from runner.program import TopWords
from runner.report.page import _e
from runner.results import TaskResult
from runner.safe_text import dumps, printable

HOSTILE = [
    "\x1b[31mred",  # recolours
    "\x1b]0;owned\x07",  # retitles, then BEL
    "nul\x00",
    "\x9b2J",  # C1 CSI: clears the screen on some terminals
    "\u202eevil",  # a right-to-left override reorders the rest of the line
    "del\x7f",
]


def _result(name: str, words: list[list[object]]) -> TaskResult:
    return TaskResult(name, "t-1", "completed", 0, 0.1, {"top": words})


def _raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0] + [
        c for c in text if c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
    ]


def test_controls_are_shown_as_escapes_and_plain_text_is_untouched():
    assert printable("the (67), café, 日本") == "the (67), café, 日本"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable("\x9b2J") == "\\x9b2J"
    assert printable("\u202eevil") == "\\u202eevil"
    for text in HOSTILE:
        assert not _raw_controls(printable(text))


def test_a_decomposed_name_does_not_pass_for_its_composed_twin():
    composed, decomposed = "caf\u00e9.txt", "cafe\u0301.txt"
    assert printable(composed) == composed
    assert printable(decomposed) == "cafe\\u0301.txt"


def test_json_round_trips_every_character_with_none_raw():
    for text in [*HOSTILE, "café", "cafe\u0301"]:
        encoded = dumps({"word": text})
        assert json.loads(encoded) == {"word": text}
        assert not _raw_controls(encoded)


def test_the_table_and_the_json_document_escape_words_and_names():
    results = [
        _result(name, [[word, 3]])
        for name, word in zip(["a\x1b[2J.txt", *HOSTILE[:-1]], HOSTILE, strict=True)
    ]
    shown = "\n".join(table(results, TopWords()))
    assert not _raw_controls(shown)
    assert "\\x1b[31mred (3)" in shown
    document = "\n".join(json_document("job-1", Finished(results)))
    assert not _raw_controls(document)
    assert json.loads(document)["tasks"][1]["top"][0][0] == HOSTILE[1]


def test_the_tables_columns_line_up_with_wide_and_decomposed_names():
    results = [_result(name, [["w", 1]]) for name in ["日本語.txt", "cafe\u0301.txt", "a.txt"]]
    rows = list(table(results, TopWords()))[1:]
    assert len({row.index(" t-1 ") for row in rows if "日本語" not in row}) == 1
    wide = next(row for row in rows if "日本語" in row)
    assert wide.index(" t-1 ") + 3 == rows[-1].index(" t-1 ")  # three wide characters


def test_the_report_escapes_what_came_from_files():
    assert _e("\x1b[31m<b>") == "\\x1b[31m&lt;b&gt;"
