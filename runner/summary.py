"""A job's results as Markdown, from the document ``submit --json`` wrote.

For a pipeline's job summary (GitHub's ``$GITHUB_STEP_SUMMARY``) or a pull-request
comment: a heading with the verdict, a table row per input, and the stderr tail of each
failed task. Everything taken from the document is escaped, so a file name or an error
message cannot break the table or inject markup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class SummaryError(ValueError):
    """A results document that is missing or is not what ``submit --json`` writes."""


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # what can open markup in a cell


def cell(text: str) -> str:
    """Text made safe for one Markdown table cell: markup escaped, kept on one line."""
    flat = " ".join(str(text).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", flat.replace("&", "&amp;"))


def _fence(lines: list[str]) -> str:
    """A code block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for line in lines for run in re.findall(r"`+", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence, *lines, fence])


def read(path: Path) -> dict[str, Any] | None:
    """The document, or None if the runner wrote nothing (it failed before any result)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as error:
        raise SummaryError(f"{path}: not readable ({error.strerror})") from None
    if not text.strip():
        return None
    try:
        document = json.loads(text)
    except ValueError:
        raise SummaryError(f"{path}: not JSON; expected what 'submit --json' writes") from None
    if isinstance(document, dict) and isinstance(document.get("error"), str):
        return document  # what the runner writes with --json when it fails
    if not (
        isinstance(document, dict)
        and isinstance(document.get("job_id"), str)
        and isinstance(document.get("tasks"), list)
    ):
        raise SummaryError(f"{path}: no job_id and tasks; expected what 'submit --json' writes")
    return document


def render(document: Mapping[str, Any] | None, exit_status: int | None, meaning: str) -> str:
    """The Markdown summary. ``exit_status`` and its ``meaning`` are the runner's, when
    known; with no document they are all there is to say."""
    if document is None or "error" in document:
        how = f" exited with status {exit_status} ({meaning}) and" if exit_status else ""
        if document is None:
            return f"### :x: No results\n\nThe runner{how} wrote no results; its log says why.\n"
        text = (
            f"### :x: No results\n\nThe runner{how} wrote no results: {cell(document['error'])}\n"
        )
        resume = document.get("resume")
        return text + (f"\nTo resume:\n\n{_fence([str(resume)])}\n" if resume else "")
    tasks = [task for task in document["tasks"] if isinstance(task, Mapping)]
    failed = [task for task in tasks if "failure" in task]
    job = cell(document["job_id"])
    if failed:
        heading = f":x: Job {job}: {len(failed)} of {len(tasks)} tasks failed"
    elif exit_status:
        heading = f":x: Job {job}: the runner exited with status {exit_status} ({meaning})"
    else:
        heading = f":white_check_mark: Job {job}: {len(tasks)} of {len(tasks)} tasks succeeded"
    # What each task's program wrote: topwords' top words, or a script's output files.
    files = any("files" in task for task in tasks)
    column = "output files" if files else "top words"
    rows = [
        f"### {heading}",
        "",
        f"| input | task | result | exit code | seconds | {column} |",
        "|---|---|---|--:|--:|---|",
    ]
    for task in tasks:
        words = (
            ", ".join(str(name) for name in task.get("files") or [])
            if files
            else ", ".join(f"{word} ({count})" for word, count in task.get("top") or [])
        )
        seconds = task.get("seconds")
        rows.append(
            "| "
            + " | ".join(
                [
                    cell(task.get("input", "")),
                    cell(task.get("task_id", "")),
                    "FAILED" if "failure" in task else "ok",
                    cell("" if task.get("exit_code") is None else str(task["exit_code"])),
                    "" if seconds is None else f"{seconds:.1f}",
                    cell(words),
                ]
            )
            + " |"
        )
    merged = document.get("merged")
    if isinstance(merged, Mapping):
        rows += ["", _merged(merged)]
    for task in [
        *failed,
        *([merged] if isinstance(merged, Mapping) and "failure" in merged else []),
    ]:
        name = task.get("input", "the merge")
        rows += ["", f"**{cell(name)}**: {cell(task.get('failure') or '')}"]
        tail = [str(line) for line in task.get("stderr_tail") or []]
        if tail:
            rows += ["", _fence(tail)]
    return "\n".join(rows) + "\n"


def _merged(merged: Mapping[str, Any]) -> str:
    """The merge stage's line (``submit --merge``): across all inputs, or why not."""
    if "failure" in merged:
        return "**Merged across all inputs**: FAILED"
    if "top" in merged:
        what = ", ".join(f"{word} ({count})" for word, count in merged.get("top") or [])
    else:
        what = ", ".join(str(name) for name in merged.get("files") or [])
    missing = merged.get("missing") or []
    shown = ", ".join(map(str, missing[:5]))
    without = f" {cell(f'(without {len(missing)} failed: {shown})')}" if missing else ""
    return f"**Merged across all inputs**{without}: {cell(what)}"
