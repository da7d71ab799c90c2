"""The trial path on one GPU: each figure a ratio of two things measured side by side, in one run.

    PYTHONPATH=. python benchmarks/gpu_check.py             # one GPU, about 6 minutes (at most 8)
    PYTHONPATH=. python benchmarks/gpu_check.py --smoke     # tiny sizes, on CPU too: checks that it runs
    PYTHONPATH=. python benchmarks/gpu_check.py --only trainer,forms
    PYTHONPATH=. python benchmarks/gpu_check.py --only folder --json folder.json   # about 4 minutes

Sections (``--only`` picks some):

- ``trainer``: train_trial (compiled, bf16, channels-last, cuDNN autotuning) against a bare
  compiled bf16 channels-last loop, ResNet-50 at 224 px on in-memory synthetic data; img/s and
  model-FLOPs utilisation of both, compile times apart. EMA off, so both do the same arithmetic.
  The bare loop compiles first, cold; the trainer's compile then reuses inductor's on-disk cache
  (the same network), so its compile time is a warm one (seconds, not a minute).
- ``cifar``: a CIFAR-10-size in-memory data set (50,000 random images in CIFAR's on-disk format,
  loaded by the cifar10 loader) under rs-350's augmentation (pad-crop, flip, RandAugment) on a
  CIFAR ResNet-18: img/s of a whole epoch against the same epoch without RandAugment, and the
  share of the step time the GPU waits on the host: 1 - GPU-busy time (kernels and copies, from
  the profiler, in a profiled epoch) / wall time of the same unprofiled epoch.
- ``packing``: four trials in four processes at once on the one GPU (0.25 GPU each, as a Ray
  sweep with ``gpus: 0.25`` packs them; plain processes here, no Ray) against the same four one
  after another: wall time and summed img/s.
- ``forms``: the three ResNeXt block forms (grouped, branches, concat) of resnext50_32x4d at
  224 px and a GPU-sized batch, through ``measure()`` (benchmarks/block_forms.py).
- ``folder``: an ImageNet-layout folder of photo-like JPEGs (4,096 of 500 x 375 px in 10 classes,
  written in parallel; set-up time printed). (1) Agreement: the same files, crops and flips decoded
  in the workers (libjpeg-turbo) and on the GPU (nvJPEG, batched crop) give batches within the two
  decoders' own difference (grey levels, measured on the uncropped images). (2) The stream hazard
  (pytorch/vision PR 9606): tensors are freed while reductions queued behind a long kernel still
  read them, then a batch is decoded; counts the corrupted reductions for a bare
  ``decode_jpeg(device="cuda")`` on the caller's stream and for our path (must be 0). (3)
  ResNet-50 at 160 px, batch 256, trained from memory, from the folder with ``decode: workers``,
  ``decode: device`` and ``decode: auto`` (benchmarks/folder_pipeline.py ``--train``): img/s and
  the ratio to in memory, and each epoch's loss: finite, and the two decode paths' curves within
  5 % of each other.

Needs torch and torchvision only (no Ray, no fvcore: the closed-form counter prices the
networks). Each section prints as it ends (one that fails prints its error and the rest go on);
the summary repeats the ratios. ``ARCHSCALE_COMPILE_BACKEND=aot_eager`` compiles without
inductor, should the machine lack the C compiler Triton needs.
"""
from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from experiments.train.trial import TrialConfig, TrialRun, train_trial  # noqa: E402
from scaling import ArchSpec, build_model, complexity, get_preset  # noqa: E402
from scaling.device import amp_dtype, cudnn_autotune, device_name, peak_bf16_flops, resolve_device, sync  # noqa: E402
from scaling.files import atomic_write_text  # noqa: E402

SECTIONS = ("trainer", "cifar", "packing", "forms", "folder")
CIFAR_TRAIN, CIFAR_TEST = 50_000, 10_000
PROFILED_STEPS = 8


