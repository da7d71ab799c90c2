"""Findings: the published scaling claims a sweep can test, tested on its results with their uncertainty.

A claim is measured on *comparisons* between configurations trained in one regime:

- **equal-FLOP pairs** (ResNeXt's cardinality, ResNet-RS' depth against width, the ResNet-RS
  strategy against EfficientNet's compound rule): two configurations whose FLOPs lie within the
  report's tolerance of each other (relative to the cheaper) and that differ only in the fields
  the claim trades, one spending the FLOPs the way the claim favours. Pairs are disjoint (the
  closest FLOPs are paired first and a configuration joins at most one pair of a claim), so they
  are independent units. A pair's difference: top-1 of the favoured side minus the other's (pp).
- **one-dimension steps** (resolution against the other dimensions): two configurations that
  differ in one dimension's fields only (``reports.dimension_steps.DIMENSIONS``), adjacent along it
  and at least ``MIN_STEP_RATIO`` apart in FLOPs. A step's value is the top-1 it gains per
  doubling of FLOPs: (top-1 high - top-1 low) / log2(FLOPs high / FLOPs low). Resolution is
  compared with the better of depth and width, picked by its mean gain; the interval does not
  count that choice, which favours the claim a little when the two are close (the report names
  the dimension picked).

The uncertainty (``estimate_mean``, ``estimate_difference``):

- **several seeds: paired differences across seeds.** A comparison is taken seed by seed (both
  sides trained with the same seed) and averaged over the seeds both sides have; the interval is
  the 95 % Student-t interval over the comparisons (``scipy.stats.ttest_1samp``, or Welch's
  ``ttest_ind`` for two groups of steps), or over the seeds when there is only one comparison.
  Seeds of one comparison are averaged, not counted as independent comparisons.
- **one seed: a bootstrap over the configurations.** The 95 % percentile interval of
  ``scipy.stats.bootstrap`` (9,999 resamples, a fixed generator, so a report is reproducible)
  resampling the pairs, or each group's steps on their own; it needs three comparisons a group.

Every effect is signed so that a positive value is what the claim predicts. The verdict is
``supported`` when the interval lies above zero, ``contradicted`` when it lies below, and
``inconclusive`` when it holds zero. Trials flagged by their health verdict (at chance, not
converged, diverged, seeds that disagree) are left out of every comparison; a finding whose
comparisons would have used them is ``inconclusive`` whatever its interval, and ``flagged`` says
which configurations and what the verdict is without them. A claim the sweep cannot test (a missing axis or regime, too
few comparisons) is ``untestable`` and says what it would need. Pure pandas, numpy and scipy.
"""
from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
from scipy import stats

from scaling.conventions import LONG_REGIME_EPOCHS, SHORT_REGIME_EPOCHS

from .dimension_steps import _IGNORED, DIMENSIONS, _as_key
from .tables import ARCH_FIELDS, finished_trials, normalize_trials, regime_order, with_flagged_counted

__all__ = ["CLAIMS", "Claim", "Estimate", "Finding", "VERDICTS", "CONFIDENCE", "MIN_BOOTSTRAP_UNITS",
           "MIN_STEP_RATIO", "assess_claims", "estimate_mean", "estimate_difference", "verdict_of",
           "equal_flop_pairs", "one_dimension_steps", "dimension_gains", "regime_length"]

#: Verdicts of a tested claim; a claim the sweep cannot test is "untestable".
VERDICTS = ("supported", "contradicted", "inconclusive")
CONFIDENCE = 0.95
N_RESAMPLES = 9999
#: Fewest comparisons in a group for a bootstrap interval (one seed).
MIN_BOOTSTRAP_UNITS = 3
#: Smallest FLOP ratio of a one-dimension step. A step's gain per doubling is its top-1 difference
#: divided by log2 of the ratio, so its noise grows as the ratio nears 1: at 1.25 the noise of one
#: top-1 difference is multiplied by 3.1, at 1.1 by 7.3.
MIN_STEP_RATIO = 1.25
#: The dimensions resolution is compared with (ResNet-RS: grow resolution more slowly than depth and width).
OTHER_DIMENSIONS = ("depth", "width")


