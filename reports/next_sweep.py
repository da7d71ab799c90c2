"""The next sweep: where a run says the next FLOPs buy the most accuracy, as a decision and its reasons.

``plan_next_sweep`` reads a run's results and decides what to grow and how: the base is the
run's most accurate configuration in its longest regime; the dimensions are ranked by the top-1
a doubling of FLOPs buys along each, from the power-law fits (``scaling_law_fits``) where two
dimensions or more have one, else from the one-dimension steps (``findings.dimension_gains``).
The strategies to place at the next budget are the best dimension, the runner-up (so the next
sweep settles the comparison at the larger size) and the ResNet-RS rule (the published
recommendation, as a control). A dimension whose accuracy fell with FLOPs is named a loss, never the
cheapest gain. Configurations flagged by their health verdict are never the base (``aggregate_seeds``
leaves them out). ``archscale suggest`` turns the decision into a sweep spec with
``search_spaces.strategies``; the report ends with ``NextSweep.paragraph``. Pure pandas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from scaling.wording import plural

from .binning import format_flops
from .dimension_steps import DIMENSIONS, dimension_members, scaling_law_fits
from .findings import dimension_gains
from .tables import aggregate_seeds, regime_order

__all__ = ["NextSweep", "Ranked", "plan_next_sweep", "STRATEGY_WHY", "STRATEGY_NAMES", "DEFAULT_BUDGET"]

#: The budget ``archscale suggest`` and the report use unless told otherwise: twice the base's FLOPs.
DEFAULT_BUDGET = "2x"
#: Why each strategy is in the next sweep (shown in the spec's comments and the report).
STRATEGY_WHY = {"best": "the best dimension", "runner_up": "the runner-up, to settle the comparison at the larger size",
                "resnet_rs": "the published recommendation: resolution grown slowly, then depth or width by the "
                             "regime's length",
                "compound": "EfficientNet's rule, the one ResNet-RS argues against", "fallback": "for comparison",
                "reserve": "the next in the ranking, in place of one that cannot reach the budget"}
#: How the report names a strategy that is not a dimension.
STRATEGY_NAMES = {"resnet_rs": "the ResNet-RS rule", "compound": "EfficientNet's compound rule"}


@dataclass(frozen=True)
class Ranked:
    """A dimension's top-1 gain per doubling of FLOPs (pp), its 95 % interval (NaN if none) and source."""

    dimension: str
    gain: float
    low: float
    high: float
    source: str
    n: int

    def text(self) -> str:
        interval = "" if np.isnan(self.low) else f" [{self.low:+.2f}, {self.high:+.2f}]"
        return f"{self.dimension}: {self.gain:+.2f} pp per doubling of FLOPs{interval} ({self.source})"


@dataclass(frozen=True)
class NextSweep:
    """What the next sweep grows (``base``, a config name) and how (``strategies``, with ``why``)."""

    base: str
    base_flops: float
    base_top1: float
    regime: str
    regime_epochs: int
    ranking: tuple[Ranked, ...]
    strategies: tuple[str, ...]
    why: dict = field(default_factory=dict)

    @property
    def gains(self) -> bool:
        """Whether the best-ranked dimension gained accuracy (a loss is never called a gain)."""
        return bool(self.ranking) and self.ranking[0].gain > 0

    def reasons(self) -> list[str]:
        """The decision in short lines (for YAML comments)."""
        lines = []
        if self.ranking:
            lines.append(f"In `{self.regime}` ({plural(self.regime_epochs, 'epoch')}), top-1 gained per doubling of FLOPs:")
            lines += [f"- {r.text()}" for r in self.ranking]
            lines.append(f"so the next FLOPs go to {self.ranking[0].dimension} first." if self.gains else
                         "no dimension gained accuracy with more FLOPs, so this run gives no reason to grow any; "
                         "the next sweep only tests that at the larger size.")
        else:
            lines.append(f"The run has no fits or one-dimension steps to rank the dimensions by in `{self.regime}`, "
                         "so the next sweep compares the published rules with plain depth and width.")
        lines.append(f"Base: {self.base}, the most accurate configuration ({self.base_top1:.1f} % top-1, "
                     f"{format_flops(self.base_flops)}).")
        return lines

    def paragraph(self, run_dir: str = "RUN_DIR", budget: str = DEFAULT_BUDGET) -> str:
        """The suggestion in one paragraph, as the report ends with it."""
        ways = [f"by {STRATEGY_NAMES.get(s, s)} ({self.why.get(s, '')})" for s in self.strategies]
        grow = ", ".join(ways[:-1]) + f" and {ways[-1]}" if len(ways) > 1 else ways[0]
        if self.ranking:
            best = self.ranking[0]
            change = (f"{best.gain:+.2f} pp per doubling of FLOPs"
                      + ("" if np.isnan(best.low) else f" [{best.low:+.2f}, {best.high:+.2f}]") + f" ({best.source})")
            lead = (f"In `{self.regime}` accuracy is cheapest along **{best.dimension}**: {change}" if self.gains else
                    f"In `{self.regime}` no dimension gained accuracy with more FLOPs: the least loss is along "
                    f"{best.dimension}, {change}")
            if len(self.ranking) > 1:
                second = self.ranking[1]
                lead += f", against {second.gain:+.2f} along {second.dimension}"
            lead += ". "
        else:
            lead = f"The run has no fits or one-dimension steps to rank the dimensions by in `{self.regime}`. "
        grows = "grows" if self.gains or not self.ranking else "would only test growing"
        return (lead + f"The next sweep {grows} {self.base}, the most accurate configuration ({self.base_top1:.1f} %, "
                f"{format_flops(self.base_flops)}), to {_budget_words(budget)} {grow}, under the same regime(s), "
                f"data and seeds. `archscale suggest {run_dir} --budget {budget}` writes it as a sweep spec, "
                "every configuration within 10 % of the budget.")