def sizes(smoke: bool) -> dict:
    """Every size the check uses: full (one GPU) or smoke (tiny, seconds on a CPU)."""
    if smoke:
        tiny = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, num_classes=10,
                        resolution=16)
        return dict(trainer_spec=tiny, trainer_batch=8, trainer_steps=3,
                    cifar_spec=tiny.replace(resolution=32), cifar_train=640, cifar_test=16, cifar_epochs=2,
                    cifar_steps=3, pack_spec=tiny, pack_batch=8, pack_train=128, pack_epochs=1, pack_trials=2,
                    forms_spec=ArchSpec(block="bottleneck", depth=(1, 1), widths=(16, 32), stem="cifar", stem_width=8,
                                        cardinality=4, bottleneck_width=4, resolution=16),
                    forms_batch=2, forms_iters=1,
                    folder_spec=tiny.to_dict(), folder_images=64, folder_classes=2, folder_size=(64, 48),
                    folder_resolution=32, folder_batch=8, folder_epochs=2, folder_steps=None, folder_hazard_iters=2)
    resnet18_cifar = get_preset("resnet18").replace(stem="cifar", resolution=32, num_classes=10)
    return dict(trainer_spec=get_preset("resnet50"), trainer_batch=256, trainer_steps=30,
                cifar_spec=resnet18_cifar, cifar_train=CIFAR_TRAIN, cifar_test=CIFAR_TEST, cifar_epochs=3,
                cifar_steps=None, pack_spec=resnet18_cifar, pack_batch=256, pack_train=256 * 80, pack_epochs=8,
                pack_trials=4, forms_spec=get_preset("resnext50_32x4d"), forms_batch=64, forms_iters=10,
                folder_spec=get_preset("resnet50").to_dict(), folder_images=4096, folder_classes=10,
                folder_size=(500, 375), folder_resolution=160, folder_batch=256, folder_epochs=3, folder_steps=None,
                folder_hazard_iters=20)


def mfu(spec: ArchSpec, images_per_s: float, device: torch.device) -> float | None:
    """Model-FLOPs utilisation: 3 x forward FLOPs (2 per multiply-add) x images/s over the GPU's
    dense bf16 peak; None off the table of known GPUs."""
    peak = peak_bf16_flops(device)
    return None if peak is None else 3 * 2 * complexity(spec, counter="analytic").flops * images_per_s / peak


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.1%}"


def _free(device: torch.device) -> None:
    """Drop compiled graphs and cached GPU memory between sections."""
    torch._dynamo.reset()
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


# ----- trainer vs a bare compiled loop --------------------------------------------------------------
def bare_compiled_loop(spec: ArchSpec, batch: int, steps: int, device: torch.device) -> dict:
    """img/s of the plainest fast loop: compiled model, autocast in the device's amp type,
    channels-last, SGD with momentum, pre-normalised batches already on the device; its compile
    (first step) timed apart."""
    from experiments.train.loop import compile_model

    torch.manual_seed(0)
    fmt = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model = build_model(spec).to(device, memory_format=fmt).train()
    step_model = compile_model(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=4e-5)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    g = torch.Generator().manual_seed(0)
    xs = [torch.randn(batch, spec.in_channels, spec.resolution, spec.resolution, generator=g)
          .to(device).contiguous(memory_format=fmt) for _ in range(4)]
    ys = [torch.randint(0, spec.num_classes, (batch,), generator=g).to(device) for _ in range(4)]
    dtype, amp = amp_dtype(device), device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=amp and dtype == torch.float16)

    def step(i):
        with torch.autocast(device.type, dtype=dtype, enabled=amp):
            loss = loss_fn(step_model(xs[i % 4]), ys[i % 4])
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    with cudnn_autotune():
        sync(device)
        t0 = time.perf_counter()
        step(0)
        sync(device)
        compile_s = time.perf_counter() - t0
        for i in range(1, 4):
            step(i)
        sync(device)
        t0 = time.perf_counter()
        for i in range(steps):
            step(i)
        sync(device)
        ips = steps * batch / (time.perf_counter() - t0)
    return {"images_per_s": ips, "compile_time_s": compile_s}


