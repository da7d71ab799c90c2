"""The ResNeXt paper's three equivalent block forms, the weight converter, the no-shortcut ablation,
and the one-line errors for options that do not combine."""
import itertools

import pytest
import torch
from test_equivalence import _randomise_norms

from scaling import (
    ArchScaleError,
    ArchSpec,
    analytic_counts,
    build_model,
    convert_block_form,
    get_preset,
    spec_from_dict,
)
from scaling.blocks import BasicBlock, Bottleneck, CardinalBranch
from scaling.counting import fvcore_counts
from scaling.yamlio import load_yaml

FORMS = ("grouped", "branches", "concat")
SMALL = ArchSpec(depth=(1, 2, 1), widths=(16, 32, 64), stem="cifar", cardinality=4, bottleneck_width=16,
                 num_classes=10, resolution=32)
VARIANTS = {"plain": {}, "preact": dict(preact=True), "resnest-d-se": dict(avd=True, downsample="d", se_ratio=0.25),
            "resnet-a": dict(downsample="a"), "no-shortcut": dict(shortcut=False)}


def _converted(spec, to_form):
    """A model of ``spec`` with random weights and BN statistics, and the same weights in ``to_form``."""
    src = build_model(spec)
    _randomise_norms(src)
    dst = build_model(spec.replace(block_form=to_form))
    dst.load_state_dict(convert_block_form(src.state_dict(), spec, to_form), strict=True)
    return src.eval(), dst.eval()


@pytest.mark.parametrize("variant", VARIANTS)
def test_three_forms_compute_the_same_function(variant):
    base = SMALL.replace(**VARIANTS[variant])
    x = torch.randn(2, 3, 32, 32)
    for a, b in itertools.permutations(FORMS, 2):
        src, dst = _converted(base.replace(block_form=a), b)
        assert sum(p.numel() for p in src.parameters()) == sum(p.numel() for p in dst.parameters())
        with torch.no_grad():
            torch.testing.assert_close(dst(x), src(x), rtol=1e-5, atol=1e-5)


