"""ImageNet-layout folders (``imagefolder``, or a loader that returns a folder), streamed as uint8.

    ROOT/train/<class>/<image>      ROOT/val/<class>/<image>

Files are listed as torchvision's ImageFolder lists them (its extensions). DataLoader workers read
them; where the JPEGs are decoded is ``decode``:

- ``workers``: the workers decode (``decode_jpeg``, PIL for other formats) and crop each image
  (torchvision's ``resized_crop`` + flip for training, resize + centre crop for validation), and
  hand over uint8 batches at the training resolution.
- ``device``: the workers only read the files; the training device decodes each batch's JPEGs
  together (``decode_jpeg`` there, nvJPEG on a GPU) and crops and flips the whole batch in one op
  (experiments/data/crops.py). On a GPU this runs on a stream of its own, so the next batch is
  decoded while the current step trains.
- ``auto`` (the default): ``workers`` on a CPU (there the "device" is the training process itself,
  whose threads then decode one batch at a time while the workers sit idle); on a GPU a short
  measurement at set-up (``measure_decode``: one core's decode + crop rate times the workers,
  against the device's rate on a few batches of the data set's own files) picks the faster. The
  choice and both rates are printed in the trial's log and recorded (``decode`` in its records).

Both paths crop each image from the same draws (a seed per image from the epoch's generator), so
for the same files, crops and flips they give the same batches up to the two decoders' difference:
on a CPU, where both decode with libjpeg-turbo, exactly (tests/test_folder.py); on a GPU,
nvJPEG's (benchmarks/gpu_check.py's ``folder`` section).

Bad files: an image that cannot be opened or decoded stops the run with one line naming its path,
unless ``on_bad_file: skip``. Planning a sweep reads each file's first bytes either way, so a file
that is not an image is named (or counted) before Ray starts. Then the files whose first bytes are not an image are left out before
training (``check_files``: 12 bytes a file, 16 threads, remembered by the process while the folders
are unchanged; also run when a sweep is planned, and recorded in its manifest), and a
training file that fails later (a truncated JPEG) gives its place in the batch to another image of
the same batch (the batch keeps its size; a validation file is just left out); each skipped file
is printed once and counted in the trial's records (``bad_files_skipped``).
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import torch

from scaling.errors import ArchScaleError

from .augment import RandAugment, rank_plan
from .crops import box_windows, centre_windows, crop_draws, crop_one, resample, resized_crop_boxes
from .shards import shard_bounds

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
LAYOUT = "ImageNet layout: ROOT/train/<class>/<image> and ROOT/val/<class>/<image>"
DECODE_PLACES = ("auto", "workers", "device")
ON_BAD_FILE = ("error", "skip")
#: Images of the data set's own files that ``decode: auto`` times each way on a GPU. Ours: a few
#: batches' worth, enough for a rate steady to a few percent, under a second or two of set-up.
AUTO_SAMPLE = 96
#: Threads that read file headers in ``check_files`` (I/O bound: they wait on the disk).
CHECK_THREADS = 16
#: The first bytes of each format ImageFolder lists (jpg/jpeg, png, ppm/pgm, bmp, tif/tiff, webp).
_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"P1", b"P2", b"P3", b"P4", b"P5", b"P6", b"BM", b"II*\x00",
          b"MM\x00*")


# ----- listing and checking files -----------------------------------------------------------------
def check_folder(root: str) -> Path:
    """ROOT as a Path, or ArchScaleError when it lacks train/ or val/ class folders."""
    base = Path(root)
    for split in ("train", "val"):
        d = base / split
        if not d.is_dir() or not any(p.is_dir() for p in d.iterdir()):
            raise ArchScaleError("dataset.root", f"no {split}/ class folders under {root}; expected {LAYOUT}")
    check_classes(sum(p.is_dir() for p in (base / "train").iterdir()), f"{root}/train has")
    return base


def check_classes(n: int, what: str) -> int:
    """``n``, or ArchScaleError("dataset") when a data set has fewer than 2 classes (a classifier of
    one class is always right: 100 % top-1 that means nothing)."""
    if n < 2:
        raise ArchScaleError("dataset", f"{what} {n} class; a classification data set needs at least 2 classes")
    return n


def folder_split(root: str, split: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, label)]) of ROOT/split, listed as torchvision's ImageFolder lists it."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    base = check_folder(root) / split
    classes, index = find_classes(str(base))
    try:
        return classes, make_dataset(str(base), index, IMG_EXTENSIONS)
    except FileNotFoundError as e:
        raise ArchScaleError("dataset.root", f"{root} is not in {LAYOUT} ({e})") from None


def reason(error: BaseException) -> str:
    """One line saying why a file did not load (torchvision's source location left out)."""
    text = re.sub(r"^[\w.]*,?\s*\S+\.cpp:\d+,?\s*", "", " ".join(str(error).split()))
    text = re.sub(r"<_io\.BytesIO object at 0x[0-9a-f]+>", "its bytes", text)
    return f"{type(error).__name__}: {text[:200]}" if text else type(error).__name__


def bad_file_error(path: str, why: str, more: int = 0) -> ArchScaleError:
    """The one-line error of an image that cannot be read."""
    extra = f", and {more} more" if more else ""
    return ArchScaleError("dataset.root", f"cannot read image {path} ({why}{extra}); fix or remove it, or set "
                                          f"on_bad_file: skip in the dataset to train without it")


def sniff(path: str) -> str | None:
    """None when ``path`` opens and starts like an image; else why not (one line)."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    if not head:
        return "an empty file"
    if head.startswith(_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return None
    return "not an image: its first bytes match no image format"


def check_files(paths: list[str], on_bad_file: str) -> list[tuple[str, str]]:
    """[(path, why)] of the files that do not open or do not start like an image, read by
    CHECK_THREADS threads (12 bytes a file). ``on_bad_file="error"``: ArchScaleError naming the
    first instead."""
    with ThreadPoolExecutor(min(CHECK_THREADS, max(1, len(paths)))) as pool:
        whys = list(pool.map(sniff, paths, chunksize=256))
    bad = [(p, w) for p, w in zip(paths, whys) if w]
    if bad and on_bad_file == "error":
        raise bad_file_error(*bad[0], more=len(bad) - 1)
    return bad


@functools.lru_cache(maxsize=4)
def _scan(root: str, on_bad_file: str, stamp: tuple) -> tuple[int, tuple[tuple[str, str], ...]]:
    _, train = folder_split(root, "train")
    _, val = folder_split(root, "val")
    bad = check_files([p for p, _ in train + val], on_bad_file)
    bad_train = {p for p, _ in bad} & {p for p, _ in train}
    return len(train) - len(bad_train), tuple(bad)


def scan_folder(root: str, on_bad_file: str = "error") -> tuple[int, list[tuple[str, str]]]:
    """(training images that load, [(path, why)] of the files left out) of a folder, as planning
    sees it (``check_files`` over train/ and val/); remembered while the folders are unchanged,
    so a sweep's planning and manifest read the files once."""
    base = check_folder(root)
    stamp = tuple(os.stat(d).st_mtime_ns for split in ("train", "val") for d in sorted((base / split).iterdir()))
    images, bad = _scan(str(base), on_bad_file, stamp)
    return images, list(bad)


# ----- reading and decoding ---------------------------------------------------------------------
def _is_jpeg(data: bytes) -> bool:
    return data[:3] == b"\xff\xd8\xff"


def _decode_jpeg(data, device: torch.device | str = "cpu"):
    """torchvision's ``decode_jpeg`` to RGB (one tensor of bytes or a list of them)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    with warnings.catch_warnings():  # torchvision 0.29 points to torchcodec, not installed here
        warnings.simplefilter("ignore", DeprecationWarning)
        return decode_jpeg(data, mode=ImageReadMode.RGB, device=device)


def read_image(path: str, data: bytes | None = None) -> torch.Tensor:
    """An image file (or its bytes ``data``) as a uint8 RGB tensor (3, H, W): JPEGs through
    ``torchvision.io.decode_jpeg``, other formats (and JPEGs it cannot read) through PIL."""
    if data is None:
        with open(path, "rb") as f:
            data = f.read()
    if _is_jpeg(data):
        try:
            return _decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8))
        except RuntimeError:  # a JPEG flavour libjpeg-turbo's path rejects: PIL tries (and names a truncation)
            pass
    import numpy as np
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


def read_encoded(path: str) -> torch.Tensor:
    """A JPEG file's bytes as a 1-D uint8 tensor, for ``decode_batch`` on the device; other
    formats decoded here (``read_image``), as (3, H, W) uint8."""
    with open(path, "rb") as f:
        data = f.read()
    return torch.frombuffer(bytearray(data), dtype=torch.uint8) if _is_jpeg(data) else read_image(path, data)


def decode_batch(items: list[torch.Tensor], device: torch.device) -> tuple[list, list[tuple[int, str]]]:
    """(images, failures): ``read_encoded``'s items as (3, H, W) uint8 images on ``device``, the
    JPEGs decoded together by ``decode_jpeg`` there (nvJPEG on a GPU). When the batch is refused,
    each JPEG is tried alone, then through ``read_image`` on the CPU; one that still fails is
    None among the images and (position, why) among the failures."""
    device = torch.device(device)
    jpegs = [i for i, t in enumerate(items) if t.dim() == 1]
    out, failed = list(items), []
    if jpegs:
        try:
            decoded = _decode_jpeg([items[i] for i in jpegs], device)
        except RuntimeError:
            decoded = [_decode_alone(items[i], device, failed, i) for i in jpegs]
        for i, img in zip(jpegs, decoded):
            out[i] = img
    return [t if t is None else t.to(device, non_blocking=True) for t in out], failed


def _decode_alone(data: torch.Tensor, device: torch.device, failed: list, position: int):
    try:
        return _decode_jpeg([data], device)[0]
    except RuntimeError:
        try:
            return read_image("", data.numpy().tobytes())
        except Exception as e:  # noqa: BLE001 - whatever stops it, the file is named with the reason
            failed.append((position, reason(e)))
            return None


# ----- what the DataLoader workers do ------------------------------------------------------------
@dataclass(frozen=True)
class BadFile:
    """In a worker's item, the place of an image that did not load."""

    path: str
    why: str


class FolderImages(torch.utils.data.Dataset):
    """One split of a folder for DataLoader workers. An item is keyed by ``(index, seed)`` for
    training (the seed draws the image's crop and flip, ``crops.crop_draws``) or ``index`` for
    validation, and is ``(image, label, index, draws or None)``: the image cropped to
    ``resolution`` when the workers decode, else ``read_encoded``'s output; a ``BadFile`` when the
    file does not load."""

    def __init__(self, samples: list[tuple[str, int]], classes: list[str], resolution: int, in_workers: bool):
        self.samples, self.classes, self.resolution, self.in_workers = samples, classes, resolution, in_workers

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key):
        index, seed = key if isinstance(key, tuple) else (key, None)
        path, label = self.samples[index]
        draws = None if seed is None else crop_draws([seed])[0]
        try:
            image = crop_one(read_image(path), self.resolution, draws) if self.in_workers else read_encoded(path)
        except Exception as e:  # noqa: BLE001 - any failure to read or decode: the file is named with the reason
            image = BadFile(path, reason(e))
        return image, label, index, draws