@dataclass(frozen=True)
class Claim:
    """A published claim: ``key`` (short id), ``source`` (paper) and ``statement``."""

    key: str
    source: str
    statement: str


CLAIMS: dict[str, Claim] = {c.key: c for c in (
    Claim("cardinality", "ResNeXt (Xie et al. 2017)",
          "At equal complexity, more groups (cardinality) beat more width or depth."),
    Claim("depth_vs_width", "ResNet-RS (Bello et al. 2021)",
          "Depth scaling beats width scaling in long regimes; width beats depth in short ones."),
    Claim("resolution", "ResNet-RS (Bello et al. 2021)",
          "Resolution should grow more slowly than depth and width: a doubling of FLOPs buys less accuracy "
          "along resolution than along the best other dimension."),
    Claim("regime", "ResNet-RS (Bello et al. 2021)",
          "The best scaling strategy depends on the training regime: the winner of depth against width "
          "changes between regimes."),
    Claim("compound", "ResNet-RS against EfficientNet (Tan & Le 2019)",
          "The ResNet-RS strategy (resolution grown slowly, then depth or width by regime length) beats "
          "EfficientNet's compound scaling at equal FLOPs."),
)}


@dataclass(frozen=True)
class Estimate:
    """An effect (percentage points, or pp per doubling of FLOPs) with its 95 % interval.

    ``method`` says how the interval was made; ``n_units``: comparisons it rests on;
    ``n_seeds``: the most seeds a comparison has.
    """

    effect: float
    low: float
    high: float
    method: str
    n_units: int
    n_seeds: int


@dataclass(frozen=True, eq=False)
class Finding:
    """One claim on one regime (``regime`` None: across regimes): what was measured and the verdict.

    ``measure`` says what the effect is (positive = as the claim predicts) and ``unit`` its unit;
    ``comparisons`` has one row per comparison it rests on: ``regime``, ``group``, ``a`` (the
    favoured side, or the higher step), ``b``, ``flops_a``, ``flops_b``, ``top1_a``, ``top1_b``
    (seed means, %), ``difference`` (seed mean of the per-seed differences, in ``unit``) and
    ``n_seeds``. ``needs``: what an untestable claim would need. ``flagged``: why a finding that would
    rest on flagged trials is inconclusive (its ``estimate`` is that of the healthy comparisons, or
    None when they are too few).
    """

    claim: Claim
    regime: str | None
    verdict: str
    measure: str
    unit: str
    estimate: Estimate | None
    comparisons: pd.DataFrame
    needs: str = ""
    detail: str = ""
    flagged: str = ""

    @property
    def tested(self) -> bool:
        return self.verdict != "untestable"

    def configs(self) -> list[str]:
        """The configurations the finding rests on, in order of appearance."""
        return list(dict.fromkeys(list(self.comparisons["a"]) + list(self.comparisons["b"])))


# ----- statistics -------------------------------------------------------------------------------
def estimate_mean(units, unit_name: str = "pair") -> Estimate | None:
    """The mean of comparisons with its 95 % interval; None when there are too few.

    ``units``: one array per comparison holding its difference for each seed it has. With
    several seeds: t-interval over the seed-averaged comparisons (over the seeds of the one
    comparison when there is one); with one seed: percentile bootstrap over the comparisons
    (at least ``MIN_BOOTSTRAP_UNITS``).
    """
    units = [np.asarray(u, dtype=float) for u in units if len(u)]
    if not units:
        return None
    n_seeds = max(len(u) for u in units)
    means = np.array([u.mean() for u in units])
    n = len(units)
    if n_seeds >= 2:
        sample = means if n >= 2 else units[0]
        over = f"{n} {unit_name}s" if n >= 2 else f"the {len(units[0])} seeds of the one {unit_name}"
        low, high = _t_interval(sample)
        method = f"paired differences across {n_seeds} seeds, averaged per {unit_name}; 95 % t-interval over {over}"
    else:
        if n < MIN_BOOTSTRAP_UNITS:
            return None
        low, high = _bootstrap((means,), lambda d, axis: d.mean(axis=axis))
        method = f"one seed: 95 % percentile bootstrap over the {n} {unit_name}s"
    return Estimate(float(means.mean()), low, high, method, n, n_seeds)


