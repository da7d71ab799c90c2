"""A health verdict for every trial: did it learn, settle, stay finite, and agree with its other seeds?

One function, ``judge``, reads the trials and epochs tables (``experiments.results.store``) and gives
each trial one verdict of ``scaling.conventions.HEALTH_VALUES`` with the reason in words. The results
store writes it as the trials table's ``health`` and ``health_reason`` columns, so ``load_results``,
``archscale status``, the sweep's progress line and the report all read the same verdict.

The rules, checked in this order (the first that holds is the verdict):

``diverged``
    the trial's status is diverged (its loss went NaN), or its last training loss is not finite or
    above ``diverge_ratio`` x the lowest training loss it reached.
``at_chance``
    final top-1 below ``chance_factor`` x chance, where chance is 100 / classes % (the classes of the
    data set the trial trained on).
``not_converged``
    a trial that trained every epoch was still improving fast at the end: over its last ``window``
    evaluated epochs, top-1 rose by at least ``top1_gain_pp`` points per epoch *and* the training loss
    fell by at least ``loss_drop`` (a fraction of its value) per epoch. A trial stopped early by the
    scheduler is a result with fewer epochs by design, so this rule leaves it alone.
``seeds_disagree``
    a network (configuration and regime) whose finished seeds' final top-1 spread over more than
    ``seed_margin_pp`` points: its otherwise healthy seeds get this verdict.
``ok``
    none of the above. A trial with no result yet (pending, running, failed, interrupted) has "".

The thresholds are this project's choice (no paper sets them), each with its reason on its field
below; a sweep spec's ``health: {chance_factor: 2, seed_margin_pp: 5, ...}`` overrides any of them,
and the manifest records the rules a sweep used.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from scaling.conventions import HEALTH_VALUES, RESULT_STATUSES
from scaling.errors import ArchScaleError
from scaling.validate import check_keys, number, whole

__all__ = ["HealthRules", "HEALTH_VALUES", "judge", "chance_top1", "flagged", "health_counts"]

OK, AT_CHANCE, NOT_CONVERGED, DIVERGED, SEEDS_DISAGREE = HEALTH_VALUES


@dataclass(frozen=True)
class HealthRules:
    """The thresholds of the health verdicts (see the module docstring); all our choice."""

    #: at_chance below this multiple of chance: 1.5x keeps a 10-class trial at 14.5 % (the issue's dead
    #: trial) flagged while any network that learned the task at all (tens of %) passes.
    chance_factor: float = 1.5
    #: not_converged looks at this many last epoch-to-epoch steps: 2 steps, so one noisy epoch
    #: (RandAugment, a small validation set) does not make the verdict alone.
    window: int = 2
    #: ... top-1 still rising by at least this many points per epoch: on a cosine schedule the last
    #: epochs run at a small learning rate, where a settled run gains well under a point an epoch.
    top1_gain_pp: float = 2.0
    #: ... and the training loss still falling by at least this fraction of itself per epoch.
    loss_drop: float = 0.05
    #: diverged when the last training loss exceeds this multiple of the lowest it reached: training
    #: noise moves it by tens of %, a run that blew up by far more.
    diverge_ratio: float = 2.0
    #: seeds_disagree when a network's seeds' final top-1 spread over more than this many points:
    #: seeds of a healthy run differ by a few points, the issue's split networks by 30 to 90.
    seed_margin_pp: float = 10.0

    @classmethod
    def from_spec(cls, value: Mapping | None, where: str = "health") -> "HealthRules":
        """The rules of a sweep spec's ``health:`` mapping (unset keys keep their defaults)."""
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise ArchScaleError(where, f"expected a mapping of health thresholds ({', '.join(cls.fields())}), "
                                        f"got {value!r}")
        check_keys(value, cls.fields(), where, "health threshold")
        out = {}
        for key, v in value.items():
            if key == "window":
                out[key] = whole(v, f"{where}.window", low=1)
            else:
                out[key] = number(v, f"{where}.{key}", low=0, low_open=key in ("chance_factor", "diverge_ratio"))
        return cls(**out)

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def chance_top1(trials: pd.DataFrame) -> pd.Series:
    """Chance top-1 (%) of each trial: 100 / the classes it trained on (``classes``, else the spec's
    ``num_classes``); NaN where neither is known."""
    classes = pd.Series(np.nan, index=trials.index)
    for col in ("num_classes", "classes"):  # the trained data set's count wins over the spec's
        if col in trials:
            known = pd.to_numeric(trials[col], errors="coerce")
            classes = known.where(known.notna(), classes)
    return 100.0 / classes.where(classes > 0)


