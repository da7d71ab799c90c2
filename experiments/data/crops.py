"""Random-resized-crop, flip and resize + centre-crop of a batch of uint8 images of any sizes, in one op.

Folder data sets crop every image to the training resolution: RandomResizedCrop + a horizontal flip
for training, resize (shorter side to resolution / 0.875) + centre crop for validation. The
worker-decoded path does this per image with torchvision (``v2.functional.resized_crop``,
``resize``, ``center_crop``); the device-decoded path does the same to a whole batch at once here.

Both paths take an image's crop from the same numbers: each training image gets a seed drawn from
the epoch's generator, ``crop_draws`` turns it into uniforms, and ``resized_crop_boxes`` turns those
and the image's size into its box, by torchvision's ``RandomResizedCrop.get_params`` rule (up to
10 tries of a scale in 0.08-1 of the area and an aspect ratio in 3/4-4/3, log-uniform; else the
centre crop at the nearest allowed ratio) and a flip. The draws are ours (torchvision draws from
the global generator), the rule and its distribution are torchvision's.

``resample`` computes every output pixel as torchvision's antialiased bilinear resize does
(``torch.nn.functional.interpolate(..., antialias=True)``, itself PIL's ``ImagingResample``): a
triangle filter as wide as the scale, normalised over the source pixels of the window, separable.
Each image's crop box (or resize-then-crop window) and flip become two weight matrices, rows
(N x out x H) and columns (N x out x W), so the whole batch is two batched matrix products over
the images padded to the largest (``torch.nested``): no per-image Python loop. Its weights are
rounded to torch's int16 fixed point and the column pass is rounded to uint8 before the row pass,
as torch's uint8 resize does, so on CPU it gives torchvision's pixels exactly (tests/test_crops.py).
"""
from __future__ import annotations

import math

import torch

#: torchvision's RandomResizedCrop defaults, the Inception crop (Szegedy et al. 2015) that the
#: ResNet (torchvision references), ResNeXt and ResNet-RS ImageNet recipes train with.
RRC_SCALE = (0.08, 1.0)
RRC_RATIO = (3 / 4, 4 / 3)
RRC_ATTEMPTS = 10
#: Uniforms per image: (area, log-ratio) per try, then top, left and flip.
DRAWS = 2 * RRC_ATTEMPTS + 3
#: Validation: resize the shorter side to resolution / CROP_PCT, then centre-crop (the
#: torchvision/timm ImageNet convention, 224 / 0.875 = 256).
CROP_PCT = 0.875
#: torch's uint8 resize keeps its weights as int16 fixed point (``resample_weights``).
WEIGHT_BITS = 15
#: Bytes of float32 scratch one ``resample`` chunk may take (images padded to the largest). Ours:
#: a 256-image batch of ImageNet-sized crops in one or two chunks, small beside a GPU's memory.
RESAMPLE_CHUNK_BYTES = 512 * 2**20


def crop_draws(seeds) -> torch.Tensor:
    """Float64 uniforms (len(seeds) x DRAWS), each row from its image's seed: the same numbers
    wherever they are drawn (a DataLoader worker, the training process)."""
    return torch.stack([torch.rand(DRAWS, generator=torch.Generator().manual_seed(int(s)), dtype=torch.float64)
                        for s in seeds]) if len(seeds) else torch.zeros(0, DRAWS, dtype=torch.float64)


def resized_crop_boxes(draws: torch.Tensor, heights, widths) -> tuple[torch.Tensor, torch.Tensor]:
    """(boxes, flips) of images of ``heights`` x ``widths`` px: boxes N x 4 int64 (top, left,
    height, width) by torchvision's RandomResizedCrop rule from ``draws`` (N x DRAWS, see
    ``crop_draws``), flips N bool."""
    n = len(draws)
    draws = draws.double()
    hh = torch.as_tensor(heights, dtype=torch.float64).view(n)
    ww = torch.as_tensor(widths, dtype=torch.float64).view(n)
    tries = draws[:, :2 * RRC_ATTEMPTS].view(n, RRC_ATTEMPTS, 2)
    area = (hh * ww)[:, None] * (RRC_SCALE[0] + (RRC_SCALE[1] - RRC_SCALE[0]) * tries[..., 0])
    lo, hi = math.log(RRC_RATIO[0]), math.log(RRC_RATIO[1])
    ratio = torch.exp(lo + (hi - lo) * tries[..., 1])
    w, h = torch.round(torch.sqrt(area * ratio)), torch.round(torch.sqrt(area / ratio))
    ok = (w > 0) & (w <= ww[:, None]) & (h > 0) & (h <= hh[:, None])
    first = ok.to(torch.uint8).argmax(1, keepdim=True)
    found = ok.any(1)
    w_try, h_try = w.gather(1, first)[:, 0], h.gather(1, first)[:, 0]
    # torchvision's fallback: the whole image, cut to the nearest allowed ratio, centred
    in_ratio = ww / hh
    w_fb = torch.where(in_ratio > RRC_RATIO[1], torch.round(hh * RRC_RATIO[1]), ww)
    h_fb = torch.where(in_ratio < RRC_RATIO[0], torch.round(ww / RRC_RATIO[0]), hh)
    h_box, w_box = torch.where(found, h_try, h_fb), torch.where(found, w_try, w_fb)
    u_top, u_left, u_flip = draws[:, -3], draws[:, -2], draws[:, -1]
    top = torch.where(found, torch.floor(u_top * (hh - h_box + 1)), torch.div(hh - h_box, 2, rounding_mode="floor"))
    left = torch.where(found, torch.floor(u_left * (ww - w_box + 1)), torch.div(ww - w_box, 2, rounding_mode="floor"))
    boxes = torch.stack([top, left, h_box, w_box], 1).long()
    return boxes, u_flip < 0.5


