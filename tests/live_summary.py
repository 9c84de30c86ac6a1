"""The live suite's results as GitHub-flavoured Markdown, for a workflow's job summary.

``python -m tests.live_summary JUNIT_XML [--doctor DOCTOR_JSON] [--phase LABEL=SECONDS]...``
prints the counts and total time of a pytest JUnit report, the slowest tests, each
failure with the first line of its message, the skipped tests grouped by reason, and,
when given, ``runner doctor --json``'s checks (the probe's timing among them) and how
long each phase of the run took. A report or document that is missing or unreadable is
said so in the summary rather than raised: the summary is written after a failure too.
The standard library only.
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

SLOWEST = 10
OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass(frozen=True)
class Case:
    test: str  # module::name, as pytest names it
    seconds: float
    outcome: str  # one of OUTCOMES
    message: str  # the first line of the failure, error or skip reason; "" when passed


@dataclass(frozen=True)
class Report:
    cases: list[Case]
    seconds: float  # the session's wall time, as the report states it

    def count(self, outcome: str) -> int:
        return sum(case.outcome == outcome for case in self.cases)


def read_report(path: Path) -> Report:
    """A pytest JUnit XML report: ``<testsuites>`` around ``<testsuite>``, or one suite."""
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    cases = [_case(element) for element in root.iter("testcase")]
    return Report(cases, sum(_float(suite.get("time")) for suite in suites))


def _case(element: ET.Element) -> Case:
    module, name = element.get("classname", ""), element.get("name", "")
    test = f"{module}::{name}" if module else name
    for outcome, tag in (("error", "error"), ("failed", "failure"), ("skipped", "skipped")):
        found = element.find(tag)
        if found is not None:
            return Case(test, _float(element.get("time")), outcome, _first_line(found))
    return Case(test, _float(element.get("time")), "passed", "")


def _first_line(element: ET.Element) -> str:
    for text in (element.get("message"), element.text):
        lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
        if lines:
            return lines[0]
    return ""


def _float(text: str | None) -> float:
    try:
        return float(text or 0)
    except ValueError:
        return 0.0


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell and renders as written."""
    text = " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")
    return text if len(text) <= 200 else text[:199] + "…"


def code(text: str) -> str:
    """A test's name as code in a table cell (a code span shows ``<`` as it is)."""
    return "`" + " ".join(text.split()).replace("`", "'").replace("|", "\\|") + "`"


def headline(report: Report) -> str:
    counts = ", ".join(_counted(report.count(outcome), outcome) for outcome in OUTCOMES)
    return f"**{len(report.cases)} tests**: {counts}, in {duration(report.seconds)}."


def _counted(count: int, outcome: str) -> str:
    return f"{count} errors" if outcome == "error" and count != 1 else f"{count} {outcome}"


def report_lines(report: Report) -> list[str]:
    lines: list[str] = []
    problems = [case for case in report.cases if case.outcome in ("failed", "error")]
    if problems:
        lines += [f"### Failures ({len(problems)})", "", "| test | time | first line |"]
        lines += ["| --- | ---: | --- |"]
        lines += [
            f"| {code(case.test)} | {duration(case.seconds)} | {cell(case.message)} |"
            for case in problems
        ]
        lines.append("")
    ran = sorted(
        (case for case in report.cases if case.outcome != "skipped"),
        key=lambda case: case.seconds,
        reverse=True,
    )
    if ran:
        lines += [f"### The {min(SLOWEST, len(ran))} slowest tests", "", "| test | time |"]
        lines += ["| --- | ---: |"]
        lines += [f"| {code(case.test)} | {duration(case.seconds)} |" for case in ran[:SLOWEST]]
        lines.append("")
    lines += skipped_lines(case for case in report.cases if case.outcome == "skipped")
    return lines


def skipped_lines(cases: Iterable[Case]) -> list[str]:
    by_reason: dict[str, list[str]] = defaultdict(list)
    for case in cases:
        by_reason[case.message or "(no reason given)"].append(case.test)
    if not by_reason:
        return []
    total = sum(len(tests) for tests in by_reason.values())
    lines = [f"### Skipped ({total})", "", "| reason | tests |", "| --- | --- |"]
    for reason, tests in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
        names = ", ".join(code(test) for test in tests)
        lines.append(f"| {cell(reason)} ({len(tests)}) | {names} |")
    return [*lines, ""]


def doctor_lines(path: Path) -> list[str]:
    """``runner doctor --json``: ``{"ok": bool, "checks": [{name, status, detail, fix}]}``."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        checks = list(document["checks"])
        ok = bool(document["ok"])
    except (OSError, ValueError, KeyError, TypeError) as error:
        return ["### Doctor", "", f"No doctor report in `{path}` ({type(error).__name__}).", ""]
    lines = [f"### Doctor: {'ok' if ok else 'FAIL'}", "", "| check | status | detail | fix |"]
    lines.append("| --- | --- | --- | --- |")
    for check in checks:
        fields = [cell(str(check.get(key, ""))) for key in ("name", "status", "detail", "fix")]
        lines.append(f"| {' | '.join(fields)} |")
    return [*lines, ""]


def phase_lines(phases: Sequence[tuple[str, str]]) -> list[str]:
    if not phases:
        return []
    lines = ["### Timings", "", "| phase | time |", "| --- | ---: |"]
    for label, seconds in phases:
        shown = duration(_float(seconds)) if seconds.strip() else "not finished"
        lines.append(f"| {cell(label)} | {shown} |")
    return [*lines, ""]


def summary(junit: Path, doctor: Path | None, phases: Sequence[tuple[str, str]]) -> str:
    """The headline, the timings, the doctor's checks, then the tests in detail."""
    report: Report | None = None
    try:
        report = read_report(junit)
        first = headline(report)
    except (OSError, ET.ParseError) as error:
        first = (
            f"No test report in `{junit}` ({type(error).__name__}): the suite did not run, "
            "or stopped before writing it."
        )
    lines = ["## Live suite against Azure", "", first, ""]
    lines += phase_lines(phases)
    if doctor is not None:
        lines += doctor_lines(doctor)
    if report is not None:
        lines += report_lines(report)
    return "\n".join(lines)


def _phase(text: str) -> tuple[str, str]:
    label, separator, seconds = text.rpartition("=")
    if not separator or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=SECONDS, not {text!r}")
    return label, seconds


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tests.live_summary", description=__doc__)
    parser.add_argument("junit", type=Path, help="the JUnit XML report pytest wrote")
    parser.add_argument("--doctor", type=Path, help="what 'runner doctor --json' printed")
    parser.add_argument(
        "--phase",
        type=_phase,
        action="append",
        default=[],
        metavar="LABEL=SECONDS",
        help="a phase of the run and its duration (empty: it did not finish); repeatable",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = parser().parse_args(argv)
    sys.stdout.write(summary(arguments.junit, arguments.doctor, arguments.phase) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
