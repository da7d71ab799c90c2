"""In-memory data sets kept resident: built once, shared between a node's processes, put on a
device once per process and reused by every trial that process runs next.

``resident_dataset`` gives a trial its data set on its device: the one its process already
holds for the same data set, resolution and channels (and seed, for the synthetic set, which it
draws), else one built from ``shared`` arrays (a sweep's driver builds each in-memory data set
once and hands it to its workers through Ray's object store, where a node's processes read it
without copying) or by ``load_dataset``. Folder data sets (their DataLoader workers belong to one
trial) are built anew each time.
"""
from __future__ import annotations

import json
import warnings
from collections import OrderedDict
from typing import Callable

import numpy as np
import torch

from .datasets import DatasetConfig, InMemoryData, dataset_from, load_dataset
from .user_loader import forget_call

#: In-memory data sets a process keeps on its device. Ours: two lets trials that alternate between
#: two resolutions (or data sets) reuse both, and bounds the device memory the cache holds.
MAX_RESIDENT = 2

_RESIDENT: OrderedDict[tuple, InMemoryData] = OrderedDict()


def data_key(cfg: DatasetConfig | dict | str, resolution: int, channels: int, seed: int = 0) -> str:
    """What makes two trials' data sets the same: the data set, its resolution and channels (and
    the seed, for the synthetic set, which it draws)."""
    cfg = dataset_from(cfg)
    return json.dumps([cfg.to_dict(), int(resolution), int(channels), int(seed) if cfg.name == "synthetic" else None],
                      sort_keys=True, default=str)


def resident_dataset(cfg: DatasetConfig, resolution: int, channels: int, seed: int, device: torch.device,
                     cpus: int | None = None, shared: Callable[[], dict] | None = None):
    """The data set on ``device`` (see the module docstring); ``shared()`` gives the arrays of
    ``to_arrays`` when a sweep shares it. The data set's RandAugment is the caller's to set."""
    key = (data_key(cfg, resolution, channels, seed), str(device))
    if key in _RESIDENT:
        _RESIDENT.move_to_end(key)
        return _RESIDENT[key]
    data = from_arrays(shared()) if shared is not None else load_dataset(cfg, resolution, channels, seed, cpus=cpus)
    data = data.to(device)
    if isinstance(data, InMemoryData):
        _RESIDENT[key] = data
        while len(_RESIDENT) > MAX_RESIDENT:
            _RESIDENT.popitem(last=False)
    return data


def to_arrays(data: InMemoryData) -> dict:
    """An in-memory data set as NumPy arrays and plain values (what Ray's object store holds and
    serves to a node's processes without copying)."""
    return {"name": data.name, "x_train": data.x_train.numpy(), "y_train": data.y_train.numpy(),
            "x_val": data.x_val.numpy(), "y_val": data.y_val.numpy(), "num_classes": data.num_classes,
            "mean": data.mean.flatten().tolist(), "std": data.std.flatten().tolist(), "flip": data.flip,
            "pad": data.pad}


def from_arrays(d: dict) -> InMemoryData:
    """The in-memory data set of ``to_arrays``' dict, its tensors viewing the arrays (read-only
    ones from the object store stay read-only: the data set is never written to)."""
    with warnings.catch_warnings():  # torch warns that a read-only array makes a read-only tensor
        warnings.simplefilter("ignore", UserWarning)
        tensors = {k: torch.from_numpy(np.asarray(d[k])) for k in ("x_train", "y_train", "x_val", "y_val")}
    return InMemoryData(d["name"], tensors["x_train"], tensors["y_train"], tensors["x_val"], tensors["y_val"],
                        d["num_classes"], d["mean"], d["std"], flip=d["flip"], pad=d["pad"])


def build_shared(cfg: DatasetConfig, shapes: set[tuple[int, int, int]]) -> dict[str, dict]:
    """{data_key: to_arrays(...)} of the in-memory data set ``cfg`` at each (resolution, channels,
    seed) of ``shapes``, built once each on the CPU; {} for a folder data set."""
    cfg = dataset_from(cfg)
    out = {}
    for resolution, channels, seed in sorted(shapes):
        key = data_key(cfg, resolution, channels, seed)
        if key in out:
            continue
        data = load_dataset(cfg, resolution, channels, seed)
        if not isinstance(data, InMemoryData):
            return {}
        out[key] = to_arrays(data)
    forget_call()  # the loader's own arrays: the shared ones are built
    return out


def forget_resident() -> None:
    """Drop every data set this process keeps (tests; a process that needs the memory back)."""
    _RESIDENT.clear()
