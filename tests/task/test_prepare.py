"""task/prepare.py as a Batch node runs it: a subprocess of the node's python3 in a
preparation folder laid out as the job preparation task downloads it (bundle.tar.gz,
wheels/, uv), with the node's shared folder in tmp_path, the real uv of the uv package,
and a wheel built here (tests/wheels.py), so no test needs the network.

The bundles are made here from the contract (manifest.json, program/, requirements.txt),
not by the runner, so these tests say what prepare.py accepts whatever the runner does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import uv

from runner import uv_binary
from task import prepare
from tests.wheels import tiny_wheel

PREPARE = Path(prepare.__file__)
UV = Path(uv.find_uv_bin())
PYTHON = os.path.realpath(sys.executable)  # the node's python3: no virtual environment's
SCRIPT = (
    b"import helpers, sys, tinypkg\nprint(helpers.X, tinypkg.count('a b a')['a'], sys.prefix)\n"
)
HELPERS = b"X = 42\n"
ABSENT = {"requirements": None, "wheels": ["absent-1.0-py3-none-any.whl"], "digest": "d"}
PLAIN = b"import helpers, sys\nprint(helpers.X, sys.prefix)\n"
FAILED = (
    "prepare: installing the requirements failed (uv exit 1); "
    "the job's tasks will not run on this node"
)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_wheel(tmp_path_factory.mktemp("wheelhouse"))


@pytest.fixture(scope="module")
def node_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose python3 is the node's: first on PATH, as /usr/bin is on a node."""
    folder = tmp_path_factory.mktemp("bin")
    (folder / "python3").symlink_to(PYTHON)
    return folder


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pinned(wheel: Path) -> str:
    return f"tinypkg==1.0 --hash=sha256:{sha256(wheel)}\n"


def bundle(requirements: str | None = None, wheels: list[Path] | None = None) -> bytes:
    """A bundle as the contract has it, of script.py and helpers.py; with an environment
    when there are requirements or wheels, its digest over what determines it."""
    wheels = wheels or []
    members = {"program/script.py": SCRIPT, "program/helpers.py": HELPERS}
    spec = None
    if requirements is not None or wheels:
        spec = {
            "requirements": "requirements.txt" if requirements is not None else None,
            "wheels": [wheel.name for wheel in sorted(wheels)],
            "digest": digest(requirements, wheels),
        }
        if requirements is not None:
            members["requirements.txt"] = requirements.encode()
    members["manifest.json"] = json.dumps({"version": 1, "environment": spec}).encode()
    return tar(members)


def digest(requirements: str | None, wheels: list[Path]) -> str:
    """The manifest's digest, as the runner makes it: the requirements' bytes and the
    wheels' sha256s."""
    hashed = hashlib.sha256((requirements or "").encode())
    for wheel in sorted(wheels):
        hashed.update(b"\0" + wheel.name.encode() + b"\0" + sha256(wheel).encode())
    return hashed.hexdigest()


