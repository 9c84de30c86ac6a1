"""The runner's pure parts, with no server: input checks, durations, task planning
(ids, resource and output files, identity or SAS), the monitor loop, the programs, and
the command line's option parsing."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.batch import models
from typer.testing import CliRunner

from contract import local as local_keys
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from runner import batch_job, monitor, program, sas
from runner.cli import Target, app, main
from runner.clients import connect, state_name
from runner.durations import parse_duration
from runner.inputs import InputError, check_inputs, task_id_for

OUTPUTS = StackOutputs(
    location="local",
    resourceGroupName="local",
    storageAccountName=local_keys.STORAGE_ACCOUNT,
    blobEndpoint=f"http://127.0.0.1:9/{local_keys.STORAGE_ACCOUNT}",  # never contacted
    containers=ContainerNames("application", "input", "output"),
    batchAccountName=local_keys.BATCH_ACCOUNT,
    batchAccountEndpoint="http://127.0.0.1:9",
    poolId="runner-pool",
    poolIdentityResourceId=local_keys.POOL_IDENTITY,
    local=LocalKeys(local_keys.BATCH_KEY, local_keys.STORAGE_KEY),
)


# --- inputs ------------------------------------------------------------------------------


def test_inputs_are_checked_before_anything_else(tmp_path: Path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("1")
    (tmp_path / "b" / "same.txt").write_text("2")
    (tmp_path / "bad name.txt").write_text("3")
    good = tmp_path / "good.txt"
    good.write_text("four")
    cases = {
        "no input files given": [],
        "input not found": [str(tmp_path / "missing.txt")],
        "input is a directory": [str(tmp_path / "a")],
        "input given twice": [str(good), str(good)],
        "have the same file name same.txt": [
            str(tmp_path / "a" / "same.txt"),
            str(tmp_path / "b" / "same.txt"),
        ],
        "not usable as a blob name": [str(tmp_path / "bad name.txt")],
    }
    for message, paths in cases.items():
        with pytest.raises(InputError, match=message):
            check_inputs(paths)
    (checked,) = check_inputs([str(good)])
    assert (checked.name, checked.size, checked.task_id) == ("good.txt", 4, task_id_for("good.txt"))


def test_task_ids_are_readable_valid_and_distinct():
    assert task_id_for("taskdata1.txt").startswith("taskdata1-")
    assert task_id_for("a.b.txt") != task_id_for("a_b.txt")
    assert len(task_id_for("x" * 200 + ".txt")) <= 64


# --- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("15m", 900), ("2h", 7200), ("30", 30), ("1.5m", 90)]
)
def test_durations(text: str, seconds: float):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "m", "-5m", "soon", "5d", "infh", "nans"])
def test_what_is_not_a_duration(text: str):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["0", "0s", "0.0m"])
def test_a_zero_duration_is_a_duration_but_too_short(text: str):
    with pytest.raises(ValueError, match="must be longer than 0"):
        parse_duration(text)


# --- task planning -----------------------------------------------------------------------


def _plans(tmp_path: Path, outputs: StackOutputs, access_wait: timedelta | None = None):
    data = tmp_path / "doc1.txt"
    data.write_text("x")
    clients = connect(outputs)
    inputs = check_inputs([str(data)])
    access = batch_job.node_access(clients, access_wait, timedelta(minutes=10), 2)
    words = program.TopWords(5)
    blob = program.script_blob_name(words.script)
    return access, batch_job.plan_tasks(
        clients, "job-1", inputs, blob, words.arguments, 2, timedelta(minutes=10), access
    )


def test_a_task_reads_and_writes_with_the_pool_identity(tmp_path: Path):
    access, (plan,) = _plans(tmp_path, OUTPUTS)
    assert isinstance(access, models.BatchNodeIdentityReference)
    task = plan.options
    assert task.id == task_id_for("doc1.txt")
    assert task.display_name == "doc1.txt"
    assert task.command_line == (
        "python3 topwords.py doc1.txt --top 5 --output-dir out --workers 1"
    )
    script, data = task.resource_files
    assert script.http_url.endswith(program.script_blob_name(program.TOPWORDS_SCRIPT))
    assert (script.file_path, script.file_mode) == ("topwords.py", "0755")
    assert data.http_url.endswith("/input/job-1/doc1.txt")
    assert all(f.identity_reference.resource_id == local_keys.POOL_IDENTITY for f in (script, data))
    results, logs = task.output_files
    assert (results.file_pattern, logs.file_pattern) == ("out/**/*", "../std*.txt")
    assert results.destination.container.path == f"job-1/results/{task.id}"
    assert logs.destination.container.path == f"job-1/logs/{task.id}"
    assert results.destination.container.identity_reference.resource_id == local_keys.POOL_IDENTITY
    assert "sig=" not in json.dumps(task.as_dict())
    assert task.constraints.max_task_retry_count == 2


def test_without_a_pool_identity_each_file_gets_the_least_sas(tmp_path: Path):
    bare = dataclasses.replace(OUTPUTS, poolIdentityResourceId=None)
    access, (plan,) = _plans(tmp_path, bare, access_wait=timedelta(hours=1))
    assert isinstance(access, sas.Signer)
    task = plan.options
    for resource in task.resource_files:
        query = parse_qs(urlsplit(resource.http_url).query)
        assert (query["sr"], query["sp"]) == (["b"], ["r"])
        assert resource.identity_reference is None
    container = task.output_files[0].destination.container
    query = parse_qs(urlsplit(container.container_url).query)
    assert (query["sr"], query["sp"]) == (["c"], ["w"])
    assert container.identity_reference is None
    assert "sig=" not in task.command_line


# --- the monitor loop ----------------------------------------------------------------------


class FakeBatch:
    """Task counts that move on at each poll; a job that completes at the end."""

    def __init__(self, counts: list[tuple[int, int, int, int]]) -> None:
        self.counts = counts
        self.polls = 0

    def get_job_task_counts(self, job_id: str):
        active, running, succeeded, failed = self.counts[min(self.polls, len(self.counts) - 1)]
        self.polls += 1
        return SimpleNamespace(
            task_counts=SimpleNamespace(
                active=active, running=running, succeeded=succeeded, failed=failed
            )
        )

    def get_job(self, job_id: str, select: list[str]):
        return SimpleNamespace(state="active")


def test_the_monitor_reports_changes_only_and_stops_when_all_are_done():
    batch = FakeBatch([(3, 0, 0, 0), (3, 0, 0, 0), (1, 2, 0, 0), (0, 1, 1, 1), (0, 0, 2, 1)])
    seen: list[monitor.Progress] = []
    slept: list[float] = []
    last = monitor.watch(batch, "job", 3, seen.append, interval=2.5, sleep=slept.append)  # type: ignore[arg-type]
    assert [(p.active, p.running, p.succeeded, p.failed) for p in seen] == [
        (3, 0, 0, 0),
        (1, 2, 0, 0),
        (0, 1, 1, 1),
        (0, 0, 2, 1),
    ]
    assert last.completed == 3
    assert slept == [2.5] * 4  # two requests a poll, a sleep between polls, none after


def test_the_monitor_gives_up_after_its_timeout():
    batch = FakeBatch([(1, 0, 0, 0)])
    clock = iter(range(0, 1000, 10))
    with pytest.raises(monitor.MonitorTimeout, match="did not finish within 30s"):
        monitor.watch(  # type: ignore[arg-type]
            batch, "job", 1, lambda _: None, timeout=30, sleep=lambda _: None,
            clock=lambda: float(next(clock)),
        )  # fmt: skip


# --- programs ------------------------------------------------------------------------------


def test_the_programs_read_their_results(tmp_path: Path):
    words, script = program.TopWords(2), program.Script(Path("Clean data.py"), ("{input}",))
    assert words.new_job_id().startswith("topwords-")
    assert script.new_job_id().startswith("clean-data-")
    (tmp_path / "doc_OUTPUT.json").write_text(json.dumps({"top": [["the", 4], ["a", 2]]}))
    assert words.read(tmp_path, "doc.txt") == {"top": [["the", 4], ["a", 2]]}
    assert words.cell(words.read(tmp_path, "doc.txt")) == "the (4), a (2)"
    assert words.read(tmp_path / "none", "doc.txt") == {"top": []}
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.csv").write_text("")
    assert script.read(tmp_path, "doc.txt") == {"files": ["doc_OUTPUT.json", "sub/x.csv"]}
    assert script.cell({"files": [f"f{i}" for i in range(7)]}) == "f0, f1, f2, f3, f4 (+2 more)"
    assert isinstance(
        program.for_script_blob(program.script_blob_name(program.TOPWORDS_SCRIPT)),
        program.TopWords,
    )
    other = program.for_script_blob("scripts/0123/clean.py")
    assert isinstance(other, program.Script)
    assert other.name == "clean"


def test_sdk_states_read_alike():
    assert state_name(models.BatchJobState.ACTIVE) == "active"
    assert state_name("someNewState") == "someNewState"


# --- the command line ------------------------------------------------------------------------


def test_the_help_is_for_users():
    result = CliRunner().invoke(app, ["--help"])
    assert "Run a program on every input file as one Azure Batch task" in result.stdout
    assert "Exit statuses" not in result.stdout  # the module's docstring is for developers


@pytest.mark.parametrize("command", ["submit", "wait", "status", "download", "logs", "delete"])
def test_the_stack_options_are_declared_once_and_taken_by_every_stack_command(command: str):
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    for option in ("--stack", "--outputs", "--debug"):
        assert option in result.stdout


def test_stack_options_are_taken_after_the_subcommand(tmp_path: Path, capsys):
    """Both --stack and --outputs: refused by the stack resolution, before any service."""
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(OUTPUTS.to_dict()))
    with pytest.raises(SystemExit) as exited:
        main(["status", "some-job", "--stack", "dev", "--outputs", str(outputs)])
    assert exited.value.code == 3
    assert "give --stack or --outputs, not both" in capsys.readouterr().err
    assert Target(stack="dev").stack == "dev"


def test_script_arguments_come_through_the_context(tmp_path: Path, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit", "x.txt", "--", "{input}"])
    assert exited.value.code == 2
    assert "arguments after '--' need --script" in capsys.readouterr().err
    script = tmp_path / "s.py"
    script.write_text("")
    with pytest.raises(SystemExit) as exited:
        main(["submit", str(tmp_path / "missing.txt"), "--script", str(script), "--", "{input}"])
    assert exited.value.code == 2  # got past the arguments check, to the input check
    assert "input not found" in capsys.readouterr().err


def test_a_bad_duration_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit", "x.txt", "--timeout", "soon"])
    assert exited.value.code == 2
    assert "--timeout: not a duration" in capsys.readouterr().err


def test_a_command_line_that_does_not_parse_is_one_line_and_with_json_a_document(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["submit", "x.txt", "--top", "abc", "--json"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("error: Invalid value for '--top'")
    assert json.loads(captured.out)["status"] == 2
    with pytest.raises(SystemExit) as exited:
        main(["nosuchcommand"])
    assert exited.value.code == 2
    assert capsys.readouterr().err == "error: No such command 'nosuchcommand'.\n"
