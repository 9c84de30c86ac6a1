"""`python -m runner submit` end to end on the stack under test: the real SDKs, nothing
mocked."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, batch_client, fake_pulumi, runner
from tests.task.reference import reference_top

DATA = sorted((ROOT / "data").glob("*.txt"))


def test_submit_the_sample_data(stack, stack_outputs, job_ids, tmp_path):
    job_id = job_ids("e2e-sample")
    result = runner(
        "submit",
        *map(str, DATA),
        "--outputs",
        str(stack),
        "--json",
        "--job-id",
        job_id,
        "--keep-inputs",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["job_id"] == job_id
    assert document["succeeded"] is True
    assert [task["input"] for task in document["tasks"]] == list(map(str, DATA))
    for task, path in zip(document["tasks"], DATA, strict=True):
        assert set(task) == {"input", "task_id", "state", "exit_code", "seconds", "top"}
        assert (task["state"], task["exit_code"]) == ("completed", 0)
        assert [tuple(pair) for pair in task["top"]] == reference_top(path.read_bytes(), 3)
        results = tmp_path / "results" / job_id / path.name  # results mirror the inputs
        assert (results / f"{path.stem}_OUTPUT.txt").is_file()
        assert not (results / "stdout.txt").exists()  # logs stay in storage: `download --logs`

    # The same job again adds no task and uploads nothing.
    again = runner(
        "submit", *map(str, DATA), "--outputs", str(stack), "--job-id", job_id, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr
    assert "already submitted with these inputs; nothing to upload or add" in again.stderr
    assert "staged" not in again.stderr
    assert "the (67)" in again.stdout

    # No key or SAS anywhere: not in the task command lines, not in what the runner printed.
    local = stack_outputs.local  # an Azure stack has no keys: Entra ID signs in
    keys = (local.batchAccountKey, local.storageAccountKey) if local is not None else ()
    batch = batch_client(stack_outputs)
    command_lines = [task.command_line for task in batch.list_tasks(job_id)]
    for secret in (*keys, "sig="):
        assert not any(secret in line for line in command_lines)
        assert secret not in result.stdout + result.stderr + again.stdout + again.stderr


def _bad_input_cases(tmp_path: Path) -> list[list[str]]:
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    (tmp_path / "two\nlines.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    return [
        [],
        [str(tmp_path / "missing.txt")],
        [str(DATA[0]), str(DATA[0])],
        [str(tmp_path / "pipe")],
        [str(tmp_path / "loop")],
        [str(tmp_path / "two\nlines.txt")],
        [str(tmp_path / "empty")],
    ]


@pytest.mark.parametrize("case", range(7))
def test_bad_input_is_exit_2_before_touching_any_service(tmp_path, case):
    args = _bad_input_cases(tmp_path)[case]
    # An outputs file that points nowhere: reaching a service would be exit 3, not 2.
    nowhere = tmp_path / "nowhere.json"
    nowhere.write_text("{}")
    result = runner("submit", *args, "--outputs", str(nowhere), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: ")


def test_missing_or_invalid_outputs_file_is_exit_3(tmp_path):
    missing = runner("submit", str(DATA[0]), "--outputs", str(tmp_path / "none.json"), cwd=tmp_path)
    assert missing.returncode == 3
    assert "no such file" in missing.stderr
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"location": "x"}))
    result = runner("submit", str(DATA[0]), "--outputs", str(invalid), cwd=tmp_path)
    assert result.returncode == 3
    assert "output 'resourceGroupName' is missing" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.emulator_only("changes the stack's local keys")
def test_a_wrong_key_is_exit_3(stack, tmp_path):
    document = json.loads(stack.read_text())
    document["local"]["batchAccountKey"] = "d3Jvbmcga2V5"
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(document))
    result = runner("submit", str(DATA[0]), "--outputs", str(wrong), cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "AuthenticationFailed" in result.stderr
    assert "d3Jvbmcga2V5" not in result.stderr
    assert "Traceback" not in result.stderr


def test_stack_outputs_come_from_pulumi(stack, job_ids, tmp_path):
    env = fake_pulumi(tmp_path / "bin", stack.read_text())
    job_id = job_ids("e2e-stack")
    result = runner(
        "submit", str(DATA[2]), "--stack", "dev", "--job-id", job_id, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr
    assert "rain (15)" in result.stdout
    args = (tmp_path / "bin" / "args").read_text().split()
    assert args == ["stack", "output", "--json", "--show-secrets", "--stack", "dev"]


def test_an_unknown_pulumi_stack_is_exit_3(tmp_path):
    env = fake_pulumi(tmp_path / "bin", "", status=255)
    result = runner("submit", str(DATA[0]), "--stack", "nope", cwd=tmp_path, env=env)
    assert result.returncode == 3
    assert "pulumi could not read stack 'nope'" in result.stderr


CHECK_SCRIPT = """\
import pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
if "bad" in name:
    print("cannot handle", name, file=sys.stderr)
    sys.exit(3)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".len")).write_text(str(len(pathlib.Path(name).read_text())))
"""


def test_a_failing_task_is_exit_1_with_its_stderr_and_the_rest_downloaded(stack, job_ids, tmp_path):
    job_id = job_ids("e2e-fail")
    script = tmp_path / "check.py"
    script.write_text(CHECK_SCRIPT)
    (tmp_path / "good.txt").write_text("twelve chars")
    (tmp_path / "bad.txt").write_text("x")
    result = runner(
        "submit",
        "good.txt",
        "bad.txt",
        "--outputs",
        str(stack),
        "--job-id",
        job_id,
        "--task-retries",
        "0",
        "--json",
        "--script",
        str(script),
        "--",
        "{input}",
        "{output_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    assert "cannot handle bad.txt" in result.stderr
    document = json.loads(result.stdout)
    good, bad = document["tasks"]
    assert (good["state"], good["exit_code"]) == ("completed", 0)
    assert (tmp_path / "results" / job_id / "good.txt" / "good.txt.len").read_text() == "12"
    assert bad["exit_code"] == 3
    assert bad["failure"].startswith("FailureExitCode")
    assert bad["stderr_tail"] == ["cannot handle bad.txt"]


def test_script_arguments_need_a_script(tmp_path):
    result = runner("submit", str(DATA[0]), "--", "{input}", cwd=tmp_path)
    assert result.returncode == 2
    assert "need --script" in result.stderr


COLLECTION_LIMIT = 100
"""Tasks one add-task-collection request may hold: the service refuses more."""


def test_a_hundred_and_one_inputs_in_one_job(stack, stack_outputs, job_ids, tmp_path):
    """One task more than an add-task-collection request holds: the tasks reach the job in
    two requests. (200 inputs proved no more than this, at twice the cost.)"""
    words = ["alpha", "beta", "gamma", "delta"]
    names = []
    for i in range(COLLECTION_LIMIT + 1):
        path = tmp_path / f"doc{i:03d}.txt"
        path.write_text(" ".join(words[: 1 + i % 4] * (i % 7 + 1)) + f" unique{i}")
        names.append(path.name)
    job_id = job_ids("e2e-101")
    result = runner(
        "submit",
        *names,
        "--outputs",
        str(stack),
        "--json",
        "--job-id",
        job_id,
        "--top",
        "1",
        "--files-per-task",
        "1",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["tasks"]) == len(names)
    for task, name in zip(document["tasks"], names, strict=True):
        expected = reference_top((tmp_path / name).read_bytes(), 1)
        assert [tuple(pair) for pair in task["top"]] == expected
    added = batch_client(stack_outputs).list_tasks(job_id, select=["id"])
    assert len(list(added)) == len(names)
