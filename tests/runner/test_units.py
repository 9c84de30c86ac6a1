"""The runner's pure parts, with no server: input checks, durations, task planning
(ids, resource and output files, identity or SAS), the monitor loop, the programs, and
the command line's option parsing."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import socket
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import typer
from azure.batch import models
from azure.core.exceptions import (
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from typer.testing import CliRunner

from contract import local as local_keys
from contract.outputs import ContainerNames, LocalKeys, StackOutputs
from runner import batch_job, fetch, monitor, packing, preparation, program, sas
from runner.cli import Target, app, main
from runner.cli import errors as cli_errors
from runner.clients import connect, state_name
from runner.diagnosis import Cause, Stall, Stalled
from runner.durations import parse_duration
from runner.inputs import Filters, Input, InputError, check_inputs, read_list, task_id_for

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
    good = tmp_path / "good.txt"
    good.write_text("four")
    fifo, loop = tmp_path / "pipe", tmp_path / "loop"
    os.mkfifo(fifo)
    loop.symlink_to(loop)
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "sock"))
    newline = tmp_path / "two\nlines.txt"
    newline.write_text("x")
    latin1 = Path(os.fsdecode(bytes(tmp_path) + b"/caf\xe9.txt"))
    latin1.write_text("x")
    cases = {
        "no input files given": [],
        "input not found": [str(tmp_path / "missing.txt")],
        "the same file is given twice": [str(good), str(good)],
        "input is a fifo, not a regular file": [str(fifo)],
        "input is a socket, not a regular file": [str(tmp_path / "sock")],
        "input is a symlink loop": [str(loop)],
        "holds a control character": [str(newline)],
        "not valid UTF-8": [str(latin1)],
    }
    try:
        for message, paths in cases.items():
            started = time.monotonic()
            with pytest.raises(InputError, match=message):
                check_inputs(paths)
            assert time.monotonic() - started < 1  # a fifo is never opened
    finally:
        server.close()
    (checked,) = check_inputs([str(good)])
    assert (checked.relative, checked.name, checked.size) == ("good.txt", "good.txt", 4)
    assert checked.task_id == task_id_for("good.txt")


def test_any_name_directories_and_same_base_names(tmp_path: Path):
    names = ["Q3 summary.txt", "données.txt", "donne\u0301es.txt", "it's (1) #2 %.txt",
             "-dash.txt", ".hidden.txt", "x" * 250 + ".txt"]  # fmt: skip
    for directory in ("a", "b"):
        (tmp_path / directory / "sub").mkdir(parents=True)
        (tmp_path / directory / "sub" / "report.txt").write_text(directory)
        (tmp_path / directory / "skip.log").write_text("no")
    for name in names:
        (tmp_path / "a" / name).write_text(name)
    (tmp_path / "a" / "cycle").symlink_to(tmp_path / "a")  # a directory link: not entered
    found = check_inputs([str(tmp_path / "a"), str(tmp_path / "b")], Filters(exclude=("*.log",)))
    relatives = [item.relative for item in found]
    assert "a/sub/report.txt" in relatives
    assert "b/sub/report.txt" in relatives
    assert not any(r.endswith(".log") for r in relatives)
    assert len(relatives) == len(names) + 2
    assert relatives == sorted(relatives, key=lambda r: (r.split("/")[0], r))
    assert len({item.task_id for item in found}) == len(found)
    assert len({item.blob for item in found}) == len(found)
    for item in found:
        assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}", item.name), item.name
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", item.task_id)
        assert len(item.blob) <= 900
        assert unquote(item.blob) == item.relative
    only = check_inputs([str(tmp_path / "a")], Filters(include=("*.txt",), exclude=("x*",)))
    assert {item.relative for item in only} == set(names[:-1]) | {"sub/report.txt"}


def test_a_list_of_inputs_from_a_file(tmp_path: Path):
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\n\n one.txt \ntwo words.txt\n")
    assert read_list(str(listing)) == ["one.txt", "two words.txt"]
    with pytest.raises(InputError, match="no such file"):
        read_list(str(tmp_path / "none.txt"))


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


STAGED = preparation.Staged(
    prepare="scripts/0123/prepare.py", bundle="bundles/4567/bundle.tar.gz", script="topwords.py"
)


def _plans(tmp_path: Path, outputs: StackOutputs, access_wait: timedelta | None = None):
    data = tmp_path / "doc1.txt"
    data.write_text("x")
    clients = connect(outputs)
    inputs = check_inputs([str(data)])
    access = batch_job.node_access(clients, access_wait, timedelta(minutes=10), 2)
    words = program.TopWords(5)
    groups = packing.pack(inputs, 1)
    plans = batch_job.plan_tasks(
        clients, "job-1", groups, batch_job.Scripts(STAGED), words, 2, timedelta(minutes=10), access
    )
    preparing = preparation.tasks(STAGED, batch_job.resources(clients, access), 2)
    return access, list(plans), preparing


def test_a_task_reads_and_writes_with_the_pool_identity(tmp_path: Path):
    access, (plan,), _ = _plans(tmp_path, OUTPUTS)
    assert isinstance(access, models.BatchNodeIdentityReference)
    task = plan.options
    assert task.id == task_id_for("doc1.txt")
    assert task.display_name == "doc1.txt"
    # The program comes from the job preparation task's folder, with its environment.
    assert shlex.split(task.command_line) == [
        "/bin/sh",
        "-c",
        'PATH="$AZ_BATCH_JOB_PREP_WORKING_DIR/env/bin:$PATH" exec python '
        '"$AZ_BATCH_JOB_PREP_WORKING_DIR/program/"topwords.py '
        "doc1.txt --top 5 --output-dir out --workers 1",
    ]
    (data,) = task.resource_files
    assert data.http_url.endswith("/input/job-1/doc1.txt")
    assert data.identity_reference.resource_id == local_keys.POOL_IDENTITY
    results, logs = task.output_files
    assert (results.file_pattern, logs.file_pattern) == ("out/**/*", "../std*.txt")
    assert results.upload_options.upload_condition == "taskcompletion"
    assert logs.upload_options.upload_condition == "taskfailure"  # --keep-logs: every task
    assert results.destination.container.path == f"job-1/results/{task.id}"
    assert logs.destination.container.path == f"job-1/logs/{task.id}"
    assert results.destination.container.identity_reference.resource_id == local_keys.POOL_IDENTITY
    assert "sig=" not in json.dumps(task.as_dict())
    assert task.constraints.max_task_retry_count == 2


def test_the_preparation_task_stages_the_program_once_per_node(tmp_path: Path):
    _, _, (prepare, release) = _plans(tmp_path, OUTPUTS)
    assert prepare.command_line == "python3 prepare.py prepare"
    assert prepare.wait_for_success is True
    assert prepare.constraints.max_task_retry_count == 2
    files = {f.file_path: f for f in prepare.resource_files}
    assert set(files) == {"prepare.py", "bundle.tar.gz"}  # no uv: nothing to install
    assert files["prepare.py"].http_url.endswith("/application/scripts/0123/prepare.py")
    assert files["prepare.py"].file_mode == "0755"
    assert files["bundle.tar.gz"].http_url.endswith("/application/bundles/4567/bundle.tar.gz")
    assert all(f.identity_reference.resource_id == local_keys.POOL_IDENTITY for f in files.values())
    assert shlex.split(release.command_line)[:2] == ["/bin/sh", "-c"]
    assert 'prepare.py" release' in release.command_line


def test_without_a_pool_identity_each_file_gets_the_least_sas(tmp_path: Path):
    bare = dataclasses.replace(OUTPUTS, poolIdentityResourceId=None)
    access, (plan,), (prepare, _) = _plans(tmp_path, bare, access_wait=timedelta(hours=1))
    assert isinstance(access, sas.Signer)
    task = plan.options
    for resource in [*task.resource_files, *prepare.resource_files]:
        query = parse_qs(urlsplit(resource.http_url).query)
        assert (query["sr"], query["sp"]) == (["b"], ["r"])
        assert resource.identity_reference is None
    container = task.output_files[0].destination.container
    query = parse_qs(urlsplit(container.container_url).query)
    assert (query["sr"], query["sp"]) == (["c"], ["w"])
    assert container.identity_reference is None
    assert "sig=" not in task.command_line
    assert "sig=" not in prepare.command_line


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
    # Quick at first, a quarter longer each time up to the interval.
    assert slept == pytest.approx([0.1, 0.125, 0.15625, 0.1953125])
    slept.clear()
    monitor.watch(FakeBatch([(2, 0, 0, 0)] * 7 + [(0, 0, 2, 0)]), "job", 2, seen.append,  # type: ignore[arg-type]
                  interval=0.5, sleep=slept.append)  # fmt: skip
    assert slept == pytest.approx([0.1 * monitor.GROWTH**n for n in range(7)])
    slept.clear()
    monitor.watch(FakeBatch([(2, 0, 0, 0)] * 13 + [(0, 0, 2, 0)]), "job", 2, seen.append,  # type: ignore[arg-type]
                  interval=0.5, sleep=slept.append)  # fmt: skip
    assert slept[-3:] == [0.5, 0.5, 0.5]  # up to the interval, and no more


def test_the_monitor_gives_up_after_its_timeout():
    batch = FakeBatch([(1, 0, 0, 0)])
    clock = iter(range(0, 1000, 10))
    with pytest.raises(monitor.MonitorTimeout, match="did not finish within 30s"):
        monitor.watch(  # type: ignore[arg-type]
            batch, "job", 1, lambda _: None, timeout=30, sleep=lambda _: None,
            clock=lambda: float(next(clock)),
        )  # fmt: skip


class FailingFirst(FakeBatch):
    """Polls that fail with the given errors first (as after the client's retries)."""

    def __init__(self, errors: list[Exception], counts: list[tuple[int, int, int, int]]) -> None:
        super().__init__(counts)
        self.errors = errors

    def get_job_task_counts(self, job_id: str):
        if self.errors:
            raise self.errors.pop(0)
        return super().get_job_task_counts(job_id)


def test_the_monitor_watches_on_through_a_service_that_does_not_answer():
    errors: list[Exception] = [
        ServiceRequestError("connection refused"),
        ServiceResponseError("connection reset"),
        HttpResponseError(response=SimpleNamespace(status_code=503, reason="busy")),  # type: ignore[arg-type]
    ]
    logged: list[str] = []
    last = monitor.watch(  # type: ignore[arg-type]
        FailingFirst(errors, [(0, 0, 1, 0)]), "job", 1, lambda _: None, interval=2,
        sleep=lambda _: None, log=logged.append,
    )  # fmt: skip
    assert last.completed == 1
    assert len(logged) == 3
    assert "ServiceRequestError" in logged[0]
    assert "watching on" in logged[0]


def test_the_monitor_gives_up_on_a_service_silent_for_longer_than_its_patience():
    clock = iter(range(0, 10_000, 100))
    silent = [ServiceRequestError("connection refused") for _ in range(20)]
    with pytest.raises(ServiceRequestError):
        monitor.watch(  # type: ignore[arg-type]
            FailingFirst(silent, [(0, 0, 1, 0)]), "job", 1, lambda _: None, patience=450,
            sleep=lambda _: None, clock=lambda: float(next(clock)),
        )  # fmt: skip


def test_the_monitor_stops_on_what_asking_again_cannot_mend():
    gone = ResourceNotFoundError("The specified job does not exist.")
    with pytest.raises(ResourceNotFoundError):
        monitor.watch(  # type: ignore[arg-type]
            FailingFirst([gone], [(0, 0, 1, 0)]), "job", 1, lambda _: None, sleep=lambda _: None
        )


def test_a_stalled_job_gets_its_cause_looked_for_said_once_and_given_up_on_if_lasting():
    looks: list[float] = []
    causes = iter([None, Cause("waiting for nodes", False)] + [Cause("quota", True)] * 9)

    def diagnose() -> Cause | None:
        looks.append(now)
        return next(causes)

    said: list[str] = []
    stall = Stall(diagnose, said.append, timeout=100)
    now = 0.0
    stall.progressed(now)
    for now in (10.0, 29.0):  # no look before 30 s without progress
        stall.check(now, active=5)
    assert looks == []
    for now in (30.0, 45.0, 60.0, 90.0, 95.0):
        stall.check(now, active=5)
    assert looks == [30.0, 60.0, 90.0]  # a look per 30 s at the most
    assert said == ["waiting for nodes", "quota"]
    stall.check(now := 120.0, active=0)  # nothing active: nothing to explain
    assert len(looks) == 3
    with pytest.raises(Stalled, match="quota"):
        stall.check(now := 120.5, active=5)  # 100 s without progress, a lasting cause
    stall.progressed(200.0)  # progress starts the count again
    stall.check(now := 240.0, active=5)
    assert said[-1] == "quota"


def test_with_no_stall_timeout_a_lasting_cause_is_only_said():
    said: list[str] = []
    stall = Stall(lambda: Cause("no pool", True), said.append, timeout=0)
    stall.progressed(0.0)
    for now in range(0, 10_000, 30):
        stall.check(float(now), active=1)
    assert said == ["no pool"]


def test_tasks_back_to_active_are_looked_into_and_a_failed_preparation_ends_the_wait():
    """The monitor sees tasks go back to active (their node's job preparation failed):
    it looks at once, not after 30 s, and a cause that ends the job is raised at once."""
    looks: list[float] = []
    clock = iter(float(t) for t in range(0, 10_000))
    causes = iter([None, Cause("preparation failed everywhere", True, ends_job=True)])
    stall = Stall(lambda: looks.append(1) or next(causes), lambda line: None, timeout=600)  # type: ignore[func-returns-value]
    # 2 tasks preparing, back to active; preparing elsewhere, back to active again.
    batch = FakeBatch([(0, 2, 0, 0), (2, 0, 0, 0), (2, 0, 0, 0), (0, 2, 0, 0), (2, 0, 0, 0)] * 3)
    with pytest.raises(Stalled, match="preparation failed everywhere") as raised:
        monitor.watch(  # type: ignore[arg-type]
            batch, "job", 2, lambda _: None, sleep=lambda _: None,
            clock=lambda: next(clock), stall=stall,
        )  # fmt: skip
    assert raised.value.ends_job
    assert len(looks) == 2  # one per return to active, 4 s in all: no 30 s wait


def test_the_monitor_looks_for_a_cause_only_while_nothing_moves():
    looks: list[float] = []
    clock = iter(float(t) for t in range(0, 10_000, 10))
    stall = Stall(lambda: looks.append(1) or None, lambda line: None, timeout=0)  # type: ignore[func-returns-value]
    batch = FakeBatch([(4, 0, 0, 0)] * 4 + [(3, 1, 0, 0), (2, 1, 1, 0)] * 1 + [(0, 0, 4, 0)])
    monitor.watch(  # type: ignore[arg-type]
        batch, "job", 4, lambda _: None, sleep=lambda _: None,
        clock=lambda: next(clock), stall=stall,
    )  # fmt: skip
    assert len(looks) == 1  # at 30 s of no progress, once, before the tasks started


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


def test_results_mirror_the_inputs_and_never_leave_the_folder():
    from runner.fetch import place

    places = {"t1": "a/report.txt", "t2": "../etc", "t3": "logs/x", "t4": "a//b"}
    assert place("t1", places) == "a/report.txt"
    for task in ("t2", "t3", "t4", "unknown"):
        assert place(task, places) == task


# --- many inputs per task ----------------------------------------------------------------


def _inputs(count: int, size: int = 1000) -> list:
    return [Input(f"d/{i}.txt", f"d/{i}.txt", size) for i in range(count)]


def test_packing_is_deterministic_and_keeps_the_order():
    first, again = list(packing.pack(_inputs(7), 3)), list(packing.pack(_inputs(7), 3))
    assert [g.task_id for g in first] == [g.task_id for g in again]
    assert [len(g.members) for g in first] == [3, 3, 1]
    assert all(g.packed for g in first)  # the last one too: one layout for the whole job
    assert [m.relative for g in first for m in g.members] == [f"d/{i}.txt" for i in range(7)]
    assert first[0].display_name == "d/0.txt and 2 more"
    (alone,) = packing.pack(_inputs(1), 1)
    assert (alone.task_id, alone.packed) == (task_id_for("d/0.txt"), False)


@pytest.mark.parametrize(
    ("count", "size", "slots", "expected"),
    [
        (1, 10, 4, 1),
        (500, 12_000, 4, 63),  # small files: as many as still gives every slot two tasks
        (100_000, 1_000, 4, 100),  # capped
        (40, 64 << 20, 4, 1),  # large files: a task each is already seconds of work
        (1_000, 8 << 20, 2, 4),  # 32 MB a task
    ],
)
def test_auto_files_per_task(count: int, size: int, slots: int, expected: int):
    assert packing.auto(count, count * size, slots) == expected


@pytest.mark.parametrize("text", ["0", "-1", "1001", "many", "2.5", ""])
def test_files_per_task_refused(text: str):
    with pytest.raises(InputError, match="--files-per-task"):
        packing.parse(text)


def test_a_packed_inputs_results_land_in_its_own_folder():
    places = {"k1": "a/x.txt", "single": "b/y.txt"}  # inputs' own task ids to paths
    local = fetch.local_name
    assert (
        local("j/results/files-000001-abcd/k1/x_OUTPUT.txt", "j", places) == "a/x.txt/x_OUTPUT.txt"
    )
    assert local("j/results/single/y_OUTPUT.txt", "j", places) == "b/y.txt/y_OUTPUT.txt"
    assert (
        local("j/results/files-000001-abcd/k9/z.txt", "j", places) == "files-000001-abcd/k9/z.txt"
    )
    assert local("j/logs/single/stderr.txt", "j", places) == "logs/single/stderr.txt"


@pytest.mark.parametrize(
    ("error", "resumable"),
    [
        (ServiceRequestError("connection refused"), True),
        (HttpResponseError(response=SimpleNamespace(status_code=503, reason="busy")), True),  # type: ignore[arg-type]
        (HttpResponseError(response=SimpleNamespace(status_code=403, reason="no")), False),  # type: ignore[arg-type]
    ],
)
def test_a_service_that_stops_answering_is_exit_3_with_how_to_resume(capsys, error, resumable):
    with pytest.raises(typer.Exit) as ended, cli_errors(Target(), resume=lambda: "WAIT JOB"):
        raise error
    assert ended.value.exit_code == 3
    assert ("to resume: WAIT JOB" in capsys.readouterr().err) is resumable
