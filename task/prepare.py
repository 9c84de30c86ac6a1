#!/usr/bin/env python3
"""A job's preparation and release on a Batch node: its program unpacked, and its Python
environment built once per node and shared by every later job that needs the same one.

Every job the runner creates has a job preparation task, which Batch runs on a node once,
before the node's first task of the job, and a job release task, when the job ends. Into
the preparation's working directory (its cwd, ``$AZ_BATCH_JOB_PREP_WORKING_DIR``) Batch
downloads this program, ``bundle.tar.gz`` (``manifest.json``, ``program/``: the task
script and the user's code; ``requirements.txt`` when given), ``wheels/`` (the wheels the
manifest names) and, when the manifest asks for an environment, ``uv.gz`` (uv gzipped,
unpacked once a node into ``$AZ_BATCH_NODE_SHARED_DIR/runner/tools/``; or ``uv`` itself).
``prepare.py prepare`` leaves there:

    program/   the bundle's program, unpacked (tasks run their script from here, so the
               script's ``import helpers`` finds program/helpers.py)
    bundle/    the rest of the bundle: manifest.json, requirements.txt
    env/       what tasks run the script with (their PATH starts with env/bin): a folder
               of links to this node's python3, or a link to the job's virtual environment

A node has python3 and nothing else (no pip, no venv module, no root), so environments
are built by uv, in ``$AZ_BATCH_NODE_SHARED_DIR/runner/envs/<key>``: the key digests the
manifest's digest (of the requirements and the wheels) and what makes this node's Python
what it is, so jobs that need the same environment share one and nodes of two images never
do. ``env`` is a link to the environment's folder, not to its bin/python: Python takes a
virtual environment from the pyvenv.cfg beside or above the path it was started by, so a
link to the interpreter alone would run the bare node Python.

Two jobs on one node prepare at once, and a node may die in the middle of a build; so an
environment is built under a lock of its own (``fcntl.flock``), marked ``.complete`` last,
never built again once complete, and removed and built again when found half-built. A job
that uses an environment records itself in its ``.users`` (its release removes the record)
and marks it used. After a build, complete environments are removed least recently used
first while they add up to more than ``RUNNER_ENV_CACHE_MB`` (10,240 by default); never
the one just used, nor one a job recorded itself in within the last 7 days (a job still
running, or one whose release never came). A claim and a removal take the same lock, so a
job never links to an environment being removed.

``prepare.py release`` removes from the preparation's folder everything prepare and Batch
put there, this program last, and the job's record; the environment stays for the next job.

Standard library only: a node has nothing but python3. stdout has one line per step with
its time, and exactly one ``environment ...`` line: ``environment: none``, ``environment
<key>: reused`` or ``environment <key>: built in <s> s`` (the runner reads it from the
node's stdout.txt). uv's own output goes to stderr as it comes. Exit status: 0 done, 1
failed (the last line of stderr is one sentence saying why), 2 a usage error.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

SELF = "prepare.py"
BUNDLE = "bundle.tar.gz"
MANIFEST = "manifest.json"
PROGRAM = "program"
UNPACKED = "bundle"  # what the bundle holds besides program/
ENV = "env"
WHEELS = "wheels"
UV = "uv"
UV_GZ = "uv.gz"
STAGING = ".bundle.new"  # the bundle while it is unpacked
OLD_PROGRAM = ".program.old"
ENV_LINK = ".env.new"

COMPLETE = ".complete"  # written last: the environment is whole
SIZE = ".size"  # its bytes, counted once when built
USED = ".last-used"  # touched by each job that uses it
USERS = ".users"  # a file per job that uses it, removed by the job's release
LOCKS = ".locks"
PRUNE_LOCK = "prune.lock"

CAP_VARIABLE = "RUNNER_ENV_CACHE_MB"
DEFAULT_CAP_MB = 10240
CLAIM_SECONDS = 7 * 24 * 3600
"""How long a job's record keeps its environment from being pruned: past it the job is
taken to have ended without a release (a node that restarted, a job deleted meanwhile)."""

Manifest = dict[str, object]


class Failed(Exception):
    """A step that failed: its message is prepare's last line on stderr."""


def say(line: str) -> None:
    print(line, flush=True)


