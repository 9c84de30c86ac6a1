"""`runner doctor` on the stack under test: all ok when healthy, FAIL with the fix when not."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.e2e.conftest import runner
from tests.wheels import tiny_wheel


def _broken(stack: Path, tmp_path: Path, **changes: object) -> Path:
    document = json.loads(stack.read_text())
    for key, value in changes.items():
        if isinstance(value, dict):
            document[key] = {**document[key], **value}
        else:
            document[key] = value
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    return path


def test_a_healthy_stack_is_all_ok_and_the_probe_runs_a_job(stack, tmp_path):
    checked = runner("doctor", "--outputs", str(stack), "--probe", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    names = [line.split()[1].rstrip(":") for line in lines]
    assert names == [
        "outputs", "batch", "pool", "autoscale", "nodes", "containers", "storage", "identity",
        "probe",
    ]  # fmt: skip
    assert all(line.startswith("ok ") for line in lines), checked.stdout
    assert "a node took the task after" in lines[-1]


def test_the_probe_builds_an_environment_and_times_it(stack, tmp_path):
    """As a job's preparation would; an install that cannot work is a FAIL with uv's words."""
    tiny_wheel(tmp_path / "wheels")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"tinypkg==1.0  # {tmp_path.name}\n")  # an environment of its own
    arguments = ["--requirements", str(requirements), "--wheels", str(tmp_path / "wheels")]
    checked = runner("doctor", "--outputs", str(stack), "--probe", *arguments, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    last = checked.stdout.splitlines()[-1]
    assert re.fullmatch(
        r"ok   environment: environment \w+: built in [\d.]+ s on node \S+: "
        r"the preparation took [\d.]+ s",
        last,
    ), last
    requirements.write_text("tinypkg==9.9\n")
    checked = runner("doctor", "--outputs", str(stack), "--probe", *arguments, cwd=tmp_path)
    assert checked.returncode == 3
    last = checked.stdout.splitlines()[-1]
    assert last.startswith("FAIL environment: the job preparation task failed on every node")
    assert "tinypkg==9.9" in last
    alone = runner("doctor", "--outputs", str(stack), *arguments, cwd=tmp_path)
    assert alone.returncode == 2
    assert "go with --probe" in alone.stderr


def test_doctor_json_is_one_document_of_checks(stack, tmp_path):
    checked = runner("doctor", "--outputs", str(stack), "--json", cwd=tmp_path)
    assert checked.returncode == 0
    document = json.loads(checked.stdout)
    assert document["ok"] is True
    assert {"name", "status", "detail", "fix"} == set(document["checks"][0])
    assert [check["status"] for check in document["checks"]] == ["ok"] * 8


def test_what_is_broken_is_a_fail_with_its_fix_and_exit_3(stack, tmp_path):
    no_pool = _broken(stack, tmp_path, poolId="no-such-pool")
    checked = runner("doctor", "--outputs", str(no_pool), "--probe", cwd=tmp_path)
    assert checked.returncode == 3
    assert "FAIL pool: pool no-such-pool does not exist -> run 'pulumi up' again" in checked.stdout
    assert "FAIL probe: not run: the pool is not ready" in checked.stdout
    missing = _broken(stack, tmp_path, containers={"input": "no-such-container"})
    checked = runner("doctor", "--outputs", str(missing), "--json", cwd=tmp_path)
    assert checked.returncode == 3
    document = json.loads(checked.stdout)
    assert document["ok"] is False
    failed = [c for c in document["checks"] if c["status"] == "FAIL"]
    assert failed[0]["name"] == "container no-such-container"
    absent = runner("doctor", "--outputs", str(tmp_path / "none.json"), cwd=tmp_path)
    assert absent.returncode == 3
    assert absent.stdout.startswith("FAIL outputs: ")


@pytest.mark.emulator_only("changes the stack's local keys")
def test_a_wrong_local_key_is_a_fail_that_says_local_up(stack, tmp_path):
    wrong_key = _broken(stack, tmp_path, local={"batchAccountKey": "d3Jvbmc="})
    checked = runner("doctor", "--outputs", str(wrong_key), cwd=tmp_path)
    assert checked.returncode == 3
    assert checked.stdout.splitlines()[-1].startswith("FAIL batch: ")
    assert "local up" in checked.stdout
