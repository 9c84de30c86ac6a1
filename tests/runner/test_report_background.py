"""The report written after the command returns never starts a local stack."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.report import background


def test_a_local_stack_stopped_since_the_job_is_left_stopped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """A stack stopped between the job's end and the report (`local down` right after a
    submit) must stay stopped: servers started by a process nobody waits for would run
    on unknown to anyone. The reason is left where the report would have been."""
    home = tmp_path / "local"
    monkeypatch.setenv("RUNNER_LOCAL_DIR", str(home))
    page = tmp_path / "results" / "job-1" / "report.html"
    assert background.main(["job-1", str(page)]) == 1
    assert not page.exists()
    reason = (page.parent / background.ERROR_FILE).read_text()
    assert reason.startswith("no report written for job job-1: the local stack is not running")
    assert not (home / "emulator.pid").exists()  # nothing was started
    assert not (home / "azurite.pid").exists()
