"""The results tables as reports read them: normalised trials, seed aggregates, regime order.

The sweep writes one row per trial (``trials``) and one row per trial per epoch (``epochs``).
Older or partial runs may lack optional columns or hold NaN; ``normalize_trials`` fills what the
reports need so the other modules can rely on it. Accuracies are percentages (0-100).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from scaling.conventions import FINAL_STATUSES, HEALTH_VALUES, TRIAL_STATUSES
from scaling.spec import ArchSpec

__all__ = ["FINISHED", "NOT_PLOTTED", "STATUSES", "ARCH_FIELDS", "normalize_trials",
           "finished_trials", "aggregate_seeds", "regime_order", "status_counts", "dataset_name", "chance_levels",
           "flagged_summary", "with_flagged_counted"]

#: Statuses that are results: "stopped" is an ASHA early stop (a real result with fewer epochs).
FINISHED = TRIAL_STATUSES[:2]
#: Results that are listed in reports but never drawn as points.
NOT_PLOTTED = tuple(s for s in FINAL_STATUSES if s not in FINISHED)
STATUSES = TRIAL_STATUSES


def _arch_fields() -> tuple[str, ...]:
    """ArchSpec's fields in spec order, with ``depth_number`` (the nominal depth) after ``depth``."""
    names = [f.name for f in dataclasses.fields(ArchSpec)]
    at = names.index("depth") + 1
    return tuple(names[:at] + ["depth_number"] + names[at:])


#: Architecture fields of a trial row: every ArchSpec field plus ``depth_number``, in spec order.
#: Derived, never copied, so a new ArchSpec field is a report axis with no other edit.
ARCH_FIELDS = _arch_fields()

_NUMERIC = ("epochs", "seed", "depth_number", "width_multiplier", "cardinality", "bottleneck_width",
            "widen_factor", "resolution", "params", "flops", "activations", "final_top1", "best_top1",
            "final_top5", "best_top5", "final_val_loss", "final_train_loss", "epochs_done",
            "train_time_s", "observed_images_per_s", "latency_ms", "throughput", "train_images_per_s",
            "measured_train_time_s", "flop_multiplier", "chance_top1")

# Per-config columns averaged over seeds (measured quantities); the rest are taken from the first seed.
_MEASURED = ("latency_ms", "throughput", "train_time_s", "measured_train_time_s", "observed_images_per_s",
             "epochs_done", "final_val_loss", "final_train_loss", "final_top5", "best_top5")


#: Marks a normalised table (in ``DataFrame.attrs``).
_NORMALISED = "archscale.normalised"


