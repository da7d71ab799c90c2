"""Training augmentation of uint8 image batches on their device: pad-and-crop, flip, RandAugment.

RandAugment is the one ResNet-RS trains with: the official code's op set and level formulas
(tensorflow/tpu ``models/official/efficientnet/autoaugment.py``, ``distort_image_with_randaugment``,
which the ResNet-RS code calls; timm's ``rand-mM-nN`` uses the same scale). Magnitudes are on
that scale everywhere in this project: ``MAX_LEVEL = 10`` and each op's argument is
level / 10 x its maximum, so magnitude 10 is every op at the strength below and 15 is 1.5x past it
(rotate 45 degrees). torchvision's ``RandAugment(magnitude=M)`` is another scale: 31 bins whose
top, 30, is about our 10 (rotate 30 degrees, shear 0.3), so its 10 is a third of ours.

    op                 argument at level L (f = L / 10)                      sign per image
    Rotate             f x 30 degrees                                        random
    ShearX, ShearY     f x 0.3                                               random
    TranslateX, -Y     f x 100 px at 224 px (scaled with the image side)     random
    Color, Contrast,   enhance factor f x 1.8 + 0.1 (1 = unchanged)
    Brightness, Sharpness
    Posterize          keep int(f x 4) bits
    Solarize           invert pixels >= int(f x 256)
    SolarizeAdd        add int(f x 110) to pixels < 128
    Cutout             fill a square of side 2 x int(f x 40 px at 224 px)    random centre
    AutoContrast, Equalize, Invert: no argument

Each image draws ``layers`` ops, uniformly with replacement, and applies every one (the official
code has no per-op probability; timm's default 0.5 is a timm choice); the magnitude is the same
for every image (the official code's, not timm's optional noise). Geometric ops sample the nearest
pixel and fill with 128, as the official code does. Posterize past 8 bits and Solarize past 255
leave the image unchanged, as their formulas imply (Posterize and Solarize weaken as the level
grows, on the official scale).

Where this differs from the official code, and why:
- Translate and Cutout sizes scale with the image side (100 px and 40 px at 224): the official
  code uses those pixel counts at every size, which at CIFAR's 32 px would move the whole image
  out of frame; timm scales translate the same way (0.45 x the side).
- Contrast blends towards the image's mean grey level, as PIL, timm and torchvision do; the
  official TF op computes that mean as pixel count / 256 (a known slip in that file).
- Pixel geometry follows PIL's, the reference the official ops say they reproduce ("equivalent
  of PIL ..."): pixel centres at +0.5, shear about the top-left corner, rotation about the centre.

Batched: an epoch's randomness (op choices, signs, cutout centres, crop offsets, flips) is drawn
once on the host by ``RandAugment.plan``/``crop_flip_plan``, and copied to the device once per
epoch; within a batch, images are grouped by the op they drew, so each op runs once per batch
on its images: the five geometric ops together as one gather through per-image affine grids of
source pixels (PIL's nearest-neighbour rule, and on CPU 4-6x faster than
``F.affine_grid`` + ``grid_sample``), the colour ops as tensor arithmetic and per-image look-up
tables. Nothing in a step waits on the host.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .shards import shard_bounds

#: The official scale: level 10 is each op's maximum argument (autoaugment.py's _MAX_LEVEL).
MAX_LEVEL = 10.0
#: The largest magnitude a regime accepts: the top of the range the official code calls useful
#: ("usually best values are in the range [5, 30]", autoaugment.py); 30 is 3x each op's maximum.
MAX_MAGNITUDE = 30.0
#: Pixel value of the empty area left by geometric ops and of Cutout (official replace_value).
FILL = 128
#: Translate and Cutout sizes of the official code (translate_const, cutout_const) at its 224 px.
REFERENCE_SIDE = 224
TRANSLATE_PX = 100
CUTOUT_PX = 40

GEOMETRIC = ("Rotate", "ShearX", "ShearY", "TranslateX", "TranslateY")
ENHANCE = ("Color", "Contrast", "Brightness", "Sharpness")
#: The official op set (16 ops). The geometric ops come first so a batch's share of them is one
#: contiguous block; the order is otherwise immaterial (ops are drawn uniformly).
OPS = GEOMETRIC + ("Cutout", "AutoContrast", "Equalize", "Invert", "Posterize", "Solarize", "SolarizeAdd") + ENHANCE
#: Ops whose argument takes a random sign per image.
SIGNED = frozenset(GEOMETRIC)


def level_to_arg(op: str, level: float, side: int = REFERENCE_SIDE) -> float | int | None:
    """The unsigned argument of ``op`` at ``level`` for an image ``side`` px wide (the official
    formulas; see the module docstring): degrees for Rotate, a shear factor, pixels for Translate,
    an enhance factor, bits kept, a threshold, an addition, Cutout's half side in px; None for ops
    without one."""
    f = level / MAX_LEVEL
    if op == "Rotate":
        return f * 30.0
    if op in ("ShearX", "ShearY"):
        return f * 0.3
    if op in ("TranslateX", "TranslateY"):
        return f * (TRANSLATE_PX * side / REFERENCE_SIDE)
    if op in ENHANCE:
        return f * 1.8 + 0.1
    if op == "Posterize":
        return int(f * 4)
    if op == "Solarize":
        return int(f * 256)
    if op == "SolarizeAdd":
        return int(f * 110)
    if op == "Cutout":
        return int(f * (CUTOUT_PX * side / REFERENCE_SIDE))
    if op in OPS:
        return None
    raise ValueError(f"unknown RandAugment op {op!r}; known: {', '.join(OPS)}")


# ----- geometric ops as affine maps ----------------------------------------------------------
def affine_maps(op: str, args: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(M, t), N x 2 x 2 and N x 2, with input point = M @ output point + t in PIL's pixel
    coordinates (origin at the top-left corner, pixel centres at +0.5), of geometric op ``op``
    with signed arguments ``args`` (N; degrees, shear factors or pixels)."""
    args = args.double()
    n = len(args)
    m = torch.eye(2, dtype=torch.float64).repeat(n, 1, 1)
    t = torch.zeros(n, 2, dtype=torch.float64)
    if op == "Rotate":  # PIL's Image.rotate: counter-clockwise for a positive angle, about the centre
        c, s = torch.cos(torch.deg2rad(args)), torch.sin(torch.deg2rad(args))
        m = torch.stack([torch.stack([c, -s], 1), torch.stack([s, c], 1)], 1)
        centre = torch.tensor([width / 2, height / 2], dtype=torch.float64)
        t = centre - m @ centre
    elif op == "ShearX":
        m[:, 0, 1] = args
    elif op == "ShearY":
        m[:, 1, 0] = args
    elif op == "TranslateX":
        t[:, 0] = args
    elif op == "TranslateY":
        t[:, 1] = args
    else:
        raise ValueError(f"{op!r} is not a geometric op; known: {', '.join(GEOMETRIC)}")
    return m, t


