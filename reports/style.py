"""Shared look of every figure: colour-blind-safe colours, axis labels with units, saving, labels.

Figures are plain ``matplotlib.figure.Figure`` objects on the Agg canvas: no pyplot, no global
backend switch, nothing left open after saving. Colours come from the Okabe-Ito palette (safe
for the common colour-vision deficiencies and in greyscale by lightness); each scaling
dimension has one fixed colour in every figure (``DIMENSION_COLORS``); ordered things (depths,
regimes) use sequential maps whose lightness changes monotonically.
"""
from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import ticker
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from scaling.conventions import FLOP_CONVENTION
from scaling.files import atomic_write
from scaling.wording import plural

from .binning import flop_unit

__all__ = ["OKABE_ITO", "DIMENSION_COLORS", "QUALITATIVE", "MARKERS", "FLOP_CONVENTION",
           "dimension_color", "sequential_colors", "flop_unit", "flop_axis_label", "time_unit",
           "new_figure", "log_axis", "styled", "save_figure", "place_labels", "short_names",
           "omitted_name_parts", "name_labels", "freeze_layout", "regime_title", "regime_colors", "chance_line",
           "FLAGGED"]

OKABE_ITO = {"black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
             "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7"}
#: One colour per scaling dimension, the same in every figure.
DIMENSION_COLORS = {"depth": OKABE_ITO["blue"], "width": OKABE_ITO["vermillion"],
                    "cardinality": OKABE_ITO["green"], "resolution": OKABE_ITO["purple"],
                    "compound": OKABE_ITO["orange"], "resnet_rs": OKABE_ITO["sky_blue"]}
#: Colours for unordered sets (e.g. configurations in a learning-curve panel); yellow last (faint on white).
QUALITATIVE = [OKABE_ITO[k] for k in ("blue", "vermillion", "green", "purple", "orange", "sky_blue",
                                      "black", "yellow")]
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "p", "h", "*")
GREY = "#8c8c8c"
#: Edge colour of flagged configurations (hollow markers: left out of fronts, fits and findings).
FLAGGED = OKABE_ITO["vermillion"]
CHANCE = "#555555"

_RC = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
    "xtick.labelsize": 8, "ytick.labelsize": 8, "figure.titlesize": 11,
    "axes.spines.top": False, "axes.spines.right": False, "axes.grid": True, "grid.color": "#e0e0e0",
    "grid.linewidth": 0.6, "axes.axisbelow": True, "figure.dpi": 100, "savefig.dpi": 150,
    "lines.markersize": 5, "errorbar.capsize": 2, "legend.frameon": False,
    "svg.fonttype": "none", "svg.hashsalt": "archscale",
}


