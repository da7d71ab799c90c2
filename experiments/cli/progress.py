"""Progress bars for the command line's long steps (tqdm), silent when stderr is not a terminal.

``bar`` has the shape the lower layers accept as ``progress=`` (``verify_against_fvcore``,
``write_report``, ``train_trial``): it wraps an iterable and yields the same items, so those
layers never import tqdm and behave the same without it.
"""
from __future__ import annotations

import sys
from typing import Iterable


def bar(iterable: Iterable, total: int | None = None, desc: str | None = None, unit: str = "it"):
    """``iterable`` wrapped in a tqdm bar on stderr that disappears when done; a plain pass-through
    (no output at all) when stderr is not a terminal (logs, pipes, CI)."""
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit=unit, leave=False, dynamic_ncols=True, file=sys.stderr,
                disable=not _tty())


def write(line: str) -> None:
    """Print a line on stdout without tearing a bar that is showing."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


def _tty() -> bool:
    return sys.stderr.isatty()