def trainer_run(spec: ArchSpec, batch: int, steps: int, device: torch.device) -> dict:
    """img/s of train_trial's second epoch (the first compiles), same work as the bare loop."""
    result = train_trial({
        "spec": spec.to_dict(), "seed": 0, "device": str(device), "compile": True, "max_steps_per_epoch": steps,
        "regime": {"name": "rs-10", "epochs": 2, "batch_size": batch, "ema_decay": 0.0, "warmup_epochs": 0},
        "dataset": {"name": "synthetic", "train_size": batch * max(steps, 16), "val_size": batch,
                    "num_classes": spec.num_classes},
        "checkpoint_every": 0})
    first, last = result["history"][0], result["history"][-1]
    return {"images_per_s": last["observed_images_per_s"], "compile_time_s": first["compile_time_s"],
            "epoch1_images_per_s": first["observed_images_per_s"], "peak_memory_bytes": result["peak_memory_bytes"]}


def section_trainer(s: dict, device: torch.device) -> dict:
    spec, batch, steps = s["trainer_spec"], s["trainer_batch"], s["trainer_steps"]
    bare = bare_compiled_loop(spec, batch, steps, device)
    _free(device)
    ours = trainer_run(spec, batch, steps, device)
    _free(device)
    ratio = ours["images_per_s"] / bare["images_per_s"]
    print(f"trainer vs a bare compiled loop: {spec.slug()} at {spec.resolution} px, batch {batch}, {steps} timed steps")
    for name, r in (("bare compiled loop", bare), ("train_trial", ours)):
        print(f"  {name:20s} {r['images_per_s']:10.1f} img/s  MFU {_pct(mfu(spec, r['images_per_s'], device)):>6s}"
              f"  compile {r['compile_time_s']:.1f}s")
    print(f"  ratio trainer/bare   {ratio:.3f}  (epoch 1 of the trainer, compile excluded: "
          f"{ours['epoch1_images_per_s']:.1f} img/s)")
    print("  (compile: the bare loop's is cold; the trainer's reuses the on-disk cache the bare loop filled)")
    return {"ratio": ratio, "bare": bare, "trainer": ours, "mfu_bare": mfu(spec, bare["images_per_s"], device),
            "mfu_trainer": mfu(spec, ours["images_per_s"], device)}


