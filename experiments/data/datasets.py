"""Datasets, loaded only from local files (nothing downloads).

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), upsampled to the
  spec's resolution, replicated to the spec's input channels; a fixed seeded 80/20 split.
  The embedded default.
- ``cifar10`` / ``cifar100``: torchvision's on-disk format under ``root``
  (``cifar-10-batches-py/`` or ``cifar-100-python/``).
- ``imagefolder``: the ImageNet layout, ``root/train/<class>/*.jpg`` and ``root/val/<class>/*``.
- ``synthetic``: random images and labels of any size and class count, for benchmarks.
- your own: ``{loader: "mypkg.data:load", options: {...}}``, a function returning in-memory
  tensors or a folder (see experiments.data.user_loader for what it must return).

Data sets that fit in memory (digits, CIFAR, synthetic) are kept as uint8 tensors on the training
device and augmented a whole batch at a time there (experiments/data/augment.py), so the device never
waits on the host: pad-and-random-crop (+ horizontal flip, not for digits, whose classes are not
mirror-symmetric), and RandAugment when the regime asks (ops drawn per image, on the official
TensorFlow scale). An epoch's randomness is drawn once, from the epoch's generator on the host,
and copied to the device once, so a step never copies or reads anything host-side.
``imagefolder`` streams uint8 images through DataLoader workers (``decode_jpeg``, PIL for other
formats; random-resized-crop + flip for training, resize + centre-crop for validation);
normalisation and RandAugment run on the device. With ``decode: device`` the workers only read
the files and the device decodes each batch's JPEGs together (nvJPEG on a GPU) and crops them in
one op; ``decode: auto`` picks (experiments/data/folder.py).
"""
from __future__ import annotations

import dataclasses
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import torch
import torch.nn.functional as F

from scaling.conventions import DATASET_TRAIN_SIZES
from scaling.errors import ArchScaleError
from scaling.validate import check_choice, check_keys, is_number, is_whole

from .augment import RandAugment, crop_flip_plan, pad_crop_flip, rank_plan, to_device
from .folder import (DECODE_PLACES, IMAGENET_MEAN, IMAGENET_STD, LAYOUT, ON_BAD_FILE, FolderData,  # noqa: F401
                     check_classes, decode_batch, folder_split, loader_cpus, read_encoded, read_image, scan_folder)
from .shards import shard_bounds
from .user_loader import CUSTOM, call_loader, check_loader, checked_arrays, loader_folder



@dataclass(frozen=True)
class DatasetKind:
    """A built-in data set: what it is, how to load it, and how many training images it has."""

    name: str
    #: One line for ``archscale list datasets``.
    description: str
    #: ``load(cfg, resolution, channels, seed, cpus)``: InMemoryData or FolderData, on the CPU.
    load: Callable
    #: ``train_size(cfg)``: training images, checking the files exist without loading them.
    train_size: Callable
    #: What ``root`` must hold, for a data set read from files (then ``root`` is required).
    layout: str | None = None
    #: Streams image files through DataLoader workers (FolderData), so ``workers``, ``decode`` and
    #: ``on_bad_file`` apply to it.
    folder: bool = False


#: Every built-in data set by name, in the order ``archscale list datasets`` shows them; filled by
#: ``register_dataset`` at the end of this module.
DATASETS: dict[str, DatasetKind] = {}


def register_dataset(name: str, description: str, *, train_size: Callable, layout: str | None = None,
                     folder: bool = False):
    """Decorator: ``load(cfg, resolution, channels, seed, cpus)`` becomes the built-in data set
    ``name`` (a ``dataset: NAME`` in specs and ``--dataset NAME`` on the command line)."""
    def add(load: Callable) -> Callable:
        if name in DATASETS or name == CUSTOM:
            raise ValueError(f"data set {name!r} is already registered")
        DATASETS[name] = DatasetKind(name, description, load, train_size, layout, folder)
        return load
    return add
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
#: Bytes of float32 scratch a resize of an in-memory data set may take at once.
RESIZE_CHUNK_BYTES = 256 * 2**20