def took(started: float) -> str:
    return f"{time.monotonic() - started:.2f} s"


# --- unpacking ------------------------------------------------------------------------


def unpack(here: Path) -> Manifest:
    """The bundle's ``program/`` into ``here/program`` and the rest into ``here/bundle``,
    replacing what an earlier run unpacked; the manifest."""
    bundle = here / BUNDLE
    if not bundle.is_file():
        raise Failed(f"{BUNDLE} is missing: the preparation task's resource files did not arrive")
    staging = here / STAGING
    remove(staging)  # a run cut short before
    staging.mkdir()
    try:
        extract(bundle, staging)
        manifest = read_manifest(staging / MANIFEST)
        program = staging / PROGRAM
        if program.is_symlink() or (program.exists() and not program.is_dir()):
            raise Failed(f"{BUNDLE}: {PROGRAM} is not a folder")
        program.mkdir(exist_ok=True)  # none: a bundle of an environment alone
    except BaseException:
        remove(staging)
        raise
    remove(here / OLD_PROGRAM)
    if (here / PROGRAM).exists() or (here / PROGRAM).is_symlink():
        os.replace(here / PROGRAM, here / OLD_PROGRAM)
    os.replace(program, here / PROGRAM)
    remove(here / OLD_PROGRAM)
    remove(here / UNPACKED)
    os.replace(staging, here / UNPACKED)
    return manifest


def extract(bundle: Path, into: Path) -> None:
    """Every member of the bundle, all checked before any is written; modes as in the tar."""
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            members = tar.getmembers()
            for member in members:
                check_member(member)
            if hasattr(tarfile, "data_filter"):  # 3.12, and 3.11.4 on: the same checks again
                tar.extractall(into, members, filter="data")
            else:
                tar.extractall(into, members)
    except (tarfile.TarError, EOFError, OSError) as error:
        raise Failed(f"{BUNDLE} cannot be unpacked: {error}") from None


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that would land outside the folder it is unpacked into, or that is
    not a file, a folder or a link within it."""
    unsafe = Failed(f"{BUNDLE} holds an unsafe member: {member.name!r}")
    if not is_inside(member.name):
        raise unsafe
    if member.issym():  # its target is taken from the link's own folder
        target = f"{PurePosixPath(member.name).parent}/{member.linkname}"
        if member.linkname.startswith("/") or not is_inside(target, climbs=True):
            raise unsafe
    elif member.islnk():  # its target is another member
        if not is_inside(member.linkname):
            raise unsafe
    elif not (member.isfile() or member.isdir()):
        raise unsafe


def is_inside(name: str, climbs: bool = False) -> bool:
    """Whether a relative path stays inside the folder it is taken from; with ``climbs``,
    ``..`` may climb back up as far as it went down."""
    if not name or name.startswith("/") or "\0" in name:
        return False
    depth = 0
    for part in PurePosixPath(name).parts:
        if part == ".." and not climbs:
            return False
        depth += -1 if part == ".." else 1
        if depth < 0:
            return False
    return True


def read_manifest(path: Path) -> Manifest:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Failed(f"{BUNDLE} has no readable {MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != 1:
        raise Failed(f"{MANIFEST} is not a version 1 manifest, the one this prepare.py reads")
    return manifest


@dataclass(frozen=True)
class Spec:
    """A manifest's environment, checked."""

    digest: str
    requirements: str | None  # in bundle/
    wheels: tuple[str, ...]  # in wheels/


def spec_of(manifest: Manifest) -> Spec | None:
    environment = manifest.get("environment")
    if environment is None:
        return None
    if not isinstance(environment, dict):
        raise Failed(f"{MANIFEST}: 'environment' must be an object or null")
    digest = environment.get("digest")
    if not isinstance(digest, str) or not digest:
        raise Failed(f"{MANIFEST}: the environment has no digest")
    requirements = environment.get("requirements")
    if requirements is not None and (
        not isinstance(requirements, str) or not is_inside(requirements)
    ):
        raise Failed(f"{MANIFEST}: 'requirements' must name a file in the bundle, or be null")
    wheels = environment.get("wheels") or []
    if not isinstance(wheels, list) or not all(
        isinstance(wheel, str) and wheel.endswith(".whl") and "/" not in wheel and wheel != ".whl"
        for wheel in wheels
    ):
        raise Failed(f"{MANIFEST}: 'wheels' must be a list of .whl file names")
    if requirements is None and not wheels:
        raise Failed(f"{MANIFEST}: the environment names neither requirements nor wheels")
    return Spec(digest, requirements, tuple(wheels))