def collate(batch: list, stack: bool, refill: bool):
    """A worker's batch ``(images, labels, indices, draws or None, bad files)``. A bad file's place
    goes to another image of the batch with ``refill`` (training: the batch keeps its size; none
    left, an empty batch), else it is left out (validation: every image counted once); ``stack``:
    the images (all at the training resolution) as one tensor, else a list."""
    good = [b for b in batch if not isinstance(b[0], BadFile)]
    bad = [b[0] for b in batch if isinstance(b[0], BadFile)]
    images, labels, index, draws = [], [], [], []
    for k, item in enumerate(batch if refill else good):
        if good:
            source = item if not isinstance(item[0], BadFile) else good[k % len(good)]
            images.append(source[0])
            labels.append(source[1])
            index.append(source[2])
            draws.append(item[3] if item[3] is not None else None)  # a stand-in keeps the bad file's crop
    images = (torch.stack(images) if images else torch.zeros(0, 3, 1, 1, dtype=torch.uint8)) if stack else images
    draws = torch.stack(draws) if draws and draws[0] is not None else None
    return images, torch.tensor(labels, dtype=torch.long), torch.tensor(index, dtype=torch.long), draws, bad


def device_crops(items: list, draws: torch.Tensor | None, size: int, device: torch.device,
                 stream=None) -> tuple[torch.Tensor, list[tuple[int, str]], list[int]]:
    """(batch, failures, sources) of ``read_encoded`` items decoded and cropped on ``device``:
    training crops and flips from ``draws`` (N x crops.DRAWS), else validation's resize + centre
    crop. An item that does not decode gives its place to another (``sources[k]``: the item whose
    image position k holds; ``failures``: (position, why)).

    On CUDA ``stream`` (a side stream) does the work and the caller's stream waits for it. Work
    around an upstream hazard: ``decode_jpeg(device="cuda")`` allocates its outputs on the current
    stream, then nvJPEG writes them on another stream without waiting for the work queued on the
    current one (pytorch/vision PR 9606), and nvJPEG's hardware decoder does not wait for its own
    stream's queued work either (meta-pytorch/torchcodec PR 1634). The caching allocator hands out
    a block as soon as it is freed on its stream, so the decoder can overwrite memory that queued
    kernels (the training step) are still reading: wrong numbers, NaN losses. Here the decoder only
    ever runs on ``stream``, which is synchronised first, so every block it can be handed is idle;
    the finished batch is recorded on the caller's stream (``record_stream``) so its memory stays
    the caller's until the step that reads it has run. The training step never waits on the
    host: it keeps running while the next batch decodes."""
    caller = torch.cuda.current_stream(device) if device.type == "cuda" else None
    if caller is not None and stream is not None:
        stream.synchronize()  # only the decode stream's own earlier work: the previous batch's crops
        ctx = torch.cuda.stream(stream)
    else:
        ctx = contextlib.nullcontext()
    with ctx:
        decoded, failed = decode_batch(items, device)
        good = [k for k, img in enumerate(decoded) if img is not None]
        sources = [k if decoded[k] is not None else (good[k % len(good)] if good else k) for k in range(len(items))]
        if not good:
            return torch.zeros(0, 3, size, size, dtype=torch.uint8, device=device), failed, sources
        images = [decoded[s] for s in sources]
        heights, widths = [img.shape[1] for img in images], [img.shape[2] for img in images]
        if draws is not None:
            boxes, flips = resized_crop_boxes(draws, heights, widths)  # the failed item's own draws
            rows, cols = box_windows(boxes, size)
        else:
            (rows, cols), flips = centre_windows(heights, widths, size), None
        x = resample(images, rows, cols, size, flips)
    if caller is not None and stream is not None:
        x.record_stream(caller)
        caller.wait_stream(stream)
    return x, failed, sources