def estimate_difference(a_units, b_units, unit_name: str = "step") -> Estimate | None:
    """Mean of group ``a`` minus mean of group ``b`` with its 95 % interval; None when too few.

    Each unit is an array of per-seed values, averaged over its seeds. With several seeds: Welch's
    t-interval (at least two units a group); with one seed: percentile bootstrap resampling each
    group on its own (at least ``MIN_BOOTSTRAP_UNITS`` a group).
    """
    a = np.array([np.mean(u) for u in a_units if len(u)])
    b = np.array([np.mean(u) for u in b_units if len(u)])
    n_seeds = max([len(u) for u in list(a_units) + list(b_units)] or [0])
    if n_seeds >= 2:
        if min(len(a), len(b)) < 2:
            return None
        if np.ptp(a) == 0 and np.ptp(b) == 0:
            low = high = float(a.mean() - b.mean())
        else:
            ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
            low, high = float(ci.low), float(ci.high)
        method = (f"paired differences across {n_seeds} seeds, averaged per {unit_name}; 95 % Welch t-interval "
                  f"over {len(a)} and {len(b)} {unit_name}s")
    else:
        if min(len(a), len(b)) < MIN_BOOTSTRAP_UNITS:
            return None
        low, high = _bootstrap((a, b), lambda x, y, axis: x.mean(axis=axis) - y.mean(axis=axis))
        method = (f"one seed: 95 % percentile bootstrap resampling each group's {unit_name}s "
                  f"({len(a)} and {len(b)})")
    return Estimate(float(a.mean() - b.mean()), low, high, method, len(a) + len(b), n_seeds)


def _t_interval(sample: np.ndarray) -> tuple[float, float]:
    """95 % Student-t interval of the mean of ``sample`` (a point when every value is equal)."""
    if np.ptp(sample) == 0:
        return float(sample[0]), float(sample[0])
    ci = stats.ttest_1samp(sample, 0.0).confidence_interval(CONFIDENCE)
    return float(ci.low), float(ci.high)


def _bootstrap(samples: tuple, statistic: Callable) -> tuple[float, float]:
    """95 % percentile bootstrap interval of ``statistic`` over ``samples`` (each resampled on its own)."""
    if all(np.ptp(s) == 0 for s in samples):
        value = float(statistic(*[np.asarray(s)[None, :] for s in samples], axis=-1)[0])
        return value, value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.DegenerateDataWarning)
        ci = stats.bootstrap(samples, statistic, n_resamples=N_RESAMPLES, confidence_level=CONFIDENCE,
                             method="percentile", vectorized=True, rng=np.random.default_rng(0)).confidence_interval
    return float(ci.low), float(ci.high)


def verdict_of(estimate: Estimate | None) -> str:
    """supported (interval above zero), contradicted (below), inconclusive (holds zero), or untestable (None)."""
    if estimate is None:
        return "untestable"
    if estimate.low > 0:
        return "supported"
    if estimate.high < 0:
        return "contradicted"
    return "inconclusive"


def regime_length(epochs) -> str:
    """'short', 'long' or 'medium' (ResNet-RS' 100-epoch case) for a regime of ``epochs`` epochs."""
    if epochs is None or not np.isfinite(epochs):
        return "medium"
    if epochs >= LONG_REGIME_EPOCHS:
        return "long"
    if epochs <= SHORT_REGIME_EPOCHS:
        return "short"
    return "medium"


