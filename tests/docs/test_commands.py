"""Every command line the README and the pages show runs as shown: the runner's commands
exist and take the options given (read from the CLI's own definition, typer's click tree),
the local stack's, the emulator's and the tools' modules take theirs (from their own
parsers), and ``make`` names targets the Makefile has. Nothing is run."""

from __future__ import annotations

import contextlib
import importlib
import io
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import pytest
import typer

from runner.cli import app
from tests.docs.pages import ROOT, blocks, code_spans, documents, name, prose

SHELLS = {"", "console", "bash", "sh", "shell"}
OPERATORS = {";", "&&", "||", "|", "&", "(", ")"}
REDIRECTS = {">", ">>", "<", "2>", "2>&1", "<<"}


@dataclass(frozen=True)
class Line:
    where: str
    words: list[str]


def make_targets() -> set[str]:
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([A-Za-z][\w-]*):(?!=)", text, re.MULTILINE))


def _shell_words(text: str) -> list[list[str]]:
    """The simple commands of one shell line: its words, split at ; && || | and with
    redirections and comments dropped. A synopsis's ``|`` between alternatives (``N|auto``,
    ``PREFIX | --blobs ...``) is no pipe: no command starts with an option."""
    text = re.sub(r"(?<=[\w\]])\|(?=[\w\[-])", "/", text)
    text = re.sub(r"\s\|\s+(?=[\[-])", " ", text)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[list[str]] = [[]]
    skip = False
    for word in lexer:
        if skip:
            skip = False
        elif word in OPERATORS:
            commands.append([])
        elif word in REDIRECTS or set(word) <= set("<>&"):
            skip = True  # its target follows
        else:
            commands[-1].append(word)
    return [words for words in commands if words]


RELEVANT = re.compile(r"(^|\s)(\S*python3?\s+(-m\s+)?\S|runner\s|make(\s|$))")


def _logical_lines(lines: tuple[str, ...]) -> Iterator[str]:
    """A block's lines with ``\\`` continuations joined; in a transcript (lines that start
    with ``$ ``), only the command lines; elsewhere an indented line continues the one
    before it (a synopsis's options, a loop's body)."""
    transcript = any(line.startswith("$ ") for line in lines)
    joined: list[str] = []
    pending = ""
    for line in lines:
        if transcript and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line, pending = pending + line, ""
        if not transcript and joined and line[:1].isspace() and line.strip():
            joined[-1] += " " + line.strip()
        else:
            joined.append(line)
    yield from joined


def command_lines() -> list[Line]:
    """Every command in the documents' shell blocks, and every inline one."""
    found: list[Line] = []
    for path in documents():
        for block in blocks(path):
            if block.info not in SHELLS:
                continue
            for text in _logical_lines(block.lines):
                if not RELEVANT.search(text):
                    continue
                try:
                    commands = _shell_words(text)
                except ValueError as error:
                    raise AssertionError(f"{block.where}: {text!r}: {error}") from None
                found += [Line(block.where, words) for words in commands]
        for span in code_spans(prose(path)):
            words = _inline_command(span)
            if words:
                found.append(Line(f"{name(path)} `{span}`", words))
    return found


def _verbs() -> set[str]:
    return set(_runner().commands)


def _inline_command(span: str) -> list[str] | None:
    """An inline code span that is a command: one that starts as a command line does
    (``python -m runner``, ``runner``, ``make``), or with a runner command and more."""
    try:
        words = shlex.split(span)
    except ValueError:
        return None
    if len(words) < 2:
        return None
    if words[0] in {"runner", "make"} or re.fullmatch(r"\S*python3?", words[0]):
        return words
    looks_like_arguments = any(
        word.lstrip("[").startswith("-") or re.fullmatch(r"\[?[A-Z]+\]?", word)
        for word in words[1:]
    )  # options or placeholders: `wait JOB`, `doctor --probe`; not `local stacks started`
    if words[0] in _verbs() and looks_like_arguments:
        return ["runner", *words]
    return None


@cache
def _runner() -> Any:
    return typer.main.get_command(app)