def normalize_trials(trials: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``trials`` with every column the reports use, typed.

    Adds (when missing) ``trial_id``, ``name``, ``regime``, ``epochs``, ``seed``, ``status``,
    ``error`` and the optional cost columns as NaN, coerces numeric columns, and adds:
    ``top1`` (final top-1 in %, else best top-1), ``error_pct`` (100 - top1) and ``finished``
    (status done/stopped with a top-1), ``flagged`` (a finished trial whose ``health`` verdict is not
    ok) and ``trusted`` (finished, and no finished seed of its network, the same name and regime, is
    flagged: what fronts, fits, equal-FLOP tables and findings use). A missing ``status`` is inferred:
    "done" when the row has a top-1, else "pending"; a finished row without a verdict (a table from
    before verdicts) counts as ok. Idempotent; on a table it normalised (or rows of one) it only
    recomputes the derived columns (top1 to trusted), so plots given the normalised table do not
    type it again (``tables_of``), and a verdict changed since is judged anew.
    """
    if trials.attrs.get(_NORMALISED):
        return _derive(trials.copy())  # typed already (read once): only what derives from status and health
    return _normalise(trials.copy())


def _normalise(df: pd.DataFrame) -> pd.DataFrame:
    """``normalize_trials``'s work, on a copy it owns: the columns typed, then the derived ones."""
    df.columns = [str(c) for c in df.columns]
    if "trial_id" not in df:
        df["trial_id"] = [f"trial-{i}" for i in range(len(df))]
    df["trial_id"] = df["trial_id"].astype(str)
    if "name" not in df:
        df["name"] = df["trial_id"]
    df["name"] = df["name"].where(df["name"].notna(), df["trial_id"]).astype(str)
    if "regime" not in df:
        df["regime"] = "default"
    df["regime"] = df["regime"].fillna("default").astype(str)
    for col in _NUMERIC:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df else np.nan
    if "seed" in df:
        df["seed"] = df["seed"].fillna(0)
    if "status" not in df:
        df["status"] = np.where(df["final_top1"].notna() | df["best_top1"].notna(), "done", "pending")
    df["status"] = df["status"].fillna("pending").astype(str).str.strip().str.lower()
    if "error" not in df:
        df["error"] = ""
    df["error"] = df["error"].fillna("").astype(str)
    for col in ("dataset", "device", "group", "strategy", "depth", "block"):
        if col not in df:
            df[col] = np.nan
    if df["depth_number"].isna().all() and df["depth"].notna().any():
        df["depth_number"] = pd.to_numeric(df["depth"], errors="coerce")
    if "health_reason" not in df:
        df["health_reason"] = ""
    df["health_reason"] = df["health_reason"].fillna("").astype(str)
    df.attrs[_NORMALISED] = True  # kept by copies and row selections: the next normalize_trials only derives
    return _derive(df)


def _derive(df: pd.DataFrame) -> pd.DataFrame:
    """The columns that follow from a typed table's top-1, status and health verdicts."""
    df["top1"] = df["final_top1"].where(df["final_top1"].notna(), df["best_top1"])
    df["error_pct"] = 100.0 - df["top1"]
    df["finished"] = df["status"].isin(FINISHED) & df["top1"].notna()
    health = df["health"] if "health" in df else pd.Series("", index=df.index)
    df["health"] = health.fillna("").astype(str).where(~df["finished"] | (health.fillna("") != ""), HEALTH_VALUES[0])
    df["flagged"] = df["finished"] & df["health"].isin(HEALTH_VALUES[1:])
    network_flagged = df.groupby(["regime", "name"], sort=False)["flagged"].transform("any").astype(bool)
    df["trusted"] = df["finished"] & ~network_flagged
    return df


def with_flagged_counted(trials: pd.DataFrame) -> pd.DataFrame:
    """The trials normalised as if every verdict were ok: the flagged networks counted in, as a
    finding would use them were they healthy (``reports.findings.assess_claims``)."""
    return normalize_trials(trials.assign(health=HEALTH_VALUES[0]))


def finished_trials(trials: pd.DataFrame, *, flagged: bool = False) -> pd.DataFrame:
    """The rows that are results to analyse: status done or stopped, with a top-1, of networks none of
    whose seeds is flagged by its health verdict (``trusted``); with ``flagged``, the finished rows of
    the flagged networks instead (drawn hollow, left out of every analysis)."""
    df = normalize_trials(trials)
    return df[df["finished"] & ~df["trusted"] if flagged else df["trusted"]].copy()


def regime_order(trials: pd.DataFrame) -> list[str]:
    """Regime names ordered by planned epochs (shortest first), then by name."""
    df = normalize_trials(trials) if "finished" not in trials else trials
    if df.empty:
        return []
    epochs = df.groupby("regime")["epochs"].max()
    return sorted(epochs.index, key=lambda r: (np.inf if pd.isna(epochs[r]) else epochs[r], r))


def aggregate_seeds(trials: pd.DataFrame, *, flagged: bool = False) -> pd.DataFrame:
    """One row per (regime, config name) over finished trials, averaging the seeds: the networks with no
    flagged seed, or with ``flagged`` those with one (``finished_trials``).

    Columns: ``regime``, ``name``, ``n_seeds``, ``n_stopped``, ``all_stopped``, ``top1_mean``,
    ``top1_std`` (sample std over seeds, NaN for one seed), ``top1_min``, ``top1_max``,
    ``error_mean`` (100 - top1_mean, %), ``error_std``, the measured columns averaged over seeds
    (``latency_ms``, ``throughput`` in images/s, ``train_time_s``, ...), ``health`` (the first verdict
    among the seeds that is not ok, else ok), and the first seed's value of every other column
    (architecture fields, ``params``, ``flops``, ``group``, ...).
    """
    df = finished_trials(trials, flagged=flagged)
    if df.empty:
        cols = ["regime", "name", "n_seeds", "n_stopped", "all_stopped", "top1_mean", "top1_std",
                "top1_min", "top1_max", "error_mean", "error_std"]
        return pd.DataFrame(columns=cols + [c for c in df.columns if c not in cols])
    g = df.groupby(["regime", "name"], sort=False)
    out = g.first()
    stats = g["top1"].agg(["count", "mean", "std", "min", "max"])
    out["n_seeds"] = stats["count"].astype(int)
    out["n_stopped"] = g["status"].agg(lambda s: int((s == "stopped").sum()))
    out["all_stopped"] = out["n_stopped"] == out["n_seeds"]
    out["top1_mean"], out["top1_std"] = stats["mean"], stats["std"]
    out["top1_min"], out["top1_max"] = stats["min"], stats["max"]
    out["error_mean"] = 100.0 - out["top1_mean"]
    out["error_std"] = out["top1_std"]
    for col in _MEASURED:
        out[col] = g[col].mean()
    out["health"] = g["health"].agg(lambda h: next((v for v in h if v != HEALTH_VALUES[0]), HEALTH_VALUES[0]))
    out = out.reset_index()
    order = {r: i for i, r in enumerate(regime_order(df))}
    out["_r"] = out["regime"].map(order)
    out = out.sort_values(["_r", "flops", "name"], kind="stable").drop(columns="_r")
    return out.reset_index(drop=True)


def status_counts(trials: pd.DataFrame) -> dict[str, int]:
    """Trials per status, the known statuses first (zero counts included), then any others."""
    df = normalize_trials(trials)
    counts = df["status"].value_counts()
    out = {s: int(counts.get(s, 0)) for s in STATUSES}
    out.update({str(s): int(n) for s, n in counts.items() if s not in out})
    return out


def chance_levels(trials: pd.DataFrame) -> list[float]:
    """The chance top-1 (%) levels of the run's trials (``chance_top1``, 100 / classes), distinct and
    sorted; empty when the table does not record it."""
    if "chance_top1" not in trials:
        return []
    return sorted(pd.to_numeric(trials["chance_top1"], errors="coerce").dropna().unique().tolist())


def flagged_summary(trials: pd.DataFrame) -> str:
    """'2 configurations (d20-w1 at_chance, d11-w1 seeds_disagree)': the networks a flagged seed keeps out
    of the analyses; "" when there are none."""
    df = normalize_trials(trials) if "trusted" not in trials else trials
    rows = df[df["flagged"]].drop_duplicates(["regime", "name"])
    if rows.empty:
        return ""
    several = df["regime"].nunique() > 1
    names = [f"{r.name}{f' ({r.regime})' if several else ''} {r.health}" for r in rows.itertuples()]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return f"{len(names)} configuration{'s' if len(names) > 1 else ''} ({shown})"


def dataset_name(trials: pd.DataFrame, manifest: dict | None = None) -> str | None:
    """The dataset the trials ran on ("a, b" when several), else the manifest's, else None."""
    names = sorted({str(d) for d in trials.get("dataset", pd.Series(dtype=object)).dropna()})
    if names:
        return ", ".join(names)
    if manifest:
        for key in ("dataset", "data"):
            value = manifest.get(key)
            if isinstance(value, str):
                return value
            if isinstance(value, dict) and isinstance(value.get("name"), str):
                return value["name"]
    return None


@dataclasses.dataclass(frozen=True)
class RunTables:
    """A run as every plot takes it, read once (``tables_of``).

    ``trials``: normalised (``normalize_trials``); ``configs``: its seeds aggregated over the trusted
    finished trials (``aggregate_seeds``); ``flagged_configs``: those of the networks with a flagged
    seed; ``epochs``: one row per trial per epoch, numeric columns typed (empty when none)."""

    trials: pd.DataFrame
    configs: pd.DataFrame
    flagged_configs: pd.DataFrame
    epochs: pd.DataFrame


def tables_of(trials: pd.DataFrame, epochs: pd.DataFrame | None = None) -> RunTables:
    """The one function that turns ``load_results`` output into what every plot and table of
    reports/ takes: pass ``.trials`` (and ``.configs`` where a function takes ``configs=``)."""
    df = normalize_trials(trials)
    ep = pd.DataFrame() if epochs is None else epochs.copy()
    for col in ("epoch", "val_top1", "val_top5", "val_loss", "train_loss", "lr", "time_s", "observed_images_per_s"):
        if col in ep:
            ep[col] = pd.to_numeric(ep[col], errors="coerce")
    return RunTables(trials=df, configs=aggregate_seeds(df), flagged_configs=aggregate_seeds(df, flagged=True),
                     epochs=ep)
