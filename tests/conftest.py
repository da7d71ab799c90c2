import random

import pytest
import torch

from scaling import ArchSpec, check_fits


def random_spec(rng: random.Random) -> ArchSpec:
    """A small random valid ArchSpec exercising every variant (for counter and round-trip tests)."""
    while True:
        block = rng.choice(["basic", "bottleneck"])
        stages = rng.choice([3, 4])
        base = [16, 32, 64, 128][:stages] if stages == 4 else [16, 32, 64]
        fields = dict(
            block=block,
            widths=tuple(base),
            depth=tuple(rng.randint(1, 2) for _ in range(stages)),
            stem_width=rng.choice([8, 16, 24]),
            width_multiplier=rng.choice([0.5, 0.75, 1.0, 1.5]),
            stem=rng.choice(["imagenet", "deep", "cifar"]),
            stem_pool=rng.choice(["auto", "max", "conv", "none"]),
            downsample=rng.choice(["a", "b", "d"]),
            se_ratio=rng.choice([0.0, 0.0, 0.25, 1 / 16]),
            preact=rng.random() < 0.25,
            num_classes=rng.choice([10, 100]),
            in_channels=rng.choice([1, 3]),
            resolution=rng.choice([32, 48, 64, 80]),
            widen_factor=rng.choice([1.0, 1.0, 2.0]),
            stochastic_depth=rng.choice([0.0, 0.1]),
            dropout=rng.choice([0.0, 0.2]),
        )
        if rng.random() < 0.15:  # the plain (no-shortcut) network
            fields.update(shortcut=False, stochastic_depth=0.0)
        if block == "bottleneck":
            fields.update(cardinality=rng.choice([1, 2, 4, 8]), bottleneck_width=rng.choice([16, 32, 64]),
                          avd=rng.random() < 0.3)
            attention = rng.random()
            if not fields["preact"] and attention < 0.3:
                fields["radix"] = rng.choice([1, 2])
            elif not fields["preact"] and attention < 0.5:
                fields.update(sk_paths=rng.choice([2, 3]), sk_reduction=rng.choice([4, 16]),
                              sk_min_width=rng.choice([8, 32]), sk_dilated=rng.random() < 0.5)
            else:
                fields["block_form"] = rng.choice(["grouped", "branches", "concat"])
        try:
            spec = ArchSpec(**fields)
            check_fits(spec)
            return spec
        except ValueError:
            continue  # e.g. a resolution too small for this stem: draw again


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(autouse=True)
def _cost_cache(tmp_path_factory, monkeypatch):
    """Every test has its own cost cache (never the user's)."""
    monkeypatch.setenv("ARCHSCALE_COST_CACHE", str(tmp_path_factory.mktemp("cost_cache") / "costs.parquet"))


@pytest.fixture
def fresh_ray():
    """No Ray initialised in this process before or after the test (Ray tests only)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        ray.shutdown()
    yield
    if ray.is_initialized():
        ray.shutdown()