# ----- comparisons ------------------------------------------------------------------------------
def _key_of(configs: pd.DataFrame, free) -> pd.Series:
    """Per configuration, the text of every architecture field outside ``free`` (and the regularisation)."""
    fixed = [f for f in ARCH_FIELDS if f in configs and f not in free and f not in _IGNORED]
    if not fixed:
        return pd.Series("", index=configs.index)
    return configs[fixed].apply(lambda r: "|".join(_as_key(v) for v in r), axis=1)


def equal_flop_pairs(configs: pd.DataFrame, *, free, favoured: Callable[[dict, dict], bool],
                     tolerance: float) -> list[tuple[str, str]]:
    """Disjoint (favoured, other) name pairs at equal FLOPs among ``configs`` (one regime), cheapest first.

    Two configurations pair when they differ only in the ``free`` fields (and the per-size
    dropout and stochastic depth), cost the same, and ``favoured(x, y)`` (row mappings) says x
    spends the FLOPs the way the claim favours. They cost the same when the equal-FLOP matcher
    put them in one ``group`` or, without matcher groups, when their FLOPs lie within
    ``tolerance`` of the cheaper one's (as the report's equal-FLOP comparison groups them). The
    closest FLOPs pair first; each configuration joins at most one pair.
    """
    configs = configs[configs["flops"].notna() & (configs["flops"] > 0)]
    candidates = []
    for _, group in configs.groupby(_key_of(configs, free), sort=False):
        rows = group.to_dict("records")
        for x in rows:
            for y in rows:
                if x["name"] == y["name"] or not favoured(x, y):
                    continue
                ratio = max(x["flops"], y["flops"]) / min(x["flops"], y["flops"])
                if _same_cost(x, y, ratio, tolerance):
                    candidates.append((abs(math.log(ratio)), x["name"], y["name"]))
    used, pairs = set(), []
    for _, x, y in sorted(candidates):
        if x not in used and y not in used:
            used |= {x, y}
            pairs.append((x, y))
    flops = configs.set_index("name")["flops"]
    return sorted(pairs, key=lambda p: (min(flops[p[0]], flops[p[1]]), p))


def _same_cost(x: dict, y: dict, ratio: float, tolerance: float) -> bool:
    """Equal FLOPs: the matcher's group when both have one, else FLOPs within ``tolerance``."""
    gx, gy = (_as_key(r.get("group")) for r in (x, y))
    if gx and gy:
        return gx == gy
    return ratio - 1 <= tolerance + 1e-12


def one_dimension_steps(configs: pd.DataFrame, dimension: str) -> list[tuple[str, str]]:
    """(higher, lower) name pairs of adjacent configurations along ``dimension`` (one regime).

    The configurations of a step differ only in that dimension's fields (``DIMENSIONS``), lie next
    to each other in FLOPs among those that share every other field, and the higher has at least
    ``MIN_STEP_RATIO`` times the FLOPs of the lower.
    """
    configs = configs[configs["flops"].notna() & (configs["flops"] > 0)]
    steps = []
    for _, line in configs.groupby(_key_of(configs, DIMENSIONS[dimension]), sort=False):
        line = line.sort_values(["flops", "name"])
        names, flops = list(line["name"]), list(line["flops"])
        for i in range(1, len(names)):
            if flops[i] >= MIN_STEP_RATIO * flops[i - 1]:
                steps.append((names[i], names[i - 1]))
    return steps