# ----- a CIFAR-10-size epoch under rs-350 augmentation -----------------------------------------------
def write_fake_cifar10(root: Path, train: int, test: int) -> None:
    """Random images and labels in torchvision's CIFAR-10 layout (5 training batches + test_batch)."""
    base = root / "cifar-10-batches-py"
    base.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(0)

    def batch(n):
        return {"data": torch.randint(0, 256, (n, 3072), generator=g, dtype=torch.uint8).numpy(),
                "labels": torch.randint(0, 10, (n,), generator=g).tolist()}

    for i in range(1, 6):
        with open(base / f"data_batch_{i}", "wb") as f:
            pickle.dump(batch(train // 5), f)
    with open(base / "test_batch", "wb") as f:
        pickle.dump(batch(test), f)
    with open(base / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [str(i) for i in range(10)]}, f)


def gpu_busy_s(prof) -> float | None:
    """Seconds the GPU was busy (kernels, copies, sets; overlaps merged) in a profile; None without
    GPU events."""
    spans = sorted((e.time_range.start, e.time_range.end) for e in prof.events()
                   if e.device_type == torch.autograd.DeviceType.CUDA)
    if not spans:
        return None
    busy, (lo, hi) = 0.0, spans[0]
    for a, b in spans[1:]:
        if a > hi:
            busy, lo, hi = busy + hi - lo, a, b
        else:
            hi = max(hi, b)
    return (busy + hi - lo) / 1e6  # the profiler's times are in microseconds


def cifar_trial(s: dict, root: Path, device: torch.device, randaugment: bool) -> tuple[dict, TrialRun]:
    """A CIFAR-10 trial under rs-350 set up and trained for all but its last epoch; returns the
    last trained epoch's metrics and the trial (to go on)."""
    regime = {"name": "rs-350", "epochs": s["cifar_epochs"] + 1}
    if not randaugment:
        regime["randaugment_layers"] = 0
    trial = TrialRun(TrialConfig.from_dict({
        "spec": s["cifar_spec"].to_dict(), "regime": regime, "seed": 0, "device": str(device),
        "dataset": {"name": "cifar10", "root": str(root)}, "max_steps_per_epoch": s["cifar_steps"],
        "checkpoint_every": 0}))
    with cudnn_autotune():
        for epoch in range(s["cifar_epochs"]):  # the first one also runs cuDNN's algorithm search
            metrics = trial.train_epoch(epoch)
    return metrics, trial


def section_cifar(s: dict, device: torch.device) -> dict:
    with tempfile.TemporaryDirectory(prefix="gpu-check-cifar-") as tmp:
        write_fake_cifar10(Path(tmp), s["cifar_train"], s["cifar_test"])
        plain, _ = cifar_trial(s, Path(tmp), device, randaugment=False)
        _free(device)
        aug, trial = cifar_trial(s, Path(tmp), device, randaugment=True)
    reg, batch, steps = trial.reg, trial.batch, trial.steps_per_epoch
    wait, why = (gpu_wait_share(trial, aug["epoch_time_s"] / steps, s["cifar_epochs"]) if device.type == "cuda"
                 else (None, "no GPU"))
    del trial
    _free(device)
    plain_ips, aug_ips = plain.observed_images_per_s, aug.observed_images_per_s
    ratio = aug_ips / plain_ips
    print(f"CIFAR-10-size epoch under rs-350: {s['cifar_spec'].slug()}, {s['cifar_train']:,} images ({steps} steps), "
          f"batch {batch}, RandAugment {reg['randaugment_layers']} x magnitude {reg['randaugment_magnitude']}")
    print(f"  without RandAugment  {plain_ips:10.1f} img/s")
    print(f"  rs-350 augmentation  {aug_ips:10.1f} img/s   ratio {ratio:.3f}")
    print(f"  GPU waiting on the host: {_pct(wait)} of the step time" + (f" ({why})" if why else ""))
    return {"ratio": ratio, "images_per_s": aug_ips, "images_per_s_no_randaugment": plain_ips,
            "gpu_wait_share": wait}


def gpu_wait_share(trial: TrialRun, step_s: float, epoch: int) -> tuple[float | None, str]:
    """(share of the step time the GPU is idle, "" or why there is no figure): 1 - GPU-busy time of
    a few steps, profiled, over the time the same number of steps took unprofiled (``step_s``
    each; the profiler slows the host, so the unprofiled time is the honest denominator)."""
    from torch.profiler import ProfilerActivity, profile

    trial.steps_per_epoch = steps = min(trial.steps_per_epoch, PROFILED_STEPS)
    try:
        with cudnn_autotune(), profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            trial._train_steps(epoch)  # the training steps alone, no evaluation
        busy = gpu_busy_s(prof)
    except Exception as e:  # a profiler that cannot see the GPU leaves the other figures standing
        return None, f"profiler failed: {type(e).__name__}: {e}"
    if busy is None:
        return None, "the profiler saw no GPU activity"
    return max(0.0, 1 - busy / (steps * step_s)), ""


# ----- four trials at 0.25 GPU each vs one after another ---------------------------------------------
def pack_config(s: dict, device: torch.device, seed: int) -> dict:
    """One of the packed trials: its share of the CPUs, no checkpoints (as a sweep trial)."""
    return {"spec": s["pack_spec"].to_dict(), "seed": seed, "device": str(device),
            "cpus": max(1, (os.cpu_count() or 4) // s["pack_trials"]),
            "regime": {"name": "rs-10", "epochs": s["pack_epochs"], "batch_size": s["pack_batch"]},
            "dataset": {"name": "synthetic", "train_size": s["pack_train"], "val_size": s["pack_batch"],
                        "num_classes": 10},
            "checkpoint_every": 0}


def run_trials(configs: list[dict], together: bool) -> tuple[float, list[dict]]:
    """(wall seconds, each trial's result) of the trials in their own processes, all at once or
    one after another."""
    def start(cfg):
        return subprocess.Popen([sys.executable, __file__, "--worker", json.dumps(cfg)], stdout=subprocess.PIPE,
                                text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})

    def result(p):
        out, _ = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"a trial process failed (exit {p.returncode})")
        return json.loads(out.strip().splitlines()[-1])

    t0 = time.perf_counter()
    if together:
        procs = [start(c) for c in configs]
        results = [result(p) for p in procs]
    else:
        results = [result(start(c)) for c in configs]
    return time.perf_counter() - t0, results


