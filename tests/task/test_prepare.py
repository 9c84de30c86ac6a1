"""task/prepare.py as a Batch node runs it: a preparation folder laid out as the job's
preparation task downloads it, the real uv (gzipped, as staged), a wheel built here."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import pytest

from runner import bundle, uv_binary
from tests.wheels import tiny_wheel

PREPARE = Path(__file__).resolve().parents[2] / "task" / "prepare.py"
SCRIPT = "import helpers, sys, tinypkg\nprint(helpers.X, tinypkg.count('a b a')['a'], sys.prefix)\n"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("project")
    (root / "script.py").write_text(SCRIPT)
    (root / "helpers.py").write_text("X = 42\n")
    (root / "requirements.txt").write_text("tinypkg==1.0\n")
    tiny_wheel(root / "wheels")
    return root


@pytest.fixture(scope="module")
def uv_gz() -> Path:
    return uv_binary.compressed(uv_binary.this_machine())[0]


class Node:
    """A node's shared folder, and preparation folders laid out as Batch lays them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shared = root / "shared"

    def environ(self, job: str, wd: Path) -> dict[str, str]:
        return {
            **os.environ,
            "AZ_BATCH_NODE_SHARED_DIR": str(self.shared),
            "AZ_BATCH_JOB_ID": job,
            "AZ_BATCH_JOB_PREP_WORKING_DIR": str(wd),
        }

    def stage(self, job: str, data: bytes, wheels: list[Path] = (), uv: Path | None = None) -> Path:  # type: ignore[assignment]
        wd = self.root / job / "jobpreparation" / "wd"
        wd.mkdir(parents=True)
        shutil.copy(PREPARE, wd / "prepare.py")
        (wd / "bundle.tar.gz").write_bytes(data)
        for wheel in wheels:
            (wd / "wheels").mkdir(exist_ok=True)
            shutil.copy(wheel, wd / "wheels" / wheel.name)
        if uv is not None:
            shutil.copy(uv, wd / "uv.gz")
        return wd

    def prepare(self, job: str, wd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["python3", "prepare.py", "prepare"],
            cwd=wd, env=self.environ(job, wd), capture_output=True, text=True, timeout=120,
        )  # fmt: skip

    def task(
        self, job: str, wd: Path, script: str = "script.py"
    ) -> subprocess.CompletedProcess[str]:
        """A task's command line as the runner writes it, from a folder of its own."""
        command = (
            'PATH="$AZ_BATCH_JOB_PREP_WORKING_DIR/env/bin:$PATH" exec python '
            f'"$AZ_BATCH_JOB_PREP_WORKING_DIR/program/"{script}'
        )
        elsewhere = self.root / job / "task" / "wd"
        elsewhere.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=elsewhere, env=self.environ(job, wd), capture_output=True, text=True,
        )  # fmt: skip

    def release(self, job: str, wd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/sh", "-c", 'exec python3 "$AZ_BATCH_JOB_PREP_WORKING_DIR/prepare.py" release'],
            cwd=self.root, env=self.environ(job, wd), capture_output=True, text=True,
        )  # fmt: skip

    def environments(self) -> list[Path]:
        envs = self.shared / "runner" / "envs"
        return (
            sorted(p for p in envs.iterdir() if not p.name.startswith(".")) if envs.is_dir() else []
        )


def _bundle(project: Path, requirements: str | None = "tinypkg==1.0\n") -> tuple[bytes, list[Path]]:
    wheels = project / "wheels"
    req = None
    if requirements is not None:
        req = project / f"requirements-{abs(hash(requirements))}.txt"
        req.write_text(requirements)
    environment = bundle.check(req, [project / "helpers.py"], wheels if req else None)
    return bundle.build(project / "script.py", environment).data, sorted(wheels.glob("*.whl"))


