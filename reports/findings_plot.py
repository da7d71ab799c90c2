"""The findings' figures: the comparisons a claim rests on, and the effect with its interval.

One figure per tested claim, a row per regime. Left: every comparison on top-1 against FLOPs, the
two sides joined (filled: the side the claim favours; arrows: one-dimension steps). Right: each
pair's difference against FLOPs with the claim's effect and its 95 % interval as a band, or each
step's gain per doubling of FLOPs with its dimension's mean as a line; zero is the dashed line.
"""
from __future__ import annotations

import pandas as pd
from matplotlib.lines import Line2D

from .binning import flop_unit
from .findings import Finding
from .style import (DIMENSION_COLORS, GREY, OKABE_ITO, chance_line, dimension_color, flop_axis_label, log_axis,
                    new_figure, styled)

__all__ = ["plot_finding", "SIDES", "DRAWN"]


def _sides(finding: Finding) -> tuple[tuple[str, str], tuple[str, str]]:
    """((label, colour) of the favoured side, (label, colour) of the other) of a finding."""
    key = finding.claim.key
    if key == "cardinality":
        return ("more groups", DIMENSION_COLORS["cardinality"]), ("more width or depth", GREY)
    if key == "depth_vs_width":
        deep, wide = ("deeper, narrower", DIMENSION_COLORS["depth"]), ("shallower, wider", DIMENSION_COLORS["width"])
        return (wide, deep) if finding.comparisons["group"].eq("width - depth").any() else (deep, wide)
    if key == "compound":
        return ("ResNet-RS strategy", DIMENSION_COLORS["resnet_rs"]), ("compound scaling", DIMENSION_COLORS["compound"])
    return ("", OKABE_ITO["black"]), ("", GREY)


#: The claims drawn as pairs, and as steps. The regime claim has no figure of its own: its verdict is
#: read off each regime's depth-against-width comparisons, which its paragraph states.
SIDES = ("cardinality", "depth_vs_width", "compound")
DRAWN = SIDES + ("resolution",)


@styled
def plot_finding(findings: list[Finding], flops_of_run, chances=()) -> object | None:
    """The figure of one claim's tested findings (a row each); None when none is tested or the claim has
    no figure (``DRAWN``).

    ``flops_of_run``: every FLOP value of the run, so the unit matches the report's other figures;
    ``chances``: chance top-1 levels (%), marked on the accuracy panels.
    """
    findings = [f for f in findings if f.estimate is not None and len(f.comparisons) and f.claim.key in DRAWN]
    if not findings:
        return None
    div, unit = flop_unit(flops_of_run)
    fig, axes = new_figure(len(findings), 2, (3.6, 2.7))
    for (left, right), f in zip(axes, findings):
        t, e = f.comparisons, f.estimate
        if f.claim.key == "resolution":
            _steps(left, right, f, div)
            right.set_ylabel(f"top-1 gain ({f.unit})")
        else:
            _pairs(left, right, f, div)
            right.axhspan(e.low, e.high, color=OKABE_ITO["sky_blue"], alpha=0.25, lw=0)
            right.axhline(e.effect, color=OKABE_ITO["blue"], lw=1.4)
            right.set_ylabel(f"difference ({f.unit})")
        right.axhline(0, color="#555555", lw=0.8, ls="--")
        left.set_ylabel("top-1 accuracy (%)")
        left.set_xlabel(flop_axis_label(unit))
        right.set_xlabel(f"{unit} per image")
        for ax in (left, right):
            lo = min(t["flops_a"].min(), t["flops_b"].min()) / div
            hi = max(t["flops_a"].max(), t["flops_b"].max()) / div
            ax.set_xlim(lo / 1.15, hi * 1.15)
            log_axis(ax, "x")
        chance_line(left, chances)
        right.set_title(f"{f.regime + ': ' if f.regime else ''}{f.verdict}, {e.effect:+.2f} [{e.low:+.2f}, "
                        f"{e.high:+.2f}]", fontsize=9)
        left.set_title(f.claim.source, fontsize=9)
    return fig


def _pairs(left, right, f: Finding, div: float) -> None:
    t = f.comparisons
    (a_label, a_colour), (b_label, b_colour) = _sides(f)
    for _, r in t.iterrows():
        left.plot([r["flops_b"] / div, r["flops_a"] / div], [r["top1_b"], r["top1_a"]], color="#bbbbbb", lw=0.8,
                  zorder=1)
    left.scatter(t["flops_a"] / div, t["top1_a"], color=a_colour, s=22, zorder=3)
    left.scatter(t["flops_b"] / div, t["top1_b"], facecolor="white", edgecolor=b_colour, s=22, zorder=3)
    right.scatter(t["flops_a"] / div, t["difference"], color=a_colour, s=18, zorder=3)
    left.legend(handles=[Line2D([], [], marker="o", ls="", color=a_colour, label=a_label),
                         Line2D([], [], marker="o", ls="", mfc="white", color=b_colour, label=b_label)],
                loc="lower right", fontsize=7)


def _steps(left, right, f: Finding, div: float) -> None:
    t = f.comparisons
    handles = []
    for group, g in t.groupby("group", sort=False):
        colour = dimension_color(group)
        for _, r in g.iterrows():
            left.annotate("", xy=(r["flops_a"] / div, r["top1_a"]), xytext=(r["flops_b"] / div, r["top1_b"]),
                          arrowprops=dict(arrowstyle="->", color=colour, lw=0.9))
        left.scatter(pd.concat([g["flops_a"], g["flops_b"]]) / div, pd.concat([g["top1_a"], g["top1_b"]]),
                     color=colour, s=10, zorder=3)
        # a step sits at the geometric middle of its two ends; its group's mean is the line
        right.scatter((g["flops_a"] * g["flops_b"]) ** 0.5 / div, g["difference"], color=colour, s=18, zorder=3)
        right.axhline(g["difference"].mean(), color=colour, lw=1.4)
        handles.append(Line2D([], [], marker="o", ls="", color=colour, label=f"steps along {group}"))
    left.legend(handles=handles, loc="lower right", fontsize=7)