# --- environments ---------------------------------------------------------------------


def python_identity() -> list[str]:
    """What makes this node's Python the one an environment was built for."""
    return [
        sys.version,
        sys.implementation.name,
        sys.implementation.cache_tag or "",
        sys.platform,
        platform.machine(),
        os.path.realpath(sys.executable),
    ]


def key_of(digest: str) -> str:
    identity = json.dumps([digest, *python_identity()])
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def shared_envs() -> Path:
    folder = os.environ.get("AZ_BATCH_NODE_SHARED_DIR")
    if not folder:
        raise Failed("AZ_BATCH_NODE_SHARED_DIR is not set: prepare.py runs as a Batch task")
    return Path(folder) / "runner" / "envs"


def job_record() -> str:
    """The job's file name in an environment's ``.users``: its id, percent-encoded."""
    job = os.environ.get("AZ_BATCH_JOB_ID")
    if not job:
        raise Failed("AZ_BATCH_JOB_ID is not set: prepare.py runs as a Batch task")
    return quote(job, safe="").replace(".", "%2E")


@contextlib.contextmanager
def locked(path: Path, shared: bool = False) -> Iterator[None]:
    """A lock on ``path`` (created if needed) for the block: exclusive, or ``shared``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield


@contextlib.contextmanager
def locked_if_free(path: Path) -> Iterator[bool]:
    """An exclusive lock on ``path`` if no one holds it now; whether it was had."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True


def system_env(here: Path) -> None:
    """``env/bin/python`` and ``python3``: links to this very interpreter."""
    if not sys.executable:
        raise Failed("this Python does not know its own executable")
    env = here / ENV
    remove(env)
    (env / "bin").mkdir(parents=True)
    for name in ("python", "python3"):
        (env / "bin" / name).symlink_to(sys.executable)


def use_environment(here: Path, spec: Spec) -> None:
    """Link ``env`` to the job's environment, built first unless some job built it."""
    envs = shared_envs()
    record = job_record()
    key = key_of(spec.digest)
    folder = envs / key
    lock = envs / LOCKS / f"{key}.lock"
    built: float | None = None
    reused = False
    if (folder / COMPLETE).is_file():
        with locked(lock, shared=True):  # a pruner takes it exclusively to remove one
            reused = claim(folder, record)
    if not reused:
        waited = time.monotonic()
        with locked(lock):
            say(f"took the build lock of {key}: {took(waited)}")
            reused = claim(folder, record)  # another job may have built it meanwhile
            if not reused:
                started = time.monotonic()
                build(here, spec, folder)
                built = time.monotonic() - started
                claim(folder, record)
    link_env(here, folder)
    say(
        f"environment {key}: reused"
        if built is None
        else f"environment {key}: built in {built:.2f} s"
    )
    if built is not None:
        prune(envs, keep=folder)


def claim(folder: Path, record: str) -> bool:
    """Record the job as a user of a complete environment and mark it used now; False
    when it is not complete. Called with the environment's lock held."""
    if not (folder / COMPLETE).is_file():
        return False
    (folder / USERS).mkdir(exist_ok=True)
    (folder / USERS / record).touch()
    (folder / USED).touch()
    return True


def link_env(here: Path, folder: Path) -> None:
    """``env`` as a link to the environment's folder, replacing what was there."""
    link = here / ENV
    staged = here / ENV_LINK
    remove(staged)
    staged.symlink_to(folder, target_is_directory=True)
    if link.is_dir() and not link.is_symlink():  # a job's earlier run made a folder
        remove(link)
    os.replace(staged, link)


