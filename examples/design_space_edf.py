"""pycls-style design spaces at scale: sample 10^5-10^6 configs from each of two spaces, price every
one, and compare the spaces by their complexity EDF.

pycls compares design spaces by the empirical distribution function (EDF) of the error of models
sampled from them (Radosavovic et al., "On Network Design Spaces for Visual Recognition", ICCV
2019), and compares them fairly only at equal complexity: "Designing Network Design Spaces" (CVPR
2020, section 3) samples its models in a narrow FLOP band (360-400 MF). Before anything is trained,
that needs the complexity of every sampled config, which this prints for two spaces around
ResNet-50 (plain, and with ResNeXt's cardinality and group width), in seconds:

- the FLOP quantiles of each space and how many of its configs fall in the band,
- OUT.png / OUT.svg: the FLOP EDF of both spaces with the band shaded (``reports.plot_complexity_edf``),
- OUT_<space>.yaml: a space spec that samples 500 configs (the CVPR 2020 paper's count per space)
  inside the band, ready for ``archscale space`` and, in a sweep spec, ``archscale sweep``; the
  error EDFs of the trained sweeps are in its report (``error_edf``).

    python examples/design_space_edf.py                                  # 2 x 100,000 configs
    python examples/design_space_edf.py --n 1000000 --band 360M,400M --out runs/edf
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import plot_complexity_edf  # noqa: E402
from reports.style import save_figure  # noqa: E402
from search_spaces import parse_space  # noqa: E402
from search_spaces.matching import parse_count  # noqa: E402
from search_spaces.table import space_table  # noqa: E402

#: The two design spaces (ours: ResNet-50's block at ImageNet's 224 px, depths and widths around
#: the band; the second adds ResNeXt's cardinality C and group width d, as powers of two).
COMMON = {"depth": [26, 38, 50, 101], "width_multiplier": {"low": 0.125, "high": 1.0, "dist": "log_uniform"}}
SPACES = {
    "resnet": {"base": "resnet50", "axes": COMMON},
    "resnext": {"base": "resnet50", "axes": {**COMMON, "cardinality": {"low": 1, "high": 32, "dist": "pow2"},
                                             "bottleneck_width": {"low": 2, "high": 64, "dist": "pow2"}}},
}
#: Configs per space trained in the band (Radosavovic et al., CVPR 2020, section 3: n = 500).
BAND_SAMPLES = 500


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000, help="configs sampled from each space")
    p.add_argument("--band", default="360M,400M", help="the FLOP band compared in (FLOPs per image, low,high)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="design_space_edf", help="stem of the figure and the band specs")
    args = p.parse_args(argv)
    low, high = (parse_count(v.strip(), "band") for v in args.band.split(","))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    flops, result = {}, {}
    for name, spec in SPACES.items():
        space = parse_space({"name": name, "kind": "random", "samples": args.n, "seed": args.seed, **spec})
        t0 = time.perf_counter()
        rows = space_table(space).rows
        seconds = time.perf_counter() - t0
        f = rows["flops"].to_numpy()
        inside = int(((f >= low) & (f <= high)).sum())
        q10, q50, q90 = np.quantile(f, [0.1, 0.5, 0.9]) / 1e9
        print(f"{name}: {len(f):,} configs priced in {seconds:.1f} s ({len(f) / seconds:,.0f} configs/s); GFLOPs "
              f"10/50/90 %: {q10:.3g} / {q50:.3g} / {q90:.3g}; {inside:,} ({inside / len(f):.1%}) in the band "
              f"{low / 1e6:g}-{high / 1e6:g} MFLOPs")
        band = out.with_name(f"{out.name}_{name}.yaml")
        band.write_text(yaml.safe_dump({**spec, "name": f"{name}_band", "kind": "random", "samples": BAND_SAMPLES,
                                        "seed": args.seed, "constraints": {"min_flops": low, "max_flops": high}},
                                       sort_keys=False))
        flops[name] = f
        result[name] = {"configs": len(f), "seconds": seconds, "in_band": inside, "band_spec": str(band)}
    figure = save_figure(plot_complexity_edf(flops, band=(low, high)), out)
    print(f"figure: {figure[0]}; band specs: {', '.join(r['band_spec'] for r in result.values())} "
          f"(archscale space FILE)")
    return result


if __name__ == "__main__":
    main()
