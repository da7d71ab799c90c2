"""Space specs: the YAML (or dict) that says which ArchSpecs a space holds, validated into a Space.

A space spec is YAML (read with ``scaling.yamlio.read_mapping``) or a dict, validated before anything
runs::

    name: my_space                  # optional
    base: resnet50                  # a preset name, or ArchSpec fields (``preset:`` allowed)
    kind: grid                      # grid (default) | random | scaling
    axes:                           # any ArchSpec field; grid: lists; random: lists or ranges
      depth: [26, 50, [3, 4, 6, 3]]
      width_multiplier: [0.5, 1.0, 1.5]
      resolution: {low: 128, high: 320, dist: uniform, step: 32}       # random kind only
    paired:                         # axes that move together (zipped), crossed with the rest
      - {cardinality: [1, 2, 4], bottleneck_width: [64, 40, 24]}
    match:                          # optional: solve one field per config to an equal-complexity target
      by: flops                     # flops (default) | params | block (ResNeXt's rule: the first-stage
                                    # block's params, see search_spaces.matching)
      solve: bottleneck_width
      target: resnet50              # a number in by's unit ("4.1G"), a preset, or ArchSpec fields; or:
      # target_from: {cardinality: 1, bottleneck_width: 64}   # each config's own template
    constraints: {min_params: 1M, max_params: 100M, min_flops: 0.5G, max_flops: 20G}
    samples: 50                     # random kind
    seed: 0                         # random kind
    # scaling kind: grow the base along strategies (see search_spaces.strategies)
    strategies: [depth, width, resolution, cardinality, compound, resnet_rs]
    multipliers: [2, 4, 8, 16]
    tolerance: 0.1
    # resnet_rs takes the training length from the regimes it is expanded for (a sweep's); these
    # replace its rules: a pinned length, or the width share and resolution exponent themselves
    # regime_epochs: 350
    # resnet_rs: {width_share: 0.5, resolution_exponent: 0.2}
    dataset_size: cifar10           # training images for pricing: a number or a data set's name

Random ranges: ``{low, high, dist}`` with dist uniform | log_uniform | pow2 (powers of two in
[low, high], as pycls samples design spaces) and an optional ``step`` to quantise; a plain list is
sampled uniformly. Every check raises ``ArchScaleError`` naming the field and the fix.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Mapping

from scaling import ArchScaleError, ArchSpec, get_preset, spec_from_dict
from scaling.conventions import DATASET_TRAIN_SIZES
from scaling.errors import did_you_mean
from scaling.validate import check_choice, check_keys, number, whole
from scaling.yamlio import read_mapping

from .matching import MATCH_BY, SOLVABLE, parse_count, resolve_target
from .space import SPEC_FIELDS, Space
from .strategies import STRATEGIES

#: The keys of a space spec: the fields of Space (``raw`` is the spec itself).
KEYS = tuple(f.name for f in dataclasses.fields(Space) if f.name != "raw")
DEFAULTS = {f.name: f.default for f in dataclasses.fields(Space) if f.default is not dataclasses.MISSING}
KINDS = ("grid", "random", "scaling")
DISTS = ("uniform", "log_uniform", "pow2")
RANGE_KEYS = ("low", "high", "dist", "step")
MATCH_KEYS = ("by", "solve", "target", "target_from", "tolerance")
CONSTRAINTS = ("min_params", "max_params", "min_flops", "max_flops")
SCALING_KEYS = ("strategies", "multipliers", "regime_epochs", "resnet_rs")
RESNET_RS_KEYS = ("width_share", "resolution_exponent")
PRESET_DIR = Path(__file__).with_name("presets")
TOLERANCE_HINT = "0.1 = within 10 %"


def load_space(source: str | Path | dict) -> Space:
    """A Space from a preset name, a YAML file path, or a dict; validated (ArchScaleError if not)."""
    if isinstance(source, dict):
        return parse_space(source)
    text = str(source)
    preset = PRESET_DIR / f"{text}.yaml"
    if preset.is_file():
        return parse_space(_read_yaml(preset), default_name=text)
    path = Path(text)
    if path.is_file():
        return parse_space(_read_yaml(path), default_name=path.stem)
    if path.suffix in (".yaml", ".yml", ".json") or "/" in text:
        raise ArchScaleError("space", f"no such file: {text}")
    names = space_presets()
    raise ArchScaleError("space", f"{text!r} is neither a space preset nor a file{did_you_mean(text, names)}; "
                                  f"presets: {', '.join(names)}")


def space_presets() -> list[str]:
    """The names of the bundled space specs (``search_spaces/presets/*.yaml``), sorted."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    return read_mapping(path, "space", "at least 'base' and 'axes'")


def parse_space(data: Mapping, default_name: str = "space") -> Space:
    """Validate a space-spec mapping (see the module docstring) into a Space."""
    data = dict(data)
    check_keys(data, KEYS, what="space-spec key")
    kind = check_choice(data.get("kind", DEFAULTS["kind"]), KINDS, "kind", "kind")
    base = _parse_base(data.get("base", {}))
    axes = _parse_axes(data.get("axes") or {}, kind)
    paired = _parse_paired(data.get("paired") or [], set(axes))
    if kind != "scaling" and not axes and not paired and not data.get("match"):
        raise ArchScaleError("axes", "the space varies nothing; add axes such as depth: [50, 101]")
    return Space(
        name=str(data.get("name", default_name)), base=base, kind=kind, axes=axes, paired=tuple(paired),
        match=_parse_match(data.get("match")), constraints=_parse_constraints(data.get("constraints") or {}),
        samples=_parse_samples(data, kind), seed=whole(data.get("seed", DEFAULTS["seed"]), "seed"),
        description=str(data.get("description", "")), dataset_size=_parse_dataset_size(data.get("dataset_size")),
        raw=data, **_parse_scaling(data, kind))


def _parse_base(base) -> ArchSpec:
    if isinstance(base, str):
        return get_preset(base)
    if isinstance(base, dict):
        return spec_from_dict(base)
    raise ArchScaleError("base", f"expected a preset name or ArchSpec fields, got {base!r}")


def _values(values: list) -> list:
    """Axis values as given, per-stage lists (depth: [3, 4, 6, 3]) as tuples."""
    return [tuple(v) if isinstance(v, list) else v for v in values]


def _parse_axes(axes, kind: str) -> dict:
    if not isinstance(axes, dict):
        raise ArchScaleError("axes", "expected a mapping of field: [values]")
    check_keys(axes, SPEC_FIELDS, "axes", "ArchSpec field")
    out = {}
    for name, values in axes.items():
        if isinstance(values, dict):
            if kind != "random":
                raise ArchScaleError(f"axes.{name}", "ranges ({low, high, dist}) need kind: random; a grid takes "
                                                     "a list of values")
            out[name] = _parse_range(name, values)
        elif isinstance(values, list) and values:
            out[name] = _values(values)
        else:
            raise ArchScaleError(f"axes.{name}", f"expected a non-empty list of values, got {values!r}")
    return out


def _parse_range(name: str, r: dict) -> dict:
    """``{low, high, dist, step, integer}`` of a random axis; ``integer`` when the field is a whole number."""
    where = f"axes.{name}"
    check_keys(r, RANGE_KEYS, where, "range key")
    lo, hi = (number(r.get(k), f"{where}.{k}", hint="a range needs numeric low and high") for k in ("low", "high"))
    dist = check_choice(r.get("dist", "uniform"), DISTS, f"{where}.dist", "dist")
    if not 0 < lo <= hi if dist != "uniform" else not lo <= hi:
        raise ArchScaleError(where, f"need low <= high (and low > 0 for {dist}), got {lo}..{hi}")
    if dist == "pow2" and 2 ** math.ceil(math.log2(lo)) > hi:
        raise ArchScaleError(where, f"no power of two lies in {lo:g}..{hi:g}; widen the range or use dist: uniform")
    step = r.get("step")  # kept as given: an int step keeps sampled values whole
    number(step, f"{where}.step", low=0, low_open=True, optional=True, hint="the quantisation step")
    default = getattr(ArchSpec(), name)
    integer = isinstance(default, int) and not isinstance(default, bool)
    return {"low": lo, "high": hi, "dist": dist, "step": step, "integer": integer}


def _parse_paired(paired, axis_names: set) -> list[dict]:
    if isinstance(paired, dict):
        paired = [paired]
    groups = []
    for i, group in enumerate(paired):
        where = f"paired[{i}]"
        if not isinstance(group, dict) or len(group) < 2:
            raise ArchScaleError(where, "each paired group maps two or more fields to equal-length lists")
        check_keys(group, SPEC_FIELDS, where, "ArchSpec field")
        for name, values in group.items():
            if name in axis_names:
                raise ArchScaleError(f"{where}.{name}", "is also a separate axis; list it in one place")
            if not isinstance(values, list) or not values:
                raise ArchScaleError(f"{where}.{name}", "expected a non-empty list")
        lengths = sorted({len(values) for values in group.values()})
        if len(lengths) > 1:
            raise ArchScaleError(where, f"lists of different lengths {lengths}; paired axes move together, so "
                                        f"give each the same number of values")
        groups.append({k: _values(vals) for k, vals in group.items()})
    return groups


def _parse_match(match) -> dict | None:
    """The match block with ``target`` resolved to FLOPs and a ``label``; None when there is none."""
    if match is None:
        return None
    if not isinstance(match, dict) or "solve" not in match:
        raise ArchScaleError("match", "expected {solve: FIELD, target: ...} or {solve: FIELD, target_from: {...}}")
    check_keys(match, MATCH_KEYS, "match", "match key")
    if "tolerance" in match:
        number(match["tolerance"], "match.tolerance", low=0, low_open=True, hint=TOLERANCE_HINT)
    check_choice(match["solve"], SOLVABLE, "match.solve", "field to solve")
    by = check_choice(match.get("by", "flops"), MATCH_BY, "match.by", "match rule")
    if ("target" in match) == ("target_from" in match):
        raise ArchScaleError("match", "give exactly one of target (absolute) or target_from (per-config template)")
    out = {**match, "by": by}
    if "target" in match:
        out["target"], out["label"] = resolve_target(match["target"], by)
    elif isinstance(match["target_from"], dict):
        check_keys(match["target_from"], SPEC_FIELDS, "match.target_from", "ArchSpec field")
    else:
        raise ArchScaleError("match.target_from", "expected ArchSpec fields, e.g. {cardinality: 1}")
    return out


def _parse_constraints(c) -> dict:
    """Bounds on params and FLOPs, as numbers ('25M' and '4.1G' allowed)."""
    if not isinstance(c, dict):
        raise ArchScaleError("constraints", f"expected a mapping of {', '.join(CONSTRAINTS)}")
    check_keys(c, CONSTRAINTS, "constraints", "constraint")
    return {key: parse_count(value, f"constraints.{key}") for key, value in c.items()}


def _parse_samples(data: dict, kind: str) -> int:
    if kind != "random":
        if "samples" in data:
            raise ArchScaleError("samples", "only applies to kind: random")
        return DEFAULTS["samples"]
    if "samples" not in data:
        raise ArchScaleError("samples", "kind: random needs samples: N (a whole number >= 1)")
    return whole(data["samples"], "samples", low=1)


def _parse_dataset_size(value) -> int | None:
    """Training images for pricing: a whole number, or a data set known by name (its published train
    split, from ``scaling.conventions.DATASET_TRAIN_SIZES``); None when the spec does not say."""
    if isinstance(value, str):
        return DATASET_TRAIN_SIZES[check_choice(value, DATASET_TRAIN_SIZES, "dataset_size", "data set")]
    return whole(value, "dataset_size", low=1, optional=True)


def _parse_scaling(data: dict, kind: str) -> dict:
    """The scaling kind's strategies, multipliers, regime_epochs and tolerance (Space's defaults if absent)."""
    if kind != "scaling":
        for key in SCALING_KEYS:
            if key in data:
                raise ArchScaleError(key, "only applies to kind: scaling")
        return {}
    strategies = data.get("strategies", list(DEFAULTS["strategies"]))
    if not isinstance(strategies, list) or not strategies:
        raise ArchScaleError("strategies", f"expected a list from {', '.join(STRATEGIES)}")
    for s in strategies:
        check_choice(s, STRATEGIES, "strategies", "strategy")
    multipliers = data.get("multipliers", list(DEFAULTS["multipliers"]))
    if not isinstance(multipliers, list) or not multipliers:
        raise ArchScaleError("multipliers", f"expected a list of positive FLOP multipliers, got {multipliers!r}")
    return {"strategies": tuple(strategies),
            "multipliers": tuple(number(m, "multipliers", low=0, low_open=True, hint="a FLOP multiplier such as 2")
                                 for m in multipliers),
            "regime_epochs": whole(data.get("regime_epochs"), "regime_epochs", low=1, optional=True),
            "resnet_rs": _parse_resnet_rs(data.get("resnet_rs") or {}),
            "tolerance": number(data.get("tolerance", DEFAULTS["tolerance"]), "tolerance", low=0, low_open=True,
                                hint=TOLERANCE_HINT)}


def _parse_resnet_rs(options) -> dict:
    """The resnet_rs strategy's rule replacements: width_share in [0, 1], resolution_exponent >= 0."""
    if not isinstance(options, dict):
        raise ArchScaleError("resnet_rs", f"expected a mapping of {', '.join(RESNET_RS_KEYS)}")
    check_keys(options, RESNET_RS_KEYS, "resnet_rs", "resnet_rs option")
    out = {}
    if "width_share" in options:
        out["width_share"] = number(options["width_share"], "resnet_rs.width_share", low=0, high=1,
                                    hint="0 = depth only, 1 = width first")
    if "resolution_exponent" in options:
        out["resolution_exponent"] = number(options["resolution_exponent"], "resnet_rs.resolution_exponent",
                                            low=0, hint="resolution grows as multiplier^exponent")
    return out
