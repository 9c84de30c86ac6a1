"""No key or SAS in anything the system writes, and no download outside ``--out``.

One small job per way of reaching storage (the pool identity, and service SAS URLs on a
stack without it), whose script prints its whole environment and arguments; then every
text those runs produced is searched for the keys and any SAS signature: what the
runner printed (submit, download --logs, logs), the files it downloaded, the emulator's
log and request log, each task's command line and settings as the service holds them,
and every file in the tasks' directories on the node (their stdout and stderr included).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import IO, Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from contract.outputs import LocalKeys, StackOutputs
from local_stack import stack as local_stack
from runner import fetch
from tests.e2e.conftest import JobIds, batch_client, runner

DUMP_SCRIPT = """\
import os, pathlib, sys
name, out = sys.argv[1], pathlib.Path(sys.argv[2])
environment = "".join(f"{key}={value}\\n" for key, value in sorted(os.environ.items()))
print("argv", sys.argv)
print(environment)
print(environment, file=sys.stderr)
if "bad" in name:
    sys.exit(3)
out.mkdir(parents=True, exist_ok=True)
(out / (name + ".env")).write_text(environment)
"""


@dataclass
class Run:
    job_id: str
    texts: dict[str, str]  # where it was written: what was written
    signatures: set[str]  # the SAS signatures the job's tasks were given


def _texts_below(directory: Path, label: str) -> dict[str, str]:
    return {
        f"{label}/{path.relative_to(directory)}": path.read_text(errors="replace")
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def _signatures(url: str | None) -> set[str]:
    return set(parse_qs(urlsplit(url or "").query).get("sig", []))


def _run_job(stack: local_stack.Paths, outputs: Path, job_id: str, directory: Path) -> Run:
    """The job, on the session's local stack (whose logs and node directories are read),
    with ``outputs`` as the runner's outputs file."""
    directory.mkdir()
    (directory / "dump.py").write_text(DUMP_SCRIPT)
    (directory / "good.txt").write_text("some words")
    (directory / "bad.txt").write_text("x")
    common = ["--outputs", str(outputs)]
    submit = runner(
        "submit",
        "good.txt",
        "bad.txt",
        *common,
        "--job-id",
        job_id,
        "--task-retries",
        "0",
        "--keep-logs",
        "--json",
        "--out",
        "out",
        "--script",
        "dump.py",
        "--",
        "{input}",
        "{output_dir}",
        cwd=directory,
    )
    assert submit.returncode == 1, submit.stderr  # bad.txt fails, on purpose
    good = next(task for task in json.loads(submit.stdout)["tasks"] if task["exit_code"] == 0)
    download = runner("download", job_id, "--logs", "--out", "fetched", *common, cwd=directory)
    assert download.returncode == 0, download.stderr
    log = runner("logs", job_id, good["task_id"], *common, cwd=directory)
    assert log.returncode == 0, log.stderr
    assert "AZ_BATCH_TASK_ID=" in log.stdout  # the environment was printed

    texts = {
        "submit stdout": submit.stdout,
        "submit stderr": submit.stderr,
        "download stdout": download.stdout,
        "download stderr": download.stderr,
        "logs stdout": log.stdout,
        "logs stderr": log.stderr,
    }
    texts |= _texts_below(directory / "out", "--out")
    texts |= _texts_below(directory / "fetched", "download --out")
    texts["emulator log"] = stack.log("emulator").read_text(errors="replace")
    texts["request log"] = (stack.local / "logs" / "requests.log").read_text(errors="replace")
    for node in sorted((stack.local / "emulator" / "nodes").glob("*/*")):
        tasks = node / "workitems" / job_id
        if tasks.is_dir():
            texts |= _texts_below(tasks, f"node {node.name}")

    batch = batch_client(StackOutputs.read(stack.outputs))
    job = batch.get_job(job_id)
    signatures: set[str] = set()
    # The preparation task's resource files are where the job is given its SAS URLs, as
    # a task's are: the rest of the job is searched.
    preparation = job.job_preparation_task
    for resource in (preparation.resource_files if preparation else None) or []:
        signatures |= _signatures(resource.http_url)
    document = job.as_dict()
    document.get("jobPreparationTask", {}).pop("resourceFiles", None)
    texts["job"] = json.dumps(document)
    for task in batch.list_tasks(job_id):
        texts[f"task {task.id} command line"] = task.command_line
        texts[f"task {task.id} display name"] = task.display_name or ""
        texts[f"task {task.id} environment"] = json.dumps(
            [setting.as_dict() for setting in task.environment_settings or []]
        )
        for resource in task.resource_files or []:
            signatures |= _signatures(resource.http_url)
            signatures |= _signatures(resource.storage_container_url)
        for output in task.output_files or []:
            signatures |= _signatures(output.destination.container.container_url)
    return Run(job_id, texts, signatures)


