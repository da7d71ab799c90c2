"""experiments/train/ranks.py: shards, the one-worker context, synchronised batch norm on CPU."""
import copy

import pytest
import torch
from torch import nn

from experiments.data.shards import shard_bounds
from experiments.train.ranks import SINGLE, CpuSyncBatchNorm, RankContext
from scaling import ArchScaleError


def test_shards_are_contiguous_and_cover_everything():
    assert [shard_bounds(10, r, 3) for r in range(3)] == [(0, 3), (3, 6), (6, 10)]
    assert [shard_bounds(64, r, 2) for r in range(2)] == [(0, 32), (32, 64)]
    assert shard_bounds(7, 0, 1) == (0, 7)


def test_one_worker_context_changes_nothing():
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
    assert SINGLE.wrap(model) is model and SINGLE.sync_norm(model, True) is model
    t = torch.tensor([1.0, float("nan")])
    assert SINGLE.sum_(t) is t and SINGLE.mean(t) is t and not SINGLE.all_finite(t)
    before = torch.get_rng_state()
    SINGLE.seed_masks(123)  # rank 0 keeps the generator a one-worker trial has
    assert torch.equal(torch.get_rng_state(), before)
    assert (SINGLE.is_main, SINGLE.shard, SINGLE.devices, SINGLE.worker_batch(96)) == (True, (0, 1), 1, 96)


def test_other_ranks_draw_their_own_masks_and_the_batch_must_split():
    torch.manual_seed(5)
    a = torch.rand(3)
    RankContext(rank=1, world_size=2).seed_masks(5)
    assert not torch.equal(torch.rand(3), a)
    assert RankContext(rank=1, world_size=4, device_share=1.0).devices == 4
    assert RankContext(world_size=4).worker_batch(64) == 16
    with pytest.raises(ArchScaleError, match="resources.workers: the global batch of 64 does not split over 3"):
        RankContext(world_size=3).worker_batch(64)


@pytest.fixture
def one_process_group(tmp_path):
    """A gloo group of one process: the collectives run, and sum over a single worker."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_cpu_sync_batch_norm_matches_batch_norm_forward_backward_and_running_stats(one_process_group):
    torch.manual_seed(0)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU())
    with torch.no_grad():
        plain[1].weight.uniform_(0.5, 1.5)
        plain[1].bias.uniform_(-0.5, 0.5)
    synced = CpuSyncBatchNorm.convert(copy.deepcopy(plain))
    assert isinstance(synced[1], CpuSyncBatchNorm) and synced[1].state_dict().keys() == plain[1].state_dict().keys()
    x = torch.randn(6, 3, 8, 8) * 2 + 1
    for model in (plain, synced):
        model.train()
        model(x).square().sum().backward()
    assert torch.allclose(synced(x), plain(x), atol=1e-5)
    for p, q in zip(plain.parameters(), synced.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=1e-4, atol=1e-5)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert torch.allclose(getattr(synced[1], name).float(), getattr(plain[1], name).float(), atol=1e-6), name
    plain.eval(), synced.eval()
    assert torch.allclose(synced(x), plain(x), atol=1e-5)


def test_buffers_average_and_finite_checks_go_through_the_group(one_process_group):
    ranks = RankContext(world_size=1)
    bn = nn.BatchNorm2d(3)
    bn.running_mean.fill_(2.0)
    ranks.average_buffers_(bn)  # one worker: the identity
    assert torch.equal(bn.running_mean, torch.full((3,), 2.0))
    two = RankContext(rank=0, world_size=2)  # a group of one summing as if for two: halves
    two.average_buffers_(bn)
    assert torch.equal(bn.running_mean, torch.full((3,), 1.0)) and int(bn.num_batches_tracked) == 0
    assert two.all_finite(torch.tensor(1.0)) and not two.all_finite(torch.tensor(float("inf")))
    assert float(two.mean(torch.tensor(4.0))) == 2.0
