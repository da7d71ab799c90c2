"""experiments/training.py: EMA, weight-decay groups, the batch-size rule, per-epoch seeding, evaluation."""
import random

import pytest
import torch

from experiments.regimes import get_regime
from experiments.training import Ema, effective_batch_size, evaluate, param_groups, seed_epoch


def test_batch_is_capped_for_small_data_to_a_power_of_two():
    rs = get_regime("rs-10")  # batch 4096
    assert effective_batch_size(rs, 1_281_167) == 4096
    assert effective_batch_size(rs, 1437) == 64  # 1437 // 16 = 89 -> 64
    assert effective_batch_size(get_regime("classic-90"), 50_000) == 256


def test_weight_decay_groups():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    rs = param_groups(model, 4e-5, decay_norm_and_bias=False)
    assert [len(g["params"]) for g in rs] == [1, 3] and [g["weight_decay"] for g in rs] == [4e-5, 0.0]
    classic = param_groups(model, 1e-4, decay_norm_and_bias=True)
    assert len(classic) == 1 and len(classic[0]["params"]) == 4


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


def test_sharded_evaluation_adds_up_the_workers_sums():
    from experiments.distributed import RankContext

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
    evaluate(model, Data(), 3, cpu, autocast, TwoRanks(rank=1, world_size=2))
    sharded = evaluate(model, Data(), 3, cpu, autocast, TwoRanks(rank=0, world_size=2))
    whole = evaluate(model, Data(), 3, cpu, autocast)
    assert sharded == pytest.approx(whole) and whole["val_top1"] == 50.0