@dataclass
class _Run:
    """A run as the claims read it: configurations per regime and top-1 per seed."""

    configs: pd.DataFrame  # one row per (regime, name): architecture fields, flops, strategy, ...
    top1: pd.DataFrame     # index (regime, name), a column per seed
    epochs: dict           # regime -> planned epochs
    regimes: list[str]
    tolerance: float

    def in_regime(self, regime: str) -> pd.DataFrame:
        return self.configs[self.configs["regime"] == regime]

    def per_seed(self, regime: str, a: str, b: str, ratio: float | None = None) -> np.ndarray:
        """top-1 of ``a`` minus ``b`` for each seed both have (per doubling of FLOPs when ``ratio``)."""
        diff = (self.top1.loc[(regime, a)] - self.top1.loc[(regime, b)]).dropna().to_numpy(dtype=float)
        return diff / math.log2(ratio) if ratio else diff

    def comparisons(self, regime: str, pairs, group: str, per_doubling: bool = False) -> tuple[pd.DataFrame, list]:
        """The comparisons table of ``pairs`` (a, b) and their per-seed differences."""
        flops = self.in_regime(regime).set_index("name")["flops"]
        means = self.top1.loc[regime].mean(axis=1)
        rows, units = [], []
        for a, b in pairs:
            d = self.per_seed(regime, a, b, flops[a] / flops[b] if per_doubling else None)
            if not len(d):
                continue
            units.append(d)
            rows.append(dict(regime=regime, group=group, a=a, b=b, flops_a=float(flops[a]), flops_b=float(flops[b]),
                             top1_a=float(means[a]), top1_b=float(means[b]), difference=float(d.mean()),
                             n_seeds=len(d)))
        return pd.DataFrame(rows, columns=_COMPARISON_COLUMNS), units


_COMPARISON_COLUMNS = ["regime", "group", "a", "b", "flops_a", "flops_b", "top1_a", "top1_b", "difference",
                       "n_seeds"]


def _read_run(trials: pd.DataFrame, tolerance: float) -> _Run:
    done = finished_trials(trials)
    keep = [c for c in ["regime", "name", "flops", "group", "strategy", "flop_multiplier", *ARCH_FIELDS] if c in done]
    configs = done.groupby(["regime", "name"], sort=False)[keep[2:]].first().reset_index()
    top1 = done.pivot_table(index=["regime", "name"], columns="seed", values="top1", aggfunc="mean")
    epochs = done.groupby("regime")["epochs"].max().to_dict()
    return _Run(configs, top1, epochs, regime_order(done), tolerance)


def _width(row: dict) -> float:
    wf = row.get("widen_factor")
    return float(row["width_multiplier"]) * (1.0 if wf is None or pd.isna(wf) else float(wf))


def _varies(configs: pd.DataFrame, column: str) -> bool:
    return column in configs and configs[column].dropna().astype(str).nunique() > 1


# ----- the claims -------------------------------------------------------------------------------
def _finding(claim: str, regime, measure: str, unit: str, table: pd.DataFrame, estimate: Estimate | None,
             needs: str = "", detail: str = "") -> Finding:
    verdict = verdict_of(estimate)
    return Finding(CLAIMS[claim], regime, verdict, measure, unit, estimate, table,
                   needs=needs if verdict == "untestable" else "", detail=detail)


def _too_few(what: str, n: int) -> str:
    return (f"at least {MIN_BOOTSTRAP_UNITS} {what} with one seed, or one with two seeds or more (this sweep has "
            f"{n}: seed it twice, or add configurations)")


def _cardinality(run: _Run, regime: str) -> Finding:
    configs = run.in_regime(regime)
    measure = ("top-1 of the configuration with more groups minus its equal-FLOP partner that spends them on width "
               "or depth")
    free = DIMENSIONS["cardinality"] + DIMENSIONS["width"] + DIMENSIONS["depth"]
    pairs = equal_flop_pairs(configs, free=free, tolerance=run.tolerance,
                             favoured=lambda x, y: x["cardinality"] > y["cardinality"])
    table, units = run.comparisons(regime, pairs, "cardinality")
    estimate = estimate_mean(units, "equal-FLOP pair")
    if not _varies(configs, "cardinality"):
        needs = ("configurations that differ in cardinality at equal FLOPs, e.g. paired: {cardinality: [1, 4], "
                 "bottleneck_width: [16, 8]} with match: {solve: width_multiplier, target_from: {...}}")
    else:
        needs = _too_few(f"equal-FLOP pairs (FLOPs within {run.tolerance:.0%}) that differ in cardinality", len(table))
    return _finding("cardinality", regime, measure, "pp", table, estimate, needs)


