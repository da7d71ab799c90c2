"""experiments/data/augment.py: RandAugment on the official TF scale, batched, against the formulas and PIL."""
import numpy as np
import pytest
import torch
from PIL import Image

from experiments.data import augment as A

timm_aa = pytest.importorskip("timm.data.auto_augment")

# ----- the level -> argument formulas (tensorflow/tpu efficientnet/autoaugment.py) ----------------
# level:              0     5      10     15
OFFICIAL = {
    "Rotate":       (0.0, 15.0, 30.0, 45.0),  # (level / 10) * 30 degrees, random sign
    "ShearX":       (0.0, 0.15, 0.3, 0.45),  # (level / 10) * 0.3, random sign
    "ShearY":       (0.0, 0.15, 0.3, 0.45),
    "TranslateX":   (0.0, 50.0, 100.0, 150.0),  # (level / 10) * translate_const (100 px at 224 px)
    "TranslateY":   (0.0, 50.0, 100.0, 150.0),
    "Color":        (0.1, 1.0, 1.9, 2.8),  # (level / 10) * 1.8 + 0.1
    "Contrast":     (0.1, 1.0, 1.9, 2.8),
    "Brightness":   (0.1, 1.0, 1.9, 2.8),
    "Sharpness":    (0.1, 1.0, 1.9, 2.8),
    "Posterize":    (0, 2, 4, 6),  # int((level / 10) * 4) bits kept
    "Solarize":     (0, 128, 256, 384),  # int((level / 10) * 256)
    "SolarizeAdd":  (0, 55, 110, 165),  # int((level / 10) * 110)
    "Cutout":       (0, 20, 40, 60),  # int((level / 10) * cutout_const), cutout_const 40 at 224 px
    "AutoContrast": (None,) * 4,
    "Equalize":     (None,) * 4,
    "Invert":       (None,) * 4,
}


def test_the_op_set_and_scale_are_the_official_ones():
    assert sorted(A.OPS) == sorted(OFFICIAL) and len(A.OPS) == 16
    assert A.SIGNED == {"Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY"}
    assert A.MAX_LEVEL == 10 and A.FILL == 128


@pytest.mark.parametrize("op", sorted(OFFICIAL))
def test_level_to_arg_at_levels_0_5_10_15(op):
    got = tuple(A.level_to_arg(op, level, 224) for level in (0, 5, 10, 15))
    want = OFFICIAL[op]
    if want[0] is None:
        assert got == want
    else:
        assert got == pytest.approx(want) and all(type(g) is type(w) for g, w in zip(got, want))


def test_translate_and_cutout_scale_with_the_image_side():
    assert A.level_to_arg("TranslateX", 10, 32) == pytest.approx(100 * 32 / 224)
    assert A.level_to_arg("TranslateY", 15, 160) == pytest.approx(1.5 * 100 * 160 / 224)
    assert A.level_to_arg("Cutout", 10, 32) == 5  # int(40 * 32 / 224)
    with pytest.raises(ValueError, match="unknown RandAugment op"):
        A.level_to_arg("Shear", 10)


@pytest.mark.parametrize("level", [0, 2.5, 5, 7.5, 9, 10])
def test_level_to_arg_agrees_with_timm_up_to_level_10(level):
    """timm's rand-mM ops use the same formulas (it clamps levels at 10 by default, so no further)."""
    hp = {"translate_const": 100}
    same = {"Rotate": "Rotate", "ShearX": "ShearX", "Color": "Color", "Contrast": "Contrast",
            "Brightness": "Brightness", "Sharpness": "Sharpness", "Posterize": "Posterize", "Solarize": "Solarize",
            "SolarizeAdd": "SolarizeAdd", "TranslateX": "TranslateX"}
    for ours, theirs in same.items():
        (ref,) = timm_aa.LEVEL_TO_ARG[theirs](level, hp)
        got = A.level_to_arg(ours, level, 224)
        assert abs(ref) == pytest.approx(got), ours


# ----- each op against PIL (timm's op functions) ----------------------------------------------------
def _image(h=40, w=48, low=20, high=220, seed=0):
    return np.random.default_rng(seed).integers(low, high, (h, w, 3), dtype=np.uint8)


