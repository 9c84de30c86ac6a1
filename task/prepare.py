#!/usr/bin/env python3
"""A job's preparation and release on a Batch node: its program unpacked, its environment
built once per node and reused by every later job that needs the same one.

The runner gives every job a job preparation task: before a node's first task of the job,
Batch downloads into its working directory this program, ``bundle.tar.gz`` (``program/``:
the task script and the user's code; ``manifest.json``; ``requirements.txt``), the wheels
the manifest names (``wheels/``) and, when the job needs an environment, ``uv.gz`` (uv
for this node, gzipped). ``prepare`` then leaves there:

    program/     the bundle's program, unpacked (tasks run it from here)
    env/         what tasks run it with (their PATH starts with env/bin): the node's
                 python3, or a link to the job's virtual environment

An environment lives in ``$AZ_BATCH_NODE_SHARED_DIR/runner/envs/<key>``, the key a digest
of what determines it (the manifest's digest of the requirements and wheels, and this
node's Python), so jobs with the same requirements share it. It is built by uv (a node
has no pip, no venv module and no root), under a lock per key (two jobs on one node never
race), marked complete last (a half-built one is removed and built again), and never
rebuilt once complete. Past a size cap (RUNNER_ENV_CACHE_MB, default 10,240) the least
recently used are removed, never one a job on the node still uses.

``release`` (the job release task, when the job ends) removes the job's files from the
preparation's folder and its claim on the environment; the environment stays.

Standard library only. stdout says what each step did, one line each, with exactly one
``environment ...`` line: ``none``, ``<key>: reused`` or ``<key>: built in <s> s``.
Exit status: 0 done, 1 failed (the last line of stderr says why), 2 a usage error.
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
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

BUNDLE = "bundle.tar.gz"
PROGRAM = "program"
MANIFEST = "manifest.json"
ENV = "env"
WHEELS = "wheels"
UV = "uv.gz"
COMPLETE = ".complete"
USERS = ".users"
SIZE = ".size"
USED = ".last-used"
DEFAULT_CAP_MB = 10240
FRESH_CLAIM = 7 * 24 * 3600  # seconds a job's claim on an environment keeps it


class Failed(Exception):
    """A step that failed: its message is prepare's last line on stderr."""


def say(line: str) -> None:
    print(line, flush=True)


def shared() -> Path:
    folder = os.environ.get("AZ_BATCH_NODE_SHARED_DIR")
    if not folder:
        raise Failed("AZ_BATCH_NODE_SHARED_DIR is not set: run on a Batch node")
    return Path(folder) / "runner"


def job_id() -> str:
    return quote(os.environ.get("AZ_BATCH_JOB_ID", "unknown-job"), safe="")


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created if needed), held for the block."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


# --- unpacking --------------------------------------------------------------------------


