"""The outputs the documentation shows, made again by real runs and written into the pages.

Every block of output in README.md and docs/*.md follows a marker line,
``<!-- output: ID -->``, right before its opening fence. ``python -m tools.docs_outputs``
runs what makes each ID, in a temporary folder that mirrors the repository (a copy of
``data/``, links to ``.venv``, ``node_modules``, ``task/`` and the Makefile), on local
stacks of its own there (``RUNNER_LOCAL_DIR``), and replaces each marked block's contents
with what the commands printed: each command line after ``$ ``, then its stdout and
stderr as they came. The temporary folder's path is shown as ``SHOWN_ROOT``; everything
else (job ids, ports, node names, times) is the run's own.

``--list`` prints the IDs and the pages that show each. tests/docs checks, without
running anything, that every marker names an ID this script makes and every ID is shown.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHOWN_ROOT = "/home/you/azure-batch-runner"
"""Where the pages say the runs happened: a clone in a home folder."""

MARKER = re.compile(r"^<!-- output: ([a-z0-9][a-z0-9-]*) -->$")
FENCE = re.compile(r"^(`{3,}|~{3,})")

OUTPUT_IDS: tuple[str, ...] = (
    "help",
    "autoscale-formula",
    "topwords-json",
    "local-stack",
    "local-faults",
    "make-run",
    "merge",
    "doctor-probe",
    "code-files",
    "code-words",
    "code-logs",
    "code-broken",
    "doctor-requirements",
    "stall",
    "doctor-quota",
)
"""Every output this script makes, in the order it makes them."""

COUNT_WORDS = '''\
"""Count a file's words with tinypkg; write the top 3, ranked by helpers.top."""

import json
import pathlib
import sys

import tinypkg
from helpers import top

name, out = sys.argv[1], pathlib.Path(sys.argv[2])
counts = tinypkg.count(pathlib.Path(name).read_text(encoding="utf-8"))
out.mkdir(parents=True, exist_ok=True)
(out / "ranked.json").write_text(json.dumps(top(counts, 3)) + "\\n")
'''

HELPERS = '''\
"""Ranking, kept beside the script: staged with --code."""


def top(counts: dict[str, int], n: int) -> list[tuple[str, int]]:
    """The n most frequent words, most frequent first, ties in alphabetical order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
'''


def documents() -> list[Path]:
    """The pages that may show outputs: the README and every page of the site."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


@dataclass(frozen=True)
class Marked:
    path: Path
    line: int  # 1-based, the marker's
    id: str


def marked_blocks(path: Path) -> Iterator[Marked]:
    lines = path.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        match = MARKER.match(line.strip())
        if match:
            yield Marked(path, number, match.group(1))


def replace_blocks(text: str, outputs: dict[str, str], where: str = "") -> str:
    """``text`` with the contents of each block marked with an ID of ``outputs`` replaced
    by that output; the marker must be right before the block's opening fence."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        match = MARKER.match(line.strip())
        if not match or match.group(1) not in outputs:
            continue
        opening = FENCE.match(lines[i]) if i < len(lines) else None
        if opening is None:
            raise ValueError(f"{where}:{i}: no fenced block right after {line.strip()}")
        fence = opening.group(1)
        end = i + 1
        while end < len(lines) and not lines[end].startswith(fence):
            end += 1
        if end == len(lines):
            raise ValueError(f"{where}:{i + 1}: the block is never closed")
        body = outputs[match.group(1)].rstrip("\n") + "\n"
        while fence[0] * len(fence) in body:  # a longer fence than any run in the output
            fence += fence[0]
        info = lines[i].strip()[len(opening.group(1)) :]
        out += [f"{fence}{info}\n", body, f"{fence}\n"]
        i = end + 1
    return "".join(out)


class Runs:
    """Commands run as a reader would type them, in ``work``, with the project's Python
    first on PATH and the local stack in ``work/.local``."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.stack = work / ".local"
        self.env = {
            **os.environ,
            "PATH": f"{work / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
            "RUNNER_LOCAL_DIR": str(self.stack),
            "PYTHONUNBUFFERED": "1",  # stdout and stderr interleaved as they were written
            "NO_COLOR": "1",
            "TERM": "dumb",
            "COLUMNS": "100",
        }
        self.env.pop("VIRTUAL_ENV", None)

    def run(self, command: str, cwd: Path | None = None, status: int = 0) -> str:
        """``$ command`` and what it printed; an exit status other than ``status`` fails."""
        done = subprocess.run(
            ["bash", "-c", command],
            cwd=cwd or self.work,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != status:
            raise RuntimeError(
                f"{command!r} exited {done.returncode}, not {status}:\n{done.stdout}"
            )
        return f"$ {command}\n{self.shown(done.stdout)}"

    def quiet(self, command: str, cwd: Path | None = None) -> None:
        """A step the pages do not show (it must succeed)."""
        self.run(command, cwd)

    def shown(self, text: str) -> str:
        text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)  # no colours, just in case
        for path in sorted({str(self.work), str(self.work.resolve())}, key=len, reverse=True):
            text = text.replace(path, SHOWN_ROOT)
        return text

    def stop_stack(self) -> None:
        if self.stack.exists():
            self.quiet("python -m runner local down")
            shutil.rmtree(self.stack)


