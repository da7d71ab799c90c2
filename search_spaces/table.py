"""A space as one table: every config's name, fields and closed-form cost, for spaces of millions.

``space_table(space)`` holds what ``Space.expand`` and ``search_spaces.pricing.price`` give
together (the same configs in the same order, the same names, drops and duplicates) without an
ArchSpec per config: the points of a grid or random space become columns of field values, the
networks of one layout (all fields but ``scaling.batch.NUMERIC_FIELDS``) are checked and priced
together by ``scaling.batch``, and each part of a name is written once per distinct value. A
layout that ArchSpec refuses is checked config by config, as are the small spaces that solve a
field per config (``match``) or grow a base (the scaling kind), which ``Space.expand`` makes.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits
from scaling.batch import NEUTRAL, SpecBatch, count_batch
from scaling.spec import NUMERIC_FIELDS
from scaling.wording import plural

from .pricing import price, price_columns
from .space import IN_SLUG, SPEC_FIELDS, Config, Space, expansion_summary, name_parts

#: Points handled per step of a random space's draws (a space asks for ``samples`` distinct valid ones).
CHUNK = 200_000


@dataclass
class SpaceTable:
    """The configs of a space as a table (``rows``: one per config, the columns of ``price``), what
    was dropped (field -> (count, example message)) and how many duplicates were removed."""

    space: Space
    rows: pd.DataFrame
    dropped: dict
    duplicates: int = 0
    #: Each config's varied fields, as ArchSpec normalised them (to make its ArchSpec on demand).
    points: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _configs: list | None = field(default=None, repr=False)

    @property
    def n_dropped(self) -> int:
        return sum(n for n, _ in self.dropped.values())

    def summary(self) -> str:
        """One line, as ``Expansion.summary``: how many configs, dropped and why, duplicates removed."""
        return expansion_summary(self.space, len(self.rows), self.dropped, self.duplicates)

    @property
    def configs(self) -> list[Config]:
        """Every config with its ArchSpec (made on first use: one ArchSpec per row)."""
        if self._configs is None:
            records = self.points.to_dict("records")
            self._configs = [Config(name, self.space.base.replace(**_plain(p)), {})
                             for name, p in zip(self.rows["name"], records)]
        return self._configs


def space_table(space: Space, epochs=None, progress: Callable[[str], None] | None = None) -> SpaceTable:
    """The configs of ``space`` as a table (see the module docstring); ``epochs`` as ``Space.expand``.
    ``progress(line)`` is told each step's outcome (points made, networks priced, configs named).
    ArchScaleError("space") when no config is left."""
    if space.kind == "scaling" or space.match:
        e = space.expand(epochs)
        return SpaceTable(space, price(e.configs), e.dropped, e.duplicates, _configs=e.configs)
    say = _timed(progress)
    if space.kind == "grid":
        points = _grid_columns(space)
        say(f"space {space.name}: {len(points):,} grid points")
        table = _table(space, points, limit=None, say=say)
    else:
        draws = space._random_points()
        table, drawn = None, []
        while True:
            chunk = [p for _, p in zip(range(CHUNK), draws)]
            drawn += chunk
            say(f"space {space.name}: {len(drawn):,} random points drawn")
            table = _table(space, pd.DataFrame(drawn), limit=space.samples, say=say)
            if len(table.rows) >= space.samples or len(chunk) < CHUNK:
                break
    if not len(table.rows):
        raise ArchScaleError("space", f"space {space.name!r} is empty after validation and constraints "
                                      f"({table.summary()}); loosen the constraints or change the axes")
    return table


def _timed(progress: Callable[[str], None] | None) -> Callable[[str], None]:
    start = time.perf_counter()

    def say(line: str) -> None:
        if progress:
            progress(f"{line} ({time.perf_counter() - start:.1f} s)")
    return say


def _grid_columns(space: Space) -> pd.DataFrame:
    """The grid's points as columns, in ``Space._grid_points``' order (the last axis fastest)."""
    choices = [[{name: v} for v in values] for name, values in space.axes.items()]
    choices += [[dict(zip(g, combo)) for combo in zip(*g.values())] for g in space.paired]
    index = np.indices([len(c) for c in choices]).reshape(len(choices), -1)
    columns: dict[str, np.ndarray] = {}
    for options, picks in zip(choices, index):
        for name in options[0]:
            values = np.empty(len(options), dtype=object)
            values[:] = [o[name] for o in options]
            columns[name] = values[picks]
    return pd.DataFrame(columns)


def _table(space: Space, points: pd.DataFrame, limit: int | None, say: Callable[[str], None]) -> SpaceTable:
    """Check, price, deduplicate, constrain and name ``points`` (one column per varied field)."""
    n = len(points)
    base = space.base
    numeric = [f for f in NUMERIC_FIELDS if f != "cardinality" or _grouped_form(space)]
    layout_cols = [c for c in points.columns if c not in numeric]
    fault = np.full(n, "", dtype=object)
    counts = {k: np.zeros(n, dtype=np.int64) for k in ("params", "flops", "acts")}
    values = {k: np.empty(n, dtype=np.float64 if isinstance(NEUTRAL[k], float) else np.int64) for k in numeric}
    layout_id = np.zeros(n, dtype=np.int64)
    layouts: dict[str, int] = {}
    layout_of: list[ArchSpec | None] = []
    codes = _group_codes(points, layout_cols)
    order = np.argsort(codes, kind="stable")
    bounds = np.flatnonzero(np.diff(codes[order])) + 1
    for rows in np.split(order, bounds) if n else []:
        changes = {c: _plain_value(points[c].iat[rows[0]]) for c in layout_cols}
        try:
            layout = base.replace(**changes, **{k: NEUTRAL[k] for k in numeric})
        except ArchScaleError:
            _one_by_one(space, points, rows, fault, counts, values, numeric)
            layout_id[rows] = -1 - rows  # each its own: compared by its values below
            continue
        batch = {k: (points[k].to_numpy()[rows] if k in points else np.full(len(rows), getattr(base, k), dtype=object))
                 for k in numeric}
        got = count_batch(SpecBatch(layout, batch))
        fault[rows] = got.fault
        for k in counts:
            counts[k][rows] = getattr(got, k)
        for k in numeric:
            values[k][rows] = got.values[k]
        key = layout.to_json()
        layout_id[rows] = layouts.setdefault(key, len(layouts))
        if layout_id[rows[0]] == len(layout_of):
            layout_of.append(layout)
    say(f"space {space.name}: {n:,} networks checked and priced in {plural(len(bounds) + 1 if n else 0, 'layout', fmt=',')}")
    table = _finish(space, points, fault, counts, values, layout_id, layout_of, numeric, limit)
    say(f"space {space.name}: {len(table.rows):,} configs named")
    return table


def _grouped_form(space: Space) -> bool:
    """Whether every config builds the grouped block form (where cardinality is a number of groups,
    not of branches, and so can vary within a batch)."""
    forms = space.axes.get("block_form", []) + [v for g in space.paired for v in g.get("block_form", [])]
    return space.base.block_form == "grouped" and all(str(f).lower() == "grouped" for f in forms)


def _group_codes(points: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return codes_of([points[c].to_numpy() for c in columns], len(points))


def codes_of(columns: list[np.ndarray], n: int) -> np.ndarray:
    """One code per row for the distinct combinations of ``columns``' values, numbered in order of
    first appearance; values of different types (1, 1.0, True) are different values."""
    combined = np.zeros(n, dtype=np.int64)
    for col in columns:
        kind = pd.api.types.infer_dtype(col, skipna=False)
        if kind.startswith("mixed") or kind == "unknown-array":
            col = np.array([_key(v) for v in col.tolist()], dtype=object)
        codes, uniques = pd.factorize(col)
        combined, _ = pd.factorize(combined * len(uniques) + codes)
    return combined


def _key(v):
    return repr((type(v).__name__, v))


def _one_by_one(space, points, rows, fault, counts, values, numeric) -> None:
    """Configs whose layout ArchSpec refuses: checked one by one, as ``Space.expand`` checks them."""
    for i in rows:
        try:
            spec = space.base.replace(**_point(points, i))
            check_fits(spec)
        except ArchScaleError as e:
            fault[i] = e.field
            continue
        cx = analytic_counts(spec)
        counts["params"][i], counts["flops"][i], counts["acts"][i] = cx.params, cx.flops, cx.acts
        for k in numeric:
            values[k][i] = getattr(spec, k)


def _finish(space, points, fault, counts, values, layout_id, layout_of, numeric, limit) -> SpaceTable:
    valid = fault == ""
    key = pd.DataFrame({"layout": layout_id, **{k: v for k, v in values.items()}})
    solo = layout_id < 0  # refused layouts checked one by one: compare whole specs
    if solo.any():
        key.loc[solo, "layout"] = [hash(space.base.replace(**_point(points, i)))
                                   if valid[i] else i for i in np.flatnonzero(solo)]
    duplicate = np.zeros(len(fault), dtype=bool)
    duplicate[valid] = key[valid].duplicated(keep="first").to_numpy()
    live = valid & ~duplicate
    for name, bound in space.constraints.items():
        value = counts["params"] if name.endswith("params") else counts["flops"]
        out = (value < bound) if name.startswith("min") else (value > bound)
        fault[live & out & (fault == "")] = f"constraints.{name}"
    kept = live & (fault == "")
    end = len(fault)
    if limit is not None and kept.sum() >= limit:
        end = int(np.searchsorted(np.cumsum(kept), limit)) + 1
    kept[end:] = False
    dropped = {}
    for name in pd.unique(fault[:end]):
        if name:
            first = int(np.flatnonzero(fault[:end] == name)[0])
            dropped[name] = (int((fault[:end] == name).sum()), _message(space, _point(points, first)))
    rows = np.flatnonzero(kept)
    shown = _field_columns(space, points, values, layout_id, layout_of, rows)
    names = _names(space, shown, points.iloc[rows])
    table = price_columns(names, shown, {k: v[rows] for k, v in counts.items()})
    point_cols = points.iloc[rows].reset_index(drop=True)
    for k in numeric:
        if k in point_cols:
            point_cols[k] = values[k][rows]
    return SpaceTable(space, table, dropped, int(duplicate[:end].sum()), point_cols)


def _field_columns(space, points, values, layout_id, layout_of, rows) -> dict[str, np.ndarray]:
    """Every ArchSpec field a name or ``price_columns`` shows, normalised, for the kept ``rows``."""
    wanted = list(dict.fromkeys(["depth", "block", *IN_SLUG, *space.varied_fields()]))
    out = {}
    for f in wanted:
        if f in values:
            out[f] = values[f][rows]
        else:
            col = np.empty(len(rows), dtype=object)
            ids = layout_id[rows]
            for j in np.flatnonzero(ids < 0):
                col[j] = getattr(space.base.replace(**_point(points, rows[j])), f)
            known = ids >= 0
            table = np.empty(len(layout_of), dtype=object)
            table[:] = [getattr(layout, f) for layout in layout_of]
            col[known] = table[ids[known]]
            out[f] = col
    out["depth_number"] = _depth_numbers(out["depth"], out["block"], out.get("widths"), space)
    return out


def _depth_numbers(depth, block, widths, space) -> np.ndarray:
    columns = [depth, block] + ([widths] if widths is not None else [])
    codes = codes_of(columns, len(depth))
    firsts = _firsts(codes)
    numbers = np.array([space.base.replace(depth=depth[i], block=block[i],
                                           **({"widths": widths[i]} if widths is not None else {})).depth_number
                        for i in firsts], dtype=np.int64)
    return numbers[codes]


def _firsts(codes: np.ndarray) -> np.ndarray:
    """The first row of each code (codes numbered in order of first appearance)."""
    uniques, first = np.unique(codes, return_index=True)
    return first


def _names(space: Space, columns: dict, points: pd.DataFrame) -> np.ndarray:
    """Each config's name (``config_name``), each part written once per distinct value; a name
    that an earlier config has gets its spec's hash, as ``Space._name`` does."""
    extra = [f for f in space.varied_fields() if f not in IN_SLUG]
    n = len(points)
    names = np.full(n, "", dtype=object)
    for shown, show in name_parts(extra):
        codes = codes_of([columns[f] for f in shown], n)
        firsts = _firsts(codes)
        parts = np.empty(len(firsts), dtype=object)
        parts[:] = [show(*(columns[f][i] for f in shown)) for i in firsts]
        part = parts[codes]
        names = np.where(names == "", part, np.where(part == "", names, names + "-" + part))
    repeated = pd.Series(names).duplicated(keep="first").to_numpy()
    for i in np.flatnonzero(repeated):
        spec = space.base.replace(**_point(points, i))
        names[i] = f"{names[i]}-{hashlib.sha1(spec.to_json().encode()).hexdigest()[:6]}"
    return names


def _message(space: Space, point: dict) -> str:
    """The message ``Space.expand`` gives for the config at ``point``."""
    try:
        spec = space.base.replace(**_plain(point))
        check_fits(spec)
        space._check_constraints(spec)
    except ArchScaleError as e:
        return e.message
    return "dropped"


def _point(points: pd.DataFrame, i: int) -> dict:
    """The ArchSpec changes of row ``i``, each value of its column's own type (a row read whole
    would turn the whole numbers of a mixed row into floats)."""
    return _plain({c: points[c].iat[i] for c in points.columns})


def _plain(point: dict) -> dict:
    return {k: _plain_value(v) for k, v in point.items() if k in SPEC_FIELDS}


def _plain_value(v):
    return v.item() if isinstance(v, np.generic) else v
