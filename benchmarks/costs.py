"""How well repeated cost measurements of one network agree: the spread the cost store relies on.

Measures one network ``--runs`` times in a row exactly as the sweep's cost step does
(experiments.train.costs.measure_request: warm-up, then the median of timed blocks), each run
building its model afresh, and prints for each figure (batch-1 latency, inference throughput,
training images/s, peak memory) the median over the runs and their spread, (max - min) / median,
beside the largest spread of the timed blocks inside one run. The sweep's costs are meant to
agree within 5 %; on a CPU that other work shares, they will not, and this shows by how much.

    python benchmarks/costs.py                                   # the digits demo's template network, CPU
    python benchmarks/costs.py --device cuda --preset resnet18 --resolution 32 --batch-size 512
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from experiments.results.costs import network_fingerprint  # noqa: E402
from experiments.train.costs import SETTINGS, CostRequest, measure_request  # noqa: E402
from scaling import ArchSpec, get_preset  # noqa: E402
from scaling.device import resolve_device  # noqa: E402

#: The digits demo's template network (experiments/configs/digits_demo.yaml's base at 12 px).
DEMO = ArchSpec(block="bottleneck", depth=11, widths=(16, 32, 64), stem="cifar", stem_width=16, bottleneck_width=16,
                num_classes=10, resolution=12)
FIGURES = (("latency_ms", "latency (ms, batch 1)"), ("throughput", "inference img/s"),
           ("train_images_per_s", "training img/s"), ("peak_memory_bytes", "peak memory (bytes)"))


def spread(values: list[float]) -> float:
    """(max - min) / median of ``values``."""
    mid = statistics.median(values)
    return (max(values) - min(values)) / mid if mid else 0.0


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", help="a preset network (default: the digits demo's template)")
    p.add_argument("--resolution", type=int, help="input resolution (default: the network's)")
    p.add_argument("--batch-size", type=int, default=64, help="training batch (default 64, the demo's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1, help="CPU threads (default 1, a demo trial's)")
    p.add_argument("--runs", type=int, default=5)
    args = p.parse_args(argv)
    spec = get_preset(args.preset) if args.preset else DEMO
    if args.resolution:
        spec = spec.replace(resolution=args.resolution)
    dev = resolve_device(args.device)
    if dev.type == "cpu":
        torch.set_num_threads(args.threads)
    req = CostRequest(fingerprint=network_fingerprint(spec), name=args.preset or "digits-demo-template",
                      spec=spec.to_dict(), batch_size=args.batch_size)
    s = SETTINGS["cuda" if dev.type == "cuda" else "cpu"]
    rows = [measure_request(req, dev, "benchmarks/costs.py") for _ in range(args.runs)]
    print(f"{req.name} ({spec.slug()}) on {rows[0].device}: {args.runs} runs, each {s['warmup']} warm-up calls "
          f"then the median of {s['repeats']} blocks of >= {s['min_block_s'] * 1e3:g} ms")
    result = {"device": rows[0].device, "runs": args.runs}
    for key, label in FIGURES:
        values = [float(getattr(r, key)) for r in rows if getattr(r, key) is not None]
        if not values:
            print(f"  {label:24s} not measurable here")
            continue
        result[key] = {"median": statistics.median(values), "spread": spread(values)}
        print(f"  {label:24s} median {statistics.median(values):14,.2f}   spread over runs {spread(values):7.1%}")
    inside = max(r.spread for r in rows)
    timed = max(result[k]["spread"] for k, _ in FIGURES[:3] if k in result)
    print(f"  largest spread of the timed figures over runs: {timed:.1%} (target: within 5 %); largest spread of "
          f"the blocks inside one run: {inside:.1%}")
    result.update(ratio=timed, block_spread=inside)
    return result


if __name__ == "__main__":
    main()
    sys.exit(0)