#: The fields that apply only to data streamed from image files.
FOLDER_FIELDS = ("workers", "decode", "on_bad_file")


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
    #: imagefolder: DataLoader workers (default: see ``loader_cpus``).
    workers: int | None = None
    #: imagefolder: where JPEGs are decoded: "workers" (on the CPU, in the DataLoader workers),
    #: "device" (batched ``decode_jpeg`` on the training device, nvJPEG on a GPU; the workers only
    #: read files, and crop and flip run batched on the device) or "auto" (workers on a CPU; on a
    #: GPU the faster of the two by a short measurement at set-up; see experiments.data.folder).
    decode: str = "auto"
    #: imagefolder: an image that cannot be read or decoded stops the run with one line naming it
    #: ("error"), or is left out and counted ("skip").
    on_bad_file: str = "error"
    #: Your own data set: "package.module:function" (see experiments.data.user_loader), and the
    #: keyword arguments it is called with.
    loader: str | None = None
    options: dict = field(default_factory=dict)

    @property
    def display_name(self) -> str:
        return self.label or self.loader or self.name

    def to_dict(self) -> dict:
        """Every field that applies to this data set (the synthetic sizes only for synthetic, the
        loader and its options only for a loader's, FOLDER_FIELDS only for a folder or a loader's)."""
        d = dataclasses.asdict(self)
        if self.name != "synthetic":
            for key in ("train_size", "val_size", "num_classes"):
                d.pop(key)
        if self.loader is None:
            for key in ("loader", "options"):
                d.pop(key)
            if self.name in DATASETS and not DATASETS[self.name].folder:
                for key in FOLDER_FIELDS:
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
        cfg = DatasetConfig(**{**({"name": CUSTOM} if value.get("loader") is not None else {}), **value})
    else:
        raise ArchScaleError("dataset", f"expected a name ({', '.join(DATASETS)}) or a mapping, got {value!r}")
    if cfg.loader is not None or cfg.name == CUSTOM:
        check_loader(cfg)
        return cfg
    check_choice(cfg.name, DATASETS, "dataset", "dataset")
    layout = DATASETS[cfg.name].layout
    if layout and not cfg.root:
        raise ArchScaleError("dataset.root", f"{cfg.name} loads from local files: give root: PATH ({layout})")
    v = cfg.val_fraction
    if not is_number(v) or not 0 < v < 1:
        raise ArchScaleError("dataset.val_fraction", f"must be a number in (0, 1), got {v!r}")
    for key in ("train_size", "val_size", "num_classes"):
        v = getattr(cfg, key)
        if not is_whole(v) or v < 1:
            raise ArchScaleError(f"dataset.{key}", f"must be a whole number >= 1, got {v!r}")
    check_choice(cfg.decode, DECODE_PLACES, "dataset.decode", "decode place")
    check_choice(cfg.on_bad_file, ON_BAD_FILE, "dataset.on_bad_file", "way to treat a bad file")
    if cfg.workers is not None and (not is_whole(cfg.workers) or cfg.workers < 0):
        raise ArchScaleError("dataset.workers", f"DataLoader workers: a whole number >= 0 (0 loads in the "
                                                f"training process), got {cfg.workers!r}")
    return cfg


_LAYOUTS = {
    "cifar10": "torchvision's format: ROOT/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}",
    "cifar100": "torchvision's format: ROOT/cifar-100-python/{train, test, meta}",
    "imagefolder": LAYOUT,
}


