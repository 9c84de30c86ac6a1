from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from task import topwords

CountBytes = Callable[..., Counter[str]]


def decoded(counts: Counter[bytes]) -> Counter[str]:
    return Counter({word.decode(): n for word, n in counts.items()})


def count_with_cuts(path: Path, cuts: Sequence[int], chunk_bytes: int) -> Counter[str]:
    """Count a file cut into ranges at the given offsets, in this process."""
    size = path.stat().st_size
    points = [0, *sorted(c for c in set(cuts) if 0 < c < size), size]
    pieces = [
        topwords.count_range(str(path), a, b, chunk_bytes) for a, b in itertools.pairwise(points)
    ]
    return decoded(topwords.join(pieces))


@pytest.fixture
def count_bytes(tmp_path: Path) -> CountBytes:
    """Write bytes to a file and count its words the way topwords does."""

    def count(data: bytes, cuts: Sequence[int] = (), chunk_bytes: int = 7) -> Counter[str]:
        path = tmp_path / "input.txt"
        path.write_bytes(data)
        return count_with_cuts(path, cuts, chunk_bytes)

    return count
