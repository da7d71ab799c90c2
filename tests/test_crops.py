"""experiments/data/crops.py: the batched crop + flip equals torchvision's per-image one, and its
boxes follow torchvision's RandomResizedCrop rule."""
import math

import pytest
import torch

from experiments.data.crops import (CROP_PCT, RRC_RATIO, RRC_SCALE, box_windows, centre_windows, crop_draws,
                                    crop_one, resample, resized_crop_boxes)


def _images(n=24, seed=0):
    """Random-noise and smooth uint8 images of many sizes (noise is the hardest case for rounding)."""
    g = torch.Generator().manual_seed(seed)
    sizes = torch.randint(12, 90, (n, 2), generator=g).tolist()
    noise = [torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8) for h, w in sizes[: n // 2]]
    smooth = [torch.nn.functional.interpolate(torch.rand(1, 3, 6, 6, generator=g) * 255, size=(h, w), mode="bilinear")
              [0].round().to(torch.uint8) for h, w in sizes[n // 2:]]
    return noise + smooth


@pytest.mark.parametrize("size", [16, 40])
def test_batched_crop_and_flip_equal_the_per_image_ones(size):
    images = _images()
    draws = crop_draws(range(len(images)))
    boxes, flips = resized_crop_boxes(draws, [i.shape[1] for i in images], [i.shape[2] for i in images])
    assert flips.any() and not flips.all()
    got = resample(images, *box_windows(boxes, size), size, flips, chunk_bytes=4 * 3 * 90 * 90 * 5)  # 5 at a time
    want = torch.stack([crop_one(img, size, d) for img, d in zip(images, draws)])
    diff = (got.int() - want.int()).abs()
    assert got.dtype == torch.uint8 and got.shape == want.shape
    assert diff.max() == 0


def test_batched_validation_crops_equal_torchvisions_resize_and_centre_crop():
    from torchvision.transforms import v2

    images, size = _images(seed=1), 24
    got = resample(images, *centre_windows([i.shape[1] for i in images], [i.shape[2] for i in images], size), size)
    tf = v2.Compose([v2.Resize(int(round(size / CROP_PCT)), antialias=True), v2.CenterCrop(size)])  # independent
    want = torch.stack([tf(img) for img in images])
    diff = (got.int() - want.int()).abs()
    assert diff.max() == 0


def test_crop_boxes_follow_torchvisions_random_resized_crop():
    from torchvision.transforms import v2

    h, w, n = 60, 90, 3000
    boxes, flips = resized_crop_boxes(crop_draws(range(n)), [h] * n, [w] * n)
    top, left, bh, bw = boxes.T
    assert (top >= 0).all() and (left >= 0).all() and (top + bh <= h).all() and (left + bw <= w).all()
    area, ratio = (bh * bw).double() / (h * w), bw.double() / bh
    assert area.min() >= RRC_SCALE[0] * 0.9 and area.max() <= 1  # rounding widens the ends a little
    assert ratio.min() >= RRC_RATIO[0] * 0.9 and ratio.max() <= RRC_RATIO[1] * 1.1
    assert abs(flips.double().mean() - 0.5) < 0.05
    torch.manual_seed(0)  # torchvision's own draws of the same rule, from the global generator
    theirs = torch.tensor([v2.RandomResizedCrop.get_params(torch.zeros(1, h, w), list(RRC_SCALE),
                                                           list(RRC_RATIO)) for _ in range(n)])
    t_area = (theirs[:, 2] * theirs[:, 3]).double() / (h * w)
    t_ratio = theirs[:, 3].double() / theirs[:, 2]
    assert abs(area.mean() - t_area.mean()) < 0.03 and abs(ratio.log().mean() - t_ratio.log().mean()) < 0.03
    assert abs((top + bh / 2).double().mean() - (theirs[:, 0] + theirs[:, 2] / 2).double().mean()) < 1.5


def test_an_image_too_narrow_for_every_try_falls_back_to_the_centre_crop():
    boxes, _ = resized_crop_boxes(torch.zeros(1, crop_draws([0]).shape[1]) + 0.999, [10], [400])
    top, left, bh, bw = boxes[0].tolist()
    assert (top, bh) == (0, 10) and bw == round(10 * RRC_RATIO[1]) and left == (400 - bw) // 2


def test_the_same_seed_draws_the_same_crop_anywhere():
    assert torch.equal(crop_draws([7, 8]), torch.stack([crop_draws([7])[0], crop_draws([8])[0]]))
    assert not torch.equal(crop_draws([7]), crop_draws([8]))
    assert math.isclose(CROP_PCT, 224 / 256)
