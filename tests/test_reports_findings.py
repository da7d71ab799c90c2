"""reports/findings.py: each claim's verdict on synthetic results tables built with known effects.

Every table here is made so its answer is known: a planted effect with noise that cannot hide it,
an effect of exactly zero with symmetric noise, or an axis that is missing.
"""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from reports.findings import (
    CLAIMS,
    MIN_BOOTSTRAP_UNITS,
    assess_claims,
    dimension_gains,
    equal_flop_pairs,
    estimate_difference,
    estimate_mean,
    one_dimension_steps,
    regime_length,
    verdict_of,
)

#: Noise around a planted effect, with mean exactly zero: it widens an interval, never moves its centre.
SYMMETRIC = (0.6, -0.6, 0.3, -0.3, 0.9, -0.9, 0.0, 0.45, -0.45)


def row(name, *, regime="rs-10", epochs=10, seed=0, top1, flops, depth=11, width=1.0, cardinality=1,
        bottleneck_width=16, resolution=12, **extra):
    """One finished trial of a tiny ResNeXt; only the fields the findings read."""
    return dict(trial_id=f"{name}__{regime}__s{seed}", name=name, regime=regime, epochs=epochs, seed=seed,
                status="done", final_top1=top1, flops=flops, block="bottleneck", depth=str(depth),
                depth_number=depth, width_multiplier=width, cardinality=cardinality,
                bottleneck_width=bottleneck_width, resolution=resolution, widths="16_32_64", **extra)


def pairs_table(kind, effect, *, n_pairs=6, seeds=(0,), regimes=(("rs-10", 10),), noise=SYMMETRIC):
    """Equal-FLOP pairs at ``n_pairs`` resolutions: ``kind`` "cardinality" (4x8d against a wider 1x16d) or
    "depth" (20 layers against a wider 11-layer net). ``effect``: top-1 of the first minus the second,
    in pp (a mapping regime -> effect for several regimes); each pair has its own baseline."""
    rows = []
    for regime, epochs in regimes:
        e = effect[regime] if isinstance(effect, dict) else effect
        for i in range(n_pairs):
            res, base = 10 + 2 * i, 80.0 + 1.5 * i
            for s in seeds:
                jitter = noise[(i + 3 * s) % len(noise)]
                if kind == "cardinality":
                    x = dict(cardinality=4, bottleneck_width=8, width=0.9375)
                    y = dict(cardinality=1, bottleneck_width=16, width=1.0)
                else:
                    x, y = dict(depth=20, width=0.8125), dict(depth=11, width=1.0)
                fx, fy = 1e6 * (1 + i) * 0.98, 1e6 * (1 + i)
                rows.append(row(f"x{i}", regime=regime, epochs=epochs, seed=s, top1=base + e + jitter, flops=fx,
                                resolution=res, **x))
                rows.append(row(f"y{i}", regime=regime, epochs=epochs, seed=s, top1=base - jitter / 3, flops=fy,
                                resolution=res, **y))
    return pd.DataFrame(rows)


def steps_table(width_gain, resolution_gain, *, seeds=(0,), widths=(0.5, 0.7, 1.0, 1.4), resolutions=(10, 14, 20),
                noise=SYMMETRIC):
    """A width x resolution grid where top-1 grows by the given pp per doubling of FLOPs along each
    (FLOPs ~ width^2 x resolution^2), plus symmetric noise."""
    rows = []
    k = 0
    for w in widths:
        for r in resolutions:
            fw, fr = w ** 2, (r / 10) ** 2
            for s in seeds:
                jitter = noise[k % len(noise)]
                k += 1
                top1 = 70 + width_gain * math.log2(fw) + resolution_gain * math.log2(fr) + jitter
                rows.append(row(f"w{w}-r{r}", seed=s, top1=top1, flops=1e6 * fw * fr, width=w, resolution=r))
    return pd.DataFrame(rows)


def by_claim(findings, key, regime="rs-10"):
    found = [f for f in findings if f.claim.key == key and (f.regime == regime or key == "regime")]
    assert len(found) == 1, (key, regime, found)
    return found[0]


# ----- the statistics ---------------------------------------------------------------------------

