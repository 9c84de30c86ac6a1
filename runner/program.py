"""What each task runs: a task program. ``TopWords`` (the tutorial's workload, the
default) or ``Script``, a user's own per-file script (``--script``).

A program names its jobs, gives its script and the arguments it runs with (``{input}``:
the input's name on the node, ``{output_dir}``: the folder whose files come back,
``{merge_dir}``: the folder whose files go to the merge stage only), and
reads a task's downloaded results into what the table and ``--json`` show.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

TOPWORDS_SCRIPT = Path(__file__).resolve().parent.parent / "task" / "topwords.py"


def script_blob_name(script: Path) -> str:
    """Where a script is staged in the application container: under its content hash."""
    digest = hashlib.sha256(script.read_bytes()).hexdigest()
    return f"scripts/{digest}/{script.name}"


def launcher(script_name: str) -> list[str]:
    """How a node runs a staged script from its working directory: a .py file with
    python3, anything else as an executable."""
    return ["python3", script_name] if script_name.endswith(".py") else [f"./{script_name}"]


class Program(ABC):
    name: str  # the prefix of its jobs' ids
    script: Path
    arguments: tuple[str, ...]
    column: str  # the results table's last column
    in_process: bool = False  # a Python file whose main(argv) each.py may call in-process

    def new_job_id(self) -> str:
        return f"{self.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"

    def document(self, node_input: str) -> str | None:
        """The result file in which the program names its input, by the path it was
        given on the node (``node_input``), if it writes one: the runner puts the input's
        name as the user gave it there (``named_input``) when it downloads the file."""
        return None

    @abstractmethod
    def read(self, directory: Path, input_name: str) -> dict[str, Any]:
        """A task's results (downloaded to ``directory``) as the fields --json shows."""

    @abstractmethod
    def cell(self, output: dict[str, Any]) -> str:
        """Those fields as the text of the table's last column."""


class TopWords(Program):
    """task/topwords.py: the top words of each file, as ``<stem>_OUTPUT.json``."""

    name = "topwords"
    script = TOPWORDS_SCRIPT
    column = "top words"
    in_process = True

    def __init__(self, top: int = 3, counts: bool = False) -> None:
        self.arguments = ("{input}", "--top", str(top), "--output-dir", "{output_dir}")
        self.arguments += ("--workers", "1")  # a task per file; the node's slots share its cores
        if counts:  # every word's count too, handed to --merge's merge tasks
            self.arguments += ("--counts-dir", "{merge_dir}")

    def document(self, node_input: str) -> str | None:
        return f"{Path(node_input).stem}_OUTPUT.json"

    def read(self, directory: Path, input_name: str) -> dict[str, Any]:
        document = directory / f"{Path(input_name).stem}_OUTPUT.json"
        if not document.is_file():
            return {"top": []}
        return {"top": [[word, count] for word, count in json.loads(document.read_text())["top"]]}

    def cell(self, output: dict[str, Any]) -> str:
        return words_cell(output.get("top", []))


class Script(Program):
    """A user's script, run once per input; its results are the files it writes. Its jobs
    are named after it (``clean.py`` runs as ``clean-...``)."""

    column = "output files"

    def __init__(self, script: Path, arguments: tuple[str, ...] = ()) -> None:
        self.script = script
        self.arguments = arguments or ("{input}", "{output_dir}")
        self.name = re.sub(r"[^A-Za-z0-9]+", "-", script.stem).strip("-")[:24].lower() or "script"

    def read(self, directory: Path, input_name: str) -> dict[str, Any]:
        files = directory.rglob("*") if directory.is_dir() else iter(())
        return {"files": sorted(str(p.relative_to(directory)) for p in files if p.is_file())}

    def cell(self, output: dict[str, Any]) -> str:
        return files_cell(output.get("files", []))


def named_input(document: bytes, was: str, now: str) -> bytes:
    """A result document (``Program.document``) whose ``"input"`` is ``was`` with ``now``
    there instead, and nothing else changed: ``named_input(named_input(d, a, b), b, a)``
    is ``d``, so a file renamed so can still be compared with the blob it came from."""
    entry = '"input": {}'
    old = entry.format(json.dumps(was, ensure_ascii=False)).encode()
    new = entry.format(json.dumps(now, ensure_ascii=False)).encode()
    return document.replace(old, new, 1)


def words_cell(top: Sequence[Sequence[Any]]) -> str:
    """Top words as the table shows them: ``the (146), a (46)``."""
    return ", ".join(f"{word} ({count})" for word, count in top)


def files_cell(files: Sequence[str], shown: int = 5) -> str:
    """Result files as the table shows them: the first few, then how many more."""
    more = f" (+{len(files) - shown} more)" if len(files) > shown else ""
    return ", ".join(files[:shown]) + more


def for_script_blob(blob_name: str) -> Program:
    """The program a job was submitted with, from the name its script was staged under:
    what ``wait`` needs to read the results of a job submitted earlier."""
    if blob_name == script_blob_name(TOPWORDS_SCRIPT):
        return TopWords()
    return Script(Path(blob_name.rsplit("/", 1)[-1]))