def tar(
    members: dict[str, bytes],
    links: dict[str, tuple[bytes, str]] | None = None,
    modes: dict[str, int] | None = None,
) -> bytes:
    """A gzip tar of files (0644 unless ``modes`` says), then of links: name -> (tar
    type, target)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), (modes or {}).get(name, 0o644)
            archive.addfile(info, io.BytesIO(data))
        for name, (kind, target) in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = kind, target
            archive.addfile(info)
    return raw.getvalue()


class Node:
    """A node's shared folder, and jobs' preparation folders laid out as Batch lays them."""

    def __init__(self, root: Path, node_bin: Path) -> None:
        self.root = root
        self.shared = root / "shared"
        self.envs = self.shared / "runner" / "envs"
        self.path = f"{node_bin}{os.pathsep}{os.environ.get('PATH', '')}"

    def environ(self, job: str, wd: Path, **more: str) -> dict[str, str]:
        return {
            **os.environ,
            "PATH": self.path,
            "AZ_BATCH_NODE_SHARED_DIR": str(self.shared),
            "AZ_BATCH_JOB_ID": job,
            "AZ_BATCH_JOB_PREP_WORKING_DIR": str(wd),
            **more,
        }

    def stage(
        self, job: str, data: bytes | None, wheels: list[Path] | None = None, uv: bool = False
    ) -> Path:
        """The job's preparation folder with what the preparation task downloads."""
        wd = self.root / "workitems" / job / "job-1" / "jobpreparation" / "wd"
        wd.mkdir(parents=True)
        shutil.copy(PREPARE, wd / "prepare.py")
        if data is not None:
            (wd / "bundle.tar.gz").write_bytes(data)
        for wheel in wheels or []:
            (wd / "wheels").mkdir(exist_ok=True)
            shutil.copy(wheel, wd / "wheels" / wheel.name)
        if uv:
            (wd / "uv").symlink_to(UV)  # a copy, as Batch downloads it, takes longer
        return wd

    def start(self, job: str, wd: Path, **more: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["python3", "prepare.py", "prepare"],
            cwd=wd, env=self.environ(job, wd, **more), text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    def prepare(self, job: str, wd: Path, **more: str) -> subprocess.CompletedProcess[str]:
        started = self.start(job, wd, **more)
        stdout, stderr = started.communicate(timeout=120)
        return subprocess.CompletedProcess(started.args, started.returncode, stdout, stderr)

    def task(
        self, job: str, wd: Path, script: str = "script.py"
    ) -> subprocess.CompletedProcess[str]:
        """A task's command line as the runner writes it, from a folder of its own."""
        command = (
            'PATH="$AZ_BATCH_JOB_PREP_WORKING_DIR/env/bin:$PATH" exec python '
            f'"$AZ_BATCH_JOB_PREP_WORKING_DIR/program/{script}"'
        )
        elsewhere = self.root / "workitems" / job / "job-1" / "task" / "wd"
        elsewhere.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=elsewhere, env=self.environ(job, wd), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def release(self, job: str, wd: Path) -> subprocess.CompletedProcess[str]:
        """The release task's command line, from a folder of its own."""
        elsewhere = self.root / "workitems" / job / "job-1" / "jobrelease" / "wd"
        elsewhere.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            ["/bin/sh", "-c", 'exec python3 "$AZ_BATCH_JOB_PREP_WORKING_DIR/prepare.py" release'],
            cwd=elsewhere, env=self.environ(job, wd), capture_output=True, text=True, timeout=60,
        )  # fmt: skip

    def environments(self) -> list[str]:
        if not self.envs.is_dir():
            return []
        return sorted(p.name for p in self.envs.iterdir() if not p.name.startswith("."))


@pytest.fixture
def node(tmp_path: Path, node_bin: Path) -> Node:
    return Node(tmp_path, node_bin)


def environment_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line of prepare's stdout about the environment."""
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("environment")]
    return line


