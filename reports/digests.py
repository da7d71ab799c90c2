"""The report's tables as display text: numbers formatted with their spread, long tables digested.

Pure functions from the analysis tables (``pareto_configs``, ``scaling_law_fits``,
``equal_flop_table``, ``axis_effects``, the trials table) to the short DataFrames of strings that
``Document.table`` shows; the full tables go to CSV unchanged. Accuracies and errors are in %,
FLOPs per image (fvcore convention).
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from scaling.wording import plural

from .binning import flop_unit, format_flops

__all__ = ["front_digest", "fits_digest", "best_dimension_text", "equal_flop_digest", "axis_effects_digest",
           "trial_digest", "trial_columns", "trained_at", "clipped", "spread_along", "num", "sig", "pm",
           "findings_digest", "finding_text", "run_digest"]


def front_digest(front: pd.DataFrame, run_flops=None) -> pd.DataFrame:
    """The FLOP front as display text: FLOPs in the unit of the run's figures (``run_flops``: every FLOP
    value of the run; the front's own when None), params (M), top-1 ± std, and seeds where some
    configuration has several."""
    div, unit = flop_unit(front["flops"] if run_flops is None else run_flops)
    out = pd.DataFrame({
        "regime": front["regime"], "config": front["name"],
        unit: front["flops"].map(lambda v: sig(v / div)),
        "params (M)": front["params"].map(lambda v: sig(v / 1e6)),
        "top-1 (%)": [pm(m, s) for m, s in zip(front["top1_mean"], front["top1_std"])]})
    if len(front) and front["n_seeds"].max() > 1:
        out["seeds"] = front["n_seeds"].astype(int)
    return out


def fits_digest(fits: pd.DataFrame, run_flops: pd.Series) -> pd.DataFrame:
    """The scaling-law fits as display text, FLOP ranges in the unit of the run's figures."""
    div, unit = flop_unit(run_flops)
    return pd.DataFrame({
        "regime": fits["regime"], "dimension": fits["dimension"], "configs": fits["n_configs"],
        "points": fits["n_points"], f"{unit} range": [f"{num(a * 1e9 / div, 3)}-{num(b * 1e9 / div, 3)}"
                                                      for a, b in zip(fits["gflops_min"], fits["gflops_max"])],
        "b": [pm(b, s, 2) for b, s in zip(fits["b"], fits["b_std"])],
        "floor c (%)": [pm(c, s, 1) for c, s in zip(fits["c"], fits["c_std"])],
        "pp per 2x FLOPs at budget": [pm(g, s, 2) for g, s in zip(fits["gain_per_doubling"], fits["gain_std"])],
        "note": fits["note"].fillna("")})


def best_dimension_text(regime: str, b: dict) -> str:
    """One sentence on the dimension that buys a regime the most accuracy per added FLOP."""
    text = (f"`{regime}`: at about {format_flops(b['budget_gflops'] * 1e9, 3)}, **{b['dimension']}** gives the most "
            "accuracy "
            f"per added FLOP: about {b['gain']:.2f} ± {b['gain_std']:.2f} percentage points less top-1 error "
            f"per doubling of FLOPs (fit on {b['n_points']} points)")
    if b["runner_up"] is not None:
        text += (f", ahead of {b['runner_up']} ({b['runner_up_gain']:.2f} ± {b['runner_up_std']:.2f})"
                 + ("" if b["clear"] else ", but within the uncertainty"))
    return text + "."


def equal_flop_digest(table: pd.DataFrame) -> pd.DataFrame:
    """Per regime and FLOP group: the best configuration, its runner-up and the gap between them
    ('within spread' of the seeds only when some configuration has several)."""
    rows = []
    for (regime, group), g in table.groupby(["regime", "group"], sort=False):
        best, rival = g.iloc[0], g.iloc[1]
        within = rival["within_spread"]
        rows.append({"regime": regime, "FLOP group": group, "configs": len(g), "best": best["name"],
                     "top-1 (%)": pm(best["top1_mean"], best["top1_std"]), "runner-up": rival["name"],
                     "gap (pp)": num(rival["delta_top1"]),
                     "within spread": "–" if pd.isna(within) else ("yes" if bool(within) else "no")})
    out = pd.DataFrame(rows)
    if len(table) and table["n_seeds"].max() <= 1:
        out = out.drop(columns="within spread")
    return out


