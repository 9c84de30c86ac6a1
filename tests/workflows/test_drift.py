"""drift.yml: on a schedule and by hand, `pulumi preview --refresh --expect-no-changes` per
stack as the read-only preview identity; then a job of its own, the only one in the
pipelines that may write issues, opens an issue per drifted stack or comments on the one
open. Read as GitHub reads it, and its scripts run by bash with stand-ins for pulumi and gh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.workflows.reading import GITHUB, commands, load, workflow_files

WORKFLOW = GITHUB / "workflows" / "drift.yml"
JQ = shutil.which("jq")


def _workflow() -> dict[str, Any]:
    return load(WORKFLOW)


def _step(job: str, key: str) -> dict[str, Any]:
    for step in _workflow()["jobs"][job]["steps"]:
        if key in (step.get("id"), step.get("name"), step.get("uses", "").split("@")[0]):
            return step  # type: ignore[no-any-return]
    raise KeyError(key)


def test_it_runs_on_a_schedule_and_by_hand_only_from_main():
    workflow = _workflow()
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    assert workflow["on"]["schedule"][0]["cron"]
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert workflow["jobs"]["preview"]["if"] == "github.ref == 'refs/heads/main'"
    assert set(workflow["jobs"]) == {"preview", "report"}


def test_a_matrix_of_stacks_from_a_variable_by_default_the_deployed_one():
    preview = _workflow()["jobs"]["preview"]
    assert preview["strategy"]["fail-fast"] is False  # one stack's drift stops no other
    stacks = preview["strategy"]["matrix"]["stack"]
    assert "vars.DRIFT_STACKS" in stacks
    assert "vars.PULUMI_STACK || 'dev'" in stacks
    assert preview["env"]["STACK"] == "${{ matrix.stack }}"


def test_the_preview_refreshes_expects_no_changes_and_may_only_read():
    preview = _workflow()["jobs"]["preview"]
    assert preview["permissions"] == {"contents": "read", "id-token": "write"}
    (pulumi,) = [c for c in commands(_step("preview", "preview")["run"]) if c.words[0] == "pulumi"]
    assert pulumi.words[:2] == ["pulumi", "preview"]
    assert {"--refresh", "--expect-no-changes"} <= set(pulumi.words)
    assert pulumi.words[pulumi.words.index("--stack") + 1] == "$STACK"
    upload = _step("preview", "actions/upload-artifact")
    assert upload["if"].startswith("always()")
    assert upload["with"]["path"] == "drift/"
    assert "${{ strategy.job-index }}" in upload["with"]["name"]  # a stack's name may hold /


def test_only_the_report_job_may_write_issues_and_it_runs_no_repository_code():
    report = _workflow()["jobs"]["report"]
    assert report["permissions"] == {"issues": "write"}
    assert report["needs"] == "preview"
    assert report["if"].startswith("always()")  # a drifted stack fails its preview job
    assert not [s for s in report["steps"] if s.get("uses", "").startswith("actions/checkout@")]
    download = _step("report", "actions/download-artifact")["with"]
    upload = _step("preview", "actions/upload-artifact")["with"]
    assert download["pattern"] == upload["name"].split("$")[0] + "*"
    for path in workflow_files():
        for job_id, job in load(path)["jobs"].items():
            if (path, job_id) != (WORKFLOW, "report"):
                assert "issues" not in job.get("permissions", {}), (path.name, job_id)


# --- the scripts, run ---------------------------------------------------------------------

FAKE_PULUMI = """#!/bin/sh
echo "pulumi $*" >> "$FAKE_LOG"
echo "Previewing update (dev)"
[ -n "$FAKE_ERROR" ] && echo "$FAKE_ERROR" >&2
exit "${FAKE_STATUS:-0}"
"""

# gh as the report calls it: `issue list` prints FAKE_ISSUES through the script's own --jq
# program, run by the real jq; the other subcommands are logged.
FAKE_GH = """#!{python}
import json, os, subprocess, sys
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("gh " + " ".join(args) + "\\n")
if args[:2] == ["issue", "list"]:
    program = args[args.index("--jq") + 1]
    subprocess.run(["jq", "-r", program], input=os.environ["FAKE_ISSUES"], text=True, check=True)
"""


def _run(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _bin(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fakes = {"pulumi": FAKE_PULUMI, "gh": FAKE_GH.replace("{python}", sys.executable)}
    for name, text in fakes.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_LOG": str(tmp_path / "calls")}


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        ("0", "", "none"),
        ("255", "error: no changes were expected but changes were proposed", "drifted"),
        ("255", "error: failed to decrypt the stack's secrets", "failed"),
    ],
)
def test_the_preview_records_its_verdict_and_fails_on_drift_or_error(
    tmp_path, status, error, verdict
):
    env = {**_bin(tmp_path), "STACK": "org/dev", "FAKE_STATUS": status, "FAKE_ERROR": error}
    ran = _run(_step("preview", "preview")["run"], tmp_path, **env)
    assert ran.returncode == int(status)
    assert (tmp_path / "drift" / "verdict").read_text() == f"{verdict}\n"
    assert (tmp_path / "drift" / "stack").read_text() == "org/dev\n"
    assert "Previewing update" in (tmp_path / "drift" / "preview.txt").read_text()
    calls = (tmp_path / "calls").read_text().splitlines()
    assert calls == ["pulumi preview --refresh --expect-no-changes --stack org/dev"]


@pytest.mark.skipif(JQ is None, reason="jq is not installed")
def test_the_report_opens_an_issue_per_drifted_stack_or_comments_on_the_open_one(tmp_path):
    env = _bin(tmp_path)
    for index, (stack, verdict) in enumerate(
        [("dev", "drifted"), ("org/prod", "drifted"), ("test", "none"), ("qa", "failed")]
    ):
        report = tmp_path / "drift" / f"drift-{index}"
        report.mkdir(parents=True)
        (report / "stack").write_text(f"{stack}\n")
        (report / "verdict").write_text(f"{verdict}\n")
        (report / "preview.txt").write_text(f"~ update storage account of {stack}\n")
    issues = [{"number": 7, "title": "Drift: stack dev"}, {"number": 8, "title": "Drift: dev2"}]
    env |= {"FAKE_ISSUES": json.dumps(issues), "RUN_URL": "https://example.org/run/1"}
    ran = _run(_step("report", "An issue per drifted stack")["run"], tmp_path, **env)
    assert ran.returncode == 0, ran.stderr
    calls = [c for c in (tmp_path / "calls").read_text().splitlines() if "issue list" not in c]
    assert calls == [
        "gh issue comment 7 --body-file drift/drift-0//body.md",
        "gh issue create --title Drift: stack org/prod --body-file drift/drift-1//body.md",
    ]
    body = (tmp_path / "drift" / "drift-1" / "body.md").read_text()
    assert "~ update storage account of org/prod" in body
    assert "https://example.org/run/1" in body
    assert "dev: drifted" in ran.stdout
    assert "qa: failed" in ran.stdout


def test_the_report_with_no_verdicts_does_nothing(tmp_path):
    env = _bin(tmp_path)
    (tmp_path / "drift").mkdir()
    ran = _run(_step("report", "An issue per drifted stack")["run"], tmp_path, **env)
    assert ran.returncode == 0, ran.stderr
    assert not (tmp_path / "calls").exists()