def _option_names(command: Any) -> dict[str, bool]:
    """Each option of a click command, and whether it is a flag (takes no value)."""
    options = {"--help": True, "-h": True}
    for parameter in command.params:
        if parameter.param_type_name == "option":
            for opt in [*parameter.opts, *parameter.secondary_opts]:
                options[opt] = bool(parameter.is_flag or parameter.count)
    return options


def _synopsis_word(word: str) -> str:
    """A word of a synopsis without its brackets and ellipsis: ``[--code`` is ``--code``."""
    return word.strip("[]").removesuffix("...").strip("[]")


def check_options(words: list[str], options: dict[str, bool], what: str) -> None:
    """Every option in ``words`` is one of ``options`` (up to a lone ``--``, after which
    the words are a script's), and an option that takes a value has one."""
    i = 0
    while i < len(words):
        raw = words[i]
        if raw == "--":
            return
        word = _synopsis_word(raw)
        i += 1
        if not word.startswith("-") or word in {"-", "--"} or re.fullmatch(r"-\d[\d.]*", word):
            continue
        option = word.split("=", 1)[0]
        assert option in options, f"{what} has no option {option}"
        if not options[option] and "=" not in word:
            assert i < len(words), f"{what}: {option} needs a value"
            i += 1


def check_runner(args: list[str]) -> None:
    """The command (and subcommand) exists and takes every option given."""
    command, what = _runner(), "python -m runner"
    while hasattr(command, "commands"):
        if not args or args[0] in {"--help", "-h", "...", "COMMAND"}:
            return  # the group's help, or any of its commands
        verbs = re.split(r"[|/]", _synopsis_word(args[0]))
        for verb in verbs[1:]:
            assert verb in command.commands, f"{what} has no command {verb!r}"
        found = command.commands.get(verbs[0])
        assert found is not None, f"{what} has no command {args[0]!r}"
        command, what, args = found, f"{what} {verbs[0]}", args[1:]
    check_options(args, _option_names(command), what)


@cache
def _argparse_options(module: str, subcommand: str | None) -> dict[str, bool]:
    """The options an argparse program's ``--help`` lists, read by calling its ``main``
    in-process (argparse prints the help and exits before doing anything else)."""
    main: Callable[[list[str]], Any] = importlib.import_module(module).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main([*([subcommand] if subcommand else []), "--help"])
    text = out.getvalue()
    options = {"--help": True, "-h": True}
    for line in text.splitlines():
        for match in re.finditer(r"(?<![\w-])(--?[A-Za-z][\w-]*)( [A-Z_]+)?", line.strip()):
            if line.strip().startswith(match.group(1)) or line.strip().startswith("-"):
                options.setdefault(match.group(1), match.group(2) is None)
    return options


def _argparse_subcommands(module: str) -> set[str]:
    main: Callable[[list[str]], Any] = importlib.import_module(module).main
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    match = re.search(r"\{([\w,-]+)\}", out.getvalue())
    return set(match.group(1).split(",")) if match else set()


def check_argparse_module(module: str, args: list[str], subcommands: bool) -> None:
    subcommand = None
    if subcommands and args and not args[0].startswith("-"):
        known = _argparse_subcommands(module)
        verbs = re.split(r"[|/]", _synopsis_word(args[0]))
        for verb in verbs:
            assert verb in known, f"python -m {module} has no command {verb!r}"
        subcommand, args = verbs[0], args[1:]
    options = _argparse_options(module, subcommand)
    check_options(args, options, f"python -m {module} {subcommand or ''}".strip())


MODULES: dict[str, Callable[[list[str]], None]] = {
    "runner": check_runner,
    "local_stack": lambda args: check_argparse_module("local_stack.__main__", args, True),
    "emulator": lambda args: check_argparse_module("emulator.__main__", args, False),
    "emulator.fault_proxy": lambda args: check_argparse_module("emulator.fault_proxy", args, False),
    "tools.docs_outputs": lambda args: check_argparse_module("tools.docs_outputs", args, False),
    "tools.record_requests": lambda args: check_argparse_module(
        "tools.record_requests", args, False
    ),
}
"""The project's programs a page may show with ``python -m``, each with its check."""

PROJECT_SCRIPTS = ("task/", "bench/", "tools/")