def _depth_minus_width(run: _Run, regime: str) -> tuple[pd.DataFrame, list]:
    """Equal-FLOP pairs (deeper and narrower, shallower and wider) and their per-seed differences."""
    configs = run.in_regime(regime)
    pairs = equal_flop_pairs(configs, free=DIMENSIONS["depth"] + DIMENSIONS["width"], tolerance=run.tolerance,
                             favoured=lambda x, y: x["depth_number"] > y["depth_number"] and _width(x) < _width(y))
    return run.comparisons(regime, pairs, "depth - width")


def _depth_vs_width(run: _Run, regime: str) -> Finding:
    configs = run.in_regime(regime)
    epochs = run.epochs.get(regime)
    length = regime_length(epochs)
    table, units = _depth_minus_width(run, regime)
    if length == "short":  # the claim favours width: flip the sign
        table = table.assign(a=table["b"], b=table["a"], flops_a=table["flops_b"], flops_b=table["flops_a"],
                             top1_a=table["top1_b"], top1_b=table["top1_a"], difference=-table["difference"],
                             group="width - depth")
        units = [-u for u in units]
        measure = "top-1 of the shallower, wider configuration minus the deeper, narrower one at equal FLOPs"
    else:
        measure = "top-1 of the deeper, narrower configuration minus the shallower, wider one at equal FLOPs"
    estimate = estimate_mean(units, "equal-FLOP pair")
    if not (_varies(configs, "depth_number") and _varies(configs, "width_multiplier")):
        needs = ("configurations that trade depth against width at equal FLOPs: a depth axis with match: {solve: "
                 "width_multiplier, ...}, or the depth and width scaling strategies")
    else:
        needs = _too_few(f"equal-FLOP pairs (FLOPs within {run.tolerance:.0%}) of a deeper, narrower and a "
                         "shallower, wider configuration", len(table))
    if length == "medium":
        e = "?" if epochs is None or not np.isfinite(epochs) else f"{int(epochs)}"
        needs = (f"a regime of at most {SHORT_REGIME_EPOCHS} or at least {LONG_REGIME_EPOCHS} epochs: at {e} epochs "
                 "ResNet-RS finds that the winner depends on the resolution, so it predicts none")
        return Finding(CLAIMS["depth_vs_width"], regime, "untestable", measure, "pp", None, table, needs=needs)
    return _finding("depth_vs_width", regime, measure, "pp", table, estimate, needs, detail=length)


def _steps(run: _Run, regime: str, dimension: str) -> tuple[pd.DataFrame, list]:
    return run.comparisons(regime, one_dimension_steps(run.in_regime(regime), dimension), dimension, per_doubling=True)


def _resolution(run: _Run, regime: str) -> Finding:
    measure = "top-1 gained per doubling of FLOPs along the best other dimension minus along resolution"
    unit = "pp per 2x FLOPs"
    res_table, res_units = _steps(run, regime, "resolution")
    others = {d: _steps(run, regime, d) for d in OTHER_DIMENSIONS}
    others = {d: v for d, v in others.items() if len(v[1])}
    needs = (f"one-dimension steps (two configurations that differ in one dimension only, at least "
             f"{MIN_STEP_RATIO:g}x apart in FLOPs) along resolution and along depth or width: "
             f"{MIN_BOOTSTRAP_UNITS} of each with one seed, two with several")
    if not res_units or not others:
        found = f"{len(res_units)} along resolution, " + (
            ", ".join(f"{len(v[1])} along {d}" for d, v in others.items()) or "none along depth or width")
        return _finding("resolution", regime, measure, unit, pd.DataFrame(columns=_COMPARISON_COLUMNS), None,
                        f"{needs} (this sweep has {found})")
    best = max(others, key=lambda d: np.mean([u.mean() for u in others[d][1]]))
    table = pd.concat([others[best][0], res_table], ignore_index=True)
    estimate = estimate_difference(others[best][1], res_units, "step")
    found = f"{len(res_units)} along resolution, {len(others[best][1])} along {best}"
    return _finding("resolution", regime, measure, unit, table, estimate, f"{needs} (this sweep has {found})",
                    detail=best)


