"""reports: pure functions from results tables (pandas) to figures and tables. No torch, no Ray.

The sweep writes a trials table (one row per trial) and an epochs table (one row per trial per
epoch); everything here takes those DataFrames, so it can be used on a sweep still running, on a
partial or failed one, or on tables made by hand:

    >>> from reports import write_report
    >>> summary = write_report(trials, epochs, "report/")    # doctest: +SKIP
    >>> summary["pareto"]["rs-350"]                            # doctest: +SKIP
    ['d50-w0.5-c1x64-r128', ...]

``assess_claims(trials)`` tests the papers' claims on a sweep (the report's Findings) and
``plan_next_sweep(trials)`` says where the next FLOPs buy the most accuracy.

FLOPs are per image in fvcore's convention (1 multiply-add = 1 FLOP), as in the ResNeXt paper;
the ResNet-RS paper's FLOPs are twice these. Accuracies and errors are percentages.
"""
from scaling.conventions import FLOP_CONVENTION

from .binning import equal_flop_groups, equal_flop_table, flop_bin_labels, flop_bins, format_flops
from .compare_plot import plot_axis_effects, plot_complexity_edf, plot_equal_flop, plot_error_edf, plot_learning_curves
from .design_space import axis_effects, design_axes, edf, error_edf
from .dimension_steps import DIMENSIONS, best_dimension, dimension_members, scaling_law_fits
from .findings import CLAIMS, Finding, assess_claims, dimension_gains
from .next_sweep import NextSweep, plan_next_sweep
from .pareto import pareto_configs, pareto_front
from .pareto_plot import COSTS, plot_pareto
from .powerlaw import PowerLawFit, fit_power_law
from .reference import IMAGENET_NAMES, is_imagenet, load_reference
from .report import write_report
from .scaling_plot import plot_dimension_curves, plot_scaling_curves, study_grid
from .style import DIMENSION_COLORS, save_figure
from .tables import RunTables, aggregate_seeds, finished_trials, normalize_trials, regime_order, status_counts, tables_of

__all__ = [
    "write_report",
    "pareto_front", "pareto_configs",
    "flop_bins", "flop_bin_labels", "format_flops", "equal_flop_groups", "equal_flop_table",
    "PowerLawFit", "fit_power_law", "DIMENSIONS", "dimension_members", "scaling_law_fits", "best_dimension",
    "edf", "error_edf", "design_axes", "axis_effects",
    "CLAIMS", "Finding", "assess_claims", "dimension_gains", "NextSweep", "plan_next_sweep",
    "load_reference", "is_imagenet", "IMAGENET_NAMES",
    "tables_of", "RunTables", "normalize_trials", "finished_trials", "aggregate_seeds", "regime_order", "status_counts",
    "COSTS", "plot_pareto", "plot_scaling_curves", "plot_dimension_curves", "study_grid",
    "plot_equal_flop", "plot_error_edf", "plot_complexity_edf", "plot_axis_effects", "plot_learning_curves",
    "save_figure", "DIMENSION_COLORS", "FLOP_CONVENTION",
]
