"""Checking the input files before any service is touched.

Each input becomes the blob ``<job-id>/<file name>`` and the task ``<id from the name>``,
so two inputs with one file name would collide; names must also be safe as blob names and
on a node's command line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
_TASK_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


class InputError(ValueError):
    """Bad input: one line for the user, exit status 2."""


@dataclass(frozen=True)
class Input:
    path: Path
    name: str  # the file name: blob name below the job's prefix, and the name on the node
    task_id: str
    size: int


def task_id_for(name: str) -> str:
    """A task id from a file name: readable, valid for Batch, and unique per name."""
    readable = _TASK_ID_CHARS.sub("-", Path(name).stem)[:40] or "input"
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:8]}"


def check_inputs(paths: Sequence[str]) -> list[Input]:
    if not paths:
        raise InputError("no input files given")
    inputs: list[Input] = []
    by_name: dict[str, str] = {}
    seen: set[Path] = set()
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InputError(f"input not found: {given}")
        if path.is_dir():
            raise InputError(f"input is a directory: {given}")
        resolved = path.resolve()
        if resolved in seen:
            raise InputError(f"input given twice: {given}")
        seen.add(resolved)
        name = path.name
        if not _SAFE_NAME.match(name):
            raise InputError(
                f"input name not usable as a blob name: {given!r} (use letters, digits, "
                "'.', '_' and '-', starting with a letter or digit)"
            )
        if name in by_name:
            raise InputError(f"inputs {by_name[name]} and {given} have the same file name {name}")
        by_name[name] = given
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise InputError(f"cannot read {given}: {error.strerror}") from None
        inputs.append(Input(path, name, task_id_for(name), path.stat().st_size))
    return inputs


def md5_of(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.digest()


def content_md5s(inputs: Sequence[Input]) -> dict[str, bytes]:
    """Each input's MD5 by name, read in parallel: what storage compares to skip an
    upload, and what a job's fingerprint is made of."""
    with ThreadPoolExecutor(16) as pool:
        return dict(
            zip(
                (item.name for item in inputs),
                pool.map(lambda item: md5_of(item.path), inputs),
                strict=True,
            )
        )
