"""A real Ray Tune sweep on one GPU: where its time goes, as ratios measured in one run.

    PYTHONPATH=. python benchmarks/sweep_gpu.py            # one GPU, at most 5 minutes
    PYTHONPATH=. python benchmarks/sweep_gpu.py --smoke    # tiny sizes on CPU, under a minute

The sweep (``archscale sweep``, started as a command, as a user starts it): 8 trials of
CIFAR-size ResNets (basic blocks, depth 8 and 14, width 1 and 2, 2 seeds) on 50,000 in-memory
32 px images of a learnable 10-class set (``learnable`` below: each class a pattern plus noise),
rs-10 shortened to 8 epochs at batch 512, ``resources: {cpus: 3, gpus: 0.25}`` so four trials
share the GPU. It prints, from the run's own records (experiments.results.timeline):

- launch to first training step: from the command's start (Ray's start included) to the end of
  the first training step of any trial;
- busy share over the whole command (NVML's GPU utilisation, sampled by the driver; on CPU the
  trials' CPU seconds over the CPUs they could use);
- mean seconds per trial outside training and evaluation (every phase but train and eval), the
  first trial on each worker apart from the rest;
- evaluation img/s (validation images x epochs / eval seconds, per trial) against the network's
  inference throughput measured here, alone on the device, at the evaluation's batch;
- the same network's cost spread across its trials: max / min of its trials' training img/s;
- sweep time against the sum of the trials' training times: sum / (wall x trials at once), the
  share of the slots' time that trained.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

#: The full run and the CPU smoke run: trials, data set, regime and resources.
SIZES = {
    "full": {"depths": [8, 14], "widths": [1.0, 2.0], "seeds": [0, 1], "train": 50_000, "val": 10_000,
             "resolution": 32, "epochs": 8, "batch": 512, "resources": {"cpus": 3, "gpus": 0.25}, "steps": None},
    "smoke": {"depths": [8], "widths": [0.5, 1.0], "seeds": [0, 1], "train": 512, "val": 128, "resolution": 16,
              "epochs": 2, "batch": 64, "resources": {"cpus": 1, "gpus": 0}, "steps": 2},
}


def learnable(n_train: int = 50_000, n_val: int = 10_000, resolution: int = 32, classes: int = 10) -> dict:
    """A learnable in-memory data set (a loader, as a user writes one): each class a fixed random
    pattern, each image its class's pattern plus noise, uint8, 3 channels. The same every call."""
    import numpy as np

    rng = np.random.default_rng(0)
    patterns = rng.integers(0, 256, (classes, 3, resolution, resolution)).astype(np.int16)

    def split(n):
        y = np.arange(n) % classes
        noise = rng.integers(-64, 65, (n, 3, resolution, resolution), dtype=np.int16)
        return np.clip(patterns[y] + noise, 0, 255).astype(np.uint8), y

    (xt, yt), (xv, yv) = split(n_train), split(n_val)
    return {"x_train": xt, "y_train": yt, "x_val": xv, "y_val": yv, "num_classes": classes}


def sweep_spec(out: Path, size: dict) -> dict:
    return {
        "name": "sweep_gpu",
        "space": {"base": {"block": "basic", "depth": 8, "widths": [16, 32, 64], "stem": "cifar", "stem_width": 16,
                           "num_classes": 10, "resolution": size["resolution"]},
                  "axes": {"depth": size["depths"], "width_multiplier": size["widths"]}},
        "regimes": [{"name": "rs-10", "epochs": size["epochs"], "batch_size": size["batch"]}],
        "dataset": {"loader": "sweep_gpu:learnable", "label": "learnable",
                    "options": {"n_train": size["train"], "n_val": size["val"], "resolution": size["resolution"]}},
        "seeds": size["seeds"], "resources": size["resources"], "scheduler": "fifo", "output_dir": str(out),
        "trial": {k: v for k, v in {"max_steps_per_epoch": size["steps"]}.items() if v},
    }


def run_command(spec_path: Path) -> float:
    """Run ``archscale sweep SPEC`` as a user does; returns its wall time (s)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), str(HERE),
                                                                    os.environ.get("PYTHONPATH")])))
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "experiments.cli", "sweep", str(spec_path), "--quiet"], cwd=ROOT, env=env,
                   check=True)
    return time.time() - t0


def inference_throughput(trials, batch: int, device: str) -> dict[str, float]:
    """Each network's inference img/s at ``batch``, measured here, alone on the device, in the
    trials' precision (bf16 autocast and channels-last on CUDA)."""
    import torch

    from scaling import build_model, spec_from_dict
    from scaling.device import amp_dtype
    from scaling.timing import time_inference

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    fmt = torch.channels_last if cuda else torch.contiguous_format
    out = {}
    for name, row in trials.drop_duplicates("name").set_index("name").iterrows():
        spec = spec_from_dict(json.loads(row["spec_json"]))
        model = build_model(spec).to(dev, memory_format=fmt)
        _, tput, _ = time_inference(model, (3, spec.resolution, spec.resolution), dev, batch, 3, 10,
                                 (lambda: torch.autocast("cuda", dtype=amp_dtype(dev))) if cuda else None, fmt)
        out[name] = tput
    return out


