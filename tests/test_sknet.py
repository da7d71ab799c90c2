"""SKNet selective kernels: the skresnext50_32x4d preset is timm's (and the paper's SKNet-50), and
every SK variant is counted alike by fvcore and the closed-form counter."""
import json

import pytest
import torch
from test_equivalence import _check_equivalent

from scaling import ArchSpec, analytic_counts, build_model, complexity, get_preset
from scaling.attention import SelectiveKernel
from scaling.blocks import SKBottleneck
from scaling.counting import fvcore_counts

SMALL = ArchSpec(depth=(1, 2, 1), widths=(16, 32, 64), stem="cifar", cardinality=4, bottleneck_width=16,
                 sk_paths=2, sk_reduction=4, sk_min_width=8, num_classes=10, resolution=32)


def test_skresnext50_matches_timm():
    timm = pytest.importorskip("timm")
    _check_equivalent(build_model(get_preset("skresnext50_32x4d")),
                      timm.create_model("skresnext50_32x4d", pretrained=False), 64)


def test_skresnext50_cost_matches_the_sknet_paper():
    # SKNet paper, Table 2: SKNet-50 27.5 M params, 4.47 G FLOPs (multiply-adds, convs and FC).
    # Ours is fvcore's count, which adds BN and pooling (~0.7% here).
    c = complexity(get_preset("skresnext50_32x4d"), counter="analytic")
    assert c.params == 27479784  # timm's skresnext50_32x4d
    assert c.params / 1e6 == pytest.approx(27.5, abs=0.05)
    assert c.flops / 1e9 == pytest.approx(4.47, rel=0.01)


def test_attention_width_is_max_of_c_over_r_and_l():
    model = build_model(get_preset("skresnext50_32x4d").replace(resolution=64))
    widths = [stage[0].conv2.attn.fc_reduce.out_channels for stage in model.stages()]
    assert widths == [32, 32, 32, 64]  # C = 128, 256, 512, 1024; r = 16, L = 32
    block = model.layer2[0]
    assert isinstance(block, SKBottleneck) and [p.conv.dilation for p in block.conv2.paths] == [(1, 1), (2, 2)]
    assert all(p.conv.groups == 32 and p.conv.stride == (2, 2) for p in block.conv2.paths)
    small = build_model(SMALL).layer3[0].conv2.attn
    assert small.fc_reduce.out_channels == 64 // 4 and small.fc_select.out_channels == 2 * 64


def test_kernels_real_or_dilated():
    three = SelectiveKernel(16, 1, 2, paths=3, reduction=4, min_width=8, dilated=True)
    assert [(p.conv.kernel_size, p.conv.dilation) for p in three.paths] == [((3, 3), (1, 1)), ((3, 3), (2, 2)),
                                                                            ((3, 3), (3, 3))]
    real = SelectiveKernel(16, 2, 2, paths=3, reduction=4, min_width=8, dilated=False)
    assert [p.conv.kernel_size for p in real.paths] == [(3, 3), (5, 5), (7, 7)]
    assert real.eval()(torch.randn(1, 16, 9, 9)).shape == (1, 16, 5, 5)


def test_selection_is_a_softmax_across_paths():
    sk = SelectiveKernel(16, 1, 2, paths=3, reduction=4, min_width=8, dilated=True).eval()
    feats = list(torch.randn(2, 3, 16, 5, 5).unbind(1))  # the three paths' outputs
    weights = sk.attn(feats)
    assert weights.shape == (2, 3, 16, 1, 1)
    torch.testing.assert_close(weights.sum(1), torch.ones(2, 16, 1, 1))


VARIANTS = [dict(), dict(sk_paths=3), dict(sk_dilated=False), dict(sk_paths=3, sk_dilated=False, avd=True),
            dict(downsample="a", se_ratio=0.25), dict(downsample="d", stem="deep", shortcut=False),
            dict(sk_reduction=16, sk_min_width=32, width_multiplier=0.5)]


@pytest.mark.parametrize("fields", VARIANTS, ids=[",".join(f"{k}={v}" for k, v in f.items()) or "base"
                                                 for f in VARIANTS])
def test_analytic_equals_fvcore_for_sk_variants(fields):
    spec = SMALL.replace(**fields)
    cx = analytic_counts(spec)
    assert (cx.params, cx.flops, cx.acts) == fvcore_counts(spec)
    model = build_model(spec)
    out = model(torch.randn(2, spec.in_channels, 32, 32))
    out.sum().backward()
    assert out.shape == (2, 10)


def test_real_5x5_costs_more_than_dilated_3x3():
    dilated, real = (analytic_counts(SMALL.replace(sk_dilated=d)) for d in (True, False))
    assert real.params > dilated.params and real.flops > dilated.flops


def test_zero_init_residual_zeroes_the_last_bn():
    model = build_model(SMALL.replace(zero_init_residual=True))
    assert all(float(b.conv3.bn.weight.detach().abs().sum()) == 0 for s in model.stages() for b in s)


def test_cli_counts_skresnext50(capsys):
    from experiments.cli import main

    assert main(["count", "skresnext50_32x4d", "--json", "--counter", "analytic"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[0])
    assert row["params"] == 27479784 and row["flops"] == 4499892416
