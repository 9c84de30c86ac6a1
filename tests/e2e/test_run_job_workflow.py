"""run-job.yml's own scripts, run by bash as GitHub runs them, on the local stack: the
runner's exit status, the --json fields the workflow reads, the job summary, the verdict."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import ROOT, fake_pulumi, runner
from tests.workflows.reading import GITHUB, jq_fields, jq_programs, load

DATA = sorted((ROOT / "data").glob("*.txt"))
JQ = shutil.which("jq")  # on GitHub's runners, and on this project's machines

FAILING_SCRIPT = """\
import pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
if "bad" in name:
    sys.exit("cannot handle " + name)
out.mkdir(parents=True, exist_ok=True)
(out / "ok.txt").write_text("ok")
"""


def _steps() -> dict[str, dict[str, Any]]:
    (job,) = load(GITHUB / "workflows" / "run-job.yml")["jobs"].values()
    return {step.get("id") or step.get("name"): step for step in job["steps"]}


class Workspace:
    """A checkout as the job sees it: the repository's files, the project's virtualenv
    at .venv, $RUNNER_TEMP holding the stack outputs, and GitHub's output files."""

    def __init__(self, root: Path, stack: Path) -> None:
        self.root = root / "checkout"
        (self.root / "data").mkdir(parents=True)
        for path in DATA:
            shutil.copy(path, self.root / "data" / path.name)
        (self.root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
        self.temp = root / "runner-temp"
        self.temp.mkdir()
        shutil.copy(stack, self.temp / "outputs.json")
        self.output = root / "github-output"
        self.summary = root / "step-summary"
        self.env = {
            **os.environ,
            "RUNNER_TEMP": str(self.temp),
            "GITHUB_OUTPUT": str(self.output),
            "GITHUB_STEP_SUMMARY": str(self.summary),
        }

    def run(self, step: dict[str, Any], **env: str) -> subprocess.CompletedProcess[str]:
        """The step's script, with the shell GitHub uses for ``run:`` on Linux."""
        self.env.update(env)
        return subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            cwd=self.root,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def outputs(self) -> dict[str, str]:
        lines = self.output.read_text().splitlines() if self.output.exists() else []
        return dict(line.split("=", 1) for line in lines)


@pytest.mark.skipif(JQ is None, reason="jq is not installed")
def test_a_job_that_succeeds(stack, job_ids, tmp_path):
    job_id = job_ids("gh-e2e-ok")
    steps = _steps()
    workspace = Workspace(tmp_path, stack)
    (workspace.temp / "outputs.json").unlink()  # this time the workflow's step writes it
    pulumi = fake_pulumi(tmp_path / "bin", stack.read_text())
    read = workspace.run(steps["Read the stack outputs"], STACK="dev", **pulumi)
    assert read.returncode == 0, read.stderr
    assert (tmp_path / "bin" / "args").read_text().split() == [
        "stack", "output", "--json", "--stack", "dev"
    ]  # fmt: skip
    submitted = workspace.run(steps["submit"], INPUTS="data/*.txt", TOP="2", JOB_ID=job_id)
    assert submitted.returncode == 0, submitted.stderr
    outputs = workspace.outputs()
    assert outputs == {
        "status": "0",
        "job_id": job_id,
        "succeeded": "true",
        "tasks": str(len(DATA)),
        "failed": "0",
    }
    document = json.loads((workspace.root / "results" / f"{job_id}.json").read_text())
    assert all(len(task["top"]) == 2 for task in document["tasks"])
    # The artifact's directory holds the document and each task's results.
    for task in document["tasks"]:
        assert any((workspace.root / "results" / job_id / Path(task["input"]).name).iterdir())

    summary = workspace.run(steps["Job summary"], STATUS=outputs["status"])
    assert summary.returncode == 0, summary.stderr
    text = workspace.summary.read_text()
    assert f"{len(DATA)} of {len(DATA)} tasks succeeded" in text
    assert text.count("| ok |") == len(DATA)


def test_inputs_that_match_nothing_fail_the_run_with_the_runners_status(stack, job_ids, tmp_path):
    steps = _steps()
    workspace = Workspace(tmp_path, stack)
    job_id = job_ids("gh-e2e-2")
    submitted = workspace.run(steps["submit"], INPUTS="nothing/*.txt", TOP="3", JOB_ID=job_id)
    assert submitted.returncode == 0, submitted.stderr  # the status is recorded, not raised
    assert workspace.outputs() == {"status": "2"}
    assert "nothing/*.txt" in submitted.stderr

    summary = workspace.run(steps["Job summary"], STATUS="2")
    assert summary.returncode == 0, summary.stderr
    summary_text = workspace.summary.read_text()
    assert "exited with status 2 (usage or bad input)" in summary_text
    assert "input not found: nothing/\\*.txt" in summary_text

    verdict = workspace.run(steps["Fail unless every task succeeded"], STATUS="2")
    assert verdict.returncode == 2
    assert "::error title=Job not run::" in verdict.stdout


@pytest.mark.skipif(JQ is None, reason="jq is not installed")
def test_failed_tasks_are_counted_summarised_and_fail_the_run(stack, job_ids, tmp_path):
    """A document with a failed task, from the runner itself, read by the workflow's jq
    and by `runner summary` exactly as run-job.yml reads it."""
    script = tmp_path / "check.py"
    script.write_text(FAILING_SCRIPT)
    (tmp_path / "good.txt").write_text("fine")
    (tmp_path / "bad.txt").write_text("x")
    job_id = job_ids("gh-e2e-fail")
    result = runner(
        "submit", "good.txt", "bad.txt", "--outputs", str(stack), "--job-id", job_id,
        "--task-retries", "0", "--json", "--script", str(script), "--", "{input}", "{output_dir}",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    document = json.loads(result.stdout)

    keys = set(document) | {key for task in document["tasks"] for key in task}
    programs = jq_programs()
    assert programs, "run-job.yml reads the document with jq"
    for step, program, _ in programs:
        assert jq_fields(program) <= keys, f"{step.where} reads fields the runner never writes"
        read = subprocess.run(
            [JQ, "-r", program], input=result.stdout, capture_output=True, text=True, check=True
        )
        assert "null" not in read.stdout, read.stdout
        assert dict(line.split("=", 1) for line in read.stdout.splitlines()) == {
            "job_id": job_id,
            "succeeded": "false",
            "tasks": "2",
            "failed": "1",
        }

    workspace = Workspace(tmp_path, stack)
    (workspace.root / "results").mkdir()
    (workspace.root / "results" / f"{job_id}.json").write_text(result.stdout)
    summary = workspace.run(_steps()["Job summary"], STATUS="1", JOB_ID=job_id)
    assert summary.returncode == 0, summary.stderr
    text = workspace.summary.read_text()
    assert "1 of 2 tasks failed" in text
    assert "| FAILED |" in text
    assert "cannot handle bad.txt" in text

    verdict = workspace.run(
        _steps()["Fail unless every task succeeded"], STATUS="1", FAILED="1", TASKS="2"
    )
    assert verdict.returncode == 1
    assert "::error title=Tasks failed::1 of 2 tasks failed" in verdict.stdout