def section_packing(s: dict, device: torch.device) -> dict:
    configs = [pack_config(s, device, seed) for seed in range(s["pack_trials"])]
    apart_s, apart = run_trials(configs, together=False)
    together_s, together = run_trials(configs, together=True)
    n = len(configs)
    ips_apart = sum(r["images_per_s"] for r in apart) / n  # one at a time: the mean is the rate
    ips_together = sum(r["images_per_s"] for r in together)
    print(f"{n} trials at {1 / n:.2f} GPU each vs one after another: {s['pack_spec'].slug()}, batch {s['pack_batch']}, "
          f"{s['pack_epochs']} epochs of {s['pack_train']:,} images, each in its own process")
    print(f"  one after another    {apart_s:8.1f}s wall  {ips_apart:10.1f} img/s")
    print(f"  all at once          {together_s:8.1f}s wall  {ips_together:10.1f} img/s (summed)")
    print(f"  ratio                {apart_s / together_s:.3f} x faster by wall time, "
          f"{ips_together / ips_apart:.3f} x the training throughput")
    return {"ratio": apart_s / together_s, "wall_apart_s": apart_s, "wall_together_s": together_s,
            "throughput_ratio": ips_together / ips_apart}


# ----- the three ResNeXt block forms ------------------------------------------------------------------
def section_forms(s: dict, device: torch.device) -> dict:
    import block_forms

    return block_forms.compare(s["forms_spec"], str(device), s["forms_batch"], s["forms_iters"])


# ----- JPEG folders: device decode agreeing, the stream hazard, training against in-memory data -------
def folder_agreement(root: Path, resolution: int, device: torch.device, batches: int = 2) -> dict:
    """Grey-level differences between the same files, crops and flips decoded in the workers and on
    ``device``: of the decoded images (the decoders' own difference) and of the cropped batches."""
    from experiments.data.datasets import load_dataset
    from experiments.data.folder import IMAGENET_STD, _decode_jpeg, read_encoded

    std = torch.tensor(IMAGENET_STD, device=device).view(1, 3, 1, 1)
    paths = [str(p) for p in sorted((root / "train").rglob("*.jpg"))[:16]]
    raw = [(_decode_jpeg(read_encoded(p)).to(device).float() - _decode_jpeg([read_encoded(p)], device)[0].float()).abs()
           for p in paths]
    decoders = torch.cat([d.flatten() for d in raw])
    loaded = {k: load_dataset({"name": "imagefolder", "root": str(root), "decode": k}, resolution, 3).to(device)
              for k in ("workers", "device")}
    diffs = []
    for (a, ya), (b, yb) in zip(*(loaded[k].train_batches(32, torch.Generator().manual_seed(0), batches)
                                   for k in ("workers", "device"))):
        assert torch.equal(ya, yb), "the two paths gave different labels"
        diffs.append(((a - b) * std * 255).abs().flatten())
    batch = torch.cat(diffs)
    out = {"decoder_mean_levels": float(decoders.mean()), "decoder_max_levels": float(decoders.max()),
           "batch_mean_levels": float(batch.mean()), "batch_max_levels": float(batch.max())}
    out["agree"] = out["batch_mean_levels"] <= out["decoder_mean_levels"] + 0.5
    return out