def _batch(a):
    return torch.from_numpy(a).permute(2, 0, 1)[None].contiguous()


def _pil(img):
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)[None]


def _geometric(op, arg, x):
    m, t = A.affine_maps(op, torch.tensor([float(arg)]), x.shape[2], x.shape[3])
    return A.warp(x, torch.cat([m, t[:, :, None]], 2))


GEOMETRIC_CASES = [("Rotate", timm_aa.rotate, v) for v in (30.0, -30.0, 45.0, 7.5)] + \
    [("ShearX", timm_aa.shear_x, v) for v in (0.3, -0.3, 0.45)] + \
    [("ShearY", timm_aa.shear_y, v) for v in (0.3, -0.15)] + \
    [("TranslateX", timm_aa.translate_x_abs, v) for v in (14.3, -7.0, 100.0)] + \
    [("TranslateY", timm_aa.translate_y_abs, v) for v in (10.0, -3.5)]


@pytest.mark.parametrize("op,ref,arg", GEOMETRIC_CASES)
def test_geometric_ops_sample_as_pil_nearest_with_fill_128(op, ref, arg):
    a = _image()
    want = _pil(ref(Image.fromarray(a), arg, fillcolor=(A.FILL,) * 3, resample=Image.NEAREST))
    got = _geometric(op, arg, _batch(a))
    assert (got == want).float().mean() >= 0.999  # float32 grid vs PIL's double: at most a pixel on a tie


COLOUR_CASES = [
    ("Color", A.color, timm_aa.color, (0.1, 0.55, 1.9, 2.8)),
    ("Contrast", A.contrast, timm_aa.contrast, (0.1, 0.55, 1.9, 2.8)),
    ("Brightness", A.brightness, timm_aa.brightness, (0.1, 0.55, 1.9, 2.8)),
    ("Sharpness", A.sharpness, timm_aa.sharpness, (0.1, 0.55, 1.9, 2.8)),
    ("Posterize", A.posterize, timm_aa.posterize, (2, 4, 6, 8)),
    ("Solarize", A.solarize, timm_aa.solarize, (0, 128, 200, 256)),
    ("SolarizeAdd", A.solarize_add, timm_aa.solarize_add, (55, 110, 165)),
]


@pytest.mark.parametrize("name,ours,ref,args", COLOUR_CASES, ids=[c[0] for c in COLOUR_CASES])
def test_colour_ops_equal_pils(name, ours, ref, args):
    for seed, (low, high) in enumerate([(0, 256), (20, 220)]):
        a = _image(low=low, high=high, seed=seed)
        for arg in args:
            assert torch.equal(ours(_batch(a), arg), _pil(ref(Image.fromarray(a), arg))), (name, arg)


@pytest.mark.parametrize("name,ours,ref", [("AutoContrast", A.autocontrast, timm_aa.auto_contrast),
                                           ("Equalize", A.equalize, timm_aa.equalize),
                                           ("Invert", A.invert, timm_aa.invert)])
def test_argument_free_ops_equal_pils(name, ours, ref):
    for low, high in [(0, 256), (20, 220), (90, 95)]:
        a = _image(low=low, high=high)
        a[:5, :5, 1] = 100  # a flat channel region, and a constant channel below
        a[..., 2] = 77 if high == 95 else a[..., 2]
        assert torch.equal(ours(_batch(a)), _pil(ref(Image.fromarray(a)))), (name, low, high)


def test_posterize_to_zero_bits_is_black_and_solarize_past_255_is_identity():
    x = _batch(_image())
    assert not A.posterize(x, 0).any()
    assert torch.equal(A.solarize(x, 384), x) and torch.equal(A.posterize(x, 9), x)


def test_cutout_fills_the_official_box_clipped_at_the_border():
    x = _batch(_image(30, 30))
    box = A.cutout_box(cy=3, cx=20, half=5, height=30, width=30)
    assert box == (0, 8, 15, 25)
    out = A.cutout(x, torch.tensor([box]))
    assert (out[:, :, 0:8, 15:25] == A.FILL).all()
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, :, 0:8, 15:25] = False
    assert torch.equal(out[mask], x[mask])


