"""Your own data set without editing the package: a loader function named in the spec.

    dataset: {loader: "mypkg.data:load", options: {size: 500}, label: mydata}     # a sweep spec
    archscale train --dataset-loader mypkg.data:load --dataset-option size=500    # one trial

The function is called with ``options`` as keyword arguments (and ``root=`` when the spec gives
``root:``) in the driver, to count the training images while the sweep is planned, and in every
trial, so it must be importable there and give the same data each time. It returns either

- **in-memory data**, a mapping with
    ``x_train``, ``x_val``: uint8 images, N x C x H x W (or N x H x W for one channel), as torch
        tensors or numpy arrays, any size: they are resized to the spec's resolution and channels
        like the built-in sets, kept on the training device and augmented there;
    ``y_train``, ``y_val``: integer labels 0 .. num_classes - 1, one per image;
  and optionally ``num_classes`` (default: the largest label + 1), ``mean`` and ``std`` (per
  channel on the 0-1 scale; default: measured on x_train), ``flip`` (random horizontal flips,
  default false: not every data set is mirror-symmetric) and ``pad`` (pixels of the random
  pad-and-crop, default resolution // 8);
- or **a folder** (a str or Path) in the ImageNet layout, ``ROOT/train/<class>/<image>`` and
  ``ROOT/val/<class>/<image>``, streamed through DataLoader workers as ``imagefolder`` is.
"""
from __future__ import annotations

import inspect
import os
from pathlib import Path

from scaling.errors import ArchScaleError
from scaling.plugins import import_object

#: The name of a data set that a loader function provides (``loader:``).
CUSTOM = "custom"
REQUIRED = ("x_train", "y_train", "x_val", "y_val")
OPTIONAL = ("num_classes", "mean", "std", "flip", "pad")


def check_loader(cfg) -> None:
    """Check a loader's data-set config before anything runs: the function imports, is callable
    and takes ``options`` (and ``root``) as keyword arguments. Raises ArchScaleError on one line."""
    if cfg.loader is None:
        raise ArchScaleError("dataset.loader", f"{CUSTOM!r} is the name of a loader's data set: give loader: "
                                               f"'package.module:function'")
    if cfg.name != CUSTOM:
        raise ArchScaleError("dataset.name", f"a loader's data set has no built-in name ({cfg.name!r}); name it "
                                             f"with label: instead")
    if not isinstance(cfg.options, dict):
        raise ArchScaleError("dataset.options", f"expected a mapping of keyword arguments, got {cfg.options!r}")
    fn = import_object(cfg.loader, "dataset.loader", "function")
    if not callable(fn):
        raise ArchScaleError("dataset.loader", f"{cfg.loader!r} is not a function")
    try:
        signature = inspect.signature(fn)
    except ValueError:  # a builtin without a signature: let the call tell
        return
    try:
        signature.bind(**_kwargs(cfg))
    except TypeError as e:
        raise ArchScaleError("dataset.options", f"{cfg.loader} does not take these arguments ({e})") from None
    for key, value in cfg.options.items():
        _check_option(cfg.loader, key, value, signature.parameters.get(key))


def _check_option(loader: str, key: str, value, param) -> None:
    """An option whose parameter defaults to a number or a switch must be one (``n=abc`` for
    ``def load(n=600)`` is refused here, not deep inside the loader)."""
    default = getattr(param, "default", inspect.Parameter.empty)
    kind = type(default)
    if kind not in (bool, int, float):
        return
    fits = {bool: lambda v: isinstance(v, bool),
            int: lambda v: isinstance(v, int) and not isinstance(v, bool),
            float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)}[kind]
    if not fits(value):
        raise ArchScaleError(f"dataset.options.{key}", f"{value!r} is not a{'n' if kind is int else ''} "
                                                       f"{kind.__name__}, as {loader} takes it ({key}={default!r} "
                                                       f"by default); give e.g. {key}={default!r}")


#: The last loader call of this process: (its config, what it returned). A sweep's driver asks for
#: the training-set size when it plans and for the data when it shares them: the loader runs once.
_LAST_CALL: list = [None, None]
#: (config, the folder its loader returned or None): kept when the result is forgotten.
_LAST_FOLDER: list = [None, None]