def build(here: Path, spec: Spec, folder: Path) -> None:
    """The environment, in place, with ``here/uv`` only. Called with its lock held; on a
    failure nothing is left of it."""
    if folder.exists() or folder.is_symlink():
        say(f"removing the half-built environment {folder.name} a run cut short left")
        remove(folder)
    uv = uv_of(here, folder.parent.parent)
    wheels = [here / WHEELS / name for name in spec.wheels]
    missing = [wheel.name for wheel in wheels if not wheel.is_file()]
    if missing:
        raise Failed(f"the wheels {', '.join(missing)} did not arrive")
    requirements = here / UNPACKED / spec.requirements if spec.requirements else None
    if requirements is not None and not requirements.is_file():
        raise Failed(f"{BUNDLE} has no {spec.requirements}, which its {MANIFEST} names")
    variables = {
        **os.environ,
        "UV_CACHE_DIR": str(folder.parent.parent / "uv-cache"),
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    venv = [str(uv), "venv", "--no-project", "--no-python-downloads", "--python", sys.executable]
    venv.append(str(folder))
    install = [str(uv), "pip", "install", "--python", str(folder / "bin" / "python")]
    if wheels:
        install += ["--no-index", "--find-links", str(here / WHEELS)]
    if requirements is not None:
        install += ["-r", str(requirements)]
    else:
        install += [str(wheel) for wheel in wheels]
    # Compiled once here, not by each task that imports the package first.
    install += ["--compile-bytecode"]
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        run_uv(venv, variables, "creating the virtual environment")
        run_uv(install, variables, "installing the requirements")
        started = time.monotonic()
        (folder / SIZE).write_text(f"{size_of(folder)}\n")
        (folder / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ\n", time.gmtime()))
        say(f"measured the environment: {took(started)}")
    except BaseException:
        remove(folder)
        raise


def uv_of(here: Path, runner: Path) -> Path:
    """uv: ``uv.gz`` (as the runner stages it: half the bytes to download for every job,
    built or not) unpacked once a node into ``runner/tools/``, by content; or ``uv``."""
    packed = here / UV_GZ
    if not packed.is_file():
        uv = here / UV
        if not uv.is_file():
            raise Failed(f"the job needs an environment but {UV_GZ} did not arrive")
        if not os.access(uv, os.X_OK):
            uv.chmod(uv.stat().st_mode | stat.S_IXUSR)
        return uv
    with open(packed, "rb") as file:
        digest = hashlib.file_digest(file, "sha256").hexdigest()[:20]
    uv = runner / "tools" / f"uv-{digest}" / UV
    if uv.is_file():
        return uv
    with locked(uv.parent / ".lock"):
        if not uv.is_file():
            started = time.monotonic()
            partial = uv.with_name(f"{UV}.{os.getpid()}.partial")
            try:
                with gzip.open(packed, "rb") as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
            except (OSError, EOFError) as error:
                partial.unlink(missing_ok=True)
                raise Failed(f"{UV_GZ} cannot be unpacked: {error}") from None
            partial.chmod(0o755)
            os.replace(partial, uv)
            say(f"unpacked uv (once a node): {took(started)}")
    return uv


def run_uv(command: list[str], variables: dict[str, str], step: str) -> None:
    """One step of a build; uv writes to stderr as it goes (its stdout too)."""
    started = time.monotonic()
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        done = subprocess.run(
            command, env=variables, stdin=subprocess.DEVNULL, stdout=sys.stderr.fileno()
        )
    except OSError as error:
        raise Failed(f"{step} failed: {UV} did not run: {error}") from None
    if done.returncode != 0:
        how = (
            f"uv exit {done.returncode}"
            if done.returncode > 0
            else f"uv killed by signal {-done.returncode}"
        )
        raise Failed(f"{step} failed ({how}); the job's tasks will not run on this node")
    say(f"{step}: {took(started)}")


def size_of(folder: Path) -> int:
    """Bytes of the files below ``folder``, a file with several links counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                info = os.lstat(os.path.join(root, name))
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total


def cap_bytes() -> int:
    text = os.environ.get(CAP_VARIABLE, "")
    try:
        megabytes = float(text) if text else DEFAULT_CAP_MB
    except ValueError:
        print(
            f"prepare: {CAP_VARIABLE}={text!r} is not a number: {DEFAULT_CAP_MB} it is",
            file=sys.stderr,
        )
        megabytes = DEFAULT_CAP_MB
    return int(megabytes * 1024 * 1024)


def prune(envs: Path, keep: Path) -> None:
    """Remove environments abandoned half-built, then the least recently used complete
    ones while all of them add up to more than the cap; never ``keep``, nor one a job
    recorded itself in within CLAIM_SECONDS."""
    started = time.monotonic()
    cap = cap_bytes()
    removed: list[str] = []
    with locked(envs / LOCKS / PRUNE_LOCK):
        found: list[tuple[float, Path, int]] = []
        for folder in sorted(envs.iterdir()):
            if folder.name.startswith("."):
                continue
            if (folder / COMPLETE).is_file():
                found.append((last_used(folder), folder, recorded_size(folder)))
                continue
            with locked_if_free(envs / LOCKS / f"{folder.name}.lock") as free:
                if free and not (folder / COMPLETE).is_file():  # no build holds it
                    remove(folder)
                    removed.append(folder.name)
        total = sum(size for _, _, size in found)
        for _, folder, size in sorted(found, key=lambda entry: entry[0]):
            if total <= cap:
                break
            if folder == keep:
                continue
            with locked(envs / LOCKS / f"{folder.name}.lock"):
                if claimed(folder, time.time()):
                    continue
                (folder / COMPLETE).unlink(missing_ok=True)  # never seen whole, half removed
                remove(folder)
            removed.append(folder.name)
            total -= size
    listed = f": removed {', '.join(removed)}" if removed else ""
    say(
        f"pruned the environments ({total / 2**20:.1f} MB of {cap / 2**20:.0f} MB kept)"
        f"{listed}: {took(started)}"
    )


def claimed(folder: Path, now: float) -> bool:
    users = folder / USERS
    with contextlib.suppress(OSError):
        for user in users.iterdir():
            with contextlib.suppress(OSError):
                if now - user.stat().st_mtime < CLAIM_SECONDS:
                    return True
    return False


def last_used(folder: Path) -> float:
    with contextlib.suppress(OSError):
        return (folder / USED).stat().st_mtime
    return 0.0


def recorded_size(folder: Path) -> int:
    try:
        return int((folder / SIZE).read_text())
    except (OSError, ValueError):
        return size_of(folder)


def remove(path: Path) -> bool:
    """Remove a file, a link (never what it points to) or a folder; whether there was one."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)
    else:
        return False
    return True


# --- the two commands -----------------------------------------------------------------


def prepare(here: Path) -> None:
    started = time.monotonic()
    manifest = unpack(here)
    spec = spec_of(manifest)
    say(f"unpacked the program: {took(started)}")
    if spec is None:
        system_env(here)
        say("environment: none")
    else:
        use_environment(here, spec)


def release(here: Path) -> None:
    """Remove the job's record from every environment, then everything prepare and Batch
    left in the preparation's folder, this program last (so a release cut short can run
    again); the environments stay."""
    started = time.monotonic()
    records = 0
    if os.environ.get("AZ_BATCH_NODE_SHARED_DIR") and os.environ.get("AZ_BATCH_JOB_ID"):
        envs, record = shared_envs(), job_record()
        for folder in sorted(envs.iterdir()) if envs.is_dir() else []:
            with contextlib.suppress(FileNotFoundError):
                (folder / USERS / record).unlink()
                records += 1
    names = (ENV, PROGRAM, UNPACKED, BUNDLE, WHEELS, UV, UV_GZ, STAGING, OLD_PROGRAM, ENV_LINK)
    removed = [name for name in names if remove(here / name)]
    if remove(here / SELF):
        removed.append(SELF)
    if removed or records:
        say(
            f"released: removed {', '.join(removed)} and the job's record in {records} "
            f"environment(s): {took(started)}"
        )
    else:
        say("released: nothing left to remove")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in (["prepare"], ["release"]):
        print("usage: prepare.py prepare|release", file=sys.stderr)
        return 2
    try:
        if args == ["prepare"]:
            prepare(Path.cwd())
        else:
            folder = os.environ.get("AZ_BATCH_JOB_PREP_WORKING_DIR")
            if not folder:
                raise Failed(
                    "AZ_BATCH_JOB_PREP_WORKING_DIR is not set: release runs as a job release task"
                )
            release(Path(folder))
    except Failed as failure:
        print(f"prepare: {failure}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"prepare: {args[0]} failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