# ----- decode: auto ------------------------------------------------------------------------------
def measure_decode(samples: list[tuple[str, int]], size: int, device: torch.device, workers: int,
                   images: int = AUTO_SAMPLE) -> dict[str, float]:
    """Training images/s each way on this node, from ``images`` of the data set's files (evenly
    spaced): ``workers``: one core's read + decode + crop, times the workers; ``device``: the
    batched decode + crop on ``device`` (its first, warming, pass not timed)."""
    paths = [p for p, _ in samples[::max(1, len(samples) // images)]][:images]
    draws = crop_draws(range(len(paths)))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        for path, d in zip(paths, draws):
            crop_one(read_image(path), size, d)
        per_core = len(paths) / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)
    stream = torch.cuda.Stream(device) if device.type == "cuda" else None
    timed = []
    for _ in range(2):
        _sync(device)
        t0 = time.perf_counter()
        device_crops([read_encoded(p) for p in paths], draws, size, device, stream)
        _sync(device)
        timed.append(time.perf_counter() - t0)
    return {"workers": per_core * max(1, workers), "device": len(paths) / timed[-1]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def available_cpus() -> int:
    """CPUs this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def loader_cpus(cpus: int | None, workers: int | None, cuda: bool, node_cpus: int | None = None,
                gpus: int | None = None) -> tuple[int, int, str | None]:
    """(DataLoader workers, torch threads of the training process, warning or None) of a folder
    data set for a trial with ``cpus`` CPUs (None: the node's CPUs per GPU on a GPU trial, all of
    this process's CPUs on a CPU trial). Workers: ``workers`` when given, else every CPU of a GPU
    trial (its process only launches GPU work) and half of a CPU trial's (the other half
    trains). The training process keeps the CPUs the workers leave, at least one, so the two
    never oversubscribe the allocation. One worker on a GPU is warned about."""
    node_cpus = node_cpus or available_cpus()
    if cpus is None:
        if cuda:
            gpus = gpus if gpus is not None else max(1, torch.cuda.device_count())
            cpus = max(1, node_cpus // gpus)
        else:
            cpus = node_cpus
    if workers is None:
        workers = cpus if cuda else max(1, cpus // 2)
    warning = None
    if cuda and workers <= 1:
        warning = (f"imagefolder: {workers} DataLoader worker{'' if workers == 1 else 's'} will starve the GPU "
                   f"(a core decodes ~1,000-2,000 JPEGs/s); give the trial more CPUs (resources.cpus, --cpus) "
                   f"or dataset.workers")
    return workers, max(1, cpus - workers), warning


class NextKeys(torch.utils.data.Sampler):
    """The keys a kept DataLoader reads on its next pass (``keys``, set before each)."""

    def __init__(self):
        self.keys: list = []

    def __iter__(self):
        return iter(self.keys)

    def __len__(self) -> int:
        return len(self.keys)


# ----- the data set ------------------------------------------------------------------------------
class FolderData:
    """An ImageNet-layout folder streamed as uint8 through DataLoader workers, decoded where
    ``decode`` says (see the module docstring); normalisation and RandAugment on the device."""

    def __init__(self, root: str, resolution: int, channels: int, workers: int | None = None,
                 cpus: int | None = None, decode: str = "auto", on_bad_file: str = "error"):
        if channels != 3:
            raise ArchScaleError("in_channels", "imagefolder data is RGB: use in_channels: 3")
        classes, train = folder_split(root, "train")
        val_classes, val = folder_split(root, "val")
        if classes != val_classes:
            raise ArchScaleError("dataset.root", f"train/ and val/ under {root} hold different class folders")
        self.resolution, self.name, self.cpus, self.requested_workers = resolution, "imagefolder", cpus, workers
        self.decode, self.on_bad_file, self.classes = decode, on_bad_file, classes
        #: Files skipped (on_bad_file: skip): path -> why.
        self.skipped: dict[str, str] = {}
        if on_bad_file == "skip":
            _, bad = scan_folder(root, "skip")
            self._skip(bad)
            train, val = ([s for s in samples if s[0] not in self.skipped] for samples in (train, val))
            if len(train) < 2 or not val:
                raise ArchScaleError("dataset.root", f"{root}: {len(self.skipped)} unreadable images skipped leave "
                                                     f"{len(train)} training and {len(val)} validation images")
        self.train_samples, self.val_samples = train, val
        self.num_classes = len(classes)
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, -1, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, -1, 1, 1)
        self.randaugment = None
        self.decode_choice, self.decode_note, self.decode_rates, self._stream = None, "", None, None
        self.to(torch.device("cpu"))

    @property
    def train_size(self) -> int:
        return len(self.train_samples)

    @property
    def val_size(self) -> int:
        return len(self.val_samples)

    def to(self, device: torch.device) -> "FolderData":
        """Batches go to ``device``; workers and the training process's threads follow the
        trial's CPUs there (``loader_cpus``); ``decode: auto`` chooses for that device."""
        self.device = torch.device(device)
        self.mean, self.std = self.mean.to(self.device), self.std.to(self.device)
        self.workers, self.main_threads, warning = loader_cpus(self.cpus, self.requested_workers,
                                                               self.device.type == "cuda")
        if warning:
            warnings.warn(warning, RuntimeWarning, stacklevel=2)
        self._choose_decode()
        in_workers = self.decode_choice == "workers"
        self.train_set = FolderImages(self.train_samples, self.classes, self.resolution, in_workers)
        self.val_set = FolderImages(self.val_samples, self.classes, self.resolution, in_workers)
        self._stream = torch.cuda.Stream(self.device) if self.device.type == "cuda" and not in_workers else None
        self._loaders = {}
        return self

    def _choose_decode(self) -> None:
        """``decode_choice`` ("workers" or "device") and, for ``auto``, ``decode_note``: the line
        saying why, for the trial's log."""
        self.decode_rates = None
        if self.decode != "auto":
            self.decode_choice, self.decode_note = self.decode, ""
        elif self.device.type != "cuda":
            self.decode_choice = "workers"
            self.decode_note = ("decode: auto chose workers (on a CPU, decoding on the device would take the "
                                "training process's threads while the workers wait)")
        else:
            self.decode_rates = rates = measure_decode(self.train_samples, self.resolution, self.device, self.workers)
            self.decode_choice = max(rates, key=rates.get)
            self.decode_note = (f"decode: auto chose {self.decode_choice} ({rates['workers']:,.0f} img/s in "
                                f"{self.workers} workers, estimated from one core, vs {rates['device']:,.0f} img/s "
                                f"decoding on {self.device}; measured on {min(AUTO_SAMPLE, self.train_size)} of "
                                f"the training images)")

    def set_randaugment(self, layers: int, magnitude: float) -> None:
        """RandAugment on the device, as for in-memory data (experiments/data/augment.py)."""
        self.randaugment = RandAugment(layers, magnitude) if layers > 0 and magnitude > 0 else None

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float().div_(255) - self.mean) / self.std

    def _loader(self, dataset: FolderImages, batch_size: int, keys):
        """The DataLoader of ``dataset`` in batches of ``batch_size``, set to read ``keys`` next. One
        per split and batch size, kept with its worker processes (``persistent_workers``), so an
        epoch does not wait for a new set of workers to start: the keys (order and crop seeds)
        change, the dataset does not."""
        from torch.utils.data import DataLoader

        key = (dataset is self.train_set, batch_size)
        loader = self._loaders.get(key)
        if loader is None:
            # the draws travel in the keys; a generator of its own keeps the loader off torch's global one
            loader = self._loaders[key] = DataLoader(
                dataset, batch_size=batch_size, sampler=NextKeys(), num_workers=self.workers,
                pin_memory=self.device.type == "cuda", persistent_workers=self.workers > 0,
                generator=torch.Generator().manual_seed(0),
                collate_fn=functools.partial(collate, stack=dataset.in_workers, refill=dataset is self.train_set))
        loader.sampler.keys = list(keys)
        return loader

    def _skip(self, bad) -> None:
        """Remember files that did not load (``on_bad_file: skip``) and print each once; raise
        the first one's one-line error otherwise."""
        bad = [(b.path, b.why) if isinstance(b, BadFile) else b for b in bad]
        if not bad:
            return
        if self.on_bad_file != "skip":
            raise bad_file_error(*bad[0], more=len(bad) - 1)
        for path, why in bad:
            if path not in self.skipped:
                self.skipped[path] = why
                print(f"{self.name}: skipped {path} ({why}); {len(self.skipped)} file"
                      f"{'' if len(self.skipped) == 1 else 's'} skipped (on_bad_file: skip)", flush=True)

    def _on_device(self, batch, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """A worker's batch as (uint8 images, labels) on the device: moved there, or (decode:
        device) decoded, cropped and flipped there (``device_crops``)."""
        images, labels, index, draws, bad = batch
        self._skip(bad)
        if self.decode_choice == "workers":
            return images.to(self.device, non_blocking=True), labels.to(self.device, non_blocking=True)
        x, failed, sources = device_crops(images, draws if train else None, self.resolution, self.device,
                                          self._stream)
        samples = self.train_samples if train else self.val_samples
        self._skip([(samples[int(index[k])][0], why) for k, why in failed])
        if failed:
            labels = labels[sources]
            if not train:  # validation counts every image once: a failed one is left out, not replaced
                keep = sorted(set(range(len(sources))) - {k for k, _ in failed})
                x, labels = x[keep], labels[keep]
        return x, labels.to(self.device, non_blocking=True)

    def train_batches(self, batch_size: int, generator: torch.Generator, max_batches: int | None = None,
                      shard: tuple[int, int] = (0, 1)):
        """Shuffled training batches (crop and flip where ``decode`` says, RandAugment and
        normalisation on the device; the last partial batch is dropped). The epoch's order and
        each image's crop seed are drawn from ``generator``; ``shard=(rank, workers)``: this
        worker's contiguous part of each global batch, so the workers together see what one
        worker would."""
        n = self.train_size
        batches = n // batch_size if max_batches is None else min(n // batch_size, max_batches)
        order = torch.randperm(n, generator=generator)[:batches * batch_size]
        seeds = torch.randint(2**62, (len(order),), generator=generator)
        rank, workers = shard
        if workers > 1:
            lo, hi = shard_bounds(batch_size, rank, workers)
            keep = (torch.arange(batches)[:, None] * batch_size + torch.arange(lo, hi)).view(-1)
            order, seeds = order[keep], seeds[keep]
        part = len(order) // max(batches, 1)
        r = self.resolution
        plan = rank_plan(self.randaugment, batches, batch_size, shard, r, r, generator)
        plan = plan.to(self.device) if plan is not None else None
        loader = self._loader(self.train_set, max(part, 1), list(zip(order.tolist(), seeds.tolist())))
        for i, batch in enumerate(loader):
            x, y = self._on_device(batch, train=True)
            if len(y) < 2:  # every file of the batch was skipped: never a step on one image (batch norm)
                continue
            if plan is not None:
                step = plan.batch(i)
                x, y = self.randaugment(x, step), y[step.order]
            yield self._normalise(x), y

    def val_batches(self, batch_size: int, shard: tuple[int, int] = (0, 1)):
        """Validation batches; ``shard=(rank, workers)``: this worker's contiguous part of the set."""
        lo, hi = shard_bounds(self.val_size, *shard)
        for batch in self._loader(self.val_set, batch_size, range(lo, hi)):
            x, y = self._on_device(batch, train=False)
            if len(y):
                yield self._normalise(x), y
