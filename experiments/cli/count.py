"""archscale count: params, FLOPs and activations (and measured speed) of presets or specs."""
from __future__ import annotations

import json

from scaling.conventions import FLOP_CONVENTION

from .specargs import add_spec_flags, spec_overrides, specs_from_args


def add_parser(sub) -> None:
    p = sub.add_parser("count", help="params, FLOPs and activations of presets or specs",
                       description=f"Print params, FLOPs ({FLOP_CONVENTION}) and activations.")
    p.add_argument("presets", nargs="*", metavar="PRESET", help="preset names, e.g. resnet50 resnext50_32x4d")
    p.add_argument("--spec", action="append", metavar="FILE", help="an ArchSpec YAML/JSON file (repeatable)")
    p.add_argument("--counter", choices=("fvcore", "analytic"), default="fvcore",
                   help="fvcore traces the model (default); analytic is the closed form (same numbers, instant)")
    p.add_argument("--json", action="store_true", help="one JSON object per config (integers in units)")
    p.add_argument("--measure", action="store_true", help="also measure latency, throughput and peak memory")
    p.add_argument("--device", default="auto", help="device for --measure: auto, cpu, cuda, cuda:N")
    p.add_argument("--batch-size", type=int, default=32, help="batch size for --measure throughput")
    p.add_argument("--iters", type=int, default=10, help="timed iterations for --measure (after 3 warm-up)")
    add_spec_flags(p)
    p.set_defaults(func=run)


def run(args) -> int:
    """Print the counts of every preset and spec file named; returns the exit status."""
    import pandas as pd

    from scaling import complexity, measure

    from .progress import bar, write

    specs = specs_from_args(args.presets, args.spec or [], spec_overrides(args))
    rows = []
    for name, spec in bar(specs, total=len(specs), desc="measure" if args.measure else "count", unit="net",
                          lines=args.measure, label=lambda item: item[0]):
        cx = complexity(spec, counter=args.counter)
        row = {"name": name, "params": cx.params, "flops": cx.flops, "activations": cx.activations,
               "resolution": cx.resolution, "counter": cx.counter, "flop_convention": FLOP_CONVENTION}
        if args.measure:
            m = measure(spec, device=args.device, batch_size=args.batch_size, iters=args.iters)
            row.update({k: v for k, v in m.to_dict().items() if k != "resolution"})
        if args.json:
            row["spec"] = spec.to_dict()
            write(json.dumps(row))
        rows.append(row)
    if args.json:
        return 0
    df = pd.DataFrame(rows)
    table = pd.DataFrame({
        "name": df["name"],
        "params (M)": (df["params"] / 1e6).map("{:.2f}".format),
        f"GFLOPs ({FLOP_CONVENTION})": (df["flops"] / 1e9).map("{:.3f}".format),
        "activations (M)": (df["activations"] / 1e6).map("{:.2f}".format),
        "resolution": df["resolution"],
    })
    if args.measure:
        table["latency (ms, bs 1)"] = df["latency_ms"].map("{:.2f}".format)
        table[f"infer img/s (bs {args.batch_size})"] = df["throughput"].map("{:.1f}".format)
        table["train img/s"] = df["train_throughput"].map("{:.1f}".format)
        table["peak mem (MB)"] = df["peak_memory_bytes"].map(
            lambda b: "n/a" if b is None or b != b else f"{b / 2**20:.0f}")
        table["device"] = df["device"]
    print(table.to_string(index=False))
    print(f"FLOPs counted by {args.counter} ({FLOP_CONVENTION}; the ResNet-RS paper's FLOPs are 2x these).")
    return 0