def _budget_words(budget: str) -> str:
    text = str(budget).strip().lower()
    if text.endswith("x"):
        return {"2x": "twice its FLOPs", "4x": "four times its FLOPs"}.get(text, f"{text[:-1]} times its FLOPs")
    return f"{budget} FLOPs per image"


def _ranking(trials: pd.DataFrame, regime: str, configs: pd.DataFrame) -> tuple[Ranked, ...]:
    """Dimensions of ``regime`` ranked by top-1 gained per doubling of FLOPs, best first."""
    members = dimension_members(trials, configs=configs)
    fits = scaling_law_fits(trials, members) if len(members) else pd.DataFrame()
    ok = fits[(fits["regime"] == regime) & fits["ok"].astype(bool) & fits["gain_per_doubling"].notna()] \
        if len(fits) else fits
    ranked = []
    if len(ok) >= 2:
        for _, f in ok.iterrows():
            g, s = float(f["gain_per_doubling"]), float(f["gain_std"])  # error removed = top-1 gained
            ranked.append(Ranked(f["dimension"], g, g - 1.96 * s, g + 1.96 * s,
                                 f"power-law fit at {format_flops(f['budget_gflops'] * 1e9, 3)}", int(f["n_points"])))
    else:
        gains = dimension_gains(trials)
        for _, r in gains[gains["regime"] == regime].iterrows():
            ranked.append(Ranked(r["dimension"], float(r["gain"]), float(r["low"]), float(r["high"]),
                                 plural(int(r['n_steps']), "one-dimension step"), int(r["n_steps"])))
    ranked = [r for r in ranked if r.dimension in DIMENSIONS]
    return tuple(sorted(ranked, key=lambda r: -r.gain))


def plan_next_sweep(trials: pd.DataFrame, *, configs: pd.DataFrame | None = None) -> NextSweep | None:
    """The next sweep's base, ranking and strategies from a run's trials; None when nothing finished.

    ``configs``: ``aggregate_seeds(trials)`` when the caller already has it (read, not changed).
    """
    configs = aggregate_seeds(trials) if configs is None else configs
    if configs.empty:
        return None
    regime = regime_order(configs)[-1]
    in_regime = configs[(configs["regime"] == regime) & configs["flops"].notna()]
    if in_regime.empty:
        return None
    best = in_regime.sort_values(["top1_mean", "flops"], ascending=[False, True]).iloc[0]
    epochs = int(pd.to_numeric(configs.loc[configs["regime"] == regime, "epochs"]).max())
    ranking = _ranking(trials, regime, configs)
    why = {}
    if ranking:
        why[ranking[0].dimension] = STRATEGY_WHY["best"]
        if len(ranking) > 1:
            why[ranking[1].dimension] = STRATEGY_WHY["runner_up"]
        why.setdefault("resnet_rs", STRATEGY_WHY["resnet_rs"])
    else:
        why = {"resnet_rs": STRATEGY_WHY["resnet_rs"], "compound": STRATEGY_WHY["compound"],
               "depth": STRATEGY_WHY["fallback"], "width": STRATEGY_WHY["fallback"]}
    return NextSweep(base=str(best["name"]), base_flops=float(best["flops"]), base_top1=float(best["top1_mean"]),
                     regime=regime, regime_epochs=epochs, ranking=ranking, strategies=tuple(why), why=why)