class InMemoryData:
    """Train/val images as uint8 tensors on one device, with batched on-device augmentation."""

    #: Torch threads the training process should keep (None: the trial's own choice).
    main_threads = None

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
        """RandAugment with ``layers`` ops per image at ``magnitude`` (the official TF scale, see
        experiments/data/augment.py); 0 layers or magnitude 0: none."""
        self.randaugment = RandAugment(layers, magnitude) if layers > 0 and magnitude > 0 else None

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float().div_(255) - self.mean) / self.std

    def train_batches(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None,
                      shard: tuple[int, int] = (0, 1)) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Shuffled, augmented, normalised training batches (the last partial batch is dropped).

        The epoch's randomness (order, crops, flips, RandAugment draws) is drawn from ``generator``
        before the first batch and copied to the device once; the batches then only index it.
        ``shard=(rank, workers)``: this worker's contiguous part of each global batch of
        ``batch_size`` (experiments.data.shards.shard_bounds), with the crops and flips the whole
        batch draws, so the workers together see what one worker would; RandAugment draws a plan
        for each worker's part (every worker draws all of them, so their generators stay in step).
        """
        n = self.train_size
        batches = n // batch_size if max_batches is None else min(n // batch_size, max_batches)
        images = torch.randperm(n, generator=generator)[:batches * batch_size]
        crops = crop_flip_plan(len(images), self.pad, self.flip, generator)
        rank, workers = shard
        if workers > 1:  # this worker's part of every global batch
            lo, hi = shard_bounds(batch_size, rank, workers)
            keep = (torch.arange(batches)[:, None] * batch_size + torch.arange(lo, hi)).view(-1)
            images, crops = images[keep], crops[keep]
        part = len(images) // max(batches, 1)
        h, w = self.x_train.shape[2:]
        plan = rank_plan(self.randaugment, batches, batch_size, shard, h, w, generator)
        labels = images if plan is None else images.view(batches, part).gather(
            1, plan.order.view(batches, part)).view(-1)  # RandAugment reorders each batch
        device = self.x_train.device
        images, labels, crops = (to_device(t, device) for t in (images, labels, crops))
        plan = plan.to(device) if plan is not None else None
        for b in range(batches):
            sl = slice(b * part, (b + 1) * part)
            x = self.x_train[images[sl]]
            if self.pad or self.flip:
                x = pad_crop_flip(x, self.pad, crops[sl])
            if plan is not None:
                x = self.randaugment(x, plan.batch(b))
            yield self._normalise(x), self.y_train[labels[sl]]

    def val_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Validation batches; ``shard=(rank, workers)``: this worker's contiguous part of the set."""
        lo, hi = shard_bounds(self.val_size, *shard)
        for i in range(lo, hi, batch_size):
            j = min(i + batch_size, hi)
            yield self._normalise(self.x_val[i:j]), self.y_val[i:j]


