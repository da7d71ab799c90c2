"""A trial on N data-parallel workers against one worker with N times the resources, side by side.

Both train the same network at the same global batch on the same synthetic data, both launched
through Ray Train (one worker runs train_trial's one-worker path; N workers run DDP), alternately
``--repeats`` times, medians shown. On CPU the one worker gets N x the threads of each of the N
workers (gloo); on GPUs it gets one GPU against N. A third line, one worker with one worker's
share (one GPU, or the threads of one of the N), gives the scaling efficiency: N workers' images/s
over N x its.
Then, on the N workers, the per-step communication share: the time of a step with DDP's gradient
all-reduce against the same step under ``no_sync()`` (no all-reduce), on pre-built batches, so
the share is what communication adds to a step after the overlap with the backward pass.

    python benchmarks/data_parallel.py                      # CPU: 2 workers x 1 thread vs 1 x 2
    python benchmarks/data_parallel.py --device cuda --workers 4 --preset resnet50 --resolution 224 \\
        --batch-size 512                                    # 4 GPUs vs 1, where there are 4
"""
from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from scaling import ArchSpec, get_preset  # noqa: E402


def trial(spec: ArchSpec, batch: int, steps: int, epochs: int) -> dict:
    """The benchmark's trial: ``steps`` steps an epoch on synthetic data, no checkpoints."""
    return {"spec": spec.to_dict(), "seed": 0, "max_steps_per_epoch": steps,
            "regime": {"name": "rs-10", "epochs": epochs, "batch_size": batch, "warmup_epochs": 0},
            "dataset": {"name": "synthetic", "train_size": batch * steps, "val_size": batch, "num_classes": 10},
            "checkpoint_every": 0}


def steady_images_per_s(result: dict) -> float:
    """Median images/s (the whole trial's) of the epochs after the first (warm-up)."""
    return statistics.median(h["observed_images_per_s"] for h in result["history"][1:])


