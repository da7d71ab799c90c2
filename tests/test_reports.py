"""reports/: Pareto fronts, FLOP bins, equal-FLOP tables, the power-law fit, dimensions, distributions."""
import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from powerlaw_reference import hand_written_fit

from reports import (
    aggregate_seeds,
    axis_effects,
    best_dimension,
    dimension_members,
    equal_flop_table,
    error_edf,
    fit_power_law,
    flop_bins,
    is_imagenet,
    load_reference,
    normalize_trials,
    pareto_front,
    scaling_law_fits,
    status_counts,
)
from reports.style import omitted_name_parts, short_names

BLOCKS = {26: 8, 50: 16, 101: 33, 152: 50, 200: 66}  # bottleneck blocks of the named depths


def synthetic_trials(*, dataset="cifar10", depths=(26, 50, 101), widths=(0.5, 1.0, 2.0), resolutions=(32, 64),
                     regimes=(("rs-10", 10), ("rs-100", 100)), seeds=2, failures=True, seed=0):
    """A plausible sweep's trials and epochs tables: FLOPs ~ blocks * width^2 * resolution^2 and an error
    that falls with each dimension, more with width in short regimes and more with depth in long ones.
    With ``failures``: one trial of each of error, diverged, running, pending, stopped."""
    rng = np.random.default_rng(seed)
    rows, epochs = [], []
    for (regime, ep), d, w, r in itertools.product(regimes, depths, widths, resolutions):
        long = ep >= 100
        for s in range(seeds):
            err = (20 + (8 if not long else 0) + 6 * (d / 50) ** -(0.5 if long else 0.1)
                   + 5 * w ** -(0.2 if long else 0.6) + 3 * (r / 32) ** -0.3 + rng.normal(0, 0.15))
            name = f"d{d}-w{w:g}-c1x64-r{r}"
            rows.append(dict(trial_id=f"{regime}-{name}-s{s}", name=name, regime=regime, epochs=ep, dataset=dataset,
                             seed=s, status="done", error="", block="bottleneck", depth=str(d), depth_number=d,
                             widths="64_128_256_512", width_multiplier=w, cardinality=1, bottleneck_width=64,
                             resolution=r, stochastic_depth=0.1 if d > 100 else 0.0,
                             params=int(25.5e6 * BLOCKS[d] / 16 * w ** 2),
                             flops=int(4.1e9 * BLOCKS[d] / 16 * w ** 2 * (r / 224) ** 2),
                             final_top1=100 - err, best_top1=100 - err + 0.1, epochs_done=ep,
                             train_time_s=60.0 * ep * BLOCKS[d] * w ** 2, images_per_s=1000.0, device="cpu"))
            for e in range(1, ep + 1, max(1, ep // 10)):
                epochs.append(dict(trial_id=rows[-1]["trial_id"], name=name, regime=regime, seed=s, epoch=e,
                                   train_loss=2.0 / e, val_loss=2.0 / e,
                                   val_top1=(100 - err) * (1 - np.exp(-5 * e / ep))))
    trials = pd.DataFrame(rows)
    if failures:
        for i, status in zip((1, 4, 7, 10, 13), ("error", "diverged", "running", "pending", "stopped")):
            trials.loc[i, "status"] = status
            if status != "stopped":
                trials.loc[i, ["final_top1", "best_top1", "train_time_s"]] = np.nan
            else:
                trials.loc[i, "epochs_done"] = 3
        trials.loc[1, "error"] = "CUDA out of memory; lower --batch-size"
    return trials, pd.DataFrame(epochs)


# ----- Pareto --------------------------------------------------------------------------------------

def _front(points, **kw):
    df = pd.DataFrame(points, columns=["x", "y"], index=[f"p{i}" for i in range(len(points))])
    return set(df.index[pareto_front(df, "x", "y", **kw)])


def test_pareto_dominance_cost_vs_accuracy():
    #            p0       p1       p2       p3 (dominated by p1)  p4
    pts = [(1, 70), (2, 75), (4, 80), (3, 74), (8, 79)]
    assert _front(pts) == {"p0", "p1", "p2"}


def test_pareto_ties():
    # Identical points do not dominate each other; equal x with worse y, or equal y with worse x, is dominated.
    pts = [(1, 70), (1, 70), (1, 60), (2, 70), (2, 80), (2, 80)]
    assert _front(pts) == {"p0", "p1", "p4", "p5"}


def test_pareto_maximise_x_and_minimise_y():
    pts = [(100, 30), (200, 25), (150, 28), (300, 40), (200, 26)]
    # throughput (maximise) against error (minimise)
    assert _front(pts, minimize_x=False, maximize_y=False) == {"p1", "p3"}
    # cost and error both minimised
    assert _front(pts, minimize_x=True, maximize_y=False) == {"p0", "p1", "p2"}


def test_pareto_ignores_nan_and_keeps_index():
    df = pd.DataFrame({"x": [1.0, np.nan, 2.0, 3.0], "y": [1.0, 99.0, np.nan, 2.0]}, index=[10, 11, 12, 13])
    front = pareto_front(df, "x", "y")
    assert list(front.index) == [10, 11, 12, 13] and front.dtype == bool
    assert front.tolist() == [True, False, False, True]
    assert not pareto_front(df.iloc[:0], "x", "y").any()


@pytest.mark.parametrize("min_x,max_y", [(True, True), (True, False), (False, True), (False, False)])
def test_pareto_matches_brute_force(min_x, max_y):
    rng = np.random.default_rng(1)
    pts = rng.integers(0, 8, size=(200, 2)).astype(float)  # many ties on both axes
    sx = pts[:, 0] if min_x else -pts[:, 0]
    sy = -pts[:, 1] if max_y else pts[:, 1]
    dominated = [bool(np.any((sx <= sx[i]) & (sy <= sy[i]) & ((sx < sx[i]) | (sy < sy[i])))) for i in range(len(pts))]
    df = pd.DataFrame(pts, columns=["x", "y"])
    assert pareto_front(df, "x", "y", minimize_x=min_x, maximize_y=max_y).tolist() == [not d for d in dominated]


# ----- FLOP bins and equal-FLOP tables ---------------------------------------------------------------

def test_flop_bins_greedy_within_tolerance():
    flops = pd.Series([4.1e9, 4.2e9, 4.6e9, 4.8e9, 8.0e9, 4.1e9, np.nan, 1e9])
    bins = flop_bins(flops, tolerance=0.15)
    assert bins.tolist()[:6] == [1, 1, 1, 2, 3, 1] and bins.iloc[7] == 0 and pd.isna(bins.iloc[6])
    for _, members in flops.groupby(bins):
        assert members.max() <= members.min() * 1.15
    assert flop_bins(flops, tolerance=0.0).nunique() == 6  # distinct values only
    with pytest.raises(ValueError):
        flop_bins(flops, tolerance=-1)


def test_equal_flop_table_ranks_within_groups():
    rows = []
    # three configs at ~4.1 GFLOPs (cardinality at equal complexity, ResNeXt Table 3 style), one alone at 8 G
    for name, flops, accs in [("r50", 4.1e9, [76.0, 76.2]), ("x50-32x4d", 4.2e9, [77.8, 77.6]),
                              ("x50-8x14d", 4.3e9, [77.4, 77.6]), ("r101", 7.8e9, [78.0, 78.1])]:
        for s, acc in enumerate(accs):
            rows.append(dict(trial_id=f"{name}-{s}", name=name, regime="r", seed=s, status="done", flops=flops,
                             params=25e6, final_top1=acc))
    table = equal_flop_table(pd.DataFrame(rows), tolerance=0.15)
    assert table["name"].tolist() == ["x50-32x4d", "x50-8x14d", "r50"]  # r101 alone in its bin: left out
    assert table["rank"].tolist() == [1, 2, 3] and table["group"].nunique() == 1
    assert table["delta_top1"].tolist() == pytest.approx([0.0, 0.2, 1.6])
    assert table["within_spread"].tolist()[1:] == [True, False]
    assert table["top1_std"].iloc[0] == pytest.approx(np.std([77.8, 77.6], ddof=1))
    # the matcher's groups win over FLOP bins
    grouped = pd.DataFrame(rows).assign(group=lambda d: np.where(d["name"].isin(["r50", "r101"]), "resnets", None))
    table = equal_flop_table(grouped)
    assert set(table.loc[table["group"] == "resnets", "name"]) == {"r50", "r101"}


# ----- power-law fit -------------------------------------------------------------------------------

def test_fit_recovers_known_exponent_from_noisy_points():
    rng = np.random.default_rng(0)
    flops = np.exp(rng.uniform(np.log(1e8), np.log(3e10), 60))
    error = 30 * (flops / 1e9) ** -0.4 + 5 + rng.normal(0, 0.3, flops.size)
    fit = fit_power_law(flops, error)
    assert fit.ok and fit.n_points == 60 and fit.n_configs == 60
    assert abs(fit.b - 0.4) < 3 * fit.b_std and fit.b_std < 0.05
    assert abs(fit.c - 5) < 3 * fit.c_std and fit.rmse == pytest.approx(0.3, rel=0.3)
    exact = fit_power_law(flops, 30 * (flops / 1e9) ** -0.4 + 5)
    assert (exact.a, exact.b, exact.c) == pytest.approx((30, 0.4, 5), rel=1e-4)


def test_fit_gain_per_doubling_is_the_curve_slope():
    flops = np.geomspace(1e8, 1e10, 8)
    fit = fit_power_law(flops, 20 * (flops / 1e9) ** -0.5 + 10 + np.tile([0.05, -0.05], 4))
    gain, std = fit.gain_per_doubling(2e9)
    numeric = fit.predict(2e9 / np.sqrt(2)) - fit.predict(2e9 * np.sqrt(2))
    assert gain == pytest.approx(numeric, rel=0.02) and np.isfinite(std) and std > 0


def test_scipy_fit_agrees_with_the_hand_written_fit():
    rng = np.random.default_rng(1)
    cases = []
    for _ in range(12):
        n = int(rng.integers(4, 40))
        flops = np.exp(rng.uniform(np.log(1e5), np.log(3e10), n))
        a, b, c = rng.uniform(1, 40), rng.uniform(0.05, 1.5), rng.uniform(0, 20)
        cases.append((flops, a * (flops / 1e9) ** -b + c + rng.normal(0, rng.uniform(0.01, 2), n)))
    cases.append((np.geomspace(1e9, 16e9, 5), np.array([10, 10.1, 9.9, 10, 10.05])))  # flat: a = 0
    for flops, error in cases:
        ours, before = fit_power_law(flops, error), hand_written_fit(flops, error)
        assert ours.ok and before.ok
        for key in ("a", "b", "c", "rmse"):
            assert getattr(ours, key) == pytest.approx(getattr(before, key), rel=2e-3, abs=1e-6), key
        for key in ("a_std", "b_std", "c_std"):
            assert getattr(ours, key) == pytest.approx(getattr(before, key), rel=5e-3, abs=1e-6), key


def test_fit_refuses_too_few_configs_or_a_narrow_span():
    few = fit_power_law([1e9, 2e9, 4e9, 1e9, 2e9, 4e9], [30, 25, 22, 30.2, 25.1, 21.9])
    assert not few.ok and few.n_points == 6 and few.n_configs == 3 and np.isnan(few.b) and "4" in few.note
    narrow = fit_power_law([4.0e9, 4.1e9, 4.2e9, 4.3e9], [23.9, 22.2, 22.5, 22.0])
    assert not narrow.ok and "span" in narrow.note
    nan_dropped = fit_power_law([1e9, 2e9, np.nan, 4e9, 8e9, 16e9], [30, 25, 1, 22, np.nan, 19])
    assert nan_dropped.n_points == 4


# ----- dimensions, fits per regime ------------------------------------------------------------------

def test_dimension_members_from_a_common_base():
    trials, _ = synthetic_trials(depths=(26, 50, 101, 152), widths=(0.5, 1.0, 1.5, 2.0), resolutions=(32, 48, 64, 96),
                                 failures=False)
    members = dimension_members(trials)
    m = members[members["regime"] == "rs-10"]
    base = m.loc[m["is_base"], "name"].unique().tolist()
    assert base == ["d26-w0.5-c1x64-r32"]  # the cheapest; a step in depth also changes stochastic depth
    assert set(m.loc[m["dimension"] == "depth", "name"]) == {f"d{d}-w0.5-c1x64-r32" for d in (26, 50, 101, 152)}
    assert set(m.loc[m["dimension"] == "width", "name"]) == {f"d26-w{w:g}-c1x64-r32" for w in (0.5, 1, 1.5, 2)}
    assert set(m.loc[m["dimension"] == "resolution", "name"]) == {f"d26-w0.5-c1x64-r{r}" for r in (32, 48, 64, 96)}
    assert "d50-w1-c1x64-r32" not in set(m["name"])  # two dimensions changed

    fits = scaling_law_fits(trials, members)
    assert set(fits["dimension"]) == {"depth", "width", "resolution"} and fits["ok"].all()
    assert (fits["n_points"] == 8).all()  # 4 configs x 2 seeds
    best = best_dimension(fits)
    # the synthetic error falls faster with width at 10 epochs, with depth at 100 epochs
    assert best["rs-10"]["dimension"] == "width" and best["rs-100"]["dimension"] == "depth"
    assert best["rs-10"]["budget_gflops"] == pytest.approx(fits.loc[fits["regime"] == "rs-10", "gflops_max"].min())


def test_dimension_members_use_the_strategy_column():
    trials, _ = synthetic_trials(failures=False)
    trials["strategy"] = np.where(trials["resolution"] == 32, "depth", "width")
    members = dimension_members(trials)
    assert set(members["dimension"]) == {"depth", "width"}
    assert members.groupby(["regime", "dimension"])["is_base"].sum().eq(1).all()


# ----- tables in, tables out -----------------------------------------------------------------------

def test_normalize_and_aggregate_handle_partial_tables():
    trials, _ = synthetic_trials()
    sparse = trials[["trial_id", "name", "regime", "seed", "status", "flops", "final_top1"]]
    df = normalize_trials(sparse)
    assert {"latency_ms", "throughput", "top1", "error_pct", "finished"} <= set(df.columns)
    assert df["finished"].sum() == len(df) - 4  # error, diverged, running, pending; stopped is a result
    configs = aggregate_seeds(sparse)
    assert len(configs) == 36 and configs["n_seeds"].max() == 2
    row = configs[(configs["regime"] == "rs-10") & (configs["name"] == trials.loc[1, "name"])].iloc[0]
    assert row["n_seeds"] == 1 and np.isnan(row["top1_std"])  # its other seed failed
    assert status_counts(trials) == {"done": 67, "stopped": 1, "diverged": 1, "error": 1, "interrupted": 0, "running": 1, "pending": 1}
    inferred = normalize_trials(pd.DataFrame({"final_top1": [70.0, np.nan]}))
    assert inferred["status"].tolist() == ["done", "pending"] and inferred["regime"].eq("default").all()


def test_error_edf_and_axis_effects():
    edf = error_edf([30.0, 10.0, np.nan, 20.0])
    assert edf["error"].tolist() == [10, 20, 30] and edf["fraction"].tolist() == pytest.approx([1 / 3, 2 / 3, 1])
    trials, _ = synthetic_trials(failures=False)
    effects = axis_effects(trials)
    assert set(effects["axis"]) >= {"depth", "width", "resolution"}
    width = effects[(effects["axis"] == "width") & (effects["regime"] == "rs-10")]
    assert width["value"].tolist() == ["0.5", "1", "2"] and (width["n_trials"] == 12).all()
    assert width["error_mean"].is_monotonic_decreasing


def test_reference_is_converted_to_multiply_adds():
    ref = load_reference().set_index("model")
    assert ref.loc["ResNeXt-50 (32x4d)", "flops"] == pytest.approx(4.2e9)  # ResNeXt: multiply-adds already
    assert ref.loc["ResNet-RS-420 @320", "flops"] == pytest.approx(64e9)  # ResNet-RS: 128 B FLOPs = 64 G MACs
    assert ref.loc["ResNet-50 (1x64d)", "top1"] == pytest.approx(100 - 23.9)
    assert ref["source"].str.len().gt(10).all()


def test_is_imagenet_only_when_every_trial_says_so():
    assert is_imagenet(pd.DataFrame({"dataset": ["ImageNet", "imagenet-1k", "in1k"]}))
    assert not is_imagenet(pd.DataFrame({"dataset": ["imagenet", "cifar10"]}))
    assert not is_imagenet(pd.DataFrame({"dataset": ["imagenet", None]}))
    assert not is_imagenet(pd.DataFrame({"dataset": ["digits"]}), manifest={"dataset": "imagenet"})
    assert is_imagenet(pd.DataFrame({"x": [1]}), manifest={"dataset": "imagenet"})
    assert not is_imagenet(pd.DataFrame({"x": [1]}))


def test_short_names_drop_shared_and_default_parts():
    names = [f"d{d}-w1-c1x64-r{r}" for d in (50, 101) for r in (160, 224)] + ["d50-w1-c32x4-r224"]
    assert short_names(names) == {"d50-w1-c1x64-r160": "d50-r160", "d50-w1-c1x64-r224": "d50-r224",
                                  "d101-w1-c1x64-r160": "d101-r160", "d101-w1-c1x64-r224": "d101-r224",
                                  "d50-w1-c32x4-r224": "d50-c32x4-r224"}  # c1x64: 4 of 5 names
    assert "w1" in omitted_name_parts(names) and "c1x64" in omitted_name_parts(names)
    assert short_names(names[:2] + names[-1:])["d50-w1-c1x64-r160"] == "c1x64-r160"  # c1x64 in 2 of 3: kept
    assert short_names(["resnet50", "resnext50_32x4d"]) == {"resnet50": "resnet50",
                                                            "resnext50_32x4d": "resnext50_32x4d"}


def test_reports_does_not_import_torch_or_ray():
    code = ("import sys, reports; bad = [m for m in ('torch', 'ray') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_flop_convention_is_imported_not_copied():
    import reports.style
    import scaling.conventions

    assert reports.FLOP_CONVENTION is scaling.conventions.FLOP_CONVENTION is reports.style.FLOP_CONVENTION
    folder = Path(reports.style.__file__).parent
    copies = [p.name for p in folder.glob("*.py") if re.search(r"^\s*FLOP_CONVENTION\s*=", p.read_text(), re.M)]
    assert not copies, copies