def test_a_job_without_an_environment_runs_the_node_s_python(node):
    data = tar(
        {
            "manifest.json": json.dumps({"version": 1, "environment": None}).encode(),
            "program/plain.py": PLAIN,
            "program/helpers.py": HELPERS,
            "program/tool/run.sh": b"#!/bin/sh\necho ran\n",
        },
        {"program/tool/alias.py": (tarfile.SYMTYPE, "../helpers.py")},
        {"program/tool/run.sh": 0o755},
    )
    wd = node.stage("job-1", data)
    done = node.prepare("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert environment_line(done) == "environment: none"
    assert done.stderr == ""
    for name in ("python", "python3"):  # links to prepare.py's own python3
        assert os.path.realpath(wd / "env" / "bin" / name) == PYTHON
    ran = node.task("job-1", wd, "plain.py")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[0] == "42"  # the helper beside the script
    assert ran.stdout.split()[1] == sys.base_prefix  # the node's own python
    # Modes and links as the tar has them, inside program/.
    assert os.stat(wd / "program" / "tool" / "run.sh").st_mode & 0o777 == 0o755
    assert os.stat(wd / "program" / "helpers.py").st_mode & 0o777 == 0o644
    assert (wd / "program" / "tool" / "alias.py").read_bytes() == HELPERS
    assert node.environments() == []
    # Run again (a node rebooted): the same, over what the first run left.
    (wd / "program" / "stale.py").write_text("")
    again = node.prepare("job-1", wd)
    assert again.returncode == 0, again.stderr
    assert not (wd / "program" / "stale.py").exists()
    assert node.task("job-1", wd, "plain.py").stdout.split()[0] == "42"
    released = node.release("job-1", wd)
    assert released.returncode == 0, released.stderr
    assert list(wd.iterdir()) == []


def test_an_environment_is_built_once_then_reused_by_the_next_job(node, wheel):
    data = bundle(pinned(wheel), [wheel])  # hash-pinned, as pip writes them
    first = node.stage("job-1", data, [wheel], uv=True)
    built = node.prepare("job-1", first)
    assert built.returncode == 0, built.stderr
    (key,) = node.environments()
    assert environment_line(built).startswith(f"environment {key}: built in ")
    assert "installing the requirements: " in built.stdout
    assert (first / "env").is_symlink()
    assert Path(os.readlink(first / "env")) == node.envs / key
    ran = node.task("job-1", first)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["42", "2", str(first / "env")]  # helper, package, venv
    # The next job reuses it: no uv run, not even a uv to run.
    second = node.stage("job-2", data, [wheel])
    reused = node.prepare("job-2", second)
    assert reused.returncode == 0, reused.stderr
    assert environment_line(reused) == f"environment {key}: reused"
    assert "install" not in reused.stdout
    assert reused.stderr == ""
    assert node.task("job-2", second).stdout.split() == ["42", "2", str(second / "env")]
    assert sorted(p.name for p in (node.envs / key / ".users").iterdir()) == ["job-1", "job-2"]
    # A rerun of the first job's preparation (its node rebooted) changes nothing.
    again = node.prepare("job-1", first)
    assert again.returncode == 0, again.stderr
    assert environment_line(again) == f"environment {key}: reused"
    assert node.task("job-1", first).returncode == 0
    assert node.environments() == [key]


def test_uv_as_the_runner_stages_it_is_unpacked_once_a_node(node, wheel):
    """The runner stages uv gzipped (half the bytes each job downloads, built or not)."""
    packed, _ = uv_binary.compressed(uv_binary.this_machine())
    unpacked = []
    for job, requirements in (("job-1", "tinypkg==1.0\n"), ("job-2", "tinypkg>=1.0\n")):
        wd = node.stage(job, bundle(requirements, [wheel]), [wheel])
        shutil.copy(packed, wd / "uv.gz")
        done = node.prepare(job, wd)
        assert done.returncode == 0, done.stderr
        assert "built in" in environment_line(done)
        unpacked.append("unpacked uv (once a node)" in done.stdout)
        assert node.task(job, wd).stdout.split()[:2] == ["42", "2"]
    assert unpacked == [True, False]


@pytest.mark.parametrize("source", ["wheels alone", "requirements alone"])
def test_wheels_alone_or_requirements_alone(node, wheel, source):
    if source == "wheels alone":  # the wheels themselves are installed
        data, wheels = bundle(None, [wheel]), [wheel]
    else:  # from the index; here the requirements file points it at a folder
        data, wheels = bundle(f"--no-index\n--find-links {wheel.parent}\n{pinned(wheel)}"), []
    wd = node.stage("job-1", data, wheels, uv=True)
    done = node.prepare("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert " built in " in environment_line(done)
    ran = node.task("job-1", wd)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split()[:2] == ["42", "2"]


@pytest.mark.parametrize(
    ("requirements", "says"),
    [
        ("otherpkg==1.0\n", "otherpkg"),  # not in the wheelhouse
        (f"tinypkg==1.0 --hash=sha256:{'0' * 64}\n", "hash"),
    ],
)
def test_a_requirement_that_cannot_be_installed_says_why(node, wheel, requirements, says):
    wd = node.stage("job-1", bundle(requirements, [wheel]), [wheel], uv=True)
    done = node.prepare("job-1", wd)
    assert done.returncode == 1
    assert says in done.stderr.lower()  # uv's own words, then prepare's sentence
    assert done.stderr.strip().splitlines()[-1] == FAILED
    assert "environment" not in done.stdout.replace("virtual environment", "")
    assert node.environments() == []  # nothing half-built is left


def test_two_jobs_preparing_at_once_build_one_environment(node, wheel):
    data = bundle(pinned(wheel), [wheel])
    started = [node.start(job, node.stage(job, data, [wheel], uv=True)) for job in ("a", "b")]
    results = [process.communicate(timeout=120) for process in started]
    assert [process.returncode for process in started] == [0, 0], results
    (key,) = node.environments()
    said = sorted(
        line.removeprefix(f"environment {key}: ").split(" in ")[0]
        for stdout, _ in results
        for line in stdout.splitlines()
        if line.startswith("environment")
    )
    assert said == ["built", "reused"]


def test_a_half_built_environment_is_built_again(node, wheel):
    data = bundle(None, [wheel])
    key = prepare.key_of(digest(None, [wheel]))  # this interpreter's identity is the node's
    half = node.envs / key
    (half / "lib").mkdir(parents=True)
    (half / "pyvenv.cfg").write_text("home = /nowhere\n")  # as a node that died mid-build
    wd = node.stage("job-1", data, [wheel], uv=True)
    done = node.prepare("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert f"removing the half-built environment {key}" in done.stdout
    assert environment_line(done).startswith(f"environment {key}: built in ")
    assert node.task("job-1", wd).returncode == 0


def fake_environment(
    node: Node, name: str, used: float, megabytes: int, users: dict[str, float]
) -> None:
    """A complete environment last used ``used`` seconds ago, with job records as old as
    given, that says it takes ``megabytes``."""
    folder = node.envs / name
    (folder / ".users").mkdir(parents=True)
    (folder / ".size").write_text(str(megabytes * 2**20))
    (folder / ".complete").write_text("")
    now = time.time()
    (folder / ".last-used").write_text("")
    os.utime(folder / ".last-used", (now - used, now - used))
    for job, age in users.items():
        (folder / ".users" / job).write_text("")
        os.utime(folder / ".users" / job, (now - age, now - age))


HOUR, DAY = 3600, 24 * 3600


@pytest.mark.parametrize(
    ("cap", "kept"),
    [
        ("150", ["claimed", "recent"]),  # 240 MB over 150: the two least recently used go
        ("0", ["claimed"]),  # all that can go: never one a job uses, nor the one just built
    ],
)
def test_least_recently_used_environments_go_past_the_cap(node, wheel, cap, kept):
    fake_environment(node, "stale", 5 * DAY, 60, {"gone-job": 8 * DAY})  # never released
    fake_environment(node, "claimed", 4 * DAY, 60, {"running-job": HOUR})
    fake_environment(node, "free", 3 * DAY, 60, {})
    fake_environment(node, "recent", 60, 60, {})
    (node.envs / "half" / "lib").mkdir(parents=True)  # abandoned mid-build: no lock held
    wd = node.stage("job-1", bundle(None, [wheel]), [wheel], uv=True)
    done = node.prepare("job-1", wd, RUNNER_ENV_CACHE_MB=cap)
    assert done.returncode == 0, done.stderr
    key = environment_line(done).split()[1].rstrip(":")
    assert node.environments() == sorted([*kept, key])
    assert "pruned the environments" in done.stdout
    assert node.task("job-1", wd).returncode == 0


def test_a_reuse_prunes_nothing(node, wheel):
    data = bundle(None, [wheel])
    first = node.stage("job-1", data, [wheel], uv=True)
    assert node.prepare("job-1", first).returncode == 0
    fake_environment(node, "free", 3 * DAY, 60, {})
    second = node.stage("job-2", data, [wheel])
    done = node.prepare("job-2", second, RUNNER_ENV_CACHE_MB="0")
    assert done.returncode == 0, done.stderr
    assert "pruned" not in done.stdout
    assert "free" in node.environments()


def test_release_removes_the_job_s_files_and_keeps_the_environment(node, wheel, tmp_path):
    data = bundle(pinned(wheel), [wheel])
    wd = node.stage("job-1", data, [wheel], uv=True)
    assert node.prepare("job-1", wd).returncode == 0
    other = node.stage("job-2", data, [wheel])
    assert node.prepare("job-2", other).returncode == 0
    done = node.release("job-1", wd)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("released: removed env, program, bundle, bundle.tar.gz, wheels")
    assert list(wd.iterdir()) == []  # prepare.py too, last
    (key,) = node.environments()
    assert (node.envs / key / ".complete").is_file()
    assert [p.name for p in (node.envs / key / ".users").iterdir()] == ["job-2"]
    assert node.task("job-2", other).returncode == 0
    # Nothing left: a release run again (here from a copy) still succeeds.
    copy = tmp_path / "copy" / "prepare.py"
    copy.parent.mkdir()
    shutil.copy(PREPARE, copy)
    again = subprocess.run(
        ["python3", str(copy), "release"],
        env=node.environ("job-1", wd), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout == "released: nothing left to remove\n"


@pytest.mark.parametrize(
    ("members", "links"),
    [
        ({"../escape.py": b"x"}, {}),
        ({"program/../../escape.py": b"x"}, {}),
        ({"/": b"x"}, {}),  # made absolute in the test
        ({}, {"program/passwd": (tarfile.SYMTYPE, "/etc/passwd")}),
        ({}, {"program/up": (tarfile.SYMTYPE, "../../escape.py")}),
        ({}, {"program/hard": (tarfile.LNKTYPE, "../escape.py")}),
        ({}, {"program/fifo": (tarfile.FIFOTYPE, "")}),
    ],
    ids=["dotdot", "inner dotdot", "absolute", "link out", "link up", "hard link out", "fifo"],
)
def test_unsafe_bundles_are_refused(node, members, links):
    members = {
        node.root.as_posix() + "/escape.py" if k == "/" else k: v for k, v in members.items()
    }
    manifest = json.dumps({"version": 1, "environment": None}).encode()
    program = {"program/script.py": SCRIPT}
    wd = node.stage("job-1", tar({"manifest.json": manifest, **program, **members}, links))
    done = node.prepare("job-1", wd)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith("prepare: bundle.tar.gz holds an unsafe member: ")
    assert sorted(p.name for p in wd.iterdir()) == ["bundle.tar.gz", "prepare.py"]
    assert not list(node.root.rglob("escape.py"))


@pytest.mark.parametrize(
    ("data", "uv", "says"),
    [
        (None, False, "prepare: bundle.tar.gz is missing"),
        (b"not a tar", False, "prepare: bundle.tar.gz cannot be unpacked"),
        (tar({"program/x.py": b""}), False, "prepare: bundle.tar.gz has no readable manifest"),
        (tar({"manifest.json": b'{"version": 2}'}), False, "prepare: manifest.json is not"),
        (
            tar({"manifest.json": b'{"version": 1, "environment": {"digest": "d"}}'}),
            True,
            "prepare: manifest.json: the environment names neither requirements nor wheels",
        ),
        (bundle("tinypkg\n"), False, "prepare: the job needs an environment but uv.gz did not"),
        (
            tar({"manifest.json": json.dumps({"version": 1, "environment": ABSENT}).encode()}),
            True,
            "prepare: the wheels absent-1.0-py3-none-any.whl did not arrive",
        ),
    ],
    ids=["no bundle", "not a tar", "no manifest", "version", "empty", "no uv", "no wheel"],
)
def test_what_cannot_be_prepared_says_why(node, data, uv, says):
    wd = node.stage("job-1", data, uv=uv)
    done = node.prepare("job-1", wd)
    assert done.returncode == 1
    (line,) = done.stderr.splitlines()
    assert line.startswith(says)


@pytest.mark.parametrize("args", [[], ["bogus"], ["prepare", "extra"]])
def test_usage(args):
    done = subprocess.run([PYTHON, str(PREPARE), *args], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr == "usage: prepare.py prepare|release\n"
