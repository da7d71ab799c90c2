import random

import pytest
import torch
from conftest import random_spec

from scaling import ArchSpec, build_model, get_preset
from scaling.blocks import BasicBlock, Bottleneck


def test_random_specs_build_and_run_forward_and_backward():
    rng = random.Random(7)
    for _ in range(12):
        spec = random_spec(rng)
        model = build_model(spec)
        x = torch.randn(2, spec.in_channels, spec.resolution, spec.resolution)
        out = model(x)
        assert out.shape == (2, spec.num_classes)
        out.sum().backward()
        model.eval()
        with torch.no_grad():
            assert torch.isfinite(model(x)).all()


def test_resnet_rs_stem_and_shortcut_layout():
    model = build_model(get_preset("resnetrs50"))
    assert [m.out_channels for m in model.conv1 if isinstance(m, torch.nn.Conv2d)] == [32, 32, 64]
    assert isinstance(model.maxpool[0], torch.nn.Conv2d) and model.maxpool[0].stride == (2, 2)
    block = model.layer2[0]
    assert isinstance(block.downsample[0], torch.nn.AvgPool2d)  # ResNet-D
    assert block.conv2.stride == (2, 2) and block.conv1.stride == (1, 1)  # ResNet-B stride on the 3x3
    assert block.se.fc1.out_channels == 512 // 4  # SE ratio 0.25 of the block output


def test_downsample_a_strides_the_first_1x1():
    model = build_model(ArchSpec(depth=50, downsample="a"))
    assert model.layer3[0].conv1.stride == (2, 2) and model.layer3[0].conv2.stride == (1, 1)


def test_width_multiplier_scales_stem_and_stages():
    model = build_model(ArchSpec(depth=50, width_multiplier=0.5, resolution=64))
    assert model.conv1.out_channels == 32
    assert model.layer1[0].conv1.out_channels == 32 and model.layer4[0].conv3.out_channels == 1024


def test_wide_basic_blocks_widen_every_stage():
    spec = ArchSpec(block="basic", depth=20, widths=(16, 32, 64), stem="cifar", widen_factor=4, resolution=32)
    model = build_model(spec)
    assert [model.layer1[0].conv1.out_channels, model.layer3[0].conv2.out_channels] == [64, 256]


def test_stochastic_depth_follows_the_resnet_rs_stage_rule():
    model = build_model(get_preset("resnetrs200"))
    rates = [stage[0].drop_path.p for stage in model.stages()]
    assert rates == pytest.approx([0.1 * k / 5 for k in (2, 3, 4, 5)])


def test_zero_init_residual_zeroes_the_last_norm():
    model = build_model(get_preset("resnet50").replace(zero_init_residual=True))
    assert all(float(b.bn3.weight.detach().abs().sum()) == 0 for s in model.stages() for b in s)
    basic = build_model(get_preset("resnet18").replace(zero_init_residual=True))
    assert float(basic.layer1[0].bn2.weight.detach().abs().sum()) == 0
    pre = build_model(get_preset("resnet18").replace(zero_init_residual=True, preact=True))
    assert float(pre.layer1[0].conv2.weight.detach().abs().sum()) == 0


def test_resnet_rs_presets_zero_init_every_blocks_last_bn():
    # tensorflow/tpu resnet_model.py builds each block's last batch norm with init_zero=True
    from scaling import PRESETS

    rs = [name for name in PRESETS if name.startswith("resnetrs")]
    assert len(rs) == 7 and all(PRESETS[name].zero_init_residual for name in rs)
    assert not any(PRESETS[name].zero_init_residual for name in PRESETS if name not in rs)  # torchvision's default
    model = build_model(get_preset("resnetrs50").replace(width_multiplier=0.25, resolution=64))
    assert all(float(b.bn3.weight.detach().abs().sum()) == 0 for s in model.stages() for b in s)
    assert float(model.layer1[0].bn1.weight.detach().min()) == 1.0  # only the last BN


def test_preact_blocks_normalise_before_convs():
    model = build_model(ArchSpec(depth=50, preact=True, resolution=64))
    block = model.layer2[0]
    assert isinstance(block, Bottleneck)
    assert block.bn1.num_features == block.conv1.in_channels  # BN on the block input
    assert model.bn1 is None and model.bn_final.num_features == 2048
    assert len(block.downsample) == 1  # bare projection conv


def test_dropout_is_before_the_classifier():
    model = build_model(get_preset("resnetrs350"))
    assert model.dropout.p == 0.4


def test_split_attention_softmax_over_radix():
    from scaling.attention import SplitAttn

    m = SplitAttn(16, 1, groups=2, radix=2).eval()
    out = m(torch.randn(1, 16, 8, 8))
    assert out.shape == (1, 16, 8, 8)


def test_basic_block_is_used_for_basic_specs():
    model = build_model(get_preset("resnet18"))
    assert isinstance(model.layer1[0], BasicBlock)
    with pytest.raises(TypeError):
        build_model("resnet18")
