"""The README's figure, from the demo run: ``make docs`` (after ``make run``) or

    python docs/make_figures.py runs/digits_demo [--out docs]

copies the run report's top-1 against FLOPs figure (``archscale report`` draws it) to
``docs/demo_pareto_flops.png`` and writes ``docs/demo_pareto_flops.json`` beside it: the sweep it
came from and every network drawn (name, FLOPs, params, seeds), with the PNG's SHA-256, so
tests/test_docs.py can check that the figure is the current demo spec's (the planner's networks,
from experiments/configs/digits_demo.yaml) and that the JSON describes this very PNG.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from experiments.results.schema import FINAL_STATUSES, read_manifest  # noqa: E402
from experiments.results.store import load_results  # noqa: E402
from scaling.errors import ArchScaleError  # noqa: E402
from scaling.files import atomic_write, atomic_write_text  # noqa: E402

#: The README's figure: the report's figure of that name, copied to docs/NAME.png (and NAME.json).
FIGURES = {"demo_pareto_flops": "pareto_flops"}


def make_figures(run_dir: str | Path, out: str | Path = ROOT / "docs") -> list[Path]:
    """Copy the run report's figures to ``out`` with their JSON sidecars; returns the files
    written. ArchScaleError("run_dir") when the run has unfinished trials or no report yet."""
    run_dir, out = Path(run_dir), Path(out)
    trials, _ = load_results(run_dir)
    unfinished = trials[~trials["status"].isin(FINAL_STATUSES)]
    if len(unfinished):
        raise ArchScaleError("run_dir", f"{len(unfinished)} trials of {run_dir} have not finished; finish the sweep "
                                        f"(make run) first")
    manifest = read_manifest(run_dir, required=True)
    networks = (trials.groupby("name", sort=True)
                .agg(flops=("flops", "first"), params=("params", "first"), seeds=("seed", "nunique"))
                .reset_index())
    written = []
    for doc_name, figure in FIGURES.items():
        png = run_dir / "report" / "figures" / f"{figure}.png"
        if not png.is_file():
            raise ArchScaleError("run_dir", f"no {png}: write the run's report first (archscale report {run_dir})")
        data = png.read_bytes()
        sidecar = {"figure": f"{doc_name}.png", "from": f"report/figures/{figure}.png",
                   "sweep": manifest.name, "spec": manifest.spec, "png_sha256": hashlib.sha256(data).hexdigest(),
                   "networks": [{"name": r.name, "flops": int(r.flops), "params": int(r.params),
                                 "seeds": int(r.seeds)} for r in networks.itertuples()]}
        written.append(atomic_write(out / f"{doc_name}.png", lambda tmp, data=data: Path(tmp).write_bytes(data)))
        written.append(atomic_write_text(out / f"{doc_name}.json", json.dumps(sidecar, indent=1) + "\n"))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("run_dir", help="the demo sweep's output directory (runs/digits_demo)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="where the figures go (default: docs/)")
    args = parser.parse_args(argv)
    try:
        for path in make_figures(args.run_dir, args.out):
            print(f"wrote {path}")
    except ArchScaleError as e:
        print(f"make_figures: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