def call_loader(cfg):
    """What the loader returns: a mapping of in-memory data or a folder (see the module docstring).
    The same config's second call in a row returns the first call's result (the loader gives the
    same data each time)."""
    if _LAST_CALL[0] == cfg:
        return dict(_LAST_CALL[1]) if isinstance(_LAST_CALL[1], dict) else _LAST_CALL[1]
    result = _call(cfg)
    _LAST_CALL[:] = [cfg, result]
    _LAST_FOLDER[:] = [cfg, result if isinstance(result, Path) else None]
    return dict(result) if isinstance(result, dict) else result


def forget_call() -> None:
    """Drop the last loader call's result (once the data set it gave is built and shared); what it
    was, a folder or in-memory data, is kept (``loader_folder``)."""
    _LAST_CALL[:] = [None, None]


def loader_folder(cfg) -> Path | None:
    """The folder ``cfg``'s loader returns, or None when it returns in-memory data: known from its
    last call when that was this config's (even after ``forget_call``), else by calling it."""
    if _LAST_FOLDER[0] == cfg:
        return _LAST_FOLDER[1]
    data = call_loader(cfg)
    return data if isinstance(data, Path) else None


def _call(cfg):
    fn = import_object(cfg.loader, "dataset.loader", "function")
    result = fn(**_kwargs(cfg))
    if isinstance(result, (str, os.PathLike)):
        return Path(result)
    if not hasattr(result, "keys"):
        raise ArchScaleError("dataset.loader", f"{cfg.loader} returned a {type(result).__name__}; return a mapping "
                                               f"with {', '.join(REQUIRED)} or an ImageNet-layout folder")
    missing = [k for k in REQUIRED if k not in result]
    if missing:
        raise ArchScaleError("dataset.loader", f"{cfg.loader} returned no {', '.join(missing)} (a loader returns "
                                               f"{', '.join(REQUIRED)}, optionally {', '.join(OPTIONAL)})")
    unknown = sorted(set(result) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise ArchScaleError("dataset.loader", f"{cfg.loader} returned unknown keys {', '.join(unknown)} (known: "
                                               f"{', '.join(REQUIRED + OPTIONAL)})")
    return dict(result)


def checked_arrays(data: dict, loader: str) -> tuple:
    """(x_train, y_train, x_val, y_val, num_classes) of a loader's in-memory data, checked: uint8
    N x C x H x W images, one integer label per image in 0..num_classes-1 (num_classes: given, or
    the largest label + 1). ArchScaleError("dataset.loader") on one line otherwise."""
    x_train, x_val = (_images(data[k], k, loader) for k in ("x_train", "x_val"))
    y_train, y_val = (_labels(data[k], k, loader) for k in ("y_train", "y_val"))
    for x, y, split in ((x_train, y_train, "train"), (x_val, y_val, "val")):
        if len(x) != len(y) or len(x) == 0:
            raise ArchScaleError("dataset.loader", f"{loader}: x_{split} holds {len(x)} images and y_{split} "
                                                   f"{len(y)} labels; give one label per image, at least one")
    num_classes = data.get("num_classes")
    num_classes = int(max(y_train.max(), y_val.max())) + 1 if num_classes is None else int(num_classes)
    if min(y_train.min(), y_val.min()) < 0 or max(y_train.max(), y_val.max()) >= num_classes:
        raise ArchScaleError("dataset.loader", f"{loader}: labels must lie in 0..{num_classes - 1} "
                                               f"(num_classes {num_classes})")
    return x_train, y_train, x_val, y_val, num_classes


def _kwargs(cfg) -> dict:
    return {**cfg.options, **({"root": cfg.root} if cfg.root else {})}


def _images(value, key: str, loader: str):
    """uint8 images as an N x C x H x W tensor (a grey N x H x W gains its channel axis)."""
    import torch

    x = torch.as_tensor(value)
    if x.dtype != torch.uint8:
        raise ArchScaleError("dataset.loader", f"{loader}: {key} is {x.dtype}; give uint8 pixels (0-255)")
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ArchScaleError("dataset.loader", f"{loader}: {key} has shape {tuple(x.shape)}; expected N x C x H x W")
    return x.contiguous()


def _labels(value, key: str, loader: str):
    """Integer labels as a 1-D int64 tensor."""
    import torch

    y = torch.as_tensor(value)
    if y.dim() != 1 or y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ArchScaleError("dataset.loader", f"{loader}: {key} must be a 1-D array of integer labels, got "
                                               f"{y.dtype} of shape {tuple(y.shape)}")
    return y.long()