def test_32x4d_forms_are_equivalent():
    # ResNeXt-50 32x4d's blocks, one per stage (the full network is the slow test below)
    spec = get_preset("resnext50_32x4d").replace(depth=(1, 1, 1, 1), resolution=32)
    x = torch.randn(1, 3, 32, 32)
    for form in ("branches", "concat"):
        src, dst = _converted(spec, form)
        with torch.no_grad():
            torch.testing.assert_close(dst(x), src(x), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_resnext50_forms_are_equivalent():
    spec = get_preset("resnext50_32x4d").replace(resolution=64)
    x = torch.randn(2, 3, 64, 64)
    for form in ("branches", "concat"):
        src, dst = _converted(spec, form)
        assert sum(p.numel() for p in dst.parameters()) == 25028904  # torchvision's resnext50_32x4d
        with torch.no_grad():
            torch.testing.assert_close(dst(x), src(x), rtol=1e-4, atol=1e-4)


def test_forms_agree_in_training_mode_too():
    # BN batch statistics are per channel, so the branches see exactly the grouped block's.
    src, dst = _converted(SMALL, "branches")
    src.train(), dst.train()
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(dst(x), src(x), rtol=1e-4, atol=1e-4)


def test_conversion_round_trip_is_exact():
    spec = SMALL.replace(preact=True)
    sd = build_model(spec).state_dict()
    concat = convert_block_form(sd, spec, "concat")
    branches = convert_block_form(concat, spec.replace(block_form="concat"), "branches")
    back = convert_block_form(branches, spec.replace(block_form="branches"), "grouped")
    assert set(back) == set(sd)
    assert all(torch.equal(back[k], sd[k]) for k in sd)


def test_branch_layers_keep_the_grouped_names():
    model = build_model(SMALL.replace(block_form="branches"))
    block = model.layer2[0]
    assert len(block.branches) == 4 and isinstance(block.branches[0], CardinalBranch)
    branch = block.branches[1]
    assert (branch.conv1.out_channels, branch.conv2.groups, branch.conv3.out_channels) == (8, 1, 128)
    assert branch.conv2.stride == (2, 2) and not hasattr(block, "conv3")
    keys = model.state_dict()
    assert "layer2.0.branches.3.conv3.weight" in keys and "layer2.0.bn3.weight" in keys
    concat = build_model(SMALL.replace(block_form="concat")).layer2[0]
    assert concat.branches[0].conv3 is None and concat.conv3.in_channels == 32


@pytest.mark.parametrize("variant", ["plain", "preact"])
def test_forms_have_equal_params_and_flops_and_counters_agree(variant):
    base = SMALL.replace(**VARIANTS[variant])
    counts = {}
    for form in FORMS:
        spec = base.replace(block_form=form)
        cx = analytic_counts(spec)
        counts[form] = (cx.params, cx.flops, cx.acts)
        assert counts[form] == fvcore_counts(spec), form
    assert counts["grouped"][:2] == counts["branches"][:2] == counts["concat"][:2]
    # fvcore counts every conv's outputs: each branch's own conv3 writes a full-width output
    assert counts["concat"][2] == counts["grouped"][2] < counts["branches"][2]


@pytest.mark.slow
def test_resnext50_forms_counters_agree():
    for form in FORMS:
        spec = get_preset("resnext50_32x4d").replace(block_form=form, resolution=96)
        cx = analytic_counts(spec)
        assert (cx.params, cx.flops, cx.acts) == fvcore_counts(spec), form


def test_converter_rejects_a_spec_that_does_not_describe_the_weights():
    sd = build_model(SMALL).state_dict()
    with pytest.raises(ArchScaleError, match="no layer1.0.branches.0.conv1.weight") as e:
        convert_block_form(sd, SMALL.replace(block_form="branches"), "grouped")
    assert e.value.field == "block_form"
    with pytest.raises(ArchScaleError, match="unknown block form 'parallel'") as e:
        convert_block_form(sd, SMALL, "parallel")
    assert e.value.field == "block_form"
    branches = convert_block_form(sd, SMALL, "branches")
    with pytest.raises(ArchScaleError, match="block_form"):
        convert_block_form(branches, SMALL.replace(block_form="concat"), "grouped")


# ----- no-shortcut ablation ------------------------------------------------------------------
def test_no_shortcut_removes_identity_and_projection():
    spec = get_preset("resnet50").replace(resolution=64)
    plain = build_model(spec.replace(shortcut=False))
    assert all(b.downsample is None for s in plain.stages() for b in s)
    projections = sum(p.numel() for s in build_model(spec).stages() for b in s if b.downsample is not None
                      for p in b.downsample.parameters())
    assert analytic_counts(spec).params - analytic_counts(spec.replace(shortcut=False)).params == projections
    s = get_preset("resnet18").replace(shortcut=False, resolution=64)  # random_spec draws the rest
    cx = analytic_counts(s)
    assert (cx.params, cx.flops, cx.acts) == fvcore_counts(s)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_no_shortcut_block_is_the_branch_alone(block):
    # pre-activation blocks end in the addition, so with and without differ by exactly the input
    kind = {"basic": BasicBlock, "bottleneck": Bottleneck}[block]
    cin = 16 * kind.expansion  # an identity-shortcut block: same weights with and without
    with_sc = kind(cin, 16, preact=True).eval()
    without = kind(cin, 16, preact=True, shortcut=False).eval()
    without.load_state_dict(with_sc.state_dict(), strict=True)
    x = torch.randn(2, cin, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(with_sc(x), without(x) + x)


# ----- combinations that cannot be built ---------------------------------------------------
BAD_COMBINATIONS = [  # checked by tests/test_spec.py with the other bad specs
    (dict(block_form="grouped_conv"), "block_form", "unknown block form 'grouped_conv'"),
    (dict(block="basic", depth=18, block_form="branches"), "block_form", "basic blocks"),
    (dict(cardinality=32, bottleneck_width=4, radix=2, block_form="branches"), "block_form", "split attention"),
    (dict(cardinality=32, bottleneck_width=4, sk_paths=2, block_form="concat"), "block_form", "selective kernel"),
    (dict(block="basic", depth=18, sk_paths=2), "sk_paths", "basic blocks"),
    (dict(sk_paths=2, radix=2), "sk_paths", "radix: 0"),
    (dict(sk_paths=2, preact=True), "sk_paths", "pre-activation"),
    (dict(sk_paths=1), "sk_paths", "at least 2"),
    (dict(sk_paths=-2), "sk_paths", "at least 2"),
    (dict(sk_paths=2, sk_reduction=0), "sk_reduction", ">= 1"),
    (dict(sk_paths=2, sk_min_width=0), "sk_min_width", ">= 1"),
    (dict(sk_dilated="yes"), "sk_dilated", "true or false"),
    (dict(shortcut=False, stochastic_depth=0.1), "stochastic_depth", "shortcut: true"),
    (dict(shortcut=False, zero_init_residual=True), "zero_init_residual", "shortcut: true"),
    (dict(shortcut="no"), "shortcut", "true or false"),
]


def test_new_fields_round_trip_and_default_to_the_old_network():
    spec = spec_from_dict(load_yaml("preset: resnext50_32x4d\nblock_form: Concat\nshortcut: false\n"))
    assert (spec.block_form, spec.shortcut) == ("concat", False)
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    default = ArchSpec()
    assert (default.block_form, default.shortcut, default.sk_paths) == ("grouped", True, 0)