def styled(fn):
    """Decorator: run a plotting function under this module's rcParams (without touching the global ones)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(_RC):
            return fn(*args, **kwargs)
    return wrapper


def dimension_color(dimension: str) -> str:
    """The fixed colour of a scaling dimension (grey for unknown labels)."""
    return DIMENSION_COLORS.get(str(dimension), GREY)


def sequential_colors(n: int, cmap: str = "viridis", lo: float = 0.0, hi: float = 0.85) -> list:
    """``n`` colours along a perceptually uniform map, dark to light (``hi`` < 1 skips the faint end)."""
    cm = matplotlib.colormaps[cmap]
    return [cm(v) for v in (np.linspace(lo, hi, n) if n > 1 else [lo])]


def regime_colors(regimes) -> dict:
    """A colour per regime in the given order (shortest training darkest), from the plasma map."""
    return dict(zip(regimes, sequential_colors(len(regimes), "plasma", 0.0, 0.75)))


def flop_axis_label(unit: str) -> str:
    """FLOP axis label naming the convention, e.g. 'GFLOPs per image (fvcore: 1 multiply-add = 1 FLOP)'."""
    return f"{unit} per image ({FLOP_CONVENTION})"


def time_unit(seconds) -> tuple[float, str]:
    """(divisor, unit) for durations: hours from 3 h up, minutes from 2 min up, else seconds."""
    top = np.nanmax(np.asarray(seconds, dtype=float)) if np.size(seconds) else 0.0
    if top >= 3 * 3600:
        return 3600.0, "h"
    if top >= 120:
        return 60.0, "min"
    return 1.0, "s"


def regime_title(regime: str, epochs=None) -> str:
    """Panel title of a regime: 'rs-100 (100 epochs)', or the name alone when it carries no count."""
    if epochs is None or not np.isfinite(epochs):
        return str(regime)
    return f"{regime} ({plural(int(epochs), 'epoch')})"


#: Inches a figure needs for a two-line title and a legend row when it has one or two panels.
WIDE_TITLE = 6.6


def new_figure(nrows: int, ncols: int, panel: tuple[float, float] = (4.2, 3.3), *, extra_height: float = 0.0,
               min_width: float = 0.0, **subplot_kw) -> tuple[Figure, np.ndarray]:
    """A constrained-layout Figure on the Agg canvas and its axes as a 2-D array; ``min_width``
    (inches) keeps a long title and legend whole when there are few panels."""
    fig = Figure(figsize=(max(ncols * panel[0], min_width), nrows * panel[1] + extra_height), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, ncols, squeeze=False, **subplot_kw)
    return fig, axes


def _plain(value: float, _pos=None) -> str:
    if value <= 0:
        return ""
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 1:
        return f"{value:g}"
    return f"{value:.2g}"


def log_axis(ax, which: str = "x") -> None:
    """Log-scale an axis with plain-number ticks (0.5, 1, 2, 5, 10 ...), denser on narrow ranges."""
    (ax.set_xscale if which == "x" else ax.set_yscale)("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    lo, hi = (ax.get_xlim() if which == "x" else ax.get_ylim())
    span = hi / lo if lo > 0 else np.inf
    subs = (1.0, 2.0, 5.0) if span > 8 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)
    if span > 1e4:
        subs = (1.0,)
    axis.set_major_locator(ticker.LogLocator(base=10, subs=subs))
    axis.set_major_formatter(ticker.FuncFormatter(_plain))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=np.arange(1, 10)))
    axis.set_minor_formatter(ticker.NullFormatter())


def freeze_layout(fig: Figure) -> None:
    """Run the constrained layout once and keep it, so label placement sees final axes positions."""
    fig.draw_without_rendering()
    fig.set_layout_engine("none")


def save_figure(fig: Figure, stem: Path | str) -> list[Path]:
    """Write ``stem``.png (150 dpi) and ``stem``.svg atomically; return the two paths."""
    stem = Path(stem)
    paths = []
    with matplotlib.rc_context(_RC):
        for ext in ("png", "svg"):
            meta = {"Date": None} if ext == "svg" else {"Software": None}  # no timestamps: same figure, same bytes
            path = stem.with_name(f"{stem.name}.{ext}")
            paths.append(atomic_write(path, lambda tmp: fig.savefig(tmp, format=ext, facecolor="white", metadata=meta)))
    return paths


def _name_parts(names) -> tuple[list[str], list[list[str]]] | None:
    names = [str(n) for n in dict.fromkeys(names)]
    parts = [n.split("-") for n in names]
    if len(names) < 2 or len({len(p) for p in parts}) != 1:
        return None
    return names, parts


def _dropped_parts(names) -> dict[int, str]:
    """Position -> part dropped from short names: parts shared by all names, then the value of a
    position that at least 80% of the names share, when dropping it keeps names unique."""
    split = _name_parts(names)
    if split is None:
        return {}
    names, parts = split
    drop = {i: parts[0][i] for i in range(len(parts[0])) if len({p[i] for p in parts}) == 1}
    for i in range(len(parts[0])):
        if i in drop:
            continue
        values = [p[i] for p in parts]
        modal = max(sorted(set(values)), key=values.count)
        if values.count(modal) < 0.8 * len(values):  # only a dominant default value goes
            continue
        trial = {**drop, i: modal}
        shorts = {"-".join(q for j, q in enumerate(p) if trial.get(j) != q) for p in parts}
        if len(shorts) == len(names):
            drop = trial
    if len(drop) == len(parts[0]):  # never drop everything
        return {}
    return drop


def short_names(names) -> dict[str, str]:
    """Config names without the '-'-separated parts that tell nobody apart.

    Drops the parts every name shares (``-w1``), and at each position a value that 80% of the
    names share where the names stay distinct without it (``-c1x64`` when most configs are
    plain ResNets):
    ``d50-w1-c1x64-r224`` and ``d50-w1-c32x4-r224`` become ``d50-r224`` and ``d50-c32x4-r224``.
    Returns ``{name: short}``; ``omitted_name_parts`` says what was dropped.
    """
    drop = _dropped_parts(names)
    names = [str(n) for n in dict.fromkeys(names)]
    if not drop:
        return {n: n for n in names}
    return {n: "-".join(q for j, q in enumerate(n.split("-")) if drop.get(j) != q) for n in names}


def omitted_name_parts(names) -> str:
    """What ``short_names`` leaves out, as text for a title ('' when nothing)."""
    split = _name_parts(names)
    drop = _dropped_parts(names)
    if not drop or split is None:
        return ""
    _, parts = split
    shared = [v for i, v in sorted(drop.items()) if all(p[i] == v for p in parts)]
    modal = [v for i, v in sorted(drop.items()) if v not in shared]
    text = []
    if shared:
        text.append("-".join(shared) + " (shared by all)")
    text += [f"{v} (a label with no such part has {v})" for v in modal]
    return "labels omit " + "; ".join(text)


def name_labels(names) -> tuple[dict[str, str], str]:
    """(``short_names(names)``, ``omitted_name_parts(names)``): labels and the note saying what they omit."""
    return short_names(names), omitted_name_parts(names)


# Candidate label offsets (points) by preference: (dx, dy, ha, va).
_DIRECTIONS = {
    "upper left": [(-1, 1, "right", "bottom"), (1, 1, "left", "bottom"), (-1, -1, "right", "top"),
                   (1, -1, "left", "top"), (0, 1.3, "center", "bottom"), (0, -1.3, "center", "top")],
    "lower right": [(1, -1, "left", "top"), (-1, -1, "right", "top"), (1, 1, "left", "bottom"),
                    (-1, 1, "right", "bottom"), (0, -1.3, "center", "top"), (0, 1.3, "center", "bottom")],
    "upper right": [(1, 1, "left", "bottom"), (-1, 1, "right", "bottom"), (1, -1, "left", "top"),
                    (-1, -1, "right", "top"), (0, 1.3, "center", "bottom"), (0, -1.3, "center", "top")],
}


def _overlap(a: Bbox, b: Bbox) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def place_labels(ax, xs, ys, labels, *, avoid=None, prefer: str = "upper left", fontsize: float = 7,
                 color: str = "#222222", step: float = 5.0, rings: int = 5) -> list:
    """Annotate points (data coordinates) with labels placed so that they overlap as little as possible.

    Each label tries offsets around its point (nearest first, in the ``prefer`` direction first)
    and takes the first that overlaps no earlier label, no marker (the points themselves plus
    ``avoid``, an (n, 2) array of other data points) and stays inside the axes; failing that, the
    least-overlapping one. Labels placed away from their point get a thin leader line. Call after
    the axes limits are final and the layout is frozen (``freeze_layout``). Returns the annotations.
    """
    fig = ax.figure
    renderer = fig.canvas.get_renderer()
    px_per_pt = fig.dpi / 72.0
    pts = ax.transData.transform(np.column_stack([np.asarray(xs, float), np.asarray(ys, float)]))
    others = pts if avoid is None or len(avoid) == 0 else np.vstack(
        [pts, ax.transData.transform(np.asarray(avoid, dtype=float))])
    r = 3.5 * px_per_pt
    obstacles = [Bbox.from_extents(x - r, y - r, x + r, y + r) for x, y in others]
    pad = 3 * px_per_pt  # keep labels off the spines
    box = ax.get_window_extent(renderer)
    frame = Bbox.from_extents(box.x0 + pad, box.y0 + pad, box.x1 - pad, box.y1 - pad)
    placed: list[Bbox] = []
    out = []
    for (px, py), (x, y), text in zip(pts, zip(xs, ys), labels):
        probe = ax.text(0, 0, text, fontsize=fontsize)  # measure the label once
        size = probe.get_window_extent(renderer)
        probe.remove()
        w, h = size.width, size.height
        best = None
        for ring in range(1, rings + 1):
            for dx, dy, ha, va in _DIRECTIONS.get(prefer, _DIRECTIONS["upper left"]):
                off = (dx * step * ring, dy * step * ring)
                ax_ = px + off[0] * px_per_pt
                ay_ = py + off[1] * px_per_pt
                x0 = {"left": ax_, "right": ax_ - w, "center": ax_ - w / 2}[ha]
                y0 = {"bottom": ay_, "top": ay_ - h, "center": ay_ - h / 2}[va]
                bb = Bbox.from_bounds(x0, y0, w, h)
                outside = w * h - _overlap(bb, frame)
                cost = outside * 3 + sum(_overlap(bb, o) for o in placed) * 2 + sum(_overlap(bb, o) for o in obstacles)
                if best is None or cost < best[0] - 1e-9:
                    best = (cost, off, ha, va, ring, bb)
                if cost == 0:
                    break
            if best[0] == 0:
                break
        _, off, ha, va, ring, bb = best
        arrow = dict(arrowstyle="-", color=GREY, lw=0.5, shrinkA=0, shrinkB=2) if ring > 1 else None
        ann = ax.annotate(text, (x, y), xytext=off, textcoords="offset points", ha=ha, va=va,
                          fontsize=fontsize, color=color, arrowprops=arrow, annotation_clip=False)
        placed.append(bb)
        out.append(ann)
    return out


def chance_line(ax, chances, *, error: bool = False, axis: str = "y") -> None:
    """Mark chance level on an accuracy axis: a dash-dotted line at each chance top-1 (%) of ``chances``
    (100 - it on an error axis, ``error``), labelled; when it lies outside the axis's range, a label at
    the edge it lies beyond says so rather than squeezing the data. Call after the data are drawn.
    Every mark has gid "chance"."""
    for c in chances:
        value = 100.0 - c if error else c
        lo, hi = ax.get_xlim() if axis == "x" else ax.get_ylim()
        label = f"chance {c:.3g} %" + (" (error)" if error else "")
        if min(lo, hi) <= value <= max(lo, hi):
            line = ax.axvline if axis == "x" else ax.axhline
            line(value, color=CHANCE, ls="-.", lw=0.9, zorder=1, gid="chance")
            pos = dict(x=value, y=0.98, ha="right", va="top", rotation=90) if axis == "x" else \
                dict(x=0.99, y=value, ha="right", va="bottom")
            transform = ax.get_xaxis_transform() if axis == "x" else ax.get_yaxis_transform()
            ax.text(pos.pop("x"), pos.pop("y"), label, transform=transform, fontsize=7, color=CHANCE, gid="chance",
                    **pos)
        else:
            beyond = value > max(lo, hi)
            where = ("right" if beyond else "left") if axis == "x" else ("above" if beyond else "below")
            if axis == "x":
                ax.text(0.99 if beyond else 0.01, 0.02, f"{label}: {where} the axis", transform=ax.transAxes,
                        ha="right" if beyond else "left", va="bottom", fontsize=7, color=CHANCE, gid="chance")
            else:
                ax.text(0.99, 0.98 if beyond else 0.02, f"{label}: {where} the axis", transform=ax.transAxes,
                        ha="right", va="top" if beyond else "bottom", fontsize=7, color=CHANCE, gid="chance")
