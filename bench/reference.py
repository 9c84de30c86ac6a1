"""What a result should be: task/topwords.py run here, in-process, on the same file.

Loaded by its path: a bench script's own folder comes first on ``sys.path``, where
bench/task.py shadows the ``task`` package.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

TOPWORDS = Path(__file__).resolve().parent.parent / "task" / "topwords.py"


@cache
def topwords() -> ModuleType:
    spec = importlib.util.spec_from_file_location("topwords", TOPWORDS)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["topwords"] = module
    spec.loader.exec_module(module)
    return module


def expected_top(path: Path, count: int = 3) -> list[list[object]]:
    """The top ``count`` words of a file as the runner's --json gives them."""
    module = topwords()
    (result,) = module.count_files([str(path)], workers=1)
    return [[word, n] for word, n in module.top(result.counts, count)]
