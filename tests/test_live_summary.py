"""tests.live_summary: a pytest JUnit report (and the doctor's JSON) as a job summary."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests import live_summary
from tests.workflows.reading import ROOT

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests">
  <testsuite name="pytest" errors="1" failures="1" skipped="3" tests="7" time="754.2">
    <testcase classname="tests.e2e.test_submit" name="test_quick" time="12.5" />
    <testcase classname="tests.e2e.test_submit" name="test_slow[a|b]" time="310.0" />
    <testcase classname="tests.e2e.test_merge" name="test_merged" time="95.25">
      <failure message="AssertionError: 3 != 4&#10;assert 3 == 4">traceback</failure>
    </testcase>
    <testcase classname="tests.e2e.test_report" name="test_html" time="0.5">
      <error message="failed on setup with &quot;HttpResponseError: &lt;403&gt;&quot;">x</error>
    </testcase>
    <testcase classname="tests.e2e.test_faults" name="test_a" time="0">
      <skipped type="pytest.skip" message="emulator only: faults">f.py:3: emulator only</skipped>
    </testcase>
    <testcase classname="tests.e2e.test_faults" name="test_b" time="0">
      <skipped type="pytest.skip" message="emulator only: faults">f.py:9: emulator only</skipped>
    </testcase>
    <testcase classname="tests.e2e.test_kills" name="test_kill" time="0">
      <skipped type="pytest.skip">tests/e2e/test_kills.py:5: emulator only: kills</skipped>
    </testcase>
  </testsuite>
</testsuites>
"""

DOCTOR = {
    "ok": True,
    "checks": [
        {"name": "pool", "status": "ok", "detail": "steady, 0 nodes", "fix": ""},
        {"name": "probe", "status": "ok", "detail": "a node took the task after 412.30 s; "
         "it ran 0.04 s", "fix": ""},
    ],
}  # fmt: skip


@pytest.fixture
def files(tmp_path):
    junit, doctor = tmp_path / "live-tests.xml", tmp_path / "doctor.json"
    junit.write_text(JUNIT)
    doctor.write_text(json.dumps(DOCTOR))
    return junit, doctor


def test_counts_time_failures_slowest_and_skipped_by_reason(files):
    text = live_summary.summary(files[0], None, [])
    assert "**7 tests**: 2 passed, 1 failed, 1 error, 3 skipped, in 12 min 34 s." in text
    assert "| `tests.e2e.test_merge::test_merged` | 1 min 35 s | AssertionError: 3 != 4 |" in text
    assert '| failed on setup with "HttpResponseError: &lt;403>" |' in text
    slowest = text.split("slowest tests", 1)[1].split("###", 1)[0]
    rows = [line.split("|")[1].strip() for line in slowest.splitlines() if "`" in line]
    assert rows == [  # the slowest first; skipped tests did not run
        "`tests.e2e.test_submit::test_slow[a\\",  # a pipe in a name stays in its cell
        "`tests.e2e.test_merge::test_merged`",
        "`tests.e2e.test_submit::test_quick`",
        "`tests.e2e.test_report::test_html`",
    ]
    assert "| emulator only: faults (2) | `tests.e2e.test_faults::test_a`, `tests.e2e" in text
    assert "| tests/e2e/test_kills.py:5: emulator only: kills (1) |" in text  # no message


def test_the_doctor_and_the_phases(files):
    phases = [("pulumi up", "301"), ("doctor --probe", "430.5"), ("live suite", "")]
    text = live_summary.summary(files[0], files[1], phases)
    assert "### Doctor: ok" in text
    assert "| probe | ok | a node took the task after 412.30 s; it ran 0.04 s |  |" in text
    assert "| pulumi up | 5 min 01 s |" in text
    assert "| doctor --probe | 7 min 10 s |" in text
    assert "| live suite | not finished |" in text


def test_missing_or_broken_files_are_said_not_raised(tmp_path):
    broken = tmp_path / "broken.xml"
    broken.write_text("<testsuites><testsuite>")
    (tmp_path / "doctor.json").write_text("{")
    text = live_summary.summary(broken, tmp_path / "doctor.json", [])
    assert "No test report in" in text
    assert "the suite did not run, or stopped before writing it" in text
    assert "No doctor report in" in text
    assert "FileNotFoundError" in live_summary.summary(tmp_path / "none.xml", None, [])


def test_one_testsuite_without_testsuites(tmp_path):
    junit = tmp_path / "one.xml"
    junit.write_text(
        '<testsuite time="2.5"><testcase classname="m" name="t" time="2.5"/></testsuite>'
    )
    text = live_summary.summary(junit, None, [])
    assert "**1 tests**: 1 passed, 0 failed, 0 errors, 0 skipped, in 2.5 s." in text


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(4.2, "4.2 s"), (59.9, "59.9 s"), (65, "1 min 05 s"), (3725, "1 h 02 min")],
)
def test_durations(seconds, shown):
    assert live_summary.duration(seconds) == shown


def test_the_command_line_as_the_workflow_calls_it(files):
    result = subprocess.run(
        [sys.executable, "-m", "tests.live_summary", str(files[0]), "--doctor", str(files[1]),
         "--phase", "pulumi up=60", "--phase", "a=b=7"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert result.stdout.startswith("## Live suite against Azure\n")
    assert "| pulumi up | 1 min 00 s |" in result.stdout
    assert "| a=b | 7.0 s |" in result.stdout  # the label may hold "="
    refused = subprocess.run(
        [sys.executable, "-m", "tests.live_summary", str(files[0]), "--phase", "nothing"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "expected LABEL=SECONDS" in refused.stderr
