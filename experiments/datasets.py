"""Datasets, loaded only from local files (nothing downloads).

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), upsampled to the
  spec's resolution, replicated to the spec's input channels; a fixed seeded 80/20 split.
  The embedded default.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format under ``root``
  (``cifar-10-batches-py/`` or ``cifar-100-python/``).
- ``imagefolder``: the ImageNet layout, ``root/train/<class>/*.jpg`` and ``root/val/<class>/*``.
- ``synthetic``: random images and labels of any size and class count, for benchmarks.

Data sets that fit in memory (digits, CIFAR, synthetic) are kept as uint8 tensors on the training
device and augmented a whole batch at a time there, so the device never waits on Python data
loading: pad-and-random-crop (+ horizontal flip, not for digits, whose classes are not
mirror-symmetric), and RandAugment when the regime asks (one random op draw per chunk of 16
images). ``imagefolder`` streams through DataLoader workers with random-resized-crop + flip
(+ RandAugment) for training and resize + centre-crop for validation.
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
import torch.nn.functional as F

from scaling.conventions import DATASET_TRAIN_SIZES
from scaling.errors import ArchScaleError
from scaling.validate import check_choice, check_keys, is_number, is_whole

from .distributed import shard_bounds

KINDS = ("digits", "cifar10", "cifar100", "imagefolder", "synthetic")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
RANDAUG_CHUNK = 16


@dataclass(frozen=True)
class DatasetConfig:
    """Which data set to train on. ``label`` names it in results (e.g. "imagenet" for a folder)."""

    name: str = "digits"
    root: str | None = None
    label: str | None = None
    #: digits: fraction held out for validation; synthetic: ignored.
    val_fraction: float = 0.2
    #: synthetic: training images, validation images and classes.
    train_size: int = 1024
    val_size: int = 256
    num_classes: int = 10
    #: imagefolder: DataLoader workers (default: the trial's CPUs).
    workers: int | None = None

    @property
    def display_name(self) -> str:
        return self.label or self.name

    def to_dict(self) -> dict:
        """Every field that applies to this data set (the synthetic sizes only for synthetic)."""
        d = dataclasses.asdict(self)
        if self.name != "synthetic":
            for key in ("train_size", "val_size", "num_classes"):
                d.pop(key)
        return d


def dataset_from(value) -> DatasetConfig:
    """A DatasetConfig from a name ("digits") or a mapping ({name: cifar10, root: /data/cifar})."""
    if isinstance(value, DatasetConfig):
        cfg = value
    elif isinstance(value, str):
        cfg = DatasetConfig(name=value)
    elif isinstance(value, dict):
        check_keys(value, sorted(f.name for f in dataclasses.fields(DatasetConfig)), "dataset", "dataset field")
        cfg = DatasetConfig(**value)
    else:
        raise ArchScaleError("dataset", f"expected a name ({', '.join(KINDS)}) or a mapping, got {value!r}")
    check_choice(cfg.name, KINDS, "dataset", "dataset")
    if cfg.name in ("cifar10", "cifar100", "imagefolder") and not cfg.root:
        raise ArchScaleError("dataset.root", f"{cfg.name} loads from local files: give root: PATH "
                                             f"({_LAYOUTS[cfg.name]})")
    v = cfg.val_fraction
    if not is_number(v) or not 0 < v < 1:
        raise ArchScaleError("dataset.val_fraction", f"must be a number in (0, 1), got {v!r}")
    for key in ("train_size", "val_size", "num_classes"):
        v = getattr(cfg, key)
        if not is_whole(v) or v < 1:
            raise ArchScaleError(f"dataset.{key}", f"must be a whole number >= 1, got {v!r}")
    return cfg


_LAYOUTS = {
    "cifar10": "torchvision's format: ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    "cifar100": "torchvision's format: ROOT/cifar-100-python/{train, test, meta}",
    "imagefolder": "ImageNet layout: ROOT/train/<class>/<image> and ROOT/val/<class>/<image>",
}


class InMemoryData:
    """Train/val images as uint8 tensors on one device, with batched on-device augmentation."""

    def __init__(self, name: str, x_train, y_train, x_val, y_val, num_classes: int, mean, std,
                 flip: bool, pad: int):
        self.name, self.num_classes, self.flip, self.pad = name, num_classes, flip, pad
        self.x_train, self.y_train, self.x_val, self.y_val = x_train, y_train, x_val, y_val
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.randaugment = None

    @property
    def train_size(self) -> int:
        return len(self.y_train)

    @property
    def val_size(self) -> int:
        return len(self.y_val)

    def to(self, device: torch.device) -> "InMemoryData":
        for key in ("x_train", "y_train", "x_val", "y_val", "mean", "std"):
            setattr(self, key, getattr(self, key).to(device))
        return self

    def set_randaugment(self, layers: int, magnitude: float) -> None:
        if layers > 0 and magnitude > 0:
            from torchvision.transforms import v2

            self.randaugment = v2.RandAugment(num_ops=int(layers), magnitude=int(round(magnitude)))

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float().div_(255) - self.mean) / self.std

    def train_batches(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled, augmented, normalised training batches (the last partial batch is dropped).

        ``shard=(rank, workers)``: this worker's contiguous part of each global batch of
        ``batch_size`` (experiments.distributed.shard_bounds), with the crops and flips the
        whole batch draws, so the workers together see what one worker would."""
        n = self.train_size
        order = torch.randperm(n, generator=generator).to(self.x_train.device)
        batches = n // batch_size if max_batches is None else min(n // batch_size, max_batches)
        part = slice(*shard_bounds(batch_size, *shard))
        for b in range(batches):
            idx = order[b * batch_size:(b + 1) * batch_size][part]
            x = self._augment(self.x_train[idx], generator, batch_size, part)
            yield self._normalise(x), self.y_train[idx]

    def val_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches; ``shard=(rank, workers)``: this worker's contiguous part of the set."""
        lo, hi = shard_bounds(self.val_size, *shard)
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            yield self._normalise(self.x_val[i:j]), self.y_val[i:j]

    def _augment(self, x: torch.Tensor, g: torch.Generator, drawn: int | None = None,
                 part: slice = slice(None)) -> torch.Tensor:
        """Crop and flip ``x``, the ``part`` of a batch of ``drawn`` images (default: all of it)
        whose random draws are made (from ``g``), then RandAugment."""
        b, c, h, w = x.shape
        drawn = drawn or b
        if self.pad:
            p = self.pad
            padded = F.pad(x, (p, p, p, p))
            oy = torch.randint(0, 2 * p + 1, (drawn,), generator=g)[part].to(x.device)
            ox = torch.randint(0, 2 * p + 1, (drawn,), generator=g)[part].to(x.device)
            rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            x = padded[torch.arange(b, device=x.device)[:, None, None, None],
                       torch.arange(c, device=x.device)[None, :, None, None], rows, cols]
        if self.flip:
            mask = (torch.rand(drawn, generator=g)[part] < 0.5).to(x.device)
            x = torch.where(mask[:, None, None, None], x.flip(3), x)
        if self.randaugment is not None:
            x = torch.cat([self.randaugment(chunk) for chunk in x.split(RANDAUG_CHUNK)])
        return x