def test_an_environment_is_built_once_and_reused_by_the_next_job(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    data, wheels = _bundle(project)
    first = node.stage("job-1", data, wheels, uv_gz)
    built = node.prepare("job-1", first)
    assert built.returncode == 0, built.stderr
    assert "built in" in built.stdout
    assert "reused" not in built.stdout
    ran = node.task("job-1", first)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[:2] == ["42", "2"]  # the helper and the package
    assert ran.stdout.split()[2] == str(first / "env")  # a virtual environment
    # The next job reuses it, without even needing uv.
    second = node.stage("job-2", data, wheels)
    reused = node.prepare("job-2", second)
    assert reused.returncode == 0, reused.stderr
    (line,) = [x for x in reused.stdout.splitlines() if x.startswith("environment")]
    assert line.endswith(": reused")
    assert "install" not in reused.stdout + reused.stderr
    assert node.task("job-2", second).stdout.split()[:2] == ["42", "2"]
    assert len(node.environments()) == 1


def test_a_job_without_requirements_runs_the_node_s_python(tmp_path, project):
    node = Node(tmp_path)
    (project / "plain.py").write_text("import helpers, sys\nprint(helpers.X, sys.prefix)\n")
    environment = bundle.check(None, [project / "helpers.py"], None)
    wd = node.stage("job-1", bundle.build(project / "plain.py", environment).data)
    done = node.prepare("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert "environment: none" in done.stdout
    ran = node.task("job-1", wd, "plain.py")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[0] == "42"
    assert node.environments() == []
    again = node.prepare("job-1", wd)  # a rerun (after a reboot) is idempotent
    assert again.returncode == 0, again.stderr
    assert node.task("job-1", wd, "plain.py").stdout.split()[0] == "42"


def test_a_requirement_that_cannot_be_installed_says_why(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    data, wheels = _bundle(project, "tinypkg==9.9\n")
    wd = node.stage("job-1", data, wheels, uv_gz)
    done = node.prepare("job-1", wd)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert "tinypkg==9.9" in done.stderr  # uv's own words
    assert lines[-1] == (
        "prepare: installing the requirements failed (uv exit 1); "
        "the job's tasks will not run on this node"
    )
    (environment,) = node.environments()
    assert not (environment / ".complete").exists()  # half-built: the next try rebuilds it


def test_two_jobs_on_one_node_build_one_environment(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    data, wheels = _bundle(project)
    folders = {job: node.stage(job, data, wheels, uv_gz) for job in ("job-1", "job-2")}
    results: dict[str, subprocess.CompletedProcess[str]] = {}
    threads = [
        threading.Thread(target=lambda j=job: results.__setitem__(j, node.prepare(j, folders[j])))
        for job in folders
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    outputs = sorted(r.stdout for r in results.values())
    assert all(r.returncode == 0 for r in results.values()), outputs
    assert sum("built in" in out for out in outputs) == 1
    assert sum(": reused" in out for out in outputs) == 1
    assert len(node.environments()) == 1


def test_a_half_built_environment_is_built_again(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    data, wheels = _bundle(project)
    wd = node.stage("job-1", data, wheels, uv_gz)
    assert node.prepare("job-1", wd).returncode == 0
    (environment,) = node.environments()
    (environment / ".complete").unlink()  # as if the node died mid-build
    shutil.rmtree(environment / "lib")
    again = node.prepare("job-1", wd)
    assert again.returncode == 0, again.stderr
    assert "removing the half-built environment" in again.stdout
    assert node.task("job-1", wd).returncode == 0


def test_least_recently_used_environments_go_past_the_cap(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    folders = []
    for number, requirements in enumerate(["tinypkg==1.0\n", "tinypkg>=1.0\n", "tinypkg\n"]):
        data, wheels = _bundle(project, requirements)
        job = f"job-{number}"
        wd = node.stage(job, data, wheels, uv_gz)
        environ = {"RUNNER_ENV_CACHE_MB": "0"}  # every build is over the cap
        done = subprocess.run(
            ["python3", "prepare.py", "prepare"],
            cwd=wd, env={**node.environ(job, wd), **environ}, capture_output=True, text=True,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        folders.append(wd)
        if number == 0:  # the first job ends: its environment is no one's now
            assert node.release(job, wd).returncode == 0
    # The first job's went (released, least recently used); the second's is still
    # claimed by its job; the third is the one just used.
    assert len(node.environments()) == 2
    assert node.task("job-1", folders[1]).returncode == 0
    assert node.task("job-2", folders[2]).returncode == 0


def test_release_removes_the_job_s_files_and_keeps_the_environment(tmp_path, project, uv_gz):
    node = Node(tmp_path)
    data, wheels = _bundle(project)
    wd = node.stage("job-1", data, wheels, uv_gz)
    assert node.prepare("job-1", wd).returncode == 0
    done = node.release("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert [path.name for path in wd.iterdir()] == ["prepare.py"]
    (environment,) = node.environments()
    assert (environment / ".complete").is_file()
    assert list((environment / ".users").iterdir()) == []
    assert node.release("job-1", wd).returncode == 0  # idempotent


def _tar(members: dict[str, bytes], link: tuple[str, str] | None = None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        if link:
            info = tarfile.TarInfo(link[0])
            info.type, info.linkname = tarfile.SYMTYPE, link[1]
            tar.addfile(info)
    return raw.getvalue()


@pytest.mark.parametrize(
    ("members", "link"),
    [
        ({"../escape.py": b"x"}, None),
        ({"/etc/evil": b"x"}, None),
        ({}, ("program/link", "/etc/passwd")),
    ],
)
def test_unsafe_bundles_are_refused(tmp_path, members, link):
    node = Node(tmp_path)
    manifest = json.dumps({"version": 1, "environment": None}).encode()
    wd = node.stage("job-1", _tar({"manifest.json": manifest, **members}, link))
    done = node.prepare("job-1", wd)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("prepare: bundle.tar.gz holds an unsafe")
    assert not (tmp_path / "escape.py").exists()


def test_usage():
    done = subprocess.run([sys.executable, str(PREPARE)], capture_output=True, text=True)
    assert done.returncode == 2
    assert "usage" in done.stderr
