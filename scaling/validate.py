"""Checks every spec parser shares: unknown keys (with "did you mean"), whole numbers, numbers, booleans.

Each raises ``ArchScaleError(field, message)`` with a message that says what is allowed, so the
command line can print it on one line. Nothing here imports torch.
"""
from __future__ import annotations

import math
from typing import Any, Iterable, Mapping

from .errors import ArchScaleError, did_you_mean

__all__ = ["check_keys", "check_choice", "whole", "number", "boolean", "is_whole", "is_number"]


def _field(where: str, key) -> str:
    return f"{where}.{key}" if where else str(key)


def check_keys(data: Mapping, known: Iterable[str], where: str = "", what: str = "key") -> None:
    """Refuse the first key of ``data`` that is not in ``known``.

    The error's field is ``where.key`` (or ``key``); its message is ``unknown WHAT (did you mean
    'x'?); known: a, b, c``.
    """
    known = [str(k) for k in known]
    for key in data:
        if str(key) not in known:
            raise ArchScaleError(_field(where, key), f"unknown {what}{did_you_mean(key, known)}; "
                                                     f"known: {', '.join(known)}")


def check_choice(value, choices: Iterable, field: str, what: str) -> Any:
    """``value`` when it is one of ``choices``; else ``unknown WHAT 'v' (did you mean ...); known: ...``."""
    choices = list(choices)
    if value not in choices:
        raise ArchScaleError(field, f"unknown {what} {value!r}{did_you_mean(value, choices)}; "
                                    f"known: {', '.join(map(str, choices))}")
    return value


def is_whole(value) -> bool:
    """An int that is not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value) -> bool:
    """An int or float that is not a bool."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def whole(value, field: str, *, low: int | None = None, optional: bool = False) -> int | None:
    """``value`` as a whole number (>= ``low`` when given); None passes when ``optional``."""
    if value is None and optional:
        return None
    if not is_whole(value) or (low is not None and value < low):
        bound = f" >= {low}" if low is not None else ""
        raise ArchScaleError(field, f"expected a whole number{bound}{' (or leave it out)' if optional else ''}, "
                                    f"got {value!r}")
    return value


def number(value, field: str, *, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, optional: bool = False,
           hint: str = "") -> float | None:
    """``value`` as a finite float within the bounds (open or closed); None passes when ``optional``.

    ``hint`` is appended to the message (e.g. "0.1 = within 10 %").
    """
    if value is None and optional:
        return None
    ok = is_number(value) and math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        what = "a number" + (f" {' and '.join(bounds)}" if bounds else "")
        extra = f" ({hint})" if hint else ""
        raise ArchScaleError(field, f"expected {what}{extra}, got {value!r}")
    return float(value)


def boolean(value, field: str) -> bool:
    """``value`` when it is true or false."""
    if not isinstance(value, bool):
        raise ArchScaleError(field, f"expected true or false, got {value!r}")
    return value