def axis_effects_digest(effects: pd.DataFrame, regimes: list[str]) -> pd.DataFrame:
    """Mean error (n trials) per axis value, a column per regime, axes in the order of ``effects``."""
    cells = [f"{num(m, 1)} (n={n})" for m, n in zip(effects["error_mean"], effects["n_trials"])]
    # text axes have no numeric order: sort them by value (a NaN key would drop their rows)
    pivot = effects.assign(cell=cells, order=effects["order"].fillna(0))
    pivot = pivot.pivot_table(index=["axis", "value", "order"], columns="regime", values="cell",
                              aggfunc="first", sort=False).reset_index()
    pivot["_a"] = pivot["axis"].map({a: i for i, a in enumerate(dict.fromkeys(effects["axis"]))})
    pivot = pivot.sort_values(["_a", "order", "value"]).drop(columns=["_a", "order"])
    return pivot[["axis", "value"] + [r for r in regimes if r in pivot.columns]].fillna("–")


def trial_digest(rows: pd.DataFrame) -> pd.DataFrame:
    """Trials as display text: id, name, regime, seed, status, epochs done, and the error cut at 160
    characters; at most 200 rows (the CSV table has them all)."""
    listed = rows[trial_columns(rows)].copy()
    listed["epochs_done"] = listed["epochs_done"].map(lambda v: "–" if pd.isna(v) else str(int(v)))
    listed["error"] = listed["error"].map(lambda e: (e[:160] + "…") if len(e) > 160 else e)
    return listed.head(200)


def trial_columns(rows: pd.DataFrame) -> list[str]:
    """The columns a trial list shows: id, name, regime, seed, status, epochs done, error (those present)."""
    return [c for c in ("trial_id", "name", "regime", "seed", "status", "epochs_done", "error") if c in rows]


def trained_at(df: pd.DataFrame) -> str:
    """' Trained at batch 64 (peak learning rate 0.025).': what the trials used, which on small
    data sets is less than the regime's nominal batch."""
    parts = []
    for col, label in (("batch_size", "batch"), ("lr_peak", "peak learning rate")):
        if col in df:
            values = sorted(pd.to_numeric(df[col], errors="coerce").dropna().unique())
            if values:
                parts.append(f"{label} {', '.join(f'{v:g}' for v in values[:6])}{' ...' if len(values) > 6 else ''}")
    return f" Trained at {parts[0]}" + (f" ({parts[1]})" if len(parts) > 1 else "") + "." if parts else ""


def clipped(value, limit: int = 200) -> str:
    """A manifest value as text (JSON for lists and mappings), cut at ``limit`` characters."""
    text = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value, default=str)
    text = str(text)
    return f"{text[:limit]}{'…' if len(text) > limit else ''}"


def spread_along(names: list[str], k: int = 6) -> list[str]:
    """Up to ``k`` names spread evenly along a list (cheapest, most expensive and between)."""
    if len(names) <= k:
        return list(names)
    idx = sorted(set(np.linspace(0, len(names) - 1, k).round().astype(int)))
    return [names[i] for i in idx]