def judge(trials: pd.DataFrame, epochs: pd.DataFrame | None, rules: HealthRules | None = None) -> pd.DataFrame:
    """``health`` and ``health_reason`` of every row of ``trials`` (a DataFrame on its index).

    ``trials`` needs ``trial_id``, ``status``, ``final_top1``, ``name`` and ``regime`` (and ``classes``
    or ``num_classes`` for the chance rule); ``epochs`` one row per trial per epoch (``trial_id``,
    ``epoch``, ``val_top1``, ``train_loss``), or None.
    """
    rules = rules or HealthRules()
    health = pd.Series("", index=trials.index, dtype=object)
    reason = pd.Series("", index=trials.index, dtype=object)
    if trials.empty:
        return pd.DataFrame({"health": health, "health_reason": reason})
    status = trials["status"].astype(str)
    top1 = pd.to_numeric(trials["final_top1"], errors="coerce")
    chance = chance_top1(trials)
    history = _histories(epochs)
    for i in trials.index:
        if status[i] not in RESULT_STATUSES:
            continue
        verdict = (_diverged(status[i], history.get(trials.at[i, "trial_id"]), rules)
                   or _at_chance(top1[i], chance[i], rules)
                   or (_not_converged(history.get(trials.at[i, "trial_id"]), rules) if status[i] == "done" else None))
        health[i], reason[i] = verdict or (OK, "")
    scored = trials[(health != "") & (health != DIVERGED) & top1.notna()]
    network = [c for c in ("regime", "name") if c in scored]  # (a hand-made plan may name neither)
    for _, g in scored.groupby(network, sort=False) if network else ():
        values = top1[g.index]
        if len(g) > 1 and values.max() - values.min() > rules.seed_margin_pp:
            why = (f"its {len(g)} seeds end at {', '.join(f'{v:.1f}' for v in values)} % top-1, more than "
                   f"{rules.seed_margin_pp:g} points apart")
            agreeing = g.index[health[g.index] == OK]
            health[agreeing], reason[agreeing] = SEEDS_DISAGREE, why
    return pd.DataFrame({"health": health, "health_reason": reason})


def _histories(epochs: pd.DataFrame | None) -> dict[str, pd.DataFrame]:
    if epochs is None or epochs.empty or "trial_id" not in epochs:
        return {}
    ordered = epochs.sort_values(["trial_id", "epoch"])
    return {tid: g for tid, g in ordered.groupby("trial_id", sort=False)}


def _diverged(status: str, hist: pd.DataFrame | None, rules: HealthRules):
    if status == DIVERGED:
        return DIVERGED, "its loss went NaN"
    if hist is None or "train_loss" not in hist:
        return None
    loss = pd.to_numeric(hist["train_loss"], errors="coerce").dropna()
    if loss.empty:
        return None
    last = float(loss.iloc[-1])
    if not math.isfinite(last):
        return DIVERGED, f"its last training loss is {last}"
    lowest = float(loss.min())
    if lowest > 0 and last > rules.diverge_ratio * lowest:
        return DIVERGED, (f"its training loss climbed to {last:.3g}, over {rules.diverge_ratio:g} x the lowest it "
                          f"reached ({lowest:.3g})")
    return None


def _at_chance(top1: float, chance: float, rules: HealthRules):
    if math.isnan(top1) or math.isnan(chance) or not top1 < rules.chance_factor * chance:
        return None
    return AT_CHANCE, (f"final top-1 {top1:.1f} % is below {rules.chance_factor:g} x chance ({chance:.3g} % with "
                       f"{100 / chance:.0f} classes)")


def _not_converged(hist: pd.DataFrame | None, rules: HealthRules):
    if hist is None or "val_top1" not in hist:
        return None
    evaluated = hist[pd.to_numeric(hist["val_top1"], errors="coerce").notna()]
    if len(evaluated) < rules.window + 1:
        return None
    last = evaluated.iloc[-(rules.window + 1):]
    top1 = pd.to_numeric(last["val_top1"], errors="coerce").to_numpy(float)
    loss = pd.to_numeric(last.get("train_loss", pd.Series(np.nan, index=last.index)), errors="coerce").to_numpy(float)
    gain = (top1[-1] - top1[0]) / rules.window
    if not (np.all(np.isfinite(loss)) and loss[0] > 0):
        return None
    drop = (loss[0] - loss[-1]) / loss[0] / rules.window
    if gain >= rules.top1_gain_pp and drop >= rules.loss_drop:
        return NOT_CONVERGED, (f"over its last {rules.window} epochs top-1 still rose {gain:.1f} points and the "
                               f"training loss fell {drop:.0%} per epoch")
    return None


def flagged(health) -> pd.Series | bool:
    """Whether a verdict (or a Series of them) flags the trial: anything but "ok" and "" (no result)."""
    if isinstance(health, pd.Series):
        return health.fillna("").astype(str).isin(HEALTH_VALUES[1:])
    return health in HEALTH_VALUES[1:]


def health_counts(health) -> dict[str, int]:
    """Trials per verdict, in ``HEALTH_VALUES`` order, those with a count only ("" left out)."""
    values = list(health)
    return {h: n for h in HEALTH_VALUES if (n := values.count(h))}
