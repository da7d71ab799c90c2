"""Progress for the command line's long steps: a tqdm bar on a terminal, and in logs and pipes a
line per finished item (never a redraw).

``bar`` has the shape the lower layers accept as ``progress=`` (``verify_against_fvcore``,
``write_report``, ``train_trial``): it wraps an iterable and yields the same items, so those
layers never import tqdm and behave the same without it. ``log_lines`` makes the bar of a step
whose items are slow (a network measured, a model traced) print a line per item off a terminal.
"""
from __future__ import annotations

import functools
import sys
import time
from typing import Callable, Iterable


def bar(iterable: Iterable, total: int | None = None, desc: str | None = None, unit: str = "it",
        lines: bool = False, label: Callable | None = None):
    """``iterable`` wrapped in a tqdm bar on stderr that disappears when done. Off a terminal (logs,
    pipes, CI): nothing, or with ``lines`` one line on stderr per finished item (``desc i/total:
    label(item) (seconds so far)``)."""
    if not _tty():
        return _lines(iterable, total, desc, label) if lines else iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr)


def log_lines(label: Callable | None = None) -> Callable:
    """A ``bar`` that prints a line per finished item off a terminal, naming it by ``label(item)``."""
    return functools.partial(bar, lines=True, label=label)


def _lines(iterable: Iterable, total: int | None, desc: str | None, label: Callable | None):
    start = time.perf_counter()
    for i, item in enumerate(iterable, 1):
        yield item
        name = f": {label(item)}" if label else ""
        note(f"{desc or 'done'} {i}/{total if total is not None else '?'}{name} ({time.perf_counter() - start:.1f} s)")


def note(line: str) -> None:
    """A progress line on stderr, flushed at once (so a log shows it as it happens)."""
    print(line, file=sys.stderr, flush=True)


def write(line: str) -> None:
    """Print a line on stdout without tearing a bar that is showing."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _tty() -> bool:
    return sys.stderr.isatty()
