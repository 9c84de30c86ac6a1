"""Property test: topwords agrees with the plain reference on any bytes and any cuts."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.task.conftest import count_with_cuts
from tests.task.reference import reference_counts

# Characters chosen to hit every rule: letters that casefold oddly, ASCII and Unicode
# punctuation and symbols, ASCII and Unicode whitespace, and multi-byte characters.
ALPHABET = (
    "abcABZ019 \t\n\r\x0b\x0c\x1c\x1f\x85\u00a0\u2028\u3000\u200b"
    ".,;:!?'\"-()[]{}$+<=>^`|~«»“”¿¡—…€™©°"
    "éÉßẞﬁΣσςİıǅ日本語😀\ufffd"
)

fragments = st.one_of(
    st.text(alphabet=ALPHABET, max_size=12).map(lambda s: s.encode()),
    st.binary(max_size=4),  # raw bytes: invalid and truncated sequences
    st.sampled_from([b"\xc3", b"\xa9", b"\xe2\x82", b"\xf0\x9f\x98", b"\xed\xa0\x80"]),
)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(fragments, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=4),
    chunk_bytes=st.integers(min_value=1, max_value=24),
)
def test_counts_match_the_reference(parts, cuts, chunk_bytes):
    data = b"".join(parts)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "input.txt"
        path.write_bytes(data)
        assert count_with_cuts(path, cuts, chunk_bytes) == reference_counts(data)
