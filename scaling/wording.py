"""Counts in words: "1 epoch", "2 epochs"; the one place every layer writes a count with its noun."""
from __future__ import annotations


def plural(n: float, noun: str, many: str | None = None, fmt: str = "") -> str:
    """``n`` and ``noun``, the noun in the plural (``many``, default noun + "s") unless n is 1;
    ``fmt`` formats the number (e.g. "," for thousands)."""
    return f"{n:{fmt}} {noun if n == 1 else many or noun + 's'}"