def crop_one(image: torch.Tensor, size: int, draws: torch.Tensor | None) -> torch.Tensor:
    """One uint8 image (C x H x W) cut to ``size`` x ``size`` by torchvision, per image: the
    training crop and flip of ``draws`` (one row of ``crop_draws``), or (None) validation's resize
    + centre crop. What ``resample`` does to a whole batch."""
    from torchvision.transforms.v2 import functional as TF

    if draws is None:
        return TF.center_crop(TF.resize(image, [int(round(size / CROP_PCT))], antialias=True), [size])
    boxes, flips = resized_crop_boxes(draws[None], [image.shape[1]], [image.shape[2]])
    out = TF.resized_crop(image, *boxes[0].tolist(), [size, size], antialias=True)
    return TF.horizontal_flip(out) if bool(flips[0]) else out


def resize_shape(height: int, width: int, short: int) -> tuple[int, int]:
    """torchvision's ``Resize(short)`` output size: the shorter side to ``short``, the longer
    scaled and truncated."""
    if height <= width:
        return short, int(short * width / height)
    return int(short * height / width), short


def centre_windows(heights, widths, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols), each N x 4 (start, length, out, first) windows for ``resample``: the whole
    image resized with its shorter side to round(size / CROP_PCT), then ``size`` px cut from the
    centre (torchvision's Resize + CenterCrop offsets)."""
    short = int(round(size / CROP_PCT))
    rows, cols = [], []
    for h, w in zip(heights, widths):
        nh, nw = resize_shape(int(h), int(w), short)
        rows.append((0, int(h), nh, int(round((nh - size) / 2.0))))
        cols.append((0, int(w), nw, int(round((nw - size) / 2.0))))
    return torch.tensor(rows, dtype=torch.long).view(-1, 4), torch.tensor(cols, dtype=torch.long).view(-1, 4)


def box_windows(boxes: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows, cols) windows for ``resample`` of crop boxes (N x 4: top, left, height, width)
    each resized to ``size`` x ``size``."""
    out = torch.full_like(boxes[:, 0], size)
    zero = torch.zeros_like(out)
    return (torch.stack([boxes[:, 0], boxes[:, 2], out, zero], 1),
            torch.stack([boxes[:, 1], boxes[:, 3], out, zero], 1))


def _triangle(windows: torch.Tensor, outputs: torch.Tensor, total: int, dtype) -> torch.Tensor:
    """N x M x total normalised antialiased-bilinear weights of output positions ``outputs``
    (N x M) of ``windows`` (N x 4, see ``resample_weights``)."""
    w = windows.to(dtype)
    start, length, out = (w[:, k, None] for k in range(3))
    scale = length / out
    inv = torch.where(scale >= 1, 1 / scale, torch.ones_like(scale))
    centre = scale * (outputs.to(dtype) + 0.5)
    pos = torch.arange(total, dtype=dtype, device=w.device) - start  # N x total, window coordinates
    x = (pos[:, None, :] + 0.5 - centre[:, :, None]) * inv[:, :, None]
    weights = (1 - x.abs()).clamp_(min=0) * ((pos >= 0) & (pos < length))[:, None, :]
    return weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)


def resample_weights(windows: torch.Tensor, size: int, total: int, widest: int | None = None) -> torch.Tensor:
    """N x size x total float32 weights: output pixel i of image n is the weighted sum of source
    pixels 0..total-1 along one axis. ``windows`` (N x 4: start, length, out, first): the source
    pixels [start, start + length) resized to ``out`` pixels, of which ``first`` .. ``first +
    size`` are kept. Antialiased bilinear, as torch's ``interpolate(antialias=True)`` computes it:
    a triangle filter widened by the scale when shrinking, normalised over the window; each weight
    rounded to torch's int16 fixed point (as many fraction bits as keep the largest weight of the
    whole resized axis under 2^15). ``widest``: the largest ``out`` of ``windows``, when the caller
    knows it on the host (saves reading it back from the device)."""
    device = windows.device
    widest = int(windows[:, 2].max()) if widest is None else widest
    kept = windows[:, 3, None] + torch.arange(size, device=device)
    weights = _triangle(windows, kept, total, torch.float64)
    if widest > size:  # the largest weight of the outputs not kept counts too
        every = torch.arange(widest, device=device).expand(len(windows), -1)
        whole = _triangle(windows, every, total, torch.float32) * (every < windows[:, 2, None])[:, :, None]
        top = whole.amax((1, 2), keepdim=True).double()
    else:
        top = weights.amax((1, 2), keepdim=True)
    bits = (WEIGHT_BITS - torch.log2(top)).ceil_().sub_(1).clamp_(min=0)
    scale = torch.exp2(bits)
    return torch.floor(weights * scale + 0.5).div_(scale).to(torch.float32)


def _cut_and_pad(images: list[torch.Tensor], rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """The source windows of each image (rows and cols: host N x 4, see ``resample_weights``) as one
    N x C x H x W tensor, zero-padded to the largest window: one copy per image, nothing outside
    its window (a training crop is about half the image)."""
    n, c = len(images), images[0].shape[0]
    r0, rl, c0, cl = rows[:, 0].tolist(), rows[:, 1].tolist(), cols[:, 0].tolist(), cols[:, 1].tolist()
    out = images[0].new_zeros(n, c, max(rl), max(cl))
    for k, img in enumerate(images):
        out[k, :, :rl[k], :cl[k]] = img[:, r0[k]:r0[k] + rl[k], c0[k]:c0[k] + cl[k]]
    return out


def _from_zero(windows: torch.Tensor) -> torch.Tensor:
    w = windows.clone()
    w[:, 0] = 0
    return w


def resample(images: list[torch.Tensor], rows: torch.Tensor, cols: torch.Tensor, size: int,
             flips: torch.Tensor | None = None, chunk_bytes: int | None = None) -> torch.Tensor:
    """uint8 images (a list of C x H_i x W_i on one device) cut and resized to N x C x size x size
    uint8: rows and cols are each image's windows (N x 4, see ``resample_weights``; from
    ``box_windows`` or ``centre_windows``), ``flips`` (N bool) mirrors the output. Two batched
    matrix products per chunk of images (at most ``chunk_bytes`` of float32 padded input)."""
    n = len(images)
    if n == 0:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8)
    device = images[0].device
    chunk_bytes = chunk_bytes or RESAMPLE_CHUNK_BYTES
    c = images[0].shape[0]
    rows, cols = rows.cpu(), cols.cpu()
    step = max(1, chunk_bytes // (4 * c * int(rows[:, 1].max()) * int(cols[:, 1].max())))
    out = torch.empty(n, c, size, size, dtype=torch.uint8, device=device)
    for i in range(0, n, step):
        r, cc = rows[i:i + step], cols[i:i + step]
        x = _cut_and_pad(images[i:i + step], r, cc).float()
        wy = resample_weights(_from_zero(r).to(device), size, x.shape[2], int(r[:, 2].max()))  # cut: from 0
        wx = resample_weights(_from_zero(cc).to(device), size, x.shape[3], int(cc[:, 2].max()))
        if flips is not None:
            f = flips[i:i + step].to(device)[:, None, None]
            wx = torch.where(f, wx.flip(1), wx)
        with _exact_float32():
            y = torch.matmul(x, wx[:, None].transpose(-1, -2))  # columns first, as torch's uint8 resize,
            y = torch.matmul(wy[:, None], _to_uint8_levels(y))  # which rounds to uint8 between its passes
        out[i:i + step] = _to_uint8_levels(y)
    return out


def _to_uint8_levels(y: torch.Tensor) -> torch.Tensor:
    """Round half up and clip to 0..255, as fixed-point resizing does (floor(y + 0.5))."""
    return y.add_(0.5).floor_().clamp_(0, 255)


class _exact_float32:
    """Full float32 matrix products inside (no TF32, which a trainer may allow): the weights and
    pixel values are exact there, so the batched crop rounds as torchvision's does."""

    def __enter__(self):
        self.before = torch.get_float32_matmul_precision()
        torch.set_float32_matmul_precision("highest")

    def __exit__(self, *exc):
        torch.set_float32_matmul_precision(self.before)
