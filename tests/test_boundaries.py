"""The parts meet only through the contract package: no part imports another.

The one exception is the formula library, batch_formula: the standard library only, shared by
the emulator (which ships with it) and the policy pack in infra.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("contract", "runner", "infra", "emulator", "local_stack", "task", "batch_formula")

ALLOWED = {
    "contract": set(),  # the shared contract depends on nothing of ours
    "runner": {"contract"},  # and the local stack as a program: python -m local_stack
    "infra": {"contract", "batch_formula"},  # the policy pack bounds autoscale formulas
    "emulator": {"batch_formula"},  # a product of its own, shipped with the formula library
    "local_stack": {"contract"},  # drives the emulator as a program, never imports it
    "task": set(),  # runs on the nodes: the standard library only
    "batch_formula": set(),  # the autoscale formula language: the standard library only
}


def imported_parts(path: Path) -> set[str]:
    """The project's top-level packages a module imports (at any depth of its code)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & set(PARTS)
    return found


@pytest.mark.parametrize("part", PARTS)
def test_a_part_imports_only_what_it_may(part: str):
    for path in sorted((ROOT / part).rglob("*.py")):
        forbidden = imported_parts(path) - ALLOWED[part] - {part}
        assert not forbidden, f"{path.relative_to(ROOT)} imports {sorted(forbidden)}"


def test_the_check_sees_imports(tmp_path: Path):
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom emulator.app import x\ndef f():\n    import infra.spec\n")
    assert imported_parts(module) == {"emulator", "infra"}


def test_the_runner_cli_loads_no_web_server():
    """`python -m runner` starts fast: the emulator's web stack is not imported."""
    code = "import sys, runner.cli; print(sorted({'starlette', 'uvicorn'} & set(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert result.stdout.strip() == "[]"