def _resize_uint8(x: torch.Tensor, size: int) -> torch.Tensor:
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False,
                      antialias=size < x.shape[-1])
    return y.round_().clamp_(0, 255).to(torch.uint8)


def _channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1:
        return x.expand(-1, channels, -1, -1).contiguous()
    if channels == 1:
        return x.float().mean(1, keepdim=True).round().to(torch.uint8)
    raise ArchScaleError("in_channels", f"the data has {x.shape[1]} channels; use in_channels: {x.shape[1]}")


def digits_split_sizes(val_fraction: float = 0.2) -> tuple[int, int]:
    """(train, val) sizes of the digits split."""
    n_val = int(round(1797 * val_fraction))
    return 1797 - n_val, n_val


def load_digits(resolution: int, channels: int, val_fraction: float = 0.2) -> InMemoryData:
    """scikit-learn's digits, upsampled to ``resolution``; the split is fixed (seed 0)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    x = torch.from_numpy(d.images).float().mul_(255 / 16).round_().to(torch.uint8)[:, None]
    y = torch.from_numpy(d.target).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    n_train = digits_split_sizes(val_fraction)[0]
    x = _channels(_resize_uint8(x, resolution), channels)
    tr, va = order[:n_train], order[n_train:]
    mean = (x[tr].float() / 255).mean((0, 2, 3)).tolist()
    std = (x[tr].float() / 255).std((0, 2, 3)).clamp_min(1e-3).tolist()
    return InMemoryData("digits", x[tr], y[tr], x[va], y[va], 10, mean, std, flip=False,
                        pad=max(1, resolution // 8))


def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="latin1")


def _cifar_files(name: str, root: str) -> tuple[Path, list[str], list[str]]:
    """(folder, train files, test files) of a CIFAR copy in torchvision's format; error if missing."""
    base = Path(root) / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    files = ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]) if name == "cifar10" else (["train"], ["test"])
    missing = [f for f in files[0] + files[1] if not (base / f).is_file()]
    if missing:
        raise ArchScaleError("dataset.root", f"no {name} at {root}: {base / missing[0]} is missing; expected "
                                             f"{_LAYOUTS[name]}")
    return base, files[0], files[1]


