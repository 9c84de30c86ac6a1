"""A plain, obviously correct implementation of the word rules, to test topwords against."""

from __future__ import annotations

import unicodedata
from collections import Counter


def _strippable(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS"


def reference_words(data: bytes) -> list[str]:
    """Decode (invalid bytes -> U+FFFD), str.split(), strip P*/S* at both ends, casefold."""
    result = []
    for piece in data.decode("utf-8", errors="replace").split():
        start, end = 0, len(piece)
        while start < end and _strippable(piece[start]):
            start += 1
        while end > start and _strippable(piece[end - 1]):
            end -= 1
        word = piece[start:end].casefold()
        if word:
            result.append(word)
    return result


def reference_counts(data: bytes) -> Counter[str]:
    return Counter(reference_words(data))


def reference_top(data: bytes, n: int) -> list[tuple[str, int]]:
    counts = reference_counts(data)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:n]