def _regime(run: _Run) -> Finding:
    measure = ("change of the deeper-minus-wider top-1 difference at equal FLOPs from the shortest to the longest "
               "regime (positive: depth gains on width with longer training)")
    empty = pd.DataFrame(columns=_COMPARISON_COLUMNS)
    if len(run.regimes) < 2:
        return _finding("regime", None, measure, "pp", empty, None,
                        "a second regime (e.g. rs-10 and rs-350) with depth-against-width pairs in each")
    per_regime = {r: _depth_minus_width(run, r) for r in run.regimes}
    estimates = {r: estimate_mean(u, "equal-FLOP pair") for r, (_, u) in per_regime.items()}
    tested = [r for r in run.regimes if estimates[r] is not None]
    if len(tested) < 2:
        return _finding("regime", None, measure, "pp", empty, None,
                        "depth-against-width pairs at equal FLOPs in two regimes or more (this sweep has enough "
                        f"in {len(tested)})")
    short, long = tested[0], tested[-1]
    a, b = per_regime[long][0].set_index(["a", "b"]), per_regime[short][0].set_index(["a", "b"])
    common = [k for k in a.index if k in b.index]
    rows, units = [], []
    for x, y in common:
        seeds = ((run.top1.loc[(long, x)] - run.top1.loc[(long, y)])
                 - (run.top1.loc[(short, x)] - run.top1.loc[(short, y)])).dropna().to_numpy(dtype=float)
        if not len(seeds):
            continue
        units.append(seeds)
        pair = a.loc[(x, y)]
        rows.append(dict(regime=f"{short} -> {long}", group="depth - width", a=x, b=y, flops_a=pair["flops_a"],
                         flops_b=pair["flops_b"], top1_a=pair["top1_a"], top1_b=pair["top1_b"],
                         difference=float(seeds.mean()), n_seeds=len(seeds)))
    table = pd.DataFrame(rows, columns=_COMPARISON_COLUMNS)
    interaction = estimate_mean(units, "equal-FLOP pair")
    signs = {r: np.sign(estimates[r].low) if estimates[r].low > 0 or estimates[r].high < 0 else 0 for r in tested}
    winners = {r: {1: "depth", -1: "width"}.get(int(s)) for r, s in signs.items()}
    if 1 in signs.values() and -1 in signs.values():
        verdict = "supported"
    elif all(s != 0 for s in signs.values()) and len(set(signs.values())) == 1:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    detail = "; ".join(f"`{r}`: {winners[r] or 'no clear winner'} ({_interval_text(estimates[r])})" for r in tested)
    return Finding(CLAIMS["regime"], None, verdict, measure, "pp", interaction, table, detail=detail)


def _interval_text(e: Estimate) -> str:
    return f"deeper minus wider {e.effect:+.2f} pp [{e.low:+.2f}, {e.high:+.2f}]"


