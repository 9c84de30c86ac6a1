"""`runner summary`: a --json document as Markdown, escaped, with the runner's status."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from runner.cli import app
from runner.summary import cell, render

DOCUMENT = {
    "job_id": "gh-1",
    "succeeded": False,
    "tasks": [
        {
            "input": "data/a|b.txt",
            "task_id": "t-1",
            "state": "completed",
            "exit_code": 0,
            "seconds": 1.25,
            "top": [["the", 67], ["*bold*", 3]],
        },
        {
            "input": "data/<script>.txt",
            "task_id": "t-2",
            "state": "completed",
            "exit_code": 3,
            "seconds": 0.5,
            "top": [],
            "failure": "FailureExitCode: exit code 3",
            "stderr_tail": ["```", "Traceback | here"],
        },
    ],
}


def test_a_cell_cannot_break_the_table_or_inject_markup():
    assert cell("a|b") == "a\\|b"
    assert cell("<img src=x>") == "\\<img src=x\\>"
    assert cell("line\nbreak\r\n") == "line break"
    assert cell("[link](http://x)") == "\\[link\\](http://x)"
    assert cell("R&D") == "R&amp;D"


def test_a_table_row_per_input_and_the_stderr_of_failures():
    text = render(DOCUMENT, 1, "some tasks failed")
    lines = text.splitlines()
    assert lines[0] == "### :x: Job gh-1: 1 of 2 tasks failed"
    assert "| data/a\\|b.txt | t-1 | ok | 0 | 1.2 | the (67), \\*bold\\* (3) |" in lines
    assert "| data/\\<script\\>.txt | t-2 | FAILED | 3 | 0.5 |  |" in lines
    # The stderr tail sits in a fence longer than any backtick run inside it.
    fence = lines.index("````")
    assert lines[fence + 1 : fence + 4] == ["```", "Traceback | here", "````"]


def test_every_row_has_as_many_cells_as_the_header():
    rows = [line for line in render(DOCUMENT, 1, "").splitlines() if line.startswith("|")]
    counts = {len(row.replace("\\|", "").split("|")) for row in rows}
    assert len(counts) == 1


def test_the_merge_stage_after_the_table():
    merged = {"task_id": "merge", "state": "completed", "exit_code": 0, "inputs": 1}
    partial = {**DOCUMENT, "merged": {**merged, "top": [["the", 67]], "missing": ["data/x.txt"]}}
    lines = render(partial, 1, "some tasks failed").splitlines()
    assert "**Merged across all inputs** (without 1 failed: data/x.txt): the (67)" in lines
    failure = "not run: 1 input(s) failed: data/\\<script\\>.txt"
    blocked = {**merged, "failure": "not run: 1 input(s) failed: data/<script>.txt"}
    text = render({**DOCUMENT, "merged": {**blocked, "stderr_tail": ["boom"]}}, 1, "")
    assert "**Merged across all inputs**: FAILED" in text
    assert f"**the merge**: {failure}" in text
    assert text.endswith("```\nboom\n```\n")


def test_success_and_a_status_the_tasks_do_not_explain():
    ok = {**DOCUMENT, "tasks": DOCUMENT["tasks"][:1], "succeeded": True}
    assert render(ok, 0, "success").startswith("### :white_check_mark: Job gh-1: 1 of 1 tasks")
    assert "exited with status 130 (interrupted)" in render(ok, 130, "interrupted")


def test_the_command(tmp_path):
    cli = CliRunner()
    document = tmp_path / "job.json"
    document.write_text(json.dumps(DOCUMENT))
    result = cli.invoke(app, ["summary", str(document), "--exit-status", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("### :x: Job gh-1: 1 of 2 tasks failed")

    # Nothing written (the runner stopped before any result): the status says why.
    empty = tmp_path / "empty.json"
    empty.write_text("")
    result = cli.invoke(app, ["summary", str(empty), "--exit-status", "3"])
    assert result.exit_code == 0
    assert "exited with status 3 (stack, auth or service error)" in result.stdout
    missing = cli.invoke(app, ["summary", str(tmp_path / "none.json"), "--exit-status", "2"])
    assert "status 2 (usage or bad input)" in missing.stdout


def test_what_is_not_a_results_document_is_exit_2(tmp_path):
    cli = CliRunner()
    missing = cli.invoke(app, ["summary", str(tmp_path / "none.json")])
    assert missing.exit_code == 2
    assert "no such results document" in missing.stderr
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.invoke(app, ["summary", str(bad)]).exit_code == 2
    bad.write_text(json.dumps({"tasks": []}))
    result = cli.invoke(app, ["summary", str(bad)])
    assert result.exit_code == 2
    assert "expected what 'submit --json' writes" in result.stderr


def test_the_error_document_of_a_failed_run(tmp_path):
    document = tmp_path / "job.json"
    document.write_text(
        json.dumps({"error": "input not found: a|b.txt", "status": 2, "resume": None})
    )
    result = CliRunner().invoke(app, ["summary", str(document), "--exit-status", "2"])
    assert result.exit_code == 0, result.output
    assert "exited with status 2 (usage or bad input)" in result.stdout
    assert "input not found: a\\|b.txt" in result.stdout
    timed_out = {"error": "job j did not finish", "status": 4, "resume": "python -m runner wait j"}
    document.write_text(json.dumps(timed_out))
    text = CliRunner().invoke(app, ["summary", str(document), "--exit-status", "4"]).stdout
    assert "still running after --timeout" in text
    assert "```\npython -m runner wait j\n```" in text