def stream_hazard(paths: list[str], resolution: int, device: torch.device, iters: int) -> dict:
    """Reductions corrupted when a batch is decoded while freed memory is still to be read by
    queued kernels: with a bare ``decode_jpeg`` on the caller's stream, and through our path."""
    from experiments.data.crops import crop_draws
    from experiments.data.folder import _decode_jpeg, device_crops, read_encoded

    items = [read_encoded(p) for p in paths]
    draws = crop_draws(range(len(items)))
    stream = torch.cuda.Stream(device)
    n, tensors = 1 << 20, 16
    corrupted = {}
    for mode in ("bare decode_jpeg", "ours"):
        bad = 0
        for _ in range(iters):
            ts = [torch.full((n,), float(k + 1), device=device) for k in range(tensors)]
            torch.cuda.synchronize(device)
            torch.cuda._sleep(50_000_000)  # a long kernel, so the reductions below wait in the queue
            sums = [t.sum() for t in ts]
            del ts  # freed while the queued reductions are still to read them
            if mode == "ours":
                device_crops(items, draws, resolution, device, stream)
            else:
                _decode_jpeg(items, device)
            torch.cuda.synchronize(device)
            bad += sum(float(v) != n * (k + 1) for k, v in enumerate(sums))
        corrupted[mode] = bad
    return {"reductions": iters * tensors, **corrupted}


def _part(name: str, run) -> dict:
    """A check's figures, or {"error": ...} when it fails (the training figures still follow)."""
    try:
        return run()
    except Exception as e:  # noqa: BLE001 - one broken check leaves the others standing
        traceback.print_exc()
        print(f"  {name} failed: {type(e).__name__}: {e}", flush=True)
        return {"error": f"{type(e).__name__}: {e}"}


def section_folder(s: dict, device: torch.device) -> dict:
    import folder_pipeline as fp

    with tempfile.TemporaryDirectory(prefix="gpu-check-folder-") as tmp:
        root = Path(tmp)
        files, took, _ = fp.write_jpegs(root, s["folder_images"], s["folder_classes"], s["folder_size"])
        kb = sum(f.stat().st_size for f in files) / len(files) / 1024
        w, h = s["folder_size"]
        print(f"  set-up: wrote {len(files)} JPEGs of {w}x{h} px ({kb:.0f} KB each) in {took:.1f}s", flush=True)
        agree = _part("agreement", lambda: folder_agreement(root, s["folder_resolution"], device))
        if "error" not in agree:
            print(f"  agreement, grey levels: decoders alone mean {agree['decoder_mean_levels']:.2f} max "
                  f"{agree['decoder_max_levels']:.0f}; cropped batches mean {agree['batch_mean_levels']:.2f} max "
                  f"{agree['batch_max_levels']:.0f}: {'agree' if agree['agree'] else 'DISAGREE'}", flush=True)
        hazard = None
        if device.type == "cuda":
            hazard = _part("stream hazard", lambda: stream_hazard([str(f) for f in files[:64]],
                                                                  s["folder_resolution"], device,
                                                                  s["folder_hazard_iters"]))
            if "error" not in hazard:
                print(f"  stream hazard: of {hazard['reductions']} reductions, {hazard['bare decode_jpeg']} corrupted "
                      f"by a bare decode_jpeg, {hazard['ours']} by ours", flush=True)
        print(f"  training {'ResNet-50' if s['folder_images'] > 64 else 'a tiny ResNet'} at "
              f"{s['folder_resolution']} px, batch {s['folder_batch']}, {s['folder_epochs']} epochs per path "
              f"(the last timed):", flush=True)
        _free(device)
        rates = fp.train_rates(root, s["folder_spec"], s["folder_resolution"], s["folder_batch"], s["folder_epochs"],
                               s["folder_steps"], s["folder_images"], s["folder_classes"], str(device),
                               compile_=device.type == "cuda")
        ratios = fp.train_table(rates)
    curves = rates["decode: workers"]["losses"], rates["decode: device"]["losses"]
    finite = all(math.isfinite(v) for r in rates.values() for v in r["losses"])
    same_curve = all(abs(a - b) <= 0.05 * abs(a) for a, b in zip(*curves))
    print(f"  losses per epoch, workers {['%.3f' % v for v in curves[0]]}, device {['%.3f' % v for v in curves[1]]}: "
          f"{'finite' if finite else 'NOT FINITE'}, {'the same curve' if same_curve else 'DIFFERENT curves'} "
          f"(within 5 %)")
    faster = max(("workers", "device"), key=lambda k: rates[f"decode: {k}"]["images_per_s"])
    chose = rates["decode: auto"]["decode"]
    print(f"  decode: auto chose {chose}; the faster path in training here: {faster}")
    return {"ratio": ratios["decode: auto"], "ratios": ratios, "rates": rates, "setup_s": took, "agreement": agree,
            "hazard": hazard, "finite": finite, "same_curve": same_curve, "auto_chose": chose,
            "faster_in_training": faster}


