#!/usr/bin/env python3
"""Run a per-file program over each of a Batch task's inputs, keeping their outcomes apart.

A task that carries several inputs (``runner submit --files-per-task N``) finds each in
``inputs/<key>/<file>`` of its working directory. For each, in order of key, this runs
the program with ``{input}`` replaced by the input's path, ``{output_dir}`` by
``out/<key>`` and ``{merge_dir}`` by ``merge/<key>`` (what it hands to a merge stage; both
created first), so every input's results stay in a folder of its own.
Each outcome (exit status, seconds, the last lines of its stderr) is written to
``status.json`` as soon as it is known, so a task cut short still tells which inputs
were done. One failing input does not stop the others.

A Python program that defines ``main(argv) -> int`` (topwords.py does) runs inside this
process with ``--in-process``: one interpreter for all the inputs, not one each. Any
other program runs as a process per input, from an argument list (never a shell).

Such a program may also define ``combine(folders, into)``. After the last input, each.py
calls it with the ``{merge_dir}`` folders of the inputs that succeeded and ``merge/``,
then removes every input's folder: the task hands the merge stage one file, not one an
input (topwords sums its counts), and a merge reads that many fewer blobs. Should it
fail, the folders stay and are handed over as they are.

Standard library only: a node has nothing but python3. Exit status: 0 when every input
succeeded, 1 when any failed, 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

INPUTS = Path("inputs")
OUTPUTS = Path("out")
MERGE_INPUTS = Path("merge")
STATUS = Path("status.json")
STDERR_TAIL_LINES = 10


def inputs(root: Path = INPUTS) -> list[tuple[str, Path]]:
    """(key, file) for every input of the task, in order of key."""
    found = []
    for folder in sorted(root.iterdir() if root.is_dir() else [], key=lambda p: p.name):
        files = sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
        if files:
            found.append((folder.name, files[0]))
    return found


def expand(arguments: Sequence[str], file: Path, output_dir: Path, merge_dir: Path) -> list[str]:
    return [
        argument.replace("{input}", str(file))
        .replace("{output_dir}", str(output_dir))
        .replace("{merge_dir}", str(merge_dir))
        for argument in arguments
    ]


def load(program: Path) -> ModuleType:
    """The program as a module, able to import the modules beside it (``--code``), as it
    could run as a script."""
    folder = str(program.resolve().parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    spec = importlib.util.spec_from_file_location(f"_each_{program.stem}", program)
    if spec is None or spec.loader is None:
        raise SystemExit(f"each: error: cannot load {program}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look modules up by name
    spec.loader.exec_module(module)
    return module


def in_process(module: ModuleType) -> Callable[[list[str]], tuple[int, str]]:
    """The program's ``main``, called with its stderr captured."""
    main = getattr(module, "main", None)
    if not callable(main):
        raise SystemExit(f"each: error: {module.__file__} has no main(argv) to run in-process")

    def run(argv: list[str]) -> tuple[int, str]:
        captured = io.StringIO()
        with contextlib.redirect_stderr(captured):
            try:
                status = main(argv)
            except SystemExit as stop:
                code = stop.code
                status = code if isinstance(code, int) else (0 if code is None else 1)
            except Exception:
                traceback.print_exc()
                status = 1
        return int(status or 0), captured.getvalue()

    return run


def as_process(program: Path) -> Callable[[list[str]], tuple[int, str]]:
    """The program run as a process: a .py file with this python3, anything else directly."""
    python = program.suffix == ".py"
    command = [sys.executable, str(program)] if python else [str(program.resolve())]

    def run(argv: list[str]) -> tuple[int, str]:
        done = subprocess.run([*command, *argv], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return done.returncode, done.stderr.decode("utf-8", errors="replace")

    return run


def write_status(status: dict[str, dict[str, object]], path: Path = STATUS) -> None:
    """Atomically, so an upload of a task cut short never reads half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent or ".", prefix=".status.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(status, file, ensure_ascii=False, indent=1)
    os.replace(temporary, path)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    inside = bool(args) and args[0] == "--in-process"
    args = args[1:] if inside else args
    if not args:
        print("usage: each.py [--in-process] PROGRAM [ARG ...]", file=sys.stderr)
        return 2
    program, arguments = Path(args[0]), args[1:]
    module = load(program) if inside else None
    run = in_process(module) if module else as_process(program)
    hands_over = any("{merge_dir}" in argument for argument in arguments)
    status: dict[str, dict[str, object]] = {}
    for key, file in inputs():
        output_dir, merge_dir = OUTPUTS / key, MERGE_INPUTS / key
        output_dir.mkdir(parents=True, exist_ok=True)
        if hands_over:
            merge_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        code, stderr = run(expand(arguments, file, output_dir, merge_dir))
        if stderr:
            sys.stderr.write("".join(f"{key}: {line}\n" for line in stderr.splitlines()))
        status[key] = {
            "exit_code": code,
            "seconds": round(time.monotonic() - started, 6),
            "stderr_tail": stderr.splitlines()[-STDERR_TAIL_LINES:],
        }
        write_status(status)
    if not status:
        write_status(status)
        print("each: error: the task has no inputs", file=sys.stderr)
        return 1
    succeeded = [key for key, entry in status.items() if entry["exit_code"] == 0]
    combine = getattr(module, "combine", None)
    if hands_over and callable(combine) and not combined(combine, succeeded, list(status)):
        return 1
    return 0 if len(succeeded) == len(status) else 1


def combined(
    combine: Callable[[list[Path], Path], None], succeeded: list[str], keys: list[str]
) -> bool:
    """Run the program's ``combine`` over what the inputs handed over, then remove their
    folders (a failed input's too: the merge must not count it). False if it failed."""
    try:
        combine([MERGE_INPUTS / key for key in succeeded], MERGE_INPUTS)
    except Exception:
        print("each: error: combining what the inputs hand to the merge stage:", file=sys.stderr)
        traceback.print_exc()
        return False
    for key in keys:
        shutil.rmtree(MERGE_INPUTS / key, ignore_errors=True)
    return True


if __name__ == "__main__":
    sys.exit(main())
