"""Small sweep specs for the tests (tiny nets on digits, a few steps an epoch)."""

TINY_BASE = {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar", "stem_width": 8,
             "num_classes": 10, "resolution": 12}


def tiny_sweep(output_dir, *, widths=(1.0,), depths=(8,), resolutions=(12,), epochs=2, seeds=(0,), steps=4,
               **extra) -> dict:
    spec = {
        "name": "tiny",
        "space": {"base": dict(TINY_BASE),
                  "axes": {"width_multiplier": list(widths), "depth": list(depths), "resolution": list(resolutions)}},
        "regimes": [{"name": "rs-10", "epochs": epochs}],
        "dataset": "digits",
        "seeds": list(seeds),
        "resources": {"cpus": 1, "gpus": 0},
        "output_dir": str(output_dir),
        "trial": {"max_steps_per_epoch": steps},
    }
    spec.update(extra)
    return spec