def step_times(loop: dict) -> dict:
    """Ray Train worker: rank 0's mean seconds per step with DDP's all-reduce and under no_sync."""
    import ray.train
    import ray.train.torch

    from experiments.train.loop import seed_epoch
    from experiments.train.ranks import RankContext
    from experiments.train.trial import TrialConfig, TrialRun
    from scaling.device import sync

    ctx = ray.train.get_context()
    ranks = RankContext(ctx.get_world_rank(), ctx.get_world_size())
    run = TrialRun(TrialConfig.from_dict({**loop["trial"], "device": str(ray.train.torch.get_device()),
                                          "cpus": loop["cpus"]}), ranks)
    batches = [(x.contiguous(memory_format=run.fmt), y)
               for x, y in run.data.train_batches(run.batch, seed_epoch(0, 0), loop["steps"], shard=ranks.shard)]

    def timed(no_sync: bool) -> float:
        run.step_model.train()
        sync(run.device)
        t0 = time.perf_counter()
        for x, y in batches:
            with run.step_model.no_sync() if no_sync else contextlib.nullcontext():
                with run.autocast():
                    loss = run.loss_fn(run.step_model(x), y)
                run.opt.zero_grad(set_to_none=True)
                loss.backward()
            run.opt.step()
        sync(run.device)
        return (time.perf_counter() - t0) / len(batches)

    timed(False)  # warm-up
    with_sync, without = [], []
    for _ in range(loop["repeats"]):
        with_sync.append(timed(False))
        without.append(timed(True))
    return {"sync": statistics.median(with_sync), "no_sync": statistics.median(without)}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu", help="cpu (gloo workers) or cuda (one GPU per worker, NCCL)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--cpus", type=int, default=1, help="threads per worker (the one worker gets workers x this)")
    p.add_argument("--preset", default=None, help="a preset instead of the default small CPU network")
    p.add_argument("--resolution", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=64, help="the global batch (split over the workers)")
    p.add_argument("--steps", type=int, default=12, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="epochs per trial (the first is warm-up)")
    p.add_argument("--repeats", type=int, default=3, help="alternating runs of each (and timings of the share)")
    args = p.parse_args(argv)
    import ray

    from experiments.sweep.data_parallel import scaling_config, train_data_parallel
    from experiments.sweep.ray_runtime import init_ray
    from experiments.sweep.resources import Launch

    cuda = args.device.startswith("cuda")
    if cuda and torch.cuda.device_count() < args.workers:
        raise SystemExit(f"--device cuda --workers {args.workers} needs {args.workers} GPUs; "
                         f"{torch.cuda.device_count()} visible")
    spec = (get_preset(args.preset).replace(num_classes=10) if args.preset else
            ArchSpec(block="basic", depth=14, widths=(16, 32, 64), stem="cifar", stem_width=16, num_classes=10,
                     resolution=32))
    if args.resolution:
        spec = spec.replace(resolution=args.resolution)
    cfg = trial(spec, args.batch_size, args.steps, args.epochs)

    os.environ["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                os.environ.get("PYTHONPATH", "")])  # for Ray's workers
    started = init_ray(num_cpus=max(os.cpu_count() or 1, args.workers * args.cpus),
                       num_gpus=args.workers if cuda else 0)
    storage = tempfile.mkdtemp(prefix="archscale-bench-")
    try:
        launch = Launch(workers=args.workers, cpus=args.cpus, gpus=1.0 if cuda else 0.0)
        alone = Launch(workers=1, cpus=args.workers * args.cpus, gpus=1.0 if cuda else 0.0)
        share = Launch(workers=1, cpus=args.cpus, gpus=1.0 if cuda else 0.0)
        ones, manys, shares = [], [], []
        for _ in range(args.repeats):
            ones.append(steady_images_per_s(train_data_parallel(cfg, alone)))
            manys.append(steady_images_per_s(train_data_parallel(cfg, launch)))
            if not cuda:  # on GPUs the one worker above already has one worker's share
                shares.append(steady_images_per_s(train_data_parallel(cfg, share)))
        import ray.train
        import ray.train.torch

        loop = {"trial": cfg, "cpus": args.cpus, "steps": args.steps, "repeats": args.repeats}
        times = ray.train.torch.TorchTrainer(
            step_times, train_loop_config=loop, scaling_config=scaling_config(launch),
            run_config=ray.train.RunConfig(storage_path=storage,
                                           logging_config=ray.train.LoggingConfig(log_level="WARNING")),
        ).fit().return_value
    finally:
        shutil.rmtree(storage, ignore_errors=True)
        if started:
            ray.shutdown()
    a, b = statistics.median(ones), statistics.median(manys)
    c = statistics.median(shares) if shares else a
    comm = max(0.0, 1 - times["no_sync"] / times["sync"])
    unit = "1 GPU" if cuda else f"{args.cpus} thread{'s' if args.cpus > 1 else ''}"
    one_unit = "1 GPU" if cuda else f"{args.workers * args.cpus} threads"
    print(f"data-parallel trial on {'CUDA (NCCL)' if cuda else 'CPU (gloo)'}: {spec.slug()}, global batch "
          f"{args.batch_size}, {args.steps} steps x {args.epochs} epochs (first is warm-up), "
          f"{os.cpu_count()} cores here, {args.repeats} alternating runs each")
    print(f"  1 worker  x {one_unit:<12} {a:10.1f} img/s")
    print(f"  {args.workers} workers x {unit:<12} {b:10.1f} img/s   ratio {b / a:.3f}")
    if shares:
        print(f"  1 worker  x {unit:<12} {c:10.1f} img/s   scaling efficiency of {args.workers} workers "
              f"{b / (args.workers * c):.1%}")
    else:
        print(f"  scaling efficiency of {args.workers} workers {b / (args.workers * a):.1%}")
    print(f"  communication share of a {args.workers}-worker step: {comm:.1%} "
          f"({times['sync'] * 1e3:.1f} ms with the gradient all-reduce, {times['no_sync'] * 1e3:.1f} ms without)")
    return {"one": a, "many": b, "ratio": b / a, "efficiency": b / (args.workers * c), "comm_share": comm,
            "step_ms": times["sync"] * 1e3}


if __name__ == "__main__":
    main()