def _resize_uint8(x: torch.Tensor, size: int, chunk_bytes: int | None = None) -> torch.Tensor:
    """uint8 images (N, C, H, W) resized to ``size`` x ``size`` (bilinear; antialiased when
    shrinking), a chunk of images at a time so the float32 scratch stays under ``chunk_bytes``
    (default ``RESIZE_CHUNK_BYTES``)."""
    chunk_bytes = chunk_bytes or RESIZE_CHUNK_BYTES
    n, c, h, w = x.shape
    if h == size and w == size:
        return x
    per_image = 4 * c * max(h * w, size * size)
    step = max(1, chunk_bytes // per_image)
    out = torch.empty(n, c, size, size, dtype=torch.uint8, device=x.device)
    for i in range(0, n, step):
        y = F.interpolate(x[i:i + step].float(), size=(size, size), mode="bilinear", align_corners=False,
                          antialias=size < w)
        out[i:i + step] = y.round_().clamp_(0, 255)
    return out


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


def dataset_train_size(cfg) -> int:
    """Training images of a data set, checking its files exist (without loading them; a folder's
    files are checked to start like images, ``experiments.data.folder.scan_folder``)."""
    cfg = dataset_from(cfg)
    if cfg.loader:
        data = call_loader(cfg)
        if isinstance(data, Path):
            return scan_folder(str(data), cfg.on_bad_file)[0]
        return len(data["y_train"])
    return DATASETS[cfg.name].train_size(cfg)


def dataset_check(cfg) -> dict | None:
    """What planning found in a folder data set's files (None for other data sets): the training
    images that load, ``on_bad_file``, and the files left out (``on_bad_file: skip``) with why."""
    cfg = dataset_from(cfg)
    if cfg.loader:
        folder = loader_folder(cfg)  # (planning called the loader already: not again)
        root = None if folder is None else str(folder)
    else:
        root = cfg.root if cfg.name == "imagefolder" else None
    if root is None:
        return None
    images, bad = scan_folder(root, cfg.on_bad_file)
    return {"train_images": images, "on_bad_file": cfg.on_bad_file, "bad_files_skipped": len(bad),
            "skipped": [{"path": p, "why": w} for p, w in bad]}


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


def _load_custom(cfg: DatasetConfig, resolution: int, channels: int, cpus: int | None = None):
    """A loader's data set at ``resolution`` px with ``channels`` channels: ``InMemoryData`` for
    tensors, ``FolderData`` for a folder (its workers follow ``cfg.workers`` or the trial's ``cpus``)."""
    data = call_loader(cfg)
    if isinstance(data, Path):
        return FolderData(str(data), resolution, channels, workers=cfg.workers, cpus=cpus, decode=cfg.decode,
                          on_bad_file=cfg.on_bad_file)
    x_train, y_train, x_val, y_val, num_classes = checked_arrays(data, cfg.loader)
    x_train, x_val = (_channels(_resize_uint8(x, resolution), channels) for x in (x_train, x_val))
    sample = x_train.float() / 255
    mean = sample.mean((0, 2, 3)).tolist() if data.get("mean") is None else [float(v) for v in data["mean"]]
    std = sample.std((0, 2, 3)).clamp_min(1e-3).tolist() if data.get("std") is None else [float(v) for v in data["std"]]
    if len(mean) != channels or len(std) != channels:
        raise ArchScaleError("dataset.loader", f"{cfg.loader}: mean and std need one value per channel ({channels})")
    pad = data.get("pad")
    return InMemoryData(cfg.display_name, x_train, y_train, x_val, y_val, num_classes, mean, std,
                        flip=bool(data.get("flip", False)), pad=max(1, resolution // 8) if pad is None else int(pad))


def load_dataset(cfg: DatasetConfig, resolution: int, channels: int, seed: int = 0, cpus: int | None = None):
    """The data set of ``cfg`` at ``resolution`` px with ``channels`` channels (CPU tensors/loaders;
    ``.to(device)`` moves it). ``cpus``: the trial's CPUs, which a folder data set's workers follow."""
    cfg = dataset_from(cfg)
    if cfg.loader:
        data = _load_custom(cfg, resolution, channels, cpus)
    else:
        data = DATASETS[cfg.name].load(cfg, resolution, channels, seed, cpus)
    data.name = cfg.display_name
    check_classes(data.num_classes, f"data set {cfg.display_name} has")
    return data


# ----- the built-in data sets --------------------------------------------------------------------
@register_dataset("digits", "scikit-learn's bundled 8x8 digits (1,797 images, 10 classes), upsampled; the default",
                  train_size=lambda cfg: digits_split_sizes(cfg.val_fraction)[0])
def _digits(cfg: DatasetConfig, resolution: int, channels: int, seed: int, cpus: int | None) -> InMemoryData:
    return load_digits(resolution, channels, cfg.val_fraction)


def _cifar(cfg: DatasetConfig, resolution: int, channels: int, seed: int, cpus: int | None) -> InMemoryData:
    return load_cifar(cfg.name, cfg.root, resolution, channels)


def _cifar_train_size(cfg: DatasetConfig) -> int:
    _cifar_files(cfg.name, cfg.root)
    return DATASET_TRAIN_SIZES[cfg.name]


for _name, _title in (("cifar10", "CIFAR-10"), ("cifar100", "CIFAR-100")):
    register_dataset(_name, f"{_title} in torchvision's on-disk format under root (never downloads)",
                     train_size=_cifar_train_size, layout=_LAYOUTS[_name])(_cifar)


@register_dataset("imagefolder", "the ImageNet layout: root/train/<class>/<image> and root/val/<class>/<image>",
                  train_size=lambda cfg: scan_folder(cfg.root, cfg.on_bad_file)[0], layout=_LAYOUTS["imagefolder"],
                  folder=True)
def _imagefolder(cfg: DatasetConfig, resolution: int, channels: int, seed: int, cpus: int | None) -> FolderData:
    return FolderData(cfg.root, resolution, channels, workers=cfg.workers, cpus=cpus, decode=cfg.decode,
                      on_bad_file=cfg.on_bad_file)


@register_dataset("synthetic", "random images and labels of any size and class count (speed tests)",
                  train_size=lambda cfg: cfg.train_size)
def _synthetic(cfg: DatasetConfig, resolution: int, channels: int, seed: int, cpus: int | None) -> InMemoryData:
    return load_synthetic(cfg, resolution, channels, seed)
