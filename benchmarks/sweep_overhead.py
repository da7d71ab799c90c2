"""The sweep's wall time against the same trials back to back in one process, and ASHA's saving.

Three runs of the same trials (tiny ResNeXts on digits), side by side:
  1. ``archscale sweep`` on a local Ray: P concurrent trials x 1 CPU each (P = --parallel);
  2. the same trials one after another in this process, each with P threads (the same total
     parallelism), calling train_trial directly: no Ray, no store, no scheduler;
  3. the sweep again with ASHA (grace period --grace epochs, reduction factor 2).
Prints the sweep/back-to-back wall-time ratio (goal: at most 1.15), ASHA's compute saving in
trained epochs, and whether FIFO's three best configs survive ASHA (are trained to the end).
With --repeat N, runs 1 and 2 alternate N times and the median ratio is reported (a shared VM's
speed drifts by more than the overhead being measured).
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def sweep_spec(out: Path, epochs: int, parallel: int, scheduler="fifo") -> dict:
    return {
        "name": "overhead",
        "space": {"base": {"block": "bottleneck", "depth": 11, "widths": [16, 32, 64], "stem": "cifar",
                           "stem_width": 16, "bottleneck_width": 16, "num_classes": 10, "resolution": 16},
                  "axes": {"depth": [11, 20], "width_multiplier": [0.5, 1.0]},
                  "paired": [{"cardinality": [1, 4], "bottleneck_width": [16, 8]}]},
        "regimes": [{"name": "rs-10", "epochs": epochs}],
        "dataset": "digits", "seeds": [0],
        "resources": {"cpus": 1, "gpus": 0, "max_concurrent": parallel},
        "scheduler": scheduler, "output_dir": str(out),
        "trial": {},
    }


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--parallel", type=int, default=2, help="concurrent trials (and threads back to back)")
    p.add_argument("--grace", type=int, default=1, help="ASHA grace period (epochs)")
    p.add_argument("--repeat", type=int, default=1, help="alternate the FIFO sweep and the back-to-back run "
                                                         "this many times; report the median ratio")
    args = p.parse_args(argv)

    from experiments.results.store import load_results
    from experiments.sweep.run import run_sweep
    from experiments.sweep.spec import load_sweep, make_plan
    from experiments.train.trial import train_trial

    tmp = Path(tempfile.mkdtemp(prefix="archscale-bench-"))
    sweeps, serials = [], []
    for i in range(max(1, args.repeat)):
        fifo_spec = load_sweep(sweep_spec(tmp / f"fifo{i}", args.epochs, args.parallel))
        trials, _ = make_plan(fifo_spec)
        t0 = time.perf_counter()
        run_sweep(fifo_spec, quiet=True, num_cpus=args.parallel)
        sweeps.append(time.perf_counter() - t0)

        t0 = time.perf_counter()
        for t in trials:
            cfg = copy.deepcopy(t["config"])
            cfg["cpus"] = args.parallel
            train_trial(cfg)
        serials.append(time.perf_counter() - t0)
    ratios = [a / b for a, b in zip(sweeps, serials)]
    sweep_s, serial_s, ratio = statistics.median(sweeps), statistics.median(serials), statistics.median(ratios)

    asha_spec = load_sweep(sweep_spec(tmp / "asha", args.epochs, args.parallel,
                                      {"name": "asha", "grace_period": args.grace, "reduction_factor": 2}))
    t0 = time.perf_counter()
    run_sweep(asha_spec, quiet=True, num_cpus=args.parallel)
    asha_s = time.perf_counter() - t0

    fifo, _ = load_results(tmp / "fifo0")
    asha, _ = load_results(tmp / "asha")
    saving = 1 - asha.epochs_done.sum() / fifo.epochs_done.sum()
    best3 = fifo.sort_values("final_top1", ascending=False).name.head(3).tolist()
    survived = asha.set_index("name").loc[best3, "status"].eq("done")
    print(f"sweep overhead: {len(trials)} trials x {args.epochs} epochs, {args.parallel} at a time")
    print(f"  back to back in one process ({args.parallel} threads each) {serial_s:7.1f} s")
    print(f"  archscale sweep on Ray (FIFO)                    {sweep_s:7.1f} s   ratio {ratio:.3f}"
          f"  (goal <= 1.15)" + (f"; median of {len(ratios)}: " + ", ".join(f"{r:.3f}" for r in ratios)
                                  if len(ratios) > 1 else ""))
    print(f"  archscale sweep on Ray (ASHA, grace {args.grace})           {asha_s:7.1f} s   trained epochs "
          f"{int(asha.epochs_done.sum())}/{int(fifo.epochs_done.sum())}: {saving:.0%} compute saved, "
          f"{int((asha.status == 'stopped').sum())} trials stopped early")
    print(f"  FIFO's best three {best3}: {int(survived.sum())}/3 trained to the end under ASHA")
    return {"serial_s": serial_s, "sweep_s": sweep_s, "ratio": ratio, "ratios": ratios, "asha_s": asha_s,
            "asha_saving": saving, "best3_survived": int(survived.sum())}


if __name__ == "__main__":
    main()