def _check_folder(root: str) -> Path:
    base = Path(root)
    for split in ("train", "val"):
        d = base / split
        if not d.is_dir() or not any(p.is_dir() for p in d.iterdir()):
            raise ArchScaleError("dataset.root", f"no {split}/ class folders under {root}; expected "
                                                 f"{_LAYOUTS['imagefolder']}")
    return base


def dataset_train_size(cfg) -> int:
    """Training images of a data set, checking its files exist (without loading them)."""
    cfg = dataset_from(cfg)
    if cfg.name == "digits":
        return digits_split_sizes(cfg.val_fraction)[0]
    if cfg.name == "synthetic":
        return cfg.train_size
    if cfg.name in ("cifar10", "cifar100"):
        _cifar_files(cfg.name, cfg.root)
        return DATASET_TRAIN_SIZES[cfg.name]
    base = _check_folder(cfg.root)
    return sum(len(files) for _, _, files in os.walk(base / "train"))


def load_cifar(name: str, root: str, resolution: int, channels: int) -> InMemoryData:
    """CIFAR-10/100 from torchvision's on-disk format (never downloads)."""
    base, train_files, test_files = _cifar_files(name, root)
    files = (train_files, test_files)
    key = "labels" if name == "cifar10" else "fine_labels"

    def read(names):
        try:
            parts = [_unpickle(base / n) for n in names]
            x = torch.cat([torch.from_numpy(p["data"]).view(-1, 3, 32, 32) for p in parts])
            y = torch.cat([torch.tensor(p[key]) for p in parts]).long()
        except (KeyError, pickle.UnpicklingError, EOFError, ValueError, RuntimeError) as e:
            raise ArchScaleError("dataset.root", f"{base} is not in {_LAYOUTS[name]} ({type(e).__name__}: "
                                                 f"{e})") from None
        return _channels(_resize_uint8(x, resolution), channels), y

    (xt, yt), (xv, yv) = read(files[0]), read(files[1])
    classes = 10 if name == "cifar10" else 100
    mean, std = (CIFAR_MEAN, CIFAR_STD) if channels == 3 else ((0.5,) * channels, (0.25,) * channels)
    return InMemoryData(name, xt, yt, xv, yv, classes, mean, std, flip=True, pad=max(1, resolution // 8))


def load_synthetic(cfg: DatasetConfig, resolution: int, channels: int, seed: int) -> InMemoryData:
    """Random uint8 images with random labels (learnable only by memorising; for speed tests)."""
    g = torch.Generator().manual_seed(seed)
    shape = (channels, resolution, resolution)
    xt = torch.randint(0, 256, (cfg.train_size, *shape), generator=g, dtype=torch.uint8)
    xv = torch.randint(0, 256, (cfg.val_size, *shape), generator=g, dtype=torch.uint8)
    yt = torch.randint(0, cfg.num_classes, (cfg.train_size,), generator=g)
    yv = torch.randint(0, cfg.num_classes, (cfg.val_size,), generator=g)
    return InMemoryData("synthetic", xt, yt, xv, yv, cfg.num_classes, (0.5,) * channels, (0.29,) * channels,
                        flip=False, pad=0)


class FolderData:
    """An ImageNet-layout folder streamed through DataLoader workers."""

    def __init__(self, root: str, resolution: int, channels: int, workers: int):
        from torchvision import datasets, transforms

        base = _check_folder(root)
        if channels != 3:
            raise ArchScaleError("in_channels", "imagefolder data is RGB: use in_channels: 3")
        self.resolution, self.workers, self.name = resolution, workers, "imagefolder"
        norm = [transforms.ToTensor(), transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
        self.train_tf = [transforms.RandomResizedCrop(resolution), transforms.RandomHorizontalFlip()]
        self.val_tf = transforms.Compose([transforms.Resize(int(round(resolution / 0.875))),
                                          transforms.CenterCrop(resolution), *norm])
        self.norm = norm
        try:
            self.train_set = datasets.ImageFolder(str(base / "train"))
            self.val_set = datasets.ImageFolder(str(base / "val"), transform=self.val_tf)
        except (FileNotFoundError, RuntimeError) as e:
            raise ArchScaleError("dataset.root", f"{root} is not in {_LAYOUTS['imagefolder']} ({e})") from None
        if self.train_set.classes != self.val_set.classes:
            raise ArchScaleError("dataset.root", f"train/ and val/ under {root} hold different class folders")
        self.num_classes = len(self.train_set.classes)
        self.set_randaugment(0, 0)

    @property
    def train_size(self) -> int:
        return len(self.train_set)

    @property
    def val_size(self) -> int:
        return len(self.val_set)

    def to(self, device: torch.device) -> "FolderData":
        self.device = device
        return self

    def set_randaugment(self, layers: int, magnitude: float) -> None:
        from torchvision import transforms

        extra = [transforms.RandAugment(int(layers), int(round(magnitude)))] if layers and magnitude else []
        self.train_set.transform = transforms.Compose(self.train_tf + extra + self.norm)

    def _loader(self, dataset, batch_size, shuffle, generator=None, drop_last=False, sampler=None):
        from torch.utils.data import DataLoader

        cuda = getattr(self, "device", torch.device("cpu")).type == "cuda"
        return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
                          num_workers=self.workers, pin_memory=cuda, drop_last=drop_last,
                          persistent_workers=False, sampler=sampler)

    def train_batches(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None,
                      shard: tuple[int, int] = (0, 1)):
        """Shuffled training batches of ``batch_size``; ``shard=(rank, workers)``: this worker's
        1/workers of each, drawn by torch's DistributedSampler (seeded from ``generator``)."""
        device = getattr(self, "device", torch.device("cpu"))
        rank, workers = shard
        if workers > 1:
            from torch.utils.data import DistributedSampler

            seed = int(torch.randint(2**62, (1,), generator=generator))
            sampler = DistributedSampler(self.train_set, num_replicas=workers, rank=rank, shuffle=True, seed=seed,
                                         drop_last=True)
            loader = self._loader(self.train_set, batch_size // workers, False, generator, True, sampler)
        else:
            loader = self._loader(self.train_set, batch_size, True, generator, drop_last=True)
        for i, (x, y) in enumerate(loader):
            if max_batches is not None and i >= max_batches:
                break
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def val_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)):
        """Validation batches; ``shard=(rank, workers)``: this worker's contiguous part of the set."""
        from torch.utils.data import Subset

        device = getattr(self, "device", torch.device("cpu"))
        val_set = self.val_set if shard[1] == 1 else Subset(self.val_set, range(*shard_bounds(self.val_size, *shard)))
        for x, y in self._loader(val_set, batch_size, False):
            yield x.to(device, non_blocking=True), y.to(device, non_blocking=True)


def load_dataset(cfg: DatasetConfig, resolution: int, channels: int, seed: int = 0, workers: int = 2):
    """The data set of ``cfg`` at ``resolution`` px with ``channels`` channels (CPU tensors/loaders)."""
    cfg = dataset_from(cfg)
    if cfg.name == "digits":
        data = load_digits(resolution, channels, cfg.val_fraction)
    elif cfg.name in ("cifar10", "cifar100"):
        data = load_cifar(cfg.name, cfg.root, resolution, channels)
    elif cfg.name == "synthetic":
        data = load_synthetic(cfg, resolution, channels, seed)
    else:
        data = FolderData(cfg.root, resolution, channels, cfg.workers if cfg.workers is not None else workers)
    data.name = cfg.display_name
    return data