def worker(config: str) -> int:
    """One trial in this process (the packing section); prints its result as JSON."""
    result = train_trial(json.loads(config))
    print(json.dumps({"images_per_s": result["observed_images_per_s"], "train_time_s": result["train_time_s"]}))
    return 0


def main(argv=None) -> tuple[dict, list[str]]:
    """Run the sections asked for; returns (each section's figures, the sections that failed)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every section runs (CPU is fine)")
    p.add_argument("--device", default="auto")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--budget-s", type=float, default=480, help="skip the sections left after this many seconds")
    p.add_argument("--json", help="also write the figures to this file")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        sys.exit(worker(args.worker))
    only = [x.strip() for x in args.only.split(",") if x.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    device = resolve_device(args.device)
    if args.smoke:  # dynamo without code generation: no C++ compiler needed, seconds not minutes
        os.environ.setdefault("ARCHSCALE_COMPILE_BACKEND", "eager")
    s = sizes(args.smoke)
    print(f"GPU check on {device_name(device)}, torch {torch.__version__}{' (smoke sizes)' if args.smoke else ''}",
          flush=True)
    runs = {"trainer": section_trainer, "cifar": section_cifar, "packing": section_packing, "forms": section_forms,
            "folder": section_folder}
    results, failed, t_start = {}, [], time.perf_counter()
    for name in only:
        if time.perf_counter() - t_start > args.budget_s:
            print(f"\n== {name}: skipped (past the {args.budget_s:.0f}s budget)", flush=True)
            continue
        print(f"\n== {name}", flush=True)
        t0 = time.perf_counter()
        try:
            results[name] = runs[name](s, device)
        except Exception as e:  # one broken section leaves the others' figures standing
            traceback.print_exc()
            failed.append(name)
            print(f"   failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", flush=True)
            _free(device)
        print(f"   ({time.perf_counter() - t0:.0f}s)", flush=True)
    print(f"\n== summary ({time.perf_counter() - t_start:.0f}s)")
    for name, r in results.items():
        print(f"  {name:8s} ratio {r['ratio']:.3f}")
    for name in failed:
        print(f"  {name:8s} failed (see above)")
    if args.json:
        atomic_write_text(args.json, json.dumps({"device": device_name(device), **results, "failed": failed},
                                                indent=1, default=str))
    return results, failed


if __name__ == "__main__":
    sys.exit(1 if main()[1] else 0)