def test_t_interval_over_seed_averaged_comparisons_is_scipys():
    units = [np.array([1.0, 1.4]), np.array([0.2, 0.6]), np.array([2.0, 1.0]), np.array([0.5, 0.9])]
    e = estimate_mean(units)
    means = np.array([1.2, 0.4, 1.5, 0.7])
    half = stats.t.ppf(0.975, 3) * means.std(ddof=1) / 2
    assert e.effect == pytest.approx(0.95) and (e.low, e.high) == pytest.approx((0.95 - half, 0.95 + half))
    assert e.n_units == 4 and e.n_seeds == 2 and "paired differences across 2 seeds" in e.method


def test_one_comparison_with_seeds_takes_its_interval_over_the_seeds():
    e = estimate_mean([np.array([1.0, 2.0, 3.0])])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)
    assert (e.effect, e.low, e.high) == pytest.approx((2.0, 2.0 - half, 2.0 + half)) and "3 seeds" in e.method


def test_one_seed_bootstraps_over_configurations_and_needs_three():
    assert estimate_mean([np.array([1.0]), np.array([2.0])]) is None
    e = estimate_mean([np.array([v]) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])
    assert e.effect == 3.0 and 1.0 <= e.low < 3.0 < e.high <= 5.0 and "bootstrap" in e.method
    assert e == estimate_mean([np.array([v]) for v in (1.0, 2.0, 3.0, 4.0, 5.0)])  # a fixed generator


def test_intervals_cover_the_true_mean_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    t_hits = boot_hits = 0
    for _ in range(300):
        paired = estimate_mean(list(rng.normal(1.0, 1.0, (6, 2))))  # 6 comparisons, 2 seeds each
        t_hits += paired.low <= 1.0 <= paired.high
        one = estimate_mean([np.array([v]) for v in rng.normal(1.0, 1.0, 12)])
        boot_hits += one.low <= 1.0 <= one.high
    assert 0.91 <= t_hits / 300 <= 0.985
    assert 0.86 <= boot_hits / 300 <= 0.985  # percentile bootstrap runs a little short on 12 points


def test_difference_of_two_groups_is_welch_with_seeds_and_a_two_sample_bootstrap_without():
    a = [np.array([3.0, 3.2]), np.array([2.8, 3.0]), np.array([3.0, 3.0])]
    b = [np.array([1.0, 1.2]), np.array([0.8, 1.0])]
    e = estimate_difference(a, b)
    ci = stats.ttest_ind([3.1, 2.9, 3.0], [1.1, 0.9], equal_var=False).confidence_interval()
    assert e.effect == pytest.approx(2.0) and (e.low, e.high) == pytest.approx((ci.low, ci.high))
    one = estimate_difference([np.array([v]) for v in (3.0, 3.5, 2.5)], [np.array([v]) for v in (1.0, 1.5, 0.5)])
    assert one.effect == pytest.approx(2.0) and 0 < one.low < 2.0 < one.high and "each group" in one.method
    assert estimate_difference([np.array([1.0])] * 2, [np.array([0.0])] * 3) is None


def test_verdicts_and_regime_lengths():
    assert verdict_of(None) == "untestable"
    assert verdict_of(estimate_mean([np.array(u) for u in ((1.0, 1.2), (0.9, 1.1), (1.1, 1.3))])) == "supported"
    assert verdict_of(estimate_mean([np.array([v]) for v in (-3.0, -2.0, -2.5)])) == "contradicted"
    assert verdict_of(estimate_mean([np.array([v]) for v in (-1.0, 1.0, 0.5, -0.5)])) == "inconclusive"
    assert [regime_length(e) for e in (10, 30, 100, 150, 350)] == ["short", "short", "medium", "long", "long"]


# ----- comparisons ------------------------------------------------------------------------------

