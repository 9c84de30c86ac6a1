"""Output shown as real is made by a real run: every block of output in the README and the
pages is marked with an ID that tools/docs_outputs.py makes, and every ID it makes is
shown somewhere. (Running it takes local stacks and minutes: that is done by hand.)"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.docs.pages import Block, blocks, documents, name
from tools import docs_outputs


def _all_blocks() -> list[Block]:
    return [block for path in documents() for block in blocks(path)]


def _is_transcript_with_output(lines: tuple[str, ...]) -> bool:
    """A console block whose ``$`` lines are followed by lines that are not commands."""
    seen_prompt = False
    for line in lines:
        if line.startswith("$ "):
            seen_prompt = True
        elif seen_prompt and line.strip():
            return True
    return False


def test_every_block_of_output_is_marked() -> None:
    unmarked = [
        block.where
        for block in _all_blocks()
        if block.marker is None and _is_transcript_with_output(block.lines)
    ]
    assert unmarked == [], "output typed by hand: mark it, and make it in tools/docs_outputs.py"


def test_every_marker_is_right_before_a_block() -> None:
    marked_lines = {(block.path, block.line - 1) for block in _all_blocks() if block.marker}
    for path in documents():
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if line.strip().startswith("<!--") and "output" in line:
                assert (path, number) in marked_lines, f"{name(path)}:{number}: no block after"


def test_every_marked_id_is_made_and_every_id_made_is_shown() -> None:
    shown = Counter(block.marker for block in _all_blocks() if block.marker)
    made = set(docs_outputs.OUTPUT_IDS)
    assert len(made) == len(docs_outputs.OUTPUT_IDS)
    assert set(shown) - made == set(), "markers no run makes"
    assert made - set(shown) == set(), "outputs made and shown nowhere"


def test_the_script_sees_the_markers_the_tests_see() -> None:
    by_script = {
        (marked.path, marked.line, marked.id)
        for path in docs_outputs.documents()
        for marked in docs_outputs.marked_blocks(path)
    }
    by_tests = {
        (block.path, block.line - 1, block.marker) for block in _all_blocks() if block.marker
    }
    assert by_script == by_tests


def test_replacing_a_block_keeps_everything_around_it() -> None:
    page = (
        "Intro\n\n<!-- output: a -->\n```console\n$ old\nold output\n```\n\n"
        "<!-- output: b -->\n```text\nkept\n```\nEnd\n"
    )
    new = docs_outputs.replace_blocks(page, {"a": "$ new\nnew output\n"})
    assert new == page.replace("$ old\nold output", "$ new\nnew output")
    fenced = docs_outputs.replace_blocks(page, {"b": "```inner```"})
    assert "````text\n```inner```\n````\nEnd" in fenced


def test_a_marker_without_a_block_is_refused() -> None:
    with pytest.raises(ValueError, match="no fenced block"):
        docs_outputs.replace_blocks("<!-- output: a -->\ntext\n", {"a": "x"})


def test_shown_paths_are_the_clone_s() -> None:
    runs = docs_outputs.Runs(docs_outputs.ROOT / "nowhere")
    text = runs.shown(f"Outputs: {runs.stack}/outputs.json\n\x1b[1mbold\x1b[0m")
    assert text == f"Outputs: {docs_outputs.SHOWN_ROOT}/.local/outputs.json\nbold"
