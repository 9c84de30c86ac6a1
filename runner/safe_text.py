"""Text that came from files the runner did not write, made safe to show.

Words, input names and stderr lines are the user's data: a control character among them
(ESC, BEL, NUL, a C1 CSI, a bidirectional override) would recolour, retitle or reorder
the terminal they are printed on. They are shown as escapes instead (ESC as ``\\x1b``),
and a name not in Unicode's composed form (NFC) shows its combining marks escaped, so it
cannot pass for its composed twin. JSON keeps every character (its escapes round-trip)
but never carries one raw that a terminal would act on.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
_C1_AND_DEL = (0x7F, *range(0x80, 0xA0))
_SHOWN = {c: f"\\x{c:02x}" for c in (*range(0x20), *_C1_AND_DEL)} | {
    c: f"\\u{c:04x}" for c in _BIDI
}
_IN_JSON = {c: f"\\u{c:04x}" for c in (*_C1_AND_DEL, *_BIDI)}  # C0 json escapes itself


def printable(text: str) -> str:
    """``text`` as a terminal should show it: controls escaped, and a decomposed name's
    combining marks (``e`` + U+0301) escaped."""
    if text.isascii() and text.isprintable():
        return text
    shown = text.translate(_SHOWN)
    if not unicodedata.is_normalized("NFC", shown):
        shown = "".join(f"\\u{ord(c):04x}" if unicodedata.combining(c) else c for c in shown)
    return shown


def width(text: str) -> int:
    """Columns ``printable(text)`` takes on a terminal (a CJK character takes two)."""
    if text.isascii():  # printable ASCII, as most names and words are: a column each
        return len(text)
    from rich.cells import cell_len  # rich is what draws the progress bar, and knows widths

    return cell_len(text)


def dumps(value: Any, indent: int | None = None) -> str:
    """``json.dumps`` keeping non-ASCII text as it is, but no raw DEL, C1 or bidi control."""
    return json.dumps(value, indent=indent, ensure_ascii=False).translate(_IN_JSON)