def figures(out: Path, size: dict, device: str, command_s: float) -> dict:
    """The benchmark's figures from the run directory ``out``."""
    import pandas as pd

    from experiments.results.schema import PHASES, phase_column
    from experiments.results.store import load_results, read_events, read_plan
    from experiments.results.timeline import load_utilisation, overhead_phases, sweep_times

    trials, _ = load_results(out)
    times = sweep_times(read_events(out), trials, load_utilisation(out))
    plan = {t["trial_id"]: t for t in read_plan(out)}
    trials["spec_json"] = [json.dumps(plan[t]["config"]["spec"]) for t in trials["trial_id"]]
    outside = trials[overhead_phases()].sum(axis=1)
    new = trials["new_worker"].fillna(False).astype(bool)
    eval_batch = min(max(size["batch"], 256), size["val"])
    measured = inference_throughput(trials, eval_batch, device)
    eval_ips = size["val"] * trials["epochs_done"] / trials[phase_column("eval")]
    ratio = (eval_ips / trials["name"].map(measured)).astype(float)
    spread = trials.groupby("name")["observed_images_per_s"].agg(lambda s: s.max() / s.min())
    slots = _slots(size)
    train = float(trials[phase_column("train")].sum() + trials[phase_column("warmup")].sum())
    return {
        "device": device, "trials": len(trials), "command_s": command_s, "wall_s": times.wall_s,
        "launch_to_first_step_s": times.launch_to_first_step_s, "busy_share": times.busy_share,
        "busy_source": times.busy_source,
        "outside_first_on_worker_s": float(outside[new].mean()) if new.any() else math.nan,
        "outside_reused_worker_s": float(outside[~new].mean()) if (~new).any() else math.nan,
        "largest_overhead_phase": times.largest_overhead_phase,
        "phase_means_s": {p: float(trials[phase_column(p)].mean()) for p in PHASES},
        "eval_images_per_s": float(eval_ips.mean()), "eval_vs_inference": float(ratio.mean()),
        "eval_vs_inference_range": [float(ratio.min()), float(ratio.max())],
        "same_network_spread_max": float(spread.max()),
        "sum_train_s": train, "trained_share_of_slots": train / (times.wall_s * slots) if times.wall_s else math.nan,
        "slots": slots, "statuses": {k: int(v) for k, v in trials["status"].value_counts().items()},
        "phase_columns_sum_over_wall": float((trials[[phase_column(p) for p in PHASES]].sum(axis=1)
                                              / pd.to_numeric(trials["wall_time_s"])).mean()),
    }


def _slots(size: dict) -> int:
    """Trials at once: 1 / gpus per trial on the one GPU; on CPU the machine's CPUs / cpus per trial."""
    res = size["resources"]
    if res["gpus"]:
        return int(round(1 / res["gpus"]))
    return max(1, (os.cpu_count() or 1) // res["cpus"])


def report(f: dict) -> str:
    busy = "NVML GPU utilisation" if f["busy_source"] == "nvml" else "trials' CPU time over their CPUs"
    lines = [
        f"sweep_gpu on {f['device']}: {f['trials']} trials ({f['statuses']}), command {f['command_s']:.1f} s",
        f"  launch to first training step      {f['launch_to_first_step_s']:8.2f} s",
        f"  busy share over the command         {100 * f['busy_share']:8.1f} %   ({busy})",
        f"  outside training and evaluation     {f['outside_reused_worker_s']:8.2f} s per trial on a reused worker; "
        f"{f['outside_first_on_worker_s']:.2f} s on a worker's first (largest phase: {f['largest_overhead_phase']})",
        "  mean phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in f["phase_means_s"].items()),
        f"  evaluation                          {f['eval_images_per_s']:8.0f} img/s = {f['eval_vs_inference']:.2f} x "
        f"the measured inference throughput (trials {f['eval_vs_inference_range'][0]:.2f}-"
        f"{f['eval_vs_inference_range'][1]:.2f})",
        f"  same-network spread                 {f['same_network_spread_max']:8.3f} x (max/min training img/s of "
        f"a network's trials)",
        f"  sweep time vs training              {f['sum_train_s']:.1f} s trained in {f['wall_s']:.1f} s x "
        f"{f['slots']} slots = {100 * f['trained_share_of_slots']:.1f} % of the slots' time",
        f"  phases over wall time               {f['phase_columns_sum_over_wall']:8.3f}",
    ]
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes on CPU (under a minute)")
    p.add_argument("--out", help="the sweep's output directory (default: a fresh temporary one)")
    p.add_argument("--json", help="also write the figures here as JSON")
    args = p.parse_args(argv)
    size = SIZES["smoke" if args.smoke else "full"]
    import torch

    device = "cuda" if torch.cuda.is_available() and not args.smoke else "cpu"
    if device == "cpu" and not args.smoke:
        raise SystemExit("sweep_gpu: no GPU here; --smoke runs it on CPU")
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="archscale-sweep-gpu-")) / "run"
    spec_path = out.parent / "sweep_gpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    spec_path.write_text(json.dumps(sweep_spec(out, size)))
    command_s = run_command(spec_path)
    f = figures(out, size, device, command_s)
    print(report(f), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(f, indent=1))
    return f


if __name__ == "__main__":
    main()
