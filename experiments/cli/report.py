"""archscale report: write the report of a sweep's output directory (running, partial or finished).

    archscale report RUN_DIR [--out DIR] [--title TITLE]
"""
from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    r = sub.add_parser("report", help="write the report of a sweep's output directory",
                       description="Pareto fronts, scaling curves, equal-FLOP tables and fits of a sweep (running, "
                                   "partial or finished).")
    r.add_argument("run_dir", metavar="RUN_DIR", help="a sweep's output directory")
    r.add_argument("--out", help="report folder (default: RUN_DIR/report)")
    r.add_argument("--title", help="report title (default: the sweep's name)")
    r.set_defaults(func=run)


def run(args) -> int:
    """Write RUN_DIR/report (or --out) and print what it holds; returns the exit status."""
    from reports import write_report

    from ..results.costs import COSTS, read_costs
    from ..results.schema import read_manifest
    from ..results.store import load_results
    from ..results.timeline import load_utilisation
    from .progress import bar

    run_dir = Path(args.run_dir)
    trials, epochs = load_results(run_dir)
    costs = read_costs(run_dir / COSTS)
    manifest = read_manifest(run_dir)
    manifest = manifest.to_dict() if manifest else None  # reports/ takes plain data
    title = args.title or (manifest or {}).get("name") or run_dir.name
    out = Path(args.out) if args.out else run_dir / "report"
    summary = write_report(trials, epochs, out, manifest=manifest, title=title, progress=bar,
                           utilisation=load_utilisation(run_dir), costs=costs)
    print(f"report written to {summary['report_md']} (and {Path(summary['report_html']).name}, "
          f"{sum(f.endswith('.png') for f in summary['figures'])} figures as PNG and SVG, "
          f"{len(summary['tables'])} tables)")
    counts = summary.get("status_counts", {})
    print("trials: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if summary.get("health"):
        print("health: " + ", ".join(f"{v} {k}" for k, v in summary["health"].items())
              + (f"; left out of fronts, fits and findings: {summary['left_out']}" if summary.get("left_out") else ""))
    for regime, names in summary.get("pareto", {}).items():
        print(f"Pareto-optimal on top-1 vs FLOPs, {regime}: {', '.join(names) if names else '(none yet)'}")
    for f in summary.get("findings", []):
        if f["verdict"] != "untestable":
            where = f" in {f['regime']}" if f["regime"] else ""
            effect = ("" if f["effect"] is None else
                      f" ({f['effect']:+.2f} {f['unit']}, 95 % interval [{f['low']:+.2f}, {f['high']:+.2f}])")
            flagged = f"; {f['flagged']}" if f.get("flagged") else ""
            print(f"finding: {f['source']}, {f['claim'].replace('_', ' ')}{where}: {f['verdict']}{effect}{flagged}")
    untested = sum(f["verdict"] == "untestable" for f in summary.get("findings", []))
    if untested:
        print(f"{untested} claim{'s' if untested > 1 else ''} not testable on this sweep: the report says what "
              f"{'each' if untested > 1 else 'it'} would need")
    return 0
