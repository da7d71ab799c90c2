"""Our presets are the reference implementations: same parameters, strict state dicts, same outputs.

torchvision for its ten ResNets; timm (an independent implementation of the papers) for the
ResNet-D, SE-ResNeXt, ResNeSt and ResNet-RS presets.
"""
import pytest
import torch

from scaling import TORCHVISION_PRESETS, build_model, get_preset

TIMM = {"resnet50d": "resnet50d", "seresnext50_32x4d": "seresnext50_32x4d", "resnest50": "resnest50d",
        "resnetrs50": "resnetrs50", "resnetrs101": "resnetrs101", "resnetrs152": "resnetrs152",
        "resnetrs200": "resnetrs200", "resnetrs270": "resnetrs270", "resnetrs350": "resnetrs350",
        "resnetrs420": "resnetrs420"}
HEAVY = {"resnetrs270", "resnetrs350", "resnetrs420"}


def _randomise_norms(model):
    """Non-trivial BN statistics and affine terms, so a misplaced BN cannot go unnoticed."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def _check_equivalent(ours, ref, resolution):
    n_ours = sum(p.numel() for p in ours.parameters())
    n_ref = sum(p.numel() for p in ref.parameters())
    assert n_ours == n_ref
    _randomise_norms(ref)
    ours.load_state_dict(ref.state_dict(), strict=True)
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, resolution, resolution)
    with torch.no_grad():
        a, b = ours(x), ref(x)
    assert a.shape == b.shape
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def _torchvision(name):
    import torchvision

    return getattr(torchvision.models, name)(weights=None)


@pytest.mark.parametrize("name", TORCHVISION_PRESETS)
def test_torchvision_presets_are_identical(name):
    _check_equivalent(build_model(get_preset(name)), _torchvision(name), 64)


@pytest.mark.slow
@pytest.mark.parametrize("name", TORCHVISION_PRESETS)
def test_torchvision_presets_identical_at_224(name):
    _check_equivalent(build_model(get_preset(name)), _torchvision(name), 224)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in TIMM])
def test_paper_presets_match_timm(name):
    timm = pytest.importorskip("timm")
    _check_equivalent(build_model(get_preset(name)), timm.create_model(TIMM[name], pretrained=False), 64)


def test_torchvision_state_dict_keys_are_ours():
    ours = build_model(get_preset("resnext50_32x4d")).state_dict()
    ref = _torchvision("resnext50_32x4d").state_dict()
    assert list(ours) == list(ref)
    assert all(ours[k].shape == ref[k].shape for k in ref)