def warp(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """uint8 images (N, C, H, W) resampled through per-image affine maps ``theta`` (N x 2 x 3,
    input point = theta[:, :, :2] @ output point + theta[:, :, 2], PIL's pixel coordinates):
    each output pixel takes the input pixel its centre maps into (PIL's nearest-neighbour rule),
    or FILL when that falls outside the image. A per-image grid of source pixels and one gather."""
    n, c, h, w = x.shape
    theta = theta.to(torch.float32)
    px = torch.arange(w, device=x.device, dtype=torch.float32) + 0.5
    py = torch.arange(h, device=x.device, dtype=torch.float32)[:, None] + 0.5
    a, b, t = theta[:, :, 0, None, None], theta[:, :, 1, None, None], theta[:, :, 2, None, None]
    qx = (a[:, 0] * px + b[:, 0] * py + t[:, 0]).floor_()
    qy = (a[:, 1] * px + b[:, 1] * py + t[:, 1]).floor_()
    inside = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
    src = (qy.clamp_(0, h - 1) * w + qx.clamp_(0, w - 1)).long().view(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, src).view(n, c, h, w)
    return out.masked_fill_(~inside[:, None], FILL)


# ----- colour ops on uint8 batches ------------------------------------------------------------
def grey(x: torch.Tensor) -> torch.Tensor:
    """Grey level (N, 1, H, W, int32) as PIL converts RGB to "L" (ITU-R 601-2 luma, rounded)."""
    if x.shape[1] == 1:
        return x.to(torch.int32)
    if x.shape[1] != 3:
        return x.float().mean(1, keepdim=True).round().to(torch.int32)
    w = x.to(torch.int32)
    return (w[:, 0:1] * 19595 + w[:, 1:2] * 38470 + w[:, 2:3] * 7471 + 0x8000) >> 16


def blend(degenerate: torch.Tensor, x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's Image.blend of uint8 images: degenerate + factor x (x - degenerate) in float32,
    clipped to 0..255 and truncated (factor > 1 extrapolates)."""
    d = degenerate.float()
    return (x.float() - d).mul_(factor).add_(d).clamp_(0, 255).to(torch.uint8)


def color(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Color: blend with the grey image."""
    return blend(grey(x).expand_as(x), x, factor)


def contrast(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Contrast: blend with the image's mean grey level (rounded)."""
    mean = (grey(x).sum((1, 2, 3), dtype=torch.float64) / (x.shape[2] * x.shape[3]) + 0.5).floor()
    return blend(mean.to(torch.float32).view(-1, 1, 1, 1).expand_as(x), x, factor)


def brightness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Brightness: blend with black."""
    return blend(torch.zeros_like(x), x, factor)


def sharpness(x: torch.Tensor, factor: float) -> torch.Tensor:
    """PIL's ImageEnhance.Sharpness: blend with PIL's SMOOTH filter of the image (3x3 kernel
    [[1,1,1],[1,5,1],[1,1,1]] / 13, rounded; the one-pixel border keeps the image's values)."""
    c = x.shape[1]
    k = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device)
    s = F.conv2d(x.float(), k.expand(c, 1, 3, 3), groups=c)  # integer sums: exact in float32
    smooth = x.clone()
    smooth[:, :, 1:-1, 1:-1] = torch.div(s * 2 + 13, 26, rounding_mode="floor").to(torch.uint8)
    return blend(smooth, x, factor)


def _lookup(x: torch.Tensor, lut: torch.Tensor) -> torch.Tensor:
    """Per image-channel look-up: lut is (N * C, 256) of values 0..255."""
    n, c, h, w = x.shape
    return lut.to(torch.uint8).gather(1, x.reshape(n * c, h * w).long()).view(n, c, h, w)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.autocontrast: each channel stretched so its darkest pixel is 0 and its
    brightest 255 (int(v x scale + offset) in double precision, as PIL builds its table)."""
    n, c = x.shape[:2]
    flat = x.reshape(n * c, -1)
    lo, hi = flat.amin(1).double(), flat.amax(1).double()
    scale = 255.0 / (hi - lo).clamp_min(1)
    v = torch.arange(256, device=x.device, dtype=torch.float64)
    lut = (v[None] * scale[:, None] - (lo * scale)[:, None]).trunc().clamp_(0, 255)
    return _lookup(x, torch.where((hi > lo)[:, None], lut, v[None]))


def equalize(x: torch.Tensor) -> torch.Tensor:
    """PIL's ImageOps.equalize: each channel's histogram equalised with PIL's integer table."""
    n, c, h, w = x.shape
    flat = x.reshape(n * c, h * w).long()
    hist = torch.zeros(n * c, 256, dtype=torch.long, device=x.device).scatter_add_(1, flat, torch.ones_like(flat))
    last = hist.gather(1, flat.amax(1, keepdim=True))  # count of the brightest value present
    step = (h * w - last) // 255
    before = hist.cumsum(1) - hist  # pixels darker than each value
    lut = ((step // 2 + before) // step.clamp_min(1)).clamp_(max=255)
    v = torch.arange(256, device=x.device)
    return _lookup(x, torch.where(step > 0, lut, v[None]))


def invert(x: torch.Tensor) -> torch.Tensor:
    return 255 - x


def posterize(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Keep the ``bits`` most significant bits (0 bits: black; 8 or more: unchanged)."""
    bits = max(0, int(bits))
    return x if bits >= 8 else x & ((0xFF << (8 - bits)) & 0xFF)


def solarize(x: torch.Tensor, threshold: int) -> torch.Tensor:
    """Invert the pixels at or above ``threshold`` (256 or more: unchanged)."""
    return x if threshold >= 256 else torch.where(x < threshold, x, 255 - x)


def solarize_add(x: torch.Tensor, addition: int, threshold: int = 128) -> torch.Tensor:
    """Add ``addition`` to the pixels below ``threshold``, clipped to 0..255."""
    added = (x.to(torch.int16) + addition).clamp_(0, 255).to(torch.uint8)
    return torch.where(x < threshold, added, x)


def cutout(x: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Fill each image's box (N x 4 ints: top, bottom, left, right; half-open) with FILL."""
    rows = torch.arange(x.shape[2], device=x.device)
    cols = torch.arange(x.shape[3], device=x.device)
    inside_r = (rows[None] >= boxes[:, 0:1]) & (rows[None] < boxes[:, 1:2])
    inside_c = (cols[None] >= boxes[:, 2:3]) & (cols[None] < boxes[:, 3:4])
    mask = (inside_r[:, :, None] & inside_c[:, None, :])[:, None]
    return x.masked_fill(mask, FILL)


def cutout_box(cy: int, cx: int, half: int, height: int, width: int) -> tuple[int, int, int, int]:
    """The official Cutout box around centre (cy, cx): rows cy - half .. cy + half (exclusive),
    likewise columns, clipped to the image."""
    return max(0, cy - half), min(height, cy + half), max(0, cx - half), min(width, cx + half)


# ----- the epoch's randomness and its application ---------------------------------------------
@dataclass
class BatchPlan:
    """One batch's RandAugment draws. Layer l applies to the batch reordered by ``perms[l]``
    (None for the first layer: positions are drawn in op order, see ``RandAugment.plan``);
    ``counts[l]`` (host ints) says how many consecutive images then take each op of OPS;
    ``theta[l]`` holds the affine maps of the geometric images, ``boxes[l]`` the Cutout boxes.
    ``order``: output image j comes from input image ``order[j]`` (reorder labels with it)."""

    perms: list
    counts: list
    theta: torch.Tensor
    boxes: torch.Tensor
    order: torch.Tensor


@dataclass
class EpochPlan:
    """An epoch's RandAugment draws for consecutive batches of ``batch_size`` images; the
    tensors have one row per layer and one column per image of the epoch (see BatchPlan)."""

    batch_size: int
    perms: torch.Tensor  # (layers - 1) x images: positions within each batch
    counts: list  # [batch][layer][op], host ints
    theta: torch.Tensor  # layers x images x 2 x 3, pixel maps (zeros where the op is not geometric)
    boxes: torch.Tensor  # layers x images x 4
    order: torch.Tensor  # images: the batch's positions, composed over the layers

    def to(self, device: torch.device) -> "EpochPlan":
        """The plan's tensors on ``device``, each copied once (on CUDA from pinned memory, not
        blocking the host)."""
        return EpochPlan(self.batch_size, to_device(self.perms, device), self.counts, to_device(self.theta, device),
                         to_device(self.boxes, device), to_device(self.order, device))

    def batch(self, b: int) -> BatchPlan:
        """The draws of batch ``b`` (0-based)."""
        sl = slice(b * self.batch_size, (b + 1) * self.batch_size)
        perms = [None] + [p[sl] for p in self.perms]
        return BatchPlan(perms, self.counts[b], self.theta[:, sl], self.boxes[:, sl], self.order[sl])


class RandAugment:
    """RandAugment with ``layers`` ops per image at ``magnitude`` on the official scale, for uint8
    batches on any device (see the module docstring)."""

    def __init__(self, layers: int = 2, magnitude: float = 10.0):
        self.layers, self.magnitude = int(layers), float(magnitude)

    def __repr__(self) -> str:
        return f"RandAugment(layers={self.layers}, magnitude={self.magnitude:g})"

    def args(self, side: int) -> dict:
        """Each op's unsigned argument at this magnitude for images ``side`` px wide."""
        return {op: level_to_arg(op, self.magnitude, side) for op in OPS}

    def plan(self, batches: int, batch_size: int, height: int, width: int, generator: torch.Generator) -> EpochPlan:
        """Draw ``batches`` batches' ops, signs and Cutout centres on the host from ``generator``,
        grouped by op within each batch, with the geometric maps and Cutout boxes precomputed.

        Every image draws its op of each layer independently and uniformly. The images of a
        batch arrive in random order, so the first layer's draws are simply sorted (position i
        takes the i-th smallest draw); later layers reorder the batch by their draws."""
        n, k = batches * batch_size, len(OPS)
        ops = torch.randint(0, k, (self.layers, n), generator=generator)
        signs = torch.where(torch.rand(self.layers, n, generator=generator) < 0.5, -1.0, 1.0).double()
        centres = torch.stack([torch.randint(0, height, (self.layers, n), generator=generator),
                               torch.randint(0, width, (self.layers, n), generator=generator)], 2)
        batch_of = torch.arange(n) // batch_size
        start = batch_of * batch_size  # where each image's batch starts
        key = batch_of[None] * k + ops  # sorts by batch, then by op
        theta = torch.zeros(self.layers, n, 2, 3)
        boxes = torch.zeros(self.layers, n, 4, dtype=torch.long)
        perms = torch.empty(max(self.layers - 1, 0), n, dtype=torch.long)
        order = torch.arange(n) - start
        x_args, y_args = self.args(width), self.args(height)
        half = level_to_arg("Cutout", self.magnitude, min(height, width))
        for layer in range(self.layers):
            sort = torch.sort(key[layer], stable=True).indices
            if layer:  # reorder the batch so this layer's ops are consecutive
                perms[layer - 1] = sort - start
                order = order[sort]  # composed positions (still within each batch)
            op_at = ops[layer, sort]
            sign_at = signs[layer, sort]
            for i, op in enumerate(GEOMETRIC):
                sel = op_at == i
                arg = (y_args if op in ("ShearY", "TranslateY") else x_args)[op]
                m, t = affine_maps(op, sign_at[sel] * arg, height, width)
                theta[layer, sel] = torch.cat([m, t[:, :, None]], 2).float()
            cut = op_at == OPS.index("Cutout")
            cy, cx = centres[layer, sort][cut].unbind(1)
            boxes[layer, cut] = torch.stack([(cy - half).clamp_min(0), (cy + half).clamp_max(height),
                                             (cx - half).clamp_min(0), (cx + half).clamp_max(width)], 1)
        counts = torch.stack([torch.bincount(key[layer], minlength=batches * k) for layer in range(self.layers)])
        return EpochPlan(batch_size, perms, counts.view(self.layers, batches, k).permute(1, 0, 2).tolist(),
                         theta, boxes, order)

    def __call__(self, x: torch.Tensor, plan: BatchPlan) -> torch.Tensor:
        """The uint8 batch ``x`` (N, C, H, W) augmented: output image j is input image
        ``plan.order[j]`` with its drawn ops applied in turn."""
        args = self.args(min(x.shape[2], x.shape[3]))
        n_geo = len(GEOMETRIC)
        for layer in range(self.layers):
            counts = plan.counts[layer]
            x = x.clone() if plan.perms[layer] is None else x.index_select(0, plan.perms[layer])
            geo = sum(counts[:n_geo])
            if geo:
                x[:geo] = warp(x[:geo], plan.theta[layer, :geo])
            start = geo
            for op, count in zip(OPS[n_geo:], counts[n_geo:]):
                if count:
                    seg = slice(start, start + count)
                    x[seg] = self._colour(op, x[seg], args[op], plan.boxes[layer, seg])
                    start += count
        return x

    @staticmethod
    def _colour(op: str, x: torch.Tensor, arg, boxes: torch.Tensor) -> torch.Tensor:
        if op == "Cutout":
            return cutout(x, boxes)
        if op == "AutoContrast":
            return autocontrast(x)
        if op == "Equalize":
            return equalize(x)
        if op == "Invert":
            return invert(x)
        if op == "Posterize":
            return posterize(x, arg)
        if op == "Solarize":
            return solarize(x, arg)
        if op == "SolarizeAdd":
            return solarize_add(x, arg)
        return {"Color": color, "Contrast": contrast, "Brightness": brightness, "Sharpness": sharpness}[op](x, arg)


def rank_plan(randaugment: RandAugment | None, batches: int, batch_size: int, shard: tuple[int, int], height: int,
              width: int, generator: torch.Generator) -> EpochPlan | None:
    """This worker's RandAugment plan of an epoch (None without RandAugment): every worker draws
    the plans of all workers' parts of each global batch from ``generator``, so the generators
    stay in step, and keeps its own (one worker: the plan of the whole batch)."""
    if randaugment is None:
        return None
    rank, workers = shard
    sizes = [hi - lo for lo, hi in (shard_bounds(batch_size, k, workers) for k in range(workers))]
    return [randaugment.plan(batches, size, height, width, generator) for size in sizes][rank]


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``: on CUDA copied from pinned memory without blocking the host."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)


# ----- crop and flip --------------------------------------------------------------------------
def crop_flip_plan(images: int, pad: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Per image (images x 3, int64, on the host): crop offsets (row, column) in 0..2 x pad and a
    flip flag (0 when ``flip`` is off), drawn from ``generator``."""
    offsets = torch.randint(0, 2 * pad + 1, (images, 2), generator=generator)
    flips = (torch.rand(images, generator=generator) < 0.5).long() if flip else torch.zeros(images, dtype=torch.long)
    return torch.cat([offsets, flips[:, None]], 1)


def pad_crop_flip(x: torch.Tensor, pad: int, plan: torch.Tensor) -> torch.Tensor:
    """uint8 images zero-padded by ``pad`` px, cropped back to their size at each image's offsets,
    and mirrored where flagged (``plan``: N x 3 from crop_flip_plan, on x's device)."""
    b, c, h, w = x.shape
    dev = x.device
    if pad:
        x = F.pad(x, (pad, pad, pad, pad))
    rows = (plan[:, 0:1] + torch.arange(h, device=dev))[:, None, :, None]
    cols = plan[:, 1:2] + torch.arange(w, device=dev)
    cols = torch.where(plan[:, 2:3].bool(), cols.flip(1), cols)[:, None, None, :]
    return x[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
             rows, cols]
