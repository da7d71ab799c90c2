"""The cost store: what each network costs on a device, measured once, kept and reused.

    OUTPUT_DIR/costs.parquet     one row per network and device of a sweep (``CostRecord``)
    the cost cache               the same rows, of every sweep on this machine, looked up by
                                 ``COST_KEY``: the network's fingerprint, the device, the training
                                 batch, the precision and the torch version

The cache is ``$ARCHSCALE_COST_CACHE`` when set (a file path; ``off`` turns it off), else the
sweep spec's ``cost_cache:``, else ``$XDG_CACHE_HOME/archscale/costs.parquet`` (by default
``~/.cache/archscale/costs.parquet``). Writes to it take a file lock and are atomic, so sweeps
running at once on one machine each add their rows. Reading and writing only; measuring is
experiments.train.costs. No torch here.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

import pandas as pd

from scaling.errors import ArchScaleError
from scaling.files import atomic_write

from .schema import COST_COLUMNS, COST_KEY, CostRecord

__all__ = ["COSTS", "CACHE_ENV", "network_fingerprint", "cache_path", "read_costs", "write_costs", "merge_costs",
           "cached_rows", "add_to_cache", "cost_rows", "cost_key"]

COSTS = "costs.parquet"
CACHE_ENV = "ARCHSCALE_COST_CACHE"
#: ArchSpec fields a regime sets per trial (their rates): they leave the network's shape, so its
#: cost, as it is.
_NOT_SHAPE = ("dropout", "stochastic_depth")


def network_fingerprint(spec: Mapping) -> str:
    """A short, stable name of a network (16 hex digits): a hash of its ArchSpec fields (a dict or an
    ArchSpec), the regularization rates left out, so every regime's trial of it has the same one."""
    d = spec.to_dict() if hasattr(spec, "to_dict") else dict(spec)
    shape = {k: v for k, v in sorted(d.items()) if k not in _NOT_SHAPE}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cache_path(spec_value: str | bool | None = None) -> Path | None:
    """Where the cost cache lives (see the module docstring); None when it is turned off."""
    env = os.environ.get(CACHE_ENV)
    value = env if env not in (None, "") else spec_value
    if value is False or (isinstance(value, str) and value.lower() in ("off", "false", "none")):
        return None
    if value not in (None, True):
        if not isinstance(value, (str, os.PathLike)):
            raise ArchScaleError("cost_cache", f"expected a file path or false, got {value!r}")
        return Path(value).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "archscale" / COSTS


def cost_rows(df: pd.DataFrame) -> list[CostRecord]:
    """The rows of a cost table as records (NaN as None)."""
    clean = df.astype(object).where(df.notna(), None)
    return [CostRecord.from_dict(r) for r in clean.to_dict("records")]


def _frame(rows: Iterable[CostRecord | Mapping]) -> pd.DataFrame:
    records = [r if isinstance(r, CostRecord) else CostRecord.from_dict(r, strict=True) for r in rows]
    return pd.DataFrame([r.row() for r in records], columns=COST_COLUMNS)


def read_costs(path: str | Path) -> pd.DataFrame:
    """A cost table (``COST_COLUMNS``; columns another layout wrote and this one lacks are dropped);
    empty when the file is missing. A file that is not a readable Parquet table is a user error."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=COST_COLUMNS)
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # noqa: BLE001 - pyarrow raises several kinds for a damaged file
        raise ArchScaleError("costs", f"{path} is not a readable cost table ({type(e).__name__}); delete it and "
                                      f"the next sweep or 'archscale costs' measures again") from None
    return df.reindex(columns=COST_COLUMNS)


def merge_costs(old: pd.DataFrame, new: pd.DataFrame | Iterable[CostRecord]) -> pd.DataFrame:
    """``old`` with ``new``'s rows, a new row replacing an old one of the same ``COST_KEY``."""
    new = new if isinstance(new, pd.DataFrame) else _frame(new)
    frames = [f for f in (old, new) if len(f)]
    if not frames:
        return pd.DataFrame(columns=COST_COLUMNS)
    both = pd.concat([f.astype(object) for f in frames], ignore_index=True)
    key = pd.Series([cost_key(r) for r in both[list(COST_KEY)].to_dict("records")], index=both.index)
    return both[~key.duplicated(keep="last")].reset_index(drop=True)


def write_costs(path: str | Path, rows: pd.DataFrame | Iterable[CostRecord]) -> pd.DataFrame:
    """Merge ``rows`` into the cost table at ``path`` (made if missing) and write it atomically; returns it."""
    path = Path(path)
    table = merge_costs(read_costs(path), rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table


def cached_rows(cache: Path | None) -> dict[tuple, CostRecord]:
    """The cache's rows by ``cost_key`` (none when the cache is off or empty)."""
    if cache is None:
        return {}
    return {cost_key(r): r for r in cost_rows(read_costs(cache))}


def add_to_cache(cache: Path | None, rows: Iterable[CostRecord]) -> None:
    """Add measured rows to the cache, under a file lock (other sweeps may write it at once)."""
    rows = list(rows)
    if cache is None or not rows:
        return
    from filelock import FileLock

    cache.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(cache) + ".lock", timeout=60):
        write_costs(cache, rows)


def cost_key(row: Mapping) -> tuple:
    """The cache key of a row or a request: ``COST_KEY``'s fields as strings (a whole float as
    its integer, so a batch read back from a table with gaps still matches)."""
    def text(v) -> str:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        return str(v.item() if hasattr(v, "item") else v)

    return tuple(text(row.get(k)) for k in COST_KEY)