def unpack(here: Path) -> dict[str, Any]:
    """The bundle's program into ``program/`` (replacing an earlier one); its manifest."""
    bundle = here / BUNDLE
    if not bundle.is_file():
        raise Failed(f"{BUNDLE} is missing: the preparation task's resource files did not arrive")
    staging = here / f".{PROGRAM}.new"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        with tarfile.open(bundle, "r:gz") as tar:
            for member in tar.getmembers():
                _check_member(member)
            if hasattr(tarfile, "data_filter"):  # Python 3.12, and 3.11.4 on
                tar.extractall(staging, filter="data")
            else:  # the members were checked above
                tar.extractall(staging)
    except (tarfile.TarError, OSError, EOFError) as error:
        raise Failed(f"{BUNDLE} cannot be unpacked: {error}") from None
    manifest_path = staging / MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise Failed(f"{BUNDLE} has no readable {MANIFEST}: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != 1:
        raise Failed(f"{BUNDLE}'s {MANIFEST} is not one this prepare.py reads (version 1)")
    for name in (MANIFEST, "requirements.txt"):
        if (staging / name).exists():
            os.replace(staging / name, here / name)
    target = here / PROGRAM
    shutil.rmtree(target, ignore_errors=True)
    if (staging / PROGRAM).is_dir():
        os.replace(staging / PROGRAM, target)
    else:
        target.mkdir()
    shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _check_member(member: tarfile.TarInfo) -> None:
    name = member.name
    parts = Path(name).parts
    if name.startswith("/") or ".." in parts or not (member.isfile() or member.isdir()):
        raise Failed(f"{BUNDLE} holds an unsafe member: {name!r}")


# --- environments -----------------------------------------------------------------------


def python_identity() -> str:
    """What makes one node's Python another's: an environment is built for it alone."""
    return "|".join(
        [
            sys.version,
            sys.implementation.name,
            platform.machine(),
            platform.system(),
            os.path.realpath(sys.executable),
        ]
    )


def key_of(digest: str) -> str:
    return hashlib.sha256(f"{digest}\n{python_identity()}".encode()).hexdigest()[:20]


def system_env(here: Path) -> None:
    """``env/bin/python`` and ``python3``: the node's own interpreter."""
    env = here / ENV
    _remove(env)
    (env / "bin").mkdir(parents=True)
    for name in ("python", "python3"):
        (env / "bin" / name).symlink_to(os.path.realpath(sys.executable))


def environment(here: Path, spec: dict[str, Any]) -> None:
    digest = str(spec.get("digest") or "")
    if not digest:
        raise Failed(f"{MANIFEST}: the environment has no digest")
    envs = shared() / "envs"
    key = key_of(digest)
    folder = envs / key
    started = time.monotonic()
    built = False
    if not (folder / COMPLETE).is_file():
        with locked(envs / ".locks" / f"{key}.lock"):
            if not (folder / COMPLETE).is_file():  # another job may have built it meanwhile
                build(here, spec, folder)
                built = True
    claim(folder)
    link = here / ENV
    _remove(link)
    link.symlink_to(folder, target_is_directory=True)
    took = time.monotonic() - started
    say(f"environment {key}: built in {took:.2f} s" if built else f"environment {key}: reused")
    if built:
        prune(envs, keep=folder)


def build(here: Path, spec: dict[str, Any], folder: Path) -> None:
    if folder.exists():
        say(f"removing the half-built environment {folder.name}")
        shutil.rmtree(folder)
    uv = uv_binary(here)
    variables = {
        **os.environ,
        "UV_CACHE_DIR": str(shared() / "uv-cache"),
        "UV_NO_CONFIG": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    run(
        [str(uv), "venv", "--quiet", "--python", os.path.realpath(sys.executable), str(folder)],
        variables,
        "creating the virtual environment",
    )
    install = [str(uv), "pip", "install", "--python", str(folder / "bin" / "python")]
    wheels = [here / WHEELS / str(name) for name in spec.get("wheels") or []]
    missing = [wheel.name for wheel in wheels if not wheel.is_file()]
    if missing:
        raise Failed(f"the wheels {', '.join(missing)} did not arrive")
    if wheels:
        install += ["--no-index", "--find-links", str(here / WHEELS)]
    requirements = spec.get("requirements")
    if requirements:
        install += ["-r", str(here / str(requirements))]
    else:
        install += [str(wheel) for wheel in wheels]
    run(install, variables, "installing the requirements")
    (folder / SIZE).write_text(str(_size(folder)))
    (folder / COMPLETE).write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def uv_binary(here: Path) -> Path:
    """uv, unpacked once per node from ``uv.gz`` into the shared folder (by content)."""
    packed = here / UV
    if not packed.is_file():
        raise Failed(f"{UV} is missing: the job needs an environment but uv did not arrive")
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()[:20]
    binary = shared() / "tools" / f"uv-{digest}" / "uv"
    if not binary.is_file():
        with locked(binary.parent / ".lock"):
            if not binary.is_file():
                partial = binary.with_name(f"uv.{os.getpid()}.partial")
                with gzip.open(packed, "rb") as source, open(partial, "wb") as target:
                    shutil.copyfileobj(source, target, 1 << 20)
                partial.chmod(0o755)
                os.replace(partial, binary)
    return binary


def run(command: list[str], variables: dict[str, str], step: str) -> None:
    """A step of the build; uv's own words go to stderr as they come."""
    started = time.monotonic()
    try:
        done = subprocess.run(command, env=variables, stdin=subprocess.DEVNULL, check=False)
    except OSError as error:
        raise Failed(f"{step} failed: {error}") from None
    if done.returncode != 0:
        raise Failed(
            f"{step} failed (uv exit {done.returncode}); the job's tasks will not run on this node"
        )
    say(f"{step}: {time.monotonic() - started:.2f} s")


def claim(folder: Path) -> None:
    """Mark the environment used now, and by this job until its release."""
    users = folder / USERS
    users.mkdir(exist_ok=True)
    (users / job_id()).touch()
    (folder / USED).touch()


def prune(envs: Path, keep: Path) -> None:
    """Remove the least recently used complete environments while all of them together
    are over the cap; never ``keep``, nor one a job claimed within FRESH_CLAIM."""
    cap = int(os.environ.get("RUNNER_ENV_CACHE_MB", DEFAULT_CAP_MB)) * 1024 * 1024
    with locked(envs / ".locks" / "prune.lock"):
        found = []
        for folder in envs.iterdir():
            if folder.name.startswith(".") or not (folder / COMPLETE).is_file():
                continue
            found.append((_last_used(folder), folder, _recorded_size(folder)))
        total = sum(size for _, _, size in found)
        now = time.time()
        for _, folder, size in sorted(found, key=lambda entry: entry[0]):
            if total <= cap:
                break
            if folder == keep or _claimed(folder, now):
                continue
            with locked(envs / ".locks" / f"{folder.name}.lock"):
                (folder / COMPLETE).unlink(missing_ok=True)  # never seen half-removed
                shutil.rmtree(folder, ignore_errors=True)
            total -= size
            say(f"removed the environment {folder.name}, unused since {time.ctime(_)}")


def _claimed(folder: Path, now: float) -> bool:
    users = folder / USERS
    return users.is_dir() and any(now - u.stat().st_mtime < FRESH_CLAIM for u in users.iterdir())


def _last_used(folder: Path) -> float:
    with contextlib.suppress(OSError):
        return (folder / USED).stat().st_mtime
    return 0.0


def _recorded_size(folder: Path) -> int:
    try:
        return int((folder / SIZE).read_text())
    except (OSError, ValueError):
        return _size(folder)


def _size(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def _remove(path: Path) -> None:
    """A file, a link (never what it points to) or a folder."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


# --- the two commands ---------------------------------------------------------------------


def prepare(here: Path) -> None:
    started = time.monotonic()
    manifest = unpack(here)
    say(f"unpacked the program: {time.monotonic() - started:.2f} s")
    spec = manifest.get("environment")
    if spec is None:
        system_env(here)
        say("environment: none")
    elif isinstance(spec, dict):
        environment(here, spec)
    else:
        raise Failed(f"{MANIFEST}: 'environment' must be an object or null")


def release(here: Path) -> None:
    """Remove what ``prepare`` and Batch left in the preparation's folder but this
    program (so a release run again still runs), and the job's claim on its environment;
    the environment stays."""
    link = here / ENV
    if link.is_symlink():
        target = Path(os.path.realpath(link))
        (target / USERS / job_id()).unlink(missing_ok=True)
    removed = 0
    for name in (PROGRAM, ENV, BUNDLE, WHEELS, UV, MANIFEST, "requirements.txt", ".program.new"):
        path = here / name
        if path.is_symlink() or path.exists():
            _remove(path)
            removed += 1
    say(f"released: removed {removed} of the job's files")


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
                raise Failed("AZ_BATCH_JOB_PREP_WORKING_DIR is not set: run as a job release task")
            release(Path(folder))
    except Failed as failure:
        print(f"prepare: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
