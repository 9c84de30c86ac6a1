"""The command line answers --help, and says what is missing, before loading any work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_help_and_parsing_load_neither_the_sdks_nor_rich():
    """What makes `python -m runner --help` take a tenth of a second, not two: each verb
    imports its work when it runs (the SDKs, Bokeh, rich's console)."""
    code = (
        "import sys, runner.cli\n"
        "heavy = ('azure', 'bokeh', 'numpy', 'rich', 'runner.submit', 'runner.report')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"


def test_a_python_without_the_dependencies_is_told_how_to_get_them():
    """-S: no site-packages, as the system's python3 run in a fresh clone has none."""
    result = subprocess.run(
        [sys.executable, "-S", "-m", "runner", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"error: this Python ({sys.executable}) lacks the runner's")
    assert "make venv" in line
