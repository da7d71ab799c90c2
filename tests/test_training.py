"""experiments/train/loop.py: EMA, weight-decay groups, the batch-size rule, per-epoch seeding, evaluation."""
import random

import pytest
import torch

from experiments.train.loop import Ema, compile_model, effective_batch_size, evaluate, param_groups, seed_epoch
from experiments.train.regimes import get_regime


def test_batch_is_capped_for_small_data_to_a_power_of_two():
    rs = get_regime("rs-10")  # batch 4096
    assert effective_batch_size(rs, 1_281_167) == 4096
    assert effective_batch_size(rs, 1437) == 64  # 1437 // 16 = 89 -> 64
    assert effective_batch_size(get_regime("classic-90"), 50_000) == 256


def _decayed(model, on):
    groups = param_groups(model, 4e-5, on)
    assert [g["weight_decay"] for g in groups] == [4e-5, 0.0]
    names = {id(p): n for n, p in model.named_parameters()}
    return {names[id(p)] for p in groups[0]["params"]}, {names[id(p)] for p in groups[1]["params"]}


def test_weight_decay_groups_on_a_resnet_rs_model():
    from scaling import build_model, get_preset

    model = build_model(get_preset("resnetrs50").replace(width_multiplier=0.25, resolution=64))
    everything = {n for n, _ in model.named_parameters()}
    bn = {n for n in everything if ".bn" in n or n.startswith("bn") or ".downsample.2." in n
          or n.startswith(("conv1.1.", "conv1.4.", "maxpool.1."))}
    assert bn and all(n.endswith((".weight", ".bias")) for n in bn)
    # tensorflow/tpu resnet_main.py: L2 on every trainable variable not named 'batch_normalization'
    decay, keep = _decayed(model, "all_but_bn")
    assert keep == bn and decay == everything - bn
    assert {"fc.bias", "layer1.0.se.fc1.bias", "layer1.0.se.fc2.bias"} <= decay  # biases decay
    # torchvision's reference recipe (norm_weight_decay unset): everything
    assert _decayed(model, "all") == (everything, set())
    # weights only: no BN, no biases
    decay, keep = _decayed(model, "weights")
    assert all(n.endswith(".weight") for n in decay) and {"fc.bias", "layer1.0.se.fc1.bias"} <= keep
    assert bn <= keep and not any(n in decay for n in bn)


def test_each_regime_names_its_weight_decay_set():
    assert get_regime("rs-350").weight_decay_on == "all_but_bn"
    assert get_regime("classic-90").weight_decay_on == "all"
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    assert _decayed(model, "all_but_bn") == ({"0.weight", "0.bias"}, {"1.weight", "1.bias"})
    assert _decayed(model, "weights") == ({"0.weight"}, {"0.bias", "1.weight", "1.bias"})


def test_seed_epoch_repeats_the_draws_of_an_epoch():
    def draws(epoch):
        g = seed_epoch(7, epoch)
        return torch.randperm(10, generator=g).tolist(), torch.rand(2).tolist(), random.random()

    assert draws(3) == draws(3) and draws(3) != draws(4)


def test_ema_warms_up_then_follows_the_decay():
    model = torch.nn.Linear(1, 1, bias=False)
    torch.nn.init.zeros_(model.weight)
    ema = Ema(model, decay=0.9999)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)  # first step: decay min(0.9999, 1/10) = 0.1
    assert ema.module.weight.item() == pytest.approx(0.9)
    state = ema.state_dict()
    other = Ema(model, decay=0.9999)
    other.load_state_dict(state)
    assert other.steps == 1 and other.module.weight.item() == pytest.approx(0.9)


def test_evaluate_reports_percent_top1_and_top5():
    class Data:
        def val_batches(self, batch_size):
            x = torch.eye(4)
            yield x[:2], torch.tensor([0, 3])
            yield x[2:], torch.tensor([2, 0])

    model = torch.nn.Identity()
    m = evaluate(model, Data(), 2, torch.device("cpu"), lambda: torch.autocast("cpu", enabled=False))
    assert m["val_top1"] == 50.0 and m["val_top5"] == 100.0 and m["val_loss"] > 0


class _FiveImages:
    val_size = 5

    def val_batches(self, batch_size):
        x = torch.eye(5)[:, :, None, None].expand(5, 5, 2, 2)  # (5, 5 "channels", 2, 2): class i lights channel i
        y = torch.tensor([0, 1, 2, 3, 0])
        for i in range(0, 5, batch_size):
            yield x[i:i + batch_size], y[i:i + batch_size]


def test_evaluate_with_a_fixed_shape_pads_the_last_batch_and_drops_the_padding():
    shapes = []

    class Pool(torch.nn.Module):
        def forward(self, x):
            shapes.append(tuple(x.shape))
            return x.mean((2, 3))

    def autocast():
        return torch.autocast("cpu", enabled=False)

    plain = evaluate(Pool(), _FiveImages(), 2, torch.device("cpu"), autocast)
    assert shapes == [(2, 5, 2, 2), (2, 5, 2, 2), (1, 5, 2, 2)]
    shapes.clear()
    fixed = evaluate(Pool(), _FiveImages(), 2, torch.device("cpu"), autocast, torch.channels_last, fixed_shape=True)
    assert shapes == [(2, 5, 2, 2)] * 3
    assert fixed == plain and plain["val_top1"] == 80.0
    shapes.clear()
    evaluate(Pool(), _FiveImages(), 8, torch.device("cpu"), autocast, fixed_shape=True)
    assert shapes == [(5, 5, 2, 2)]  # a batch larger than the validation set shrinks to it


def test_compile_model_takes_the_backend_from_the_environment(monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "compile", lambda model, backend: seen.append(backend) or model)
    monkeypatch.delenv("ARCHSCALE_COMPILE_BACKEND", raising=False)
    compile_model(torch.nn.Identity())
    monkeypatch.setenv("ARCHSCALE_COMPILE_BACKEND", "aot_eager")
    compile_model(torch.nn.Identity())
    assert seen == ["inductor", "aot_eager"]


def test_sharded_evaluation_adds_up_the_workers_sums():
    from experiments.train.ranks import RankContext

    class Data:  # eight images; each worker scores its half
        x = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3, 0, 0, 0, 0]), 4).float() * 3
        y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 1])

        def val_batches(self, batch_size, shard=(0, 1)):
            lo, hi = shard[0] * 4, shard[0] * 4 + 4 if shard[1] == 2 else 8
            for i in range(lo, hi, batch_size):
                yield self.x[i:min(i + batch_size, hi)], self.y[i:min(i + batch_size, hi)]

    sums = {}

    class TwoRanks(RankContext):  # rank 1's sums are handed to rank 0's "all-reduce"
        def sum_(self, t):
            if self.rank == 1:
                sums[1] = t.clone()
                return t
            return t.add_(sums[1])

    autocast = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731
    model, cpu = torch.nn.Identity(), torch.device("cpu")
    evaluate(model, Data(), 3, cpu, autocast, ranks=TwoRanks(rank=1, world_size=2))
    sharded = evaluate(model, Data(), 3, cpu, autocast, ranks=TwoRanks(rank=0, world_size=2))
    whole = evaluate(model, Data(), 3, cpu, autocast)
    assert sharded == pytest.approx(whole) and whole["val_top1"] == 50.0
