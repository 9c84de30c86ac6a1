"""Reading the pipelines as GitHub does: workflows and composite actions, their steps,
and the simple commands inside each ``run:`` script (parsed by a bash parser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bashlex
from ruamel.yaml import YAML

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"


def load(path: Path) -> dict[str, Any]:
    """YAML 1.2, as GitHub reads it: the key ``on`` stays the string "on"."""
    document = YAML(typ="safe").load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), path
    return document


def workflow_files() -> list[Path]:
    return sorted((GITHUB / "workflows").glob("*.yml"))


def action_files() -> list[Path]:
    return sorted((GITHUB / "actions").glob("*/action.yml"))


@dataclass(frozen=True)
class Step:
    file: Path
    job: str  # the job's id, or "" in a composite action
    step: dict[str, Any]

    @property
    def where(self) -> str:
        name = self.step.get("name") or self.step.get("uses") or self.step.get("run", "")[:40]
        return f"{self.file.relative_to(ROOT)} {self.job} '{name}'"


def steps() -> Iterator[Step]:
    for path in workflow_files():
        for job_id, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                yield Step(path, job_id, step)
    for path in action_files():
        for step in load(path)["runs"].get("steps", []):
            yield Step(path, "", step)


@dataclass(frozen=True)
class Command:
    """One simple command of a script: its words, as the shell will see them before
    expansion (quotes removed, ``$VAR`` left as written), and its output redirections."""

    words: list[str]
    stdout_to: list[str]


def commands(script: str) -> list[Command]:
    found: list[Command] = []

    class Visitor(bashlex.ast.nodevisitor):  # type: ignore[misc]
        def visitcommand(self, node: Any, parts: Any) -> None:
            words = [part.word for part in parts if part.kind == "word"]
            targets = [
                part.output.word
                for part in parts
                if part.kind == "redirect" and part.type in (">", ">>")
            ]
            if words:
                found.append(Command(words, targets))

    if script.strip():
        for tree in bashlex.parse(script):
            Visitor().visit(tree)
    return found


def jq_fields(program: str) -> set[str]:
    """The object keys a jq program reads: ``.name`` in its code, and ``has("name")``.
    Text inside string literals is not code, but their ``\\(...)`` interpolations are."""
    code = _strings_flattened(program)
    keys = set(re.findall(r'has\(\s*"([A-Za-z_]\w*)"\s*\)', code))
    without_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', code)
    return keys | set(re.findall(r"(?<![\w.])\.([A-Za-z_]\w*)", without_strings))


def _strings_flattened(program: str) -> str:
    """The program with each interpolation moved out of its string literal, so that
    every literal left holds text only (``"a\\(.b)c"`` becomes ``"a" ( .b ) "c"``)."""
    out: list[str] = []
    interpolations: list[int] = []  # open parentheses inside each open interpolation
    text: str | None = None  # the literal being read, when inside one
    i = 0
    while i < len(program):
        char = program[i]
        if text is not None:
            if program.startswith("\\(", i):
                out.append(f'"{text}" ( ')
                text, i = None, i + 2
                interpolations.append(0)
            elif char == "\\":
                text, i = text + program[i : i + 2], i + 2
            elif char == '"':
                out.append(f'"{text}"')
                text, i = None, i + 1
            else:
                text, i = text + char, i + 1
            continue
        if char == '"':
            text = ""
        elif interpolations and char == ")" and interpolations[-1] == 0:
            interpolations.pop()
            out.append(" ) ")
            text = ""
        else:
            if interpolations and char in "()":
                interpolations[-1] += 1 if char == "(" else -1
            out.append(char)
        i += 1
    return "".join(out)


def jq_programs() -> list[tuple[Step, str, list[str]]]:
    """Every jq program in the workflows' scripts, with the files it reads."""
    programs = []
    for step in steps():
        for command in commands(step.step.get("run", "")):
            if command.words[0] == "jq":
                arguments = [word for word in command.words[1:] if not word.startswith("-")]
                programs.append((step, arguments[0], arguments[1:]))
    return programs
