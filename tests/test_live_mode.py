"""``pytest --outputs FILE``: against an Azure stack's outputs (no local keys), the tests
that need the local stack are skipped with their reasons and no local stack starts; the
others are collected to run against it, signed in as the runner is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.contract.test_outputs import COMPLETE as AZURE_OUTPUTS

ROOT = Path(__file__).resolve().parents[1]


def run_pytest(*args: str, outputs: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "RUNNER_TEST_OUTPUTS": str(outputs)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:xdist", "-p", "no:cacheprovider", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=environment,
        timeout=120,
    )


@pytest.fixture
def azure_outputs(tmp_path: Path) -> Path:
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(AZURE_OUTPUTS))
    return path


def test_emulator_only_tests_are_skipped_with_their_reasons_and_start_nothing(azure_outputs):
    result = run_pytest(
        "tests/e2e/test_stalls.py", "tests/e2e/test_faults.py", "-rs", "-q",
        outputs=azure_outputs,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "8 skipped" in result.stdout, result.stdout
    assert "emulator only: makes a pool whose start task fails" in result.stdout
    assert "emulator only: sets the account's core quota" in result.stdout
    assert "emulator only: injects faults into the local stack" in result.stdout
    assert "local stacks started: 0" in result.stdout


def test_the_rest_of_the_suite_is_kept_for_the_stack_given(azure_outputs):
    """Collected against Azure: every end-to-end test that is not emulator-only."""
    live = run_pytest(
        "tests/e2e", "--collect-only", "-q", "-m", "not emulator_only", outputs=azure_outputs
    )
    assert live.returncode == 0, live.stdout + live.stderr
    collected = [line for line in live.stdout.splitlines() if "::" in line]
    assert any("test_submit.py::test_submit_the_sample_data" in line for line in collected)
    assert not any("test_faults.py" in line for line in collected)
    assert len(collected) >= 50, live.stdout