@pytest.fixture(scope="module")
def runs(
    session_stack: local_stack.Paths, job_ids: JobIds, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Run]:
    """The same small job run with the pool identity and with SAS URLs, on the session's
    local stack: the one whose request log and node directories this module reads."""
    without_identity = json.loads(session_stack.outputs.read_text())
    without_identity["poolIdentityResourceId"] = None
    sas_outputs = tmp_path_factory.mktemp("sas-outputs") / "outputs.json"
    sas_outputs.write_text(json.dumps(without_identity))
    base = tmp_path_factory.mktemp("secrets")
    identity_job, sas_job = job_ids("e2e-secrets-identity"), job_ids("e2e-secrets-sas")
    return {
        "identity": _run_job(session_stack, session_stack.outputs, identity_job, base / "identity"),
        "sas": _run_job(session_stack, sas_outputs, sas_job, base / "sas"),
    }


def _needles(signatures: set[str], local: LocalKeys) -> Iterator[str]:
    for key in (local.batchAccountKey, local.storageAccountKey):
        yield key
        yield key[:20]  # any encoding of it starts alike: its first characters are plain
    yield "sig="
    yield "AccountKey="
    for signature in signatures:
        yield signature
        yield quote(signature, safe="")


@pytest.mark.emulator_only("reads the emulator's request log and its nodes' directories")
@pytest.mark.parametrize("mode", ["identity", "sas"])
def test_no_key_or_sas_in_anything_the_system_wrote(runs, session_stack, mode):
    local = StackOutputs.read(session_stack.outputs).local
    assert local is not None
    run = runs[mode]
    # Not vacuous: the places searched were written, and in SAS mode signatures exist.
    assert run.texts["request log"].strip()
    assert any(name.startswith("node ") and name.endswith("stdout.txt") for name in run.texts)
    assert any("AZ_BATCH_TASK_ID=" in text for name, text in run.texts.items() if "node" in name)
    assert bool(run.signatures) == (mode == "sas")
    leaks = [
        (where, needle)
        for where, text in run.texts.items()
        for needle in _needles(run.signatures, local)
        if needle in text
    ]
    assert leaks == []


# --- downloads stay in --out -----------------------------------------------------------------


class _Blob(SimpleNamespace):
    def readinto(self, file: IO[bytes]) -> None:
        file.write(f"from {self.name}".encode())


class _Container:
    """An output container holding blobs with hostile names, which a task may write to
    a real one as far as the runner knows (Azure Storage itself resolves ``..``)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names

    def list_blobs(self, name_starts_with: str = "") -> list[SimpleNamespace]:
        return [SimpleNamespace(name=n) for n in self.names if n.startswith(name_starts_with)]

    def download_blob(self, name: str) -> Any:
        return _Blob(name=name)


HOSTILE = [
    "job/results/t1/../../../../escaped.txt",
    "job/results/t1/../../escaped-in-out.txt",
    "job/results/../../escaped.txt",
    "job/results//escaped.txt",
    "job/results/t1/key/../../../../../escaped.txt",
    "job/logs/t1/../../../../escaped.txt",
]


def test_result_blobs_that_would_leave_out_are_skipped_with_a_warning(tmp_path):
    out = tmp_path / "deep" / "out"
    container = _Container(["job/results/t1/ok.txt", *HOSTILE, "job/logs/t1/stderr.txt"])
    warnings: list[str] = []
    fetched = fetch.download(
        container,  # type: ignore[arg-type]
        "job",
        out,
        logs=True,
        places={"t1": "inputs/a.txt", "key": "b.txt"},
        warn=warnings.append,
    )
    assert fetched == 2  # the others still arrive
    assert (out / "inputs" / "a.txt" / "ok.txt").read_text() == "from job/results/t1/ok.txt"
    assert (out / "logs" / "t1" / "stderr.txt").is_file()
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["deep/out/inputs/a.txt/ok.txt", "deep/out/logs/t1/stderr.txt"]
    assert len(warnings) == len(HOSTILE)
    for warning, name in zip(warnings, HOSTILE, strict=True):
        assert warning == f"warning: skipped the blob {name!r}: it would be written outside {out}"


def test_the_warning_goes_to_stderr_by_default(tmp_path, capsys):
    container = _Container([HOSTILE[0]])
    assert fetch.download(container, "job", tmp_path / "out") == 0  # type: ignore[arg-type]
    assert capsys.readouterr().err.startswith("warning: skipped the blob")
    assert not (tmp_path / "out").exists()