def check_line(words: list[str]) -> None:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=\S*", words[0]):
        words = words[1:]  # VAR=value before the command
    if not words:
        return
    first = words[0]
    if first == "make":
        targets = [word for word in words[1:] if not word.startswith("-") and "=" not in word]
        assert set(targets) <= make_targets(), f"no such make target in {targets}"
    elif first == "runner":
        check_runner(words[1:])
    elif re.fullmatch(r"\S*python3?", first) and len(words) > 1:
        if words[1] == "-m" and len(words) > 2:
            check = MODULES.get(words[2])
            if check is not None:
                check(words[3:])
            else:
                assert not words[2].startswith(("runner.", "local_stack.", "tools.")), words
        elif words[1].startswith(PROJECT_SCRIPTS):
            script = ROOT / words[1]
            assert script.is_file(), f"no script {words[1]}"
            source = script.read_text()
            for word in map(_synopsis_word, words[2:]):
                if word.startswith("--"):
                    option = word.split("=", 1)[0]
                    assert f'"{option}"' in source, f"{words[1]} has no option {option}"


LINES = command_lines()


def test_the_pages_show_commands() -> None:
    shown = {line.words[0] for line in LINES}
    assert "make" in shown
    assert sum(1 for line in LINES if "runner" in line.words[:3]) > 30


@pytest.mark.parametrize(
    "line", LINES, ids=[f"{line.where} {' '.join(line.words)}" for line in LINES]
)
def test_every_command_shown_exists_with_its_options(line: Line) -> None:
    try:
        check_line(line.words)
    except AssertionError as error:
        raise AssertionError(f"{line.where}: {' '.join(line.words)}: {error}") from None


@pytest.mark.parametrize(
    "text",
    [
        "python -m runner submitt data/a.txt",
        "python -m runner submit data/a.txt --top-n 3",
        "python -m runner submit data/a.txt --top",
        ".venv/bin/python -m runner local up --autoscale-nodes 4",
        "python -m runner local start",
        "runner doctor --probe --debug",
        "make deploy",
        "python -m local_stack start",
        "python -m local_stack up --cores 2",
        "python -m emulator --port 8000 --nodes 3",
        "python3 task/topwords.py a.txt --top-words 3",
        "python bench/nothing.py",
    ],
)
def test_the_check_refuses_what_does_not_exist(text: str) -> None:
    (words,) = _shell_words(text)
    with pytest.raises(AssertionError):
        check_line(words)


@pytest.mark.parametrize(
    "text",
    [
        "python -m runner submit INPUT... [--from-file LIST] [--blobs PREFIX | --blobs C/P]",
        "python -m runner submit a.txt --script s.py -- {input} --not-ours {output_dir}",
        "python -m runner submit a.txt --files-per-task=auto --keep-inputs --json",
        "python -m runner local up --core-quota 0 --autoscale",
        "python -m runner --help",
        "RUNNER_LOCAL_DIR=x python -m runner local status > out.txt",
        "make PYTHON=python3.12 run",
        "python -m local_stack up|down|status",
        "python -m emulator --port 8000 --data DIR --autoscale-nodes 2",
        "python3 task/topwords.py INPUT [INPUT ...] [--top N] [--output-dir DIR]",
    ],
)
def test_the_check_accepts_what_exists(text: str) -> None:
    for words in _shell_words(text):
        check_line(words)


def test_transcripts_yield_their_command_lines_only() -> None:
    lines = (
        "$ python -m runner jobs",
        "python -m runner output, not a command",
        "$ make \\",
        "  run",
    )
    assert [" ".join(line.split()) for line in _logical_lines(lines)] == [
        "python -m runner jobs",
        "make run",
    ]
    synopsis = ("python -m runner submit INPUT [--top N]", "    [--json]", "make run")
    assert list(_logical_lines(synopsis)) == [
        "python -m runner submit INPUT [--top N] [--json]",
        "make run",
    ]
    assert _shell_words("a && python -m runner x | tee f > g # note") == [
        ["a"],
        ["python", "-m", "runner", "x"],
        ["tee", "f"],
    ]
    assert _inline_command("download JOB [--out DIR] [--logs]") == [
        "runner", "download", "JOB", "[--out", "DIR]", "[--logs]",
    ]  # fmt: skip
    assert _inline_command("report.html") is None
    assert _inline_command("local stacks started: 21") is None
