"""scaling/attention.py: channels-last survives the attention modules (SK, split attention, SE)."""
import pytest
import torch

from scaling import ArchSpec, build_model
from scaling.attention import SelectiveKernel, SplitAttn, SqueezeExcite

CL = torch.channels_last


def _cl(x):
    return x.to(memory_format=CL)


@pytest.mark.parametrize("module", [SplitAttn(16, 1, groups=2, radix=2), SplitAttn(16, 1, groups=1, radix=4),
                                    SplitAttn(16, 2, groups=2, radix=1), SqueezeExcite(16, 0.25),
                                    SelectiveKernel(16, 1, 2, paths=2, reduction=4, min_width=8, dilated=True),
                                    SelectiveKernel(16, 2, 2, paths=3, reduction=4, min_width=8, dilated=False)],
                         ids=["split-r2", "split-r4", "split-r1-stride2", "se", "sk2", "sk3-stride2"])
def test_a_channels_last_input_gives_a_channels_last_output(module):
    module = module.to(memory_format=CL)
    x = _cl(torch.randn(2, 16, 8, 8))
    for train in (True, False):
        out = module.train(train)(x)
        assert out.is_contiguous(memory_format=CL) and not out.is_contiguous()
        torch.testing.assert_close(out, module(x.contiguous()))  # same values either way


@pytest.mark.parametrize("fields", [dict(radix=2), dict(radix=2, avd=True), dict(sk_paths=2), dict(sk_paths=3),
                                    dict(block_form="branches"), dict(block_form="concat"), dict(se_ratio=0.25)],
                         ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()))
def test_every_layer_of_a_channels_last_network_stays_channels_last(fields):
    spec = ArchSpec(block="bottleneck", depth=(1, 1), widths=(16, 32), stem="cifar", stem_width=8, cardinality=2,
                    bottleneck_width=16, resolution=16, **fields)
    model = build_model(spec).to(memory_format=CL)
    lost = []

    def hook(mod, inp, out):  # a 1x1 map is both formats at once: only larger maps can lose the layout
        if isinstance(out, torch.Tensor) and out.dim() == 4 and out.shape[-2:].numel() > 1 \
                and not out.is_contiguous(memory_format=CL):
            lost.append(type(mod).__name__)

    for m in model.modules():
        m.register_forward_hook(hook)
    model(_cl(torch.randn(2, 3, 16, 16))).sum().backward()
    assert lost == []