def test_equal_flop_pairs_are_disjoint_closest_first_and_respect_the_fixed_fields():
    configs = pd.DataFrame([
        dict(name="a", flops=100.0, cardinality=4, resolution=10),
        dict(name="b", flops=101.0, cardinality=1, resolution=10),
        dict(name="c", flops=108.0, cardinality=1, resolution=10),
        dict(name="d", flops=100.0, cardinality=1, resolution=12),   # another resolution: never paired with a
        dict(name="e", flops=200.0, cardinality=4, resolution=10),   # no partner within 15 %
    ])
    pairs = equal_flop_pairs(configs, free=("cardinality",), tolerance=0.15,
                             favoured=lambda x, y: x["cardinality"] > y["cardinality"])
    assert pairs == [("a", "b")]
    grouped = configs.assign(group=["g1", "g2", "g1", "g1", "g1"])  # the matcher's groups win over FLOPs
    assert equal_flop_pairs(grouped, free=("cardinality",), tolerance=0.15,
                            favoured=lambda x, y: x["cardinality"] > y["cardinality"]) == [("a", "c")]


def test_one_dimension_steps_are_adjacent_and_at_least_ten_percent_apart():
    configs = pd.DataFrame([dict(name=f"r{r}", flops=float(r * r), resolution=r, width_multiplier=1.0)
                            for r in (10, 10.4, 12, 16)] + [dict(name="w2", flops=100.0, resolution=10,
                                                                width_multiplier=2.0)])
    assert one_dimension_steps(configs, "resolution") == [("r12", "r10.4"), ("r16", "r12")]
    assert one_dimension_steps(configs, "width") == []  # w2 and r10 cost the same: no step


# ----- the claims on synthetic sweeps -----------------------------------------------------------

@pytest.mark.parametrize("seeds", [(0,), (0, 1)], ids=["one seed", "two seeds"])
@pytest.mark.parametrize("effect, verdict", [(2.0, "supported"), (-2.0, "contradicted"), (0.0, "inconclusive")])
def test_cardinality_claim_finds_the_planted_effect(effect, verdict, seeds):
    f = by_claim(assess_claims(pairs_table("cardinality", effect, seeds=seeds)), "cardinality")
    assert f.verdict == verdict and f.estimate.n_units == 6 and f.estimate.n_seeds == len(seeds)
    assert f.estimate.effect == pytest.approx(f.comparisons["difference"].mean())
    assert abs(f.estimate.effect - effect) < 0.5 and f.unit == "pp"
    assert ("bootstrap" in f.estimate.method) == (len(seeds) == 1)
    assert set(f.comparisons["a"]) == {f"x{i}" for i in range(6)}  # the 4x8d side is the favoured one


@pytest.mark.parametrize("epochs, effect, verdict", [
    (10, -2.0, "supported"),      # short regime: the wider net wins, as claimed
    (10, 2.0, "contradicted"),    # short regime, the deeper net wins
    (350, 2.0, "supported"),      # long regime: depth wins, as claimed
    (350, 0.0, "inconclusive"),
])
def test_depth_against_width_claim_follows_the_regime_length(epochs, effect, verdict):
    regime = f"rs-{epochs}"
    trials = pairs_table("depth", effect, regimes=((regime, epochs),), seeds=(0, 1))
    f = by_claim(assess_claims(trials), "depth_vs_width", regime)
    assert f.verdict == verdict
    assert f.estimate.effect == pytest.approx(effect if epochs >= 150 else -effect, abs=0.5)
    assert ("wider configuration minus" in f.measure) == (epochs < 150)


def test_depth_against_width_is_untestable_at_100_epochs_and_says_why():
    f = by_claim(assess_claims(pairs_table("depth", 2.0, regimes=(("rs-100", 100),))), "depth_vs_width", "rs-100")
    assert f.verdict == "untestable" and "depends on the resolution" in f.needs


@pytest.mark.parametrize("width_gain, resolution_gain, verdict", [
    (3.0, 1.0, "supported"), (1.0, 3.0, "contradicted"), (2.0, 2.0, "inconclusive")])
@pytest.mark.parametrize("seeds", [(0,), (0, 1)], ids=["one seed", "two seeds"])
def test_resolution_claim_compares_gains_per_doubling(width_gain, resolution_gain, verdict, seeds):
    f = by_claim(assess_claims(steps_table(width_gain, resolution_gain, seeds=seeds)), "resolution")
    assert f.verdict == verdict and f.detail == "width" and f.unit == "pp per 2x FLOPs"
    assert f.estimate.effect == pytest.approx(width_gain - resolution_gain, abs=0.3)
    assert set(f.comparisons["group"]) == {"width", "resolution"}