def job_id(output: str) -> str:
    match = re.search(r"^job (\S+): ", output, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no job id in:\n{output}")
    return match.group(1)


def prepare(work: Path) -> None:
    """The mirror of a clone that the runs happen in, with the example script's folder."""
    for name in (".venv", "node_modules", "task", "Makefile", "pyproject.toml"):
        (work / name).symlink_to(ROOT / name)
    for name in ("package.json", "package-lock.json"):
        (work / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "data", work / "data")
    words = work / "words"
    words.mkdir()
    for source in sorted((ROOT / "data").glob("*.txt")):
        shutil.copy(source, words / source.name)
    (words / "count_words.py").write_text(COUNT_WORDS)
    (words / "helpers.py").write_text(HELPERS)
    (words / "requirements.txt").write_text("tinypkg==1.0\n")
    sys.path.insert(0, str(ROOT))
    from tests.wheels import tiny_wheel  # the tests' one small wheel: no index needed

    tiny_wheel(words / "wheels")


def autoscale_formula() -> str:
    from contract.spec import autoscale_formula, default_spec

    return autoscale_formula(default_spec().pool)


def make_outputs(work: Path, log: Callable[[str], None]) -> dict[str, str]:
    runs = Runs(work)
    outputs: dict[str, str] = {}

    def keep(output_id: str, *parts: str) -> None:
        outputs[output_id] = "".join(parts)
        log(f"made {output_id}")

    keep("help", runs.run("python -m runner --help"))
    keep("autoscale-formula", autoscale_formula())
    keep(
        "topwords-json",
        runs.run("python3 task/topwords.py data/taskdata3.txt --output-dir output"),
        runs.run("cat output/taskdata3_OUTPUT.json"),
    )
    words = work / "words"
    try:
        # The local stack from nothing, its faults, and down.
        up = runs.run("python -m runner local up")
        status = runs.run("python -m runner local status")
        keep(
            "local-faults",
            runs.run("python -m runner local up --faults 0.05 --fault-seed 7"),
            runs.run("python -m runner local status"),
            runs.run("python -m runner local up"),
        )
        keep("local-stack", up, status, runs.run("python -m runner local down"))
        shutil.rmtree(runs.stack)

        # A fresh clone's first job, then the rest on the stack it started.
        keep("make-run", runs.run("make run"))
        keep("merge", runs.run("python -m runner submit data/*.txt --merge"))
        keep("doctor-probe", runs.run("python -m runner doctor --probe"))
        keep(
            "code-files",
            runs.run("ls", words),
            runs.run("cat count_words.py", words),
            runs.run("cat helpers.py", words),
            runs.run("cat requirements.txt", words),
        )
        script = "--script count_words.py --code helpers.py"
        submitted = runs.run(
            f"python -m runner submit taskdata*.txt {script} "
            "--requirements requirements.txt --wheels wheels",
            words,
        )
        job = job_id(submitted)
        keep(
            "code-words",
            submitted,
            runs.run(f"cat results/{job}/taskdata1.txt/ranked.json", words),
        )
        keep("code-logs", runs.run(f"python -m runner logs {job} jobpreparation", words))
        (words / "requirements-broken.txt").write_text("tinypkg==2.0\n")
        keep(
            "code-broken",
            runs.run(
                f"python -m runner submit taskdata*.txt {script} "
                "--requirements requirements-broken.txt --wheels wheels",
                words,
                status=3,
            ),
        )
        keep(
            "doctor-requirements",
            runs.run(
                "python -m runner doctor --probe --requirements requirements.txt --wheels wheels",
                words,
            ),
        )
        runs.stop_stack()

        # A stack whose account has no cores for its nodes.
        runs.quiet("python -m runner local up --core-quota 0")
        (work / "one.txt").write_text("hello world\n")
        keep("stall", runs.run("python -m runner submit one.txt --stall-timeout 5s", status=3))
        keep("doctor-quota", runs.run("python -m runner doctor", status=3))
    finally:
        runs.stop_stack()
    return outputs


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools.docs_outputs",
        description="Run what makes each output the documentation shows, and write it in.",
    )
    parser.add_argument("--list", action="store_true", help="list the IDs and where each is")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    shown: dict[str, list[str]] = {output_id: [] for output_id in OUTPUT_IDS}
    for path in documents():
        for marked in marked_blocks(path):
            if marked.id not in shown:
                print(f"{path.relative_to(ROOT)}:{marked.line}: unknown output {marked.id!r}")
                return 2
            shown[marked.id].append(f"{path.relative_to(ROOT)}:{marked.line}")
    if args.list:
        for output_id, places in shown.items():
            print(f"{output_id:20} {', '.join(places) or '(shown nowhere)'}")
        return 0
    subprocess.run(["make", "--silent", "setup"], cwd=ROOT, check=True)
    work = Path(tempfile.mkdtemp(prefix="docs-outputs-"))
    try:
        prepare(work)
        outputs = make_outputs(work, lambda line: print(line, file=sys.stderr))
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    missing = set(OUTPUT_IDS) - set(outputs)
    if missing:
        raise RuntimeError(f"not made: {sorted(missing)}")
    for path in documents():
        text = path.read_text(encoding="utf-8")
        new = replace_blocks(text, outputs, str(path.relative_to(ROOT)))
        if new != text:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