def num(v, digits: int = 2) -> str:
    """``v`` with ``digits`` decimals; '–' when missing."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return "–"
    return f"{v:.{digits}f}"


def sig(v, digits: int = 3) -> str:
    """``v`` to ``digits`` significant figures, so tiny networks do not print as 0.00; '–' when missing."""
    if v is None or (isinstance(v, float) and not np.isfinite(v)) or pd.isna(v):
        return "–"
    return f"{v:.{digits}g}"


def pm(mean, std, digits: int = 1) -> str:
    """'mean ± std' with ``digits`` decimals ('mean' alone without a std, '–' without a mean)."""
    if pd.isna(mean):
        return "–"
    return f"{mean:.{digits}f}" + ("" if pd.isna(std) else f" ± {std:.{digits}f}")


def findings_digest(findings) -> pd.DataFrame:
    """The tested findings as display text: claim, regime, verdict, effect with its 95 % interval, basis."""
    rows = []
    for f in findings:
        e = f.estimate
        rows.append({"claim": f.claim.source.split(" (")[0] + ": " + f.claim.key.replace("_", " "),
                     "regime": f.regime or "all", "verdict": f.verdict + (" (flagged trials)" if f.flagged else ""),
                     "effect": f"{e.effect:+.2f} {f.unit}" if e else "–",
                     "95 % interval": f"[{e.low:+.2f}, {e.high:+.2f}]" if e else "–",
                     "based on": (f"{e.n_units} comparisons" + (f", {e.n_seeds} seeds" if e.n_seeds > 1 else ""))
                     if e else "–"})
    return pd.DataFrame(rows)


def finding_text(f, figure: str | None, csv: str, n_trials: int) -> str:
    """One tested finding in a paragraph: the claim, the verdict, what was measured, the effect with
    its interval and method, and the comparisons it rests on, linked to its figure and table."""
    e = f.estimate
    pairs = [f"{a} vs {b}" for a, b in zip(f.comparisons["a"], f.comparisons["b"])]
    shown = "; ".join(pairs[:4]) + (f"; and {len(pairs) - 4} more" if len(pairs) > 4 else "")
    where = f" in `{f.regime}`" if f.regime else ""
    text = f"**{f.claim.source}: {f.claim.statement}** Verdict{where}: **{f.verdict}**"
    text += f", because {f.flagged}." if f.flagged else "."
    if e is None:
        return text
    text += (f" Measured: {f.measure}. "
             f"Effect {e.effect:+.2f} {f.unit}, 95 % interval [{e.low:+.2f}, {e.high:+.2f}] ({e.method}).")
    if f.claim.key == "resolution" and f.detail:
        text += f" The best other dimension here is {f.detail}."
    if f.claim.key == "regime" and f.detail:
        text += f" Per regime: {f.detail}."
    links = (f"figure [{figure}]({figure}), " if figure else "") + f"table [{csv}]({csv})"
    return text + f" It rests on {len(f.configs())} configurations ({n_trials} trials): {shown} ({links})."


def run_digest(manifest: dict, trials: pd.DataFrame | None = None) -> pd.DataFrame:
    """The sweep's manifest as a two-column table a person reads: what ran, on what, with what
    (the full record, the spec as written included, stays in the run's manifest.json). A regime's
    batch, peak learning rate and warm-up are those its trials trained with (``trials``' columns
    ``batch_size``, ``lr_peak``, ``warmup_epochs``; on a small data set the batch is cut to fit),
    the regime's nominal values only where no trial recorded them."""
    rows = []

    def add(item: str, value) -> None:
        if value not in (None, "", [], {}):
            rows.append({"": item, "value": str(value)})

    add("sweep", " – ".join(v for v in (manifest.get("name"), manifest.get("description")) if v))
    add("space", _space_text(manifest))
    for name, r in (manifest.get("regimes") or {}).items():
        add(f"regime `{name}`", _regime_text(r, _trained(trials, name)) if isinstance(r, dict) else r)
    add("data", _dataset_text(manifest.get("dataset")))
    seeds = manifest.get("seeds")
    add("seeds", ", ".join(map(str, seeds)) if isinstance(seeds, list) else seeds)
    add("trials", manifest.get("n_trials"))
    add("resources per trial", _resources_text(manifest.get("resources")))
    scheduler = manifest.get("scheduler")
    add("scheduler", scheduler.get("name") if isinstance(scheduler, dict) else scheduler)
    add("devices", ", ".join(manifest.get("devices") or []))
    host = manifest.get("host") or {}
    add("host", ", ".join(str(v) for v in (host.get("hostname"), host.get("platform"),
                                            host.get("python") and f"Python {host['python']}") if v))
    versions = manifest.get("versions") or {}
    add("software", ", ".join(f"{k} {v}" for k, v in versions.items() if v and k in ("archscale", "torch", "ray")))
    commit = manifest.get("git_commit")
    add("git commit", commit[:12] if isinstance(commit, str) else commit)
    add("output", manifest.get("output_dir"))
    return pd.DataFrame(rows, columns=["", "value"])


def _space_text(manifest: dict) -> str:
    space = manifest.get("space") or {}
    raw = (manifest.get("spec") or {}).get("space")
    parts = [str(space.get("name") or ""), str(space.get("summary") or "")]
    if isinstance(raw, dict):
        axes = [f"{k} {v}" for k, v in (raw.get("axes") or {}).items()]
        for group in raw.get("paired") or []:
            if isinstance(group, dict):
                axes.append(" with ".join(f"{k} {v}" for k, v in group.items()))
        if axes:
            parts.append("varies " + "; ".join(axes))
        match = raw.get("match")
        if isinstance(match, dict) and match.get("solve"):
            parts.append(f"{match['solve']} solved to equal FLOPs")
        if raw.get("kind") == "scaling":
            parts.append(f"scaling {', '.join(map(str, raw.get('strategies') or []))} to "
                         f"{', '.join(f'{m}x' for m in raw.get('multipliers') or [])}")
    elif raw:
        parts.append(f"preset or file {raw}")
    return ": ".join(p for p in parts[:2] if p) + ("; " + "; ".join(parts[2:]) if parts[2:] else "")


def _trained(trials: pd.DataFrame | None, regime: str) -> dict:
    """{column: the values (sorted) its trials trained with} of a regime, for batch, peak lr and warm-up."""
    if trials is None or "regime" not in trials:
        return {}
    rows = trials[trials["regime"] == regime]
    return {c: sorted(pd.to_numeric(rows[c], errors="coerce").dropna().unique())
            for c in ("batch_size", "lr_peak", "warmup_epochs") if c in rows}


def _regime_text(r: dict, trained: dict | None = None) -> str:
    trained = trained or {}

    def values(column, nominal):
        got = trained.get(column)
        return ", ".join(f"{v:g}" for v in got) if got else (None if nominal is None else f"{nominal:g}")

    nominal_lr = r["lr_per_256"] * r["batch_size"] / 256 if r.get("lr_per_256") is not None and r.get("batch_size") \
        else None
    text = (f"{plural(r.get('epochs'), 'epoch')}, {r.get('schedule', '')} schedule, "
            f"batch {values('batch_size', r.get('batch_size'))}")
    lr, warmup = values("lr_peak", nominal_lr), values("warmup_epochs", r.get("warmup_epochs"))
    if lr is not None:
        text += f" (peak lr {lr}" + (f", warm-up {warmup} epoch{'' if warmup == '1' else 's'})"
                                     if warmup is not None else ")")
    if trained.get("batch_size") and r.get("batch_size") and trained["batch_size"] != [r["batch_size"]]:
        text += f", as trained (the regime's batch {r['batch_size']:g} is cut to fit the data, the lr follows)"
    extras = [f"weight decay {r['weight_decay']:g}" if r.get("weight_decay") is not None else "",
              f"label smoothing {r['label_smoothing']:g}" if r.get("label_smoothing") else "",
              f"EMA {r['ema_decay']:g}" if r.get("ema_decay") else ""]
    return ", ".join([text] + [e for e in extras if e])


def _dataset_text(d) -> str:
    if not isinstance(d, dict):
        return "" if d is None else str(d)
    text = d.get("label") or d.get("name") or ""
    if d.get("root"):
        text += f" from {d['root']}"
    return text


def _resources_text(r) -> str:
    if not isinstance(r, dict):
        return "" if r is None else str(r)
    parts = [f"{r['cpus']:g} CPU" if isinstance(r.get("cpus"), (int, float)) else "",
             f"GPUs {r['gpus']}" if r.get("gpus") not in (None, 0) else "",
             f"at most {r['max_concurrent']} at once" if r.get("max_concurrent") else ""]
    return ", ".join(p for p in parts if p)
