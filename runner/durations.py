"""Durations as people type them: ``90s``, ``15m``, ``2h``, or a number of seconds."""

from __future__ import annotations

from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600}


def parse_duration(text: str) -> timedelta:
    """The duration ``text`` names; ValueError if it names none (or not a positive one)."""
    number, unit = (text[:-1], text[-1]) if text[-1:] in _UNITS else (text, "s")
    try:
        seconds = float(number) * _UNITS[unit]
    except ValueError:
        seconds = float("nan")
    if not 0 <= seconds < float("inf"):
        raise ValueError(f"not a duration such as 90s, 15m or 2h: {text!r}")
    if seconds == 0:
        raise ValueError(f"must be longer than 0, not {text!r}")
    return timedelta(seconds=seconds)
