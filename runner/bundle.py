"""What a job's nodes get once each, through its job preparation task: the program bundle.

A bundle is one gzip tar, staged by content hash: ``program/`` (the task script, each.py
when inputs are packed, and every ``--code`` file with its relative layout, so the script
can ``import helpers``), ``requirements.txt`` (``--requirements``), and ``manifest.json``,
which tells task/prepare.py whether the job needs an environment and which wheels
(``--wheels``, staged beside it, one blob each by content) it is built from. The tar is
deterministic (sorted members, no times or owners), so the same program gives the same
blob and a resubmit stages nothing new.

Refused with a one-line reason (exit 2): a path that does not exist, two files that
would land on one name in ``program/``, a wheelhouse without wheels, and requirement
lines that cannot work on a node: a nested ``-r``/``-c`` file, an editable or a local
path (build a wheel and give ``--wheels``).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import tarfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from runner.inputs import InputError

PROGRAM_DIR = "program"
REQUIREMENTS = "requirements.txt"
MANIFEST = "manifest.json"
SKIPPED_DIRS = frozenset({"__pycache__", ".git", ".hg", ".svn", ".mypy_cache", ".pytest_cache"})
"""Folders of a --code folder that are never staged: caches and version control."""
SKIPPED_SUFFIXES = (".pyc", ".pyo")
_NESTED = re.compile(r"^\s*(-r|-c|--requirement|--constraint|-e|--editable)(\s|=|$)")
_LOCAL = re.compile(r"^\s*(\.{1,2}/|/|~|file:)")


@dataclass(frozen=True)
class Wheel:
    path: Path
    sha256: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def blob(self) -> str:
        """Where it is staged in the application container: by content, once."""
        return f"wheels/{self.sha256}/{self.name}"


@dataclass(frozen=True)
class Environment:
    """What a job asks of its nodes beyond the node's python3: ``--requirements``, the
    ``--code`` files (walked once: their names in program/, and where they are) and the
    ``--wheels``, as given, checked."""

    requirements: Path | None = None
    code: tuple[tuple[str, Path], ...] = ()
    wheels: tuple[Wheel, ...] = ()

    @property
    def needs_install(self) -> bool:
        """Whether nodes build a virtual environment (with uv) for this job."""
        return self.requirements is not None or bool(self.wheels)

    def digest(self) -> str:
        """What determines the environment: the requirements' bytes and the wheels'
        contents (the node adds its Python to make the environment's key)."""
        if not self.needs_install:
            return ""
        requirements = self.requirements.read_bytes() if self.requirements else b""
        return hashlib.sha256(requirements + b"\0" + self._wheels_digest().encode()).hexdigest()

    def record(self) -> dict[str, str]:
        """The content hashes a resubmit is compared by (empty when not given)."""
        code = hashlib.sha256()
        for name, path in self.code:
            code.update(name.encode() + b"\0" + _sha256(path).encode() + b"\0")
        return {
            "requirements": _sha256(self.requirements) if self.requirements else "",
            "code": code.hexdigest() if self.code else "",
            "wheels": self._wheels_digest() if self.wheels else "",
        }

    def _wheels_digest(self) -> str:
        digest = hashlib.sha256()
        for wheel in sorted(self.wheels, key=lambda w: w.name):
            digest.update(wheel.name.encode() + b"\0" + wheel.sha256.encode() + b"\0")
        return digest.hexdigest()


def check(requirements: Path | None, code: Sequence[Path], wheels: Path | None) -> Environment:
    """The options as an Environment, or InputError naming the first problem."""
    if requirements is not None:
        if not requirements.is_file():
            raise InputError(f"requirements file not found: {requirements}")
        _check_requirements(requirements)
    for path in code:
        if not path.exists():
            raise InputError(f"--code not found: {path}")
    found: tuple[Wheel, ...] = ()
    if wheels is not None:
        if not wheels.is_dir():
            raise InputError(f"--wheels must be a folder of .whl files: {wheels}")
        paths = sorted(p for p in wheels.iterdir() if p.suffix == ".whl" and p.is_file())
        if not paths:
            raise InputError(f"--wheels {wheels} holds no .whl file")
        found = tuple(Wheel(path, _sha256(path)) for path in paths)
    return Environment(requirements, code_files(code), found)


def _check_requirements(path: Path) -> None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"requirements file {path} is not readable text: {error}") from None
    for number, line in enumerate(lines, 1):
        text = line.split(" #", 1)[0].strip()
        if _NESTED.match(text):
            raise InputError(
                f"{path} line {number}: {text!r}: nested, constraint and editable entries "
                "are not staged to the nodes; put the requirements in this one file"
            )
        if _LOCAL.match(text):
            raise InputError(
                f"{path} line {number}: {text!r}: a local path does not exist on the nodes; "
                "build it as a wheel and give its folder with --wheels"
            )


def code_files(code: Sequence[Path]) -> tuple[tuple[str, Path], ...]:
    """(name in program/, file) for every --code file, sorted: a file by its own name, a
    folder as itself with everything below it (caches and version control left out).
    Two files that would land on one name are refused."""
    found: dict[str, Path] = {}
    for root in code:
        for name, path in _walk(root):
            if name in found and found[name].resolve() != path.resolve():
                raise InputError(f"--code: two files would be staged as {name}: choose one")
            found[name] = path
    return tuple(sorted(found.items()))


def _walk(root: Path) -> Iterator[tuple[str, Path]]:
    if root.is_file():
        yield root.name, root
        return
    base = root.resolve().name or "code"
    for folder, directories, files in os.walk(root):
        directories[:] = sorted(d for d in directories if d not in SKIPPED_DIRS)
        for file in sorted(files):
            path = Path(folder) / file
            if file.endswith(SKIPPED_SUFFIXES) or not path.is_file():
                continue
            yield f"{base}/{path.relative_to(root).as_posix()}", path


@dataclass(frozen=True)
class Bundle:
    data: bytes  # the gzip tar
    sha256: str

    @property
    def blob(self) -> str:
        return f"bundles/{self.sha256}/bundle.tar.gz"


def build(script: Path | None, environment: Environment, wrapper: Path | None = None) -> Bundle:
    """The bundle for a job running ``script`` (and ``wrapper``, each.py, when packed;
    no script: an environment alone, as ``doctor`` probes it)."""
    members: list[tuple[str, Path]] = [(f"{PROGRAM_DIR}/{script.name}", script)] if script else []
    if wrapper is not None:
        members.append((f"{PROGRAM_DIR}/{wrapper.name}", wrapper))
    taken = {name for name, _ in members}
    for name, path in environment.code:
        staged = f"{PROGRAM_DIR}/{name}"
        if staged in taken:
            raise InputError(f"--code {path} would replace {name}, which the job runs")
        members.append((staged, path))
    if environment.requirements is not None:
        members.append((REQUIREMENTS, environment.requirements))
    manifest = {
        "version": 1,
        "environment": {
            "requirements": REQUIREMENTS if environment.requirements else None,
            "wheels": [wheel.name for wheel in environment.wheels],
            "digest": environment.digest(),
        }
        if environment.needs_install
        else None,
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, MANIFEST, json.dumps(manifest, sort_keys=True).encode(), 0o644)
        for name, path in sorted(members):
            executable = os.access(path, os.X_OK) or path == script
            _add(tar, name, path.read_bytes(), 0o755 if executable else 0o644)
    data = gzip.compress(raw.getvalue(), mtime=0)
    return Bundle(data, hashlib.sha256(data).hexdigest())


def _add(tar: tarfile.TarFile, name: str, data: bytes, mode: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), mode, 0
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()