def _compound(run: _Run, regime: str) -> Finding:
    configs = run.in_regime(regime)
    measure = "top-1 of the ResNet-RS-scaled configuration minus the compound-scaled one at equal FLOPs"
    strategies = set(configs["strategy"].dropna().astype(str)) if "strategy" in configs else set()
    if not {"compound", "resnet_rs"} <= strategies:
        return _finding("compound", regime, measure, "pp", pd.DataFrame(columns=_COMPARISON_COLUMNS), None,
                        "a scaling sweep (space kind: scaling) with strategies: [compound, resnet_rs]")

    def favoured(x, y):
        same_budget = ("flop_multiplier" not in x or pd.isna(x["flop_multiplier"])
                       or x["flop_multiplier"] == y["flop_multiplier"])
        return x["strategy"] == "resnet_rs" and y["strategy"] == "compound" and same_budget

    pairs = equal_flop_pairs(configs, free=ARCH_FIELDS, tolerance=max(run.tolerance, 0.25), favoured=favoured)
    table, units = run.comparisons(regime, pairs, "resnet_rs - compound")
    return _finding("compound", regime, measure, "pp", table, estimate_mean(units, "budget"),
                    _too_few("budgets where both strategies were trained", len(table)))


def assess_claims(trials: pd.DataFrame, *, tolerance: float = 0.15) -> list[Finding]:
    """Every claim of ``CLAIMS`` on the finished trials, per regime where the claim is per regime.

    ``tolerance``: the relative FLOP difference within which two configurations count as equal
    (the report's equal-FLOP tolerance). Returns the findings in claim order, then regime order;
    untestable ones included, each saying what it would need. Flagged networks are left out; a
    finding whose comparisons would use them is inconclusive (see ``Finding.flagged``).
    """
    df = normalize_trials(trials)
    out = _assess(df, tolerance)
    if not df["flagged"].any():
        return out
    bad = df[df["flagged"]].drop_duplicates(["regime", "name"])
    health = {(r.regime, r.name): r.health for r in bad.itertuples()}
    trusted = {(f.claim.key, f.regime): f for f in out}
    result = []
    for whole in _assess(with_flagged_counted(df), tolerance):
        f = trusted.get((whole.claim.key, whole.regime)) or (whole if not whole.tested else dataclasses.replace(
            whole, verdict="untestable", estimate=None, comparisons=whole.comparisons.iloc[:0],
            needs="trials that are not flagged"))
        used = set(whole.comparisons["a"]) | set(whole.comparisons["b"]) if whole.tested else set()
        hit = sorted({(r, n) for (r, n) in health if n in used and (f.regime is None or r == f.regime)})
        if hit:
            names = ", ".join(f"{n} ({health[(r, n)]}{'' if f.regime else f', {r}'})" for r, n in hit)
            without = f"without them it is {f.verdict}" if f.tested else "without them too few comparisons are left"
            f = dataclasses.replace(f, verdict="inconclusive", needs="", flagged=(
                f"it would rest on flagged trials of {names}: they are left out, and {without}"))
        result.append(f)
    return result


def _assess(trials: pd.DataFrame, tolerance: float) -> list[Finding]:
    run = _read_run(trials, tolerance)
    out = []
    for check in (_cardinality, _depth_vs_width, _resolution):
        out += [check(run, r) for r in run.regimes]
    out.append(_regime(run))
    out += [_compound(run, r) for r in run.regimes]
    return out


def dimension_gains(trials: pd.DataFrame) -> pd.DataFrame:
    """Top-1 gained per doubling of FLOPs along each dimension, from its one-dimension steps.

    One row per (regime, dimension) with steps: ``n_steps``, ``gain`` (mean, pp per 2x FLOPs),
    ``low`` / ``high`` (95 % interval, NaN when too few steps for one) and ``method``.
    """
    run = _read_run(trials, 0.0)
    rows = []
    for regime in run.regimes:
        for dim in DIMENSIONS:
            table, units = _steps(run, regime, dim)
            if not units:
                continue
            e = estimate_mean(units, "step")
            rows.append(dict(regime=regime, dimension=dim, n_steps=len(units),
                             gain=float(np.mean([u.mean() for u in units])),
                             low=e.low if e else np.nan, high=e.high if e else np.nan, method=e.method if e else ""))
    return pd.DataFrame(rows, columns=["regime", "dimension", "n_steps", "gain", "low", "high", "method"])
