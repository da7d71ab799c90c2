"""Every benchmark, one after the other; each prints its ratios and what they compare.

    python benchmarks/run_all.py            # CPU: a few minutes on 2 cores
    python benchmarks/run_all.py --quick    # smaller samples
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import augment_speed  # noqa: E402
import block_forms  # noqa: E402
import costs  # noqa: E402
import data_parallel  # noqa: E402
import folder_pipeline  # noqa: E402
import pricing  # noqa: E402
import sweep_overhead  # noqa: E402
import trainer_overhead  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    args = p.parse_args(argv)
    runs = [
        ("pricing: configs/s of the vectorised and per-config closed form, torch meta-device FlopCounterMode, fvcore",
         lambda: pricing.main(["--sample", "2" if args.quick else "5"])),
        ("trainer: train_trial vs a bare PyTorch loop, synthetic and augmented in-memory data (CPU)",
         lambda: trainer_overhead.main(["--repeats", "1" if args.quick else "3"])),
        ("augmentation: batched RandAugment vs torchvision per 16-image chunk (ratio) and per image (CPU)",
         lambda: augment_speed.main(["--repeats", "2" if args.quick else "5"])),
        ("folder data: our uint8 decode_jpeg path vs torchvision ImageFolder+DataLoader, and the decode limit",
         lambda: folder_pipeline.main(["--images", "128", "--repeats", "1"] if args.quick else [])),
        ("sweep: Ray Tune sweep vs the same trials back to back; ASHA's saving",
         lambda: sweep_overhead.main(["--epochs", "3", "--repeat", "1"] if args.quick else ["--epochs", "6", "--repeat", "3"])),
        ("block forms: grouped vs branches vs concat ResNeXt blocks (CPU)",
         lambda: block_forms.main(["--iters", "3" if args.quick else "10"])),
        ("costs: spread of repeated cost measurements of the digits demo's template network (CPU)",
         lambda: costs.main(["--runs", "3" if args.quick else "5"])),
        ("data-parallel: a trial on 2 workers vs 1 worker with twice the threads (CPU, Ray Train)",
         lambda: data_parallel.main(["--repeats", "1" if args.quick else "3"])),
    ]
    results = {}
    for title, run in runs:
        print(f"\n== {title}", flush=True)
        t0 = time.perf_counter()
        results[title] = run()
        print(f"   ({time.perf_counter() - t0:.0f}s)", flush=True)
    print("\n== summary")
    for title, r in results.items():
        ratio = r.get("ratio")
        print(f"  {title}: ratio {ratio:,.3f}" if ratio is not None else f"  {title}: see above")
    return 0


if __name__ == "__main__":
    sys.exit(main())
