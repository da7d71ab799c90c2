"""Command-line flags for every ArchSpec field (``--cardinality 32 --depth 3,4,6,3 --preact``).

The flags come from ``dataclasses.fields(ArchSpec)``: a new ArchSpec field is a new flag with no
other edit. Each flag's help is the field's ``#:`` documentation in scaling/spec.py, and a boolean
field is an on/off pair (``--preact`` / ``--no-preact``). Imports no torch (presets and spec files
are read only when a command runs).
"""
from __future__ import annotations

import argparse
import dataclasses

import yaml

from scaling.errors import ArchScaleError
from scaling.fielddocs import field_docs
from scaling.spec import ArchSpec
from scaling.yamlio import load_yaml


def spec_fields() -> list[str]:
    """ArchSpec's field names, in declaration order: one flag each."""
    return [f.name for f in dataclasses.fields(ArchSpec)]


def parse_value(text: str):
    """'50' -> 50, '1.5' -> 1.5, 'true' -> True, '3,4,6,3' -> [3, 4, 6, 3], 'deep' -> 'deep'."""
    if "," in text:
        return [parse_value(t.strip()) for t in text.split(",") if t.strip()]
    try:
        return load_yaml(text)
    except yaml.YAMLError:
        return text


def parse_pairs(items: list[str], field: str, form: str = "FIELD=VALUE") -> list[tuple[str, object]]:
    """[(name, parse_value(value)), ...] of repeatable NAME=VALUE flags; ArchScaleError(field)
    saying ``expected FORM`` for an item without '='."""
    pairs = []
    for item in items:
        if "=" not in item:
            raise ArchScaleError(field, f"expected {form}, got {item!r}")
        name, value = item.split("=", 1)
        pairs.append((name.strip(), parse_value(value)))
    return pairs


def add_spec_flags(parser: argparse.ArgumentParser) -> None:
    """Add ``--<field>`` for every ArchSpec field, all defaulting to 'not given'; boolean fields
    get ``--<field>`` / ``--no-<field>``. The help is the field's documentation and its default."""
    group = parser.add_argument_group("architecture fields (override the preset/spec; see scaling/spec.py)")
    docs = field_docs(ArchSpec)
    for f in dataclasses.fields(ArchSpec):
        flag, default = "--" + f.name.replace("_", "-"), _shown(f.default)
        text = docs.get(f.name, "").replace("%", "%%")
        if isinstance(f.default, bool):
            group.add_argument(flag, dest="spec_" + f.name, action=argparse.BooleanOptionalAction, default=None,
                               help=f"{text} (ArchSpec default: {'on' if f.default else 'off'})")
        else:
            group.add_argument(flag, dest="spec_" + f.name, metavar=f.name.upper(), type=parse_value, default=None,
                               help=f"{text} (ArchSpec default: {default})")


def spec_overrides(args: argparse.Namespace) -> dict:
    """The ArchSpec fields given as flags."""
    return {n: getattr(args, "spec_" + n) for n in spec_fields() if getattr(args, "spec_" + n, None) is not None}


def specs_from_args(presets: list[str], spec_files: list[str], overrides: dict) -> list[tuple[str, ArchSpec]]:
    """(name, spec) for each preset and spec file, with the flag overrides applied.

    With neither presets nor files, the flags alone describe one spec on ArchSpec's defaults.
    """
    from scaling.presets import get_preset, load_spec

    out: list[tuple[str, ArchSpec]] = []
    tag = ",".join(f"{k}={_fmt(v)}" for k, v in overrides.items())
    for name in presets:
        spec = get_preset(name)
        if overrides:
            spec = spec.replace(**overrides)
        out.append((f"{name}[{tag}]" if tag else name, spec))
    for path in spec_files:
        spec = load_spec(path)
        if overrides:
            spec = spec.replace(**overrides)
        out.append((spec.slug(), spec))
    if not presets and not spec_files:
        if not overrides:
            raise ArchScaleError("preset", "name a preset (e.g. resnet50), --spec FILE, or architecture "
                                           "flags such as --depth 50 --cardinality 32")
        spec = ArchSpec.from_dict(overrides)
        out.append((spec.slug(), spec))
    return out


def _shown(v) -> str:
    """A default as it is typed on the command line: (3, 4, 6, 3) -> 3,4,6,3."""
    return ",".join(map(str, v)) if isinstance(v, tuple) else str(v)


def _fmt(v) -> str:
    return "x".join(map(str, v)) if isinstance(v, (list, tuple)) else str(v)
