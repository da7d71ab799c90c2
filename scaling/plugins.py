"""Code a user plugs in by name, ``"package.module:name"``: data-set loaders, Tune callbacks.

The module must be importable where the code runs (the driver, and for data-set loaders every Ray
worker): an installed package, or a folder on PYTHONPATH.
"""
from __future__ import annotations

import importlib
import re

from scaling.errors import ArchScaleError

_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")


def is_object_path(text) -> bool:
    """Whether ``text`` has the form ``package.module:name``."""
    return isinstance(text, str) and bool(_PATH.match(text))


def import_object(path: str, field: str, what: str = "object"):
    """The object that ``"package.module:name"`` names (``name`` may be dotted: ``mod:Class.attr``).

    Raises ArchScaleError(field) on one line when the text is malformed, the module cannot be
    imported, or it has no such name.
    """
    if not is_object_path(path):
        raise ArchScaleError(field, f"expected 'package.module:name' naming a {what}, got {path!r}")
    module_name, name = path.split(":")
    try:
        obj = importlib.import_module(module_name)
    except ImportError as e:
        raise ArchScaleError(field, f"cannot import {module_name!r} for {path!r} ({e}); install it or put its "
                                    f"folder on PYTHONPATH") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ArchScaleError(field, f"{module_name!r} has no {name!r} ({path!r} should name a {what})")
        obj = getattr(obj, part)
    return obj