def test_gains_per_dimension_are_the_planted_slopes():
    gains = dimension_gains(steps_table(3.0, 1.0, noise=(0.0,))).set_index("dimension")
    assert gains.loc["width", "gain"] == pytest.approx(3.0) and gains.loc["resolution", "gain"] == pytest.approx(1.0)
    assert gains.loc["width", "n_steps"] == 9 and gains.loc["resolution", "n_steps"] == 8


@pytest.mark.parametrize("effects, verdict", [
    ({"rs-10": -2.0, "rs-350": 2.0}, "supported"),      # width wins short, depth wins long
    ({"rs-10": 2.0, "rs-350": 2.0}, "contradicted"),    # depth wins both
    ({"rs-10": 0.0, "rs-350": 2.0}, "inconclusive"),    # no winner in the short regime
])
def test_regime_claim_asks_whether_the_winner_changes(effects, verdict):
    trials = pairs_table("depth", effects, regimes=(("rs-10", 10), ("rs-350", 350)), seeds=(0, 1))
    f = by_claim(assess_claims(trials), "regime")
    assert f.verdict == verdict and f.regime is None
    assert f.estimate.effect == pytest.approx(effects["rs-350"] - effects["rs-10"], abs=0.5)


def test_compound_claim_pairs_the_strategies_at_each_budget():
    rows = [row("base", top1=80.0, flops=1e6, **{"strategy": "base", "flop_multiplier": 1.0})]
    for i, m in enumerate((2, 4, 8, 16)):
        rows.append(row(f"rs{m}", top1=82 + i + 1.5 + SYMMETRIC[i] / 2, flops=1e6 * m * 1.03, depth=11 + i,
                        resolution=12, strategy="resnet_rs", flop_multiplier=float(m)))
        rows.append(row(f"cp{m}", top1=82 + i, flops=1e6 * m * 0.95, depth=12 + i, width=1.1, resolution=14,
                        strategy="compound", flop_multiplier=float(m)))
    f = by_claim(assess_claims(pd.DataFrame(rows)), "compound")
    assert f.verdict == "supported" and f.estimate.n_units == 4
    assert list(zip(f.comparisons["a"], f.comparisons["b"])) == [(f"rs{m}", f"cp{m}") for m in (2, 4, 8, 16)]


def test_a_missing_axis_makes_a_claim_untestable_with_what_it_needs():
    findings = assess_claims(steps_table(3.0, 1.0))  # width x resolution only, one regime, no strategies
    verdicts = {f.claim.key: f for f in findings}
    assert set(verdicts) == set(CLAIMS)
    assert verdicts["cardinality"].verdict == "untestable" and "differ in cardinality" in verdicts["cardinality"].needs
    assert verdicts["depth_vs_width"].verdict == "untestable" and "trade depth against width" in \
        verdicts["depth_vs_width"].needs
    assert verdicts["regime"].verdict == "untestable" and "second regime" in verdicts["regime"].needs
    assert verdicts["compound"].verdict == "untestable" and "compound, resnet_rs" in verdicts["compound"].needs
    assert verdicts["resolution"].tested


def test_too_few_comparisons_is_untestable_not_inconclusive():
    f = by_claim(assess_claims(pairs_table("cardinality", 2.0, n_pairs=MIN_BOOTSTRAP_UNITS - 1)), "cardinality")
    assert f.verdict == "untestable" and "this sweep has 2" in f.needs and "two seeds" in f.needs
    assert by_claim(assess_claims(pairs_table("cardinality", 2.0, n_pairs=1, seeds=(0, 1))),
                    "cardinality").tested


def test_unfinished_trials_are_left_out():
    trials = pairs_table("cardinality", 2.0)
    trials.loc[trials["name"] == "x0", "status"] = "error"
    f = by_claim(assess_claims(trials), "cardinality")
    assert f.estimate.n_units == 5 and "x0" not in f.configs()