# ----- batched RandAugment ----------------------------------------------------------------------------
def _reference(ra, x, bp):
    """Apply each image's ops one image at a time, reading the plan the way its docstring says."""
    args = ra.args(min(x.shape[2], x.shape[3]))
    for layer in range(ra.layers):
        if bp.perms[layer] is not None:
            x = x[bp.perms[layer]]
        ops = [op for op, count in zip(A.OPS, bp.counts[layer]) for _ in range(count)]
        out = []
        for j, op in enumerate(ops):
            xj = x[j:j + 1]
            if op in A.GEOMETRIC:
                out.append(A.warp(xj, bp.theta[layer, j:j + 1]))
            elif op == "Cutout":
                out.append(A.cutout(xj, bp.boxes[layer, j:j + 1]))
            else:
                out.append(ra._colour(op, xj, args[op], None))
        x = torch.cat(out)
    return x


@pytest.mark.parametrize("layers,magnitude,channels", [(2, 10, 3), (2, 15, 3), (3, 7.5, 1), (1, 5, 3)])
def test_batched_randaugment_equals_each_image_done_alone(layers, magnitude, channels):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, channels, 20, 24), generator=g, dtype=torch.uint8)
    ra = A.RandAugment(layers, magnitude)
    plan = ra.plan(2, 32, 20, 24, g)
    for b in range(2):
        bp = plan.batch(b)
        xb = x[b * 32:(b + 1) * 32]
        got = ra(xb, bp)
        assert got.dtype == torch.uint8 and got.shape == xb.shape
        assert torch.equal(got, _reference(ra, xb, bp))
        assert sorted(bp.order.tolist()) == list(range(32))
        assert sum(sum(c) for c in bp.counts) == 32 * layers  # every image takes `layers` ops


def test_plan_draws_ops_uniformly_with_random_signs_and_the_level_arguments():
    ra = A.RandAugment(2, 15)
    plan = ra.plan(40, 64, 32, 32, torch.Generator().manual_seed(1))
    counts = torch.tensor(plan.counts).sum((0, 1)).float()  # per op, over batches and layers
    assert counts.sum() == 40 * 64 * 2 and (counts / counts.mean() - 1).abs().max() < 0.15
    # every Rotate image's map is a rotation by +-45 degrees about the centre (level 15 = 1.5 x 30)
    rot = []
    for b in range(40):
        bp = plan.batch(b)
        for layer in range(2):
            n = bp.counts[layer][0]  # Rotate is OPS[0]: the first n images of the layer
            rot.append(bp.theta[layer, :n])
    rot = torch.cat(rot)
    angle = torch.rad2deg(torch.atan2(rot[:, 1, 0], rot[:, 0, 0]))
    assert torch.allclose(angle.abs(), torch.tensor(45.0), atol=1e-4)
    assert 0.4 < (angle > 0).float().mean() < 0.6
    centre = torch.tensor([16.0, 16.0])
    assert torch.allclose(rot[:, :, :2] @ centre + rot[:, :, 2], centre, atol=1e-4)  # the centre stays put
    sides = plan.boxes[..., 1] - plan.boxes[..., 0]
    assert sides.max() == 2 * A.level_to_arg("Cutout", 15, 32)


def test_plan_is_seeded():
    ra = A.RandAugment(2, 10)
    p1, p2, p3 = (ra.plan(3, 16, 8, 8, torch.Generator().manual_seed(s)) for s in (5, 5, 6))
    assert torch.equal(p1.theta, p2.theta) and p1.counts == p2.counts and torch.equal(p1.order, p2.order)
    assert p1.counts != p3.counts


def test_pad_crop_flip_is_a_shifted_window_mirrored_where_flagged():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 8, 10), generator=g, dtype=torch.uint8)
    plan = A.crop_flip_plan(16, 2, True, g)
    out = A.pad_crop_flip(x, 2, plan)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i, (oy, ox, flip) in enumerate(plan.tolist()):
        want = padded[i, :, oy:oy + 8, ox:ox + 10]
        assert torch.equal(out[i], want.flip(2) if flip else want)
    assert plan[:, 2].any() and not plan[:, 2].all()
    assert not A.crop_flip_plan(16, 2, False, g)[:, 2].any()
