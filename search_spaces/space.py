"""Space specs: a base ArchSpec plus the axes to vary, expanded into named configs.

A space spec is YAML (read with ``scaling.yamlio.load_yaml``) or a dict, validated before anything runs::

    name: my_space                  # optional
    base: resnet50                  # a preset name, or ArchSpec fields (``preset:`` allowed)
    kind: grid                      # grid (default) | random | scaling
    axes:                           # any ArchSpec field; grid: lists; random: lists or ranges
      depth: [26, 50, [3, 4, 6, 3]]
      width_multiplier: [0.5, 1.0, 1.5]
      resolution: {low: 128, high: 320, dist: uniform, step: 32}       # random kind only
    paired:                         # axes that move together (zipped), crossed with the rest
      - {cardinality: [1, 2, 4], bottleneck_width: [64, 40, 24]}
    match:                          # optional: solve one field per config to an equal-FLOP target
      solve: bottleneck_width
      target: resnet50              # FLOPs ("4.1G"), a preset, or ArchSpec fields; or instead:
      # target_from: {cardinality: 1, bottleneck_width: 64}   # each config's own template
    constraints: {min_params: 1M, max_params: 100M, min_flops: 0.5G, max_flops: 20G}
    samples: 50                     # random kind
    seed: 0                         # random kind
    # scaling kind: grow the base along strategies (see search_spaces.strategies)
    strategies: [depth, width, resolution, cardinality, compound, resnet_rs]
    multipliers: [2, 4, 8, 16]
    regime_epochs: 350              # for the resnet_rs strategy
    tolerance: 0.1

Random ranges: ``{low, high, dist}`` with dist uniform | log_uniform | pow2 (powers of two in
[low, high], as pycls samples design spaces) and an optional ``step`` to quantise; a plain list is
sampled uniformly.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits, get_preset, spec_from_dict
from scaling.errors import did_you_mean
from scaling.yamlio import read_mapping

from .matching import match_flops, parse_count, resolve_target
from .strategies import DEFAULT_TOLERANCE, STRATEGIES, scale

#: The fields a space can vary: every ArchSpec field.
SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ArchSpec))
KINDS = ("grid", "random", "scaling")
DISTS = ("uniform", "log_uniform", "pow2")
KEYS = ("name", "description", "base", "kind", "axes", "paired", "match", "constraints", "samples", "seed",
        "strategies", "multipliers", "regime_epochs", "tolerance", "dataset_size")
CONSTRAINTS = ("min_params", "max_params", "min_flops", "max_flops")
PRESET_DIR = Path(__file__).with_name("presets")
# Short tags for varied fields that the slug (d.., w.., c..x.., r..) does not already show.
TAGS = {"se_ratio": "se", "stem": "stem", "stem_pool": "pool", "downsample": "ds", "radix": "rx", "avd": "avd",
        "preact": "pre", "stochastic_depth": "sd", "dropout": "do", "widen_factor": "wf", "stem_width": "sw",
        "block": "", "widths": "wd", "num_classes": "k", "in_channels": "in", "zero_init_residual": "zi",
        "block_form": "", "shortcut": "sc", "sk_paths": "sk", "sk_reduction": "skr", "sk_min_width": "skl",
        "sk_dilated": "skd"}
IN_SLUG = ("depth", "width_multiplier", "cardinality", "bottleneck_width", "resolution")
#: The fields the scaling kind's strategies change.
SCALED_FIELDS = ["depth", "width_multiplier", "resolution", "cardinality"]


@dataclass(frozen=True)
class Config:
    """One architecture of a space: a stable readable name, its spec, and tags (group, strategy...)."""

    name: str
    spec: ArchSpec
    tags: dict = field(default_factory=dict, hash=False, compare=False)


@dataclass
class Expansion:
    """The configs of a space and what was dropped on the way."""

    space: "Space"
    configs: list[Config]
    #: field -> (count, one example message) of configs dropped as invalid or outside constraints.
    dropped: dict[str, tuple[int, str]]
    duplicates: int = 0

    @property
    def n_dropped(self) -> int:
        return sum(n for n, _ in self.dropped.values())

    def summary(self) -> str:
        """One line: how many configs, how many dropped and why, duplicates removed."""
        parts = [f"{len(self.configs)} configs"]
        if self.space.kind == "random" and len(self.configs) < self.space.samples:
            parts[0] += (f" (of {self.space.samples} samples asked: the space ran out of distinct valid "
                         f"configs; widen the ranges or ask for fewer)")
        if self.dropped:
            why = "; ".join(f"{n} by {k} (e.g. {msg})" for k, (n, msg) in self.dropped.items())
            parts.append(f"{self.n_dropped} dropped: {why}")
        if self.duplicates:
            parts.append(f"{self.duplicates} duplicates removed")
        return ", ".join(parts)


@dataclass(frozen=True)
class Space:
    """A validated space spec (see the module docstring); ``expand()`` makes its configs."""

    name: str
    base: ArchSpec
    kind: str = "grid"
    axes: dict = field(default_factory=dict)
    paired: tuple = ()
    match: dict | None = None
    constraints: dict = field(default_factory=dict)
    samples: int = 0
    seed: int = 0
    strategies: tuple = STRATEGIES
    multipliers: tuple = (2.0, 4.0, 8.0, 16.0)
    regime_epochs: int = 350
    tolerance: float = DEFAULT_TOLERANCE
    description: str = ""
    dataset_size: int | None = None
    raw: dict = field(default_factory=dict, compare=False)

    def varied_fields(self) -> list[str]:
        """The ArchSpec fields the space varies, in order: axes, paired groups, the solved field, scaled fields."""
        names = list(self.axes)
        for group in self.paired:
            names += list(group)
        if self.match:
            names.append(self.match["solve"])
        if self.kind == "scaling":
            names += SCALED_FIELDS
        return list(dict.fromkeys(names))

    def expand(self) -> Expansion:
        """Every config of the space, validated, matched, constrained, deduplicated and named.

        Points that make no valid network are dropped and counted by the field at fault (with the
        first message as an example); ArchScaleError("space") when none is left.
        """
        dropped: dict[str, tuple[int, str]] = {}
        kept: list[tuple[ArchSpec, dict]] = []
        seen: set[ArchSpec] = set()
        duplicates = 0
        for point in self._points():
            try:
                spec, tags = self._realise(point)
                if spec in seen:
                    duplicates += 1
                    continue
                seen.add(spec)
                self._check_constraints(spec)
            except ArchScaleError as e:
                count, example = dropped.get(e.field, (0, e.message))
                dropped[e.field] = (count + 1, example)
                continue
            kept.append((spec, tags))
            if self.kind == "random" and len(kept) == self.samples:
                break
        result = Expansion(self, self._name(kept), dropped, duplicates)
        if not result.configs:
            raise ArchScaleError("space", f"space {self.name!r} is empty after validation and constraints "
                                          f"({result.summary()}); loosen the constraints or change the axes")
        return result

    # ----- expansion steps ---------------------------------------------------------------
    def _points(self):
        """The raw points of the space, in order: (strategy, FLOP multiplier) pairs for the scaling
        kind (the base first), field changes for the grid and random kinds."""
        if self.kind == "scaling":
            yield "base", 1.0
            yield from itertools.product(self.strategies, self.multipliers)
        elif self.kind == "grid":
            yield from self._grid_points()
        else:
            yield from self._random_points()

    def _grid_points(self):
        """Field changes of the product of the axes and the paired groups (each group zipped)."""
        axes = [[{name: v} for v in values] for name, values in self.axes.items()]
        groups = [[dict(zip(group, combo)) for combo in zip(*group.values())] for group in self.paired]
        for combo in itertools.product(*axes, *groups):
            changes = {}
            for part in combo:
                changes.update(part)
            yield changes

    def _random_points(self):
        """Field changes drawn with the space's seed; enough draws to find ``samples`` distinct valid ones."""
        rng = random.Random(self.seed)
        for _ in range(max(100, self.samples * 50)):
            changes = {name: _sample(rng, axis) for name, axis in self.axes.items()}
            for group in self.paired:
                i = rng.randrange(len(next(iter(group.values()))))
                changes.update({name: values[i] for name, values in group.items()})
            yield changes

    def _realise(self, point) -> tuple[ArchSpec, dict]:
        """The spec and tags of one point, matched when the space asks; ArchScaleError when invalid."""
        if self.kind == "scaling":
            spec, tags = self._scaled(*point)
        else:
            spec, tags = self.base.replace(**point), {}
        check_fits(spec)
        if self.match:
            spec, tags = self._solve(spec, tags)
            check_fits(spec)
        return spec, tags

    def _scaled(self, strategy: str, multiplier: float) -> tuple[ArchSpec, dict]:
        """The base grown by ``strategy`` to ``multiplier`` x its FLOPs, tagged with how close it came."""
        if strategy == "base":
            return self.base.replace(), {"strategy": "base", "flop_multiplier": 1.0}
        s = scale(self.base, strategy, multiplier, tolerance=self.tolerance, regime_epochs=self.regime_epochs)
        base = self.base.to_dict()
        spec = self.base.replace(**{k: v for k, v in s.spec.to_dict().items() if v != base[k]})
        return spec, {"strategy": strategy, "flop_multiplier": float(multiplier), "target_flops": s.target,
                      "flop_ratio": round(s.ratio, 4), "within_tolerance": s.within_tolerance}

    def _solve(self, spec: ArchSpec, tags: dict) -> tuple[ArchSpec, dict]:
        m = self.match
        if "target_from" in m:
            template = spec.replace(**m["target_from"])
            target, label = template, template.slug()
        else:
            target, label = m["target"], m["label"]
        result = match_flops(spec, target, m["solve"], tolerance=m.get("tolerance", 0.15))
        return result.spec, {**tags, "group": label, "flop_ratio": round(result.ratio, 4)}

    def _check_constraints(self, spec: ArchSpec) -> None:
        if not self.constraints:
            return
        cx = analytic_counts(spec)
        for key, bound in self.constraints.items():
            value = cx.params if key.endswith("params") else cx.flops
            if (key.startswith("min") and value < bound) or (key.startswith("max") and value > bound):
                what = "params" if key.endswith("params") else "FLOPs"
                raise ArchScaleError(f"constraints.{key}",
                                     f"{what} {value:.3g} {'<' if key.startswith('min') else '>'} {bound:.3g}")

    def _name(self, kept: list[tuple[ArchSpec, dict]]) -> list[Config]:
        extra = [f for f in self.varied_fields() if f not in IN_SLUG]
        names: Counter = Counter()
        configs = []
        for spec, tags in kept:
            name = config_name(spec, extra)
            names[name] += 1
            if names[name] > 1:  # same visible axes, different hidden fields: add a stable hash
                name = f"{name}-{hashlib.sha1(spec.to_json().encode()).hexdigest()[:6]}"
            configs.append(Config(name, spec, dict(tags)))
        return configs


def config_name(spec: ArchSpec, extra_fields=()) -> str:
    """``d101-w1.5-c32x4-r224`` plus a tag per other varied field; safe as a directory name."""
    parts = [spec.slug()]
    for f in extra_fields:
        value = getattr(spec, f)
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, tuple):
            value = "_".join(map(str, value))
        elif isinstance(value, float):
            value = f"{value:g}"
        parts.append(f"{TAGS.get(f, f)}{value}")
    return re.sub(r"[^A-Za-z0-9._-]", "", "-".join(parts))


def _sample(rng: random.Random, axis):
    if isinstance(axis, list):
        return axis[rng.randrange(len(axis))]
    lo, hi, dist, step = axis["low"], axis["high"], axis["dist"], axis.get("step")
    if dist == "pow2":
        choices = [2 ** k for k in range(math.ceil(math.log2(lo)), math.floor(math.log2(hi)) + 1)]
        return choices[rng.randrange(len(choices))]
    x = math.exp(rng.uniform(math.log(lo), math.log(hi))) if dist == "log_uniform" else rng.uniform(lo, hi)
    if step:
        x = min(max(round(x / step) * step, lo), hi)
    if axis.get("integer"):
        return int(round(x))
    return round(x, 6)


# ----- parsing ------------------------------------------------------------------------------
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
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def _read_yaml(path: Path) -> dict:
    return read_mapping(path, "space", "at least 'base' and 'axes'")


def parse_space(data: dict, default_name: str = "space") -> Space:
    """Validate a space-spec mapping (see the module docstring) into a Space."""
    data = dict(data)
    for key in data:
        if key not in KEYS:
            raise ArchScaleError(str(key), f"unknown space-spec key{did_you_mean(key, KEYS)}; known keys: "
                                           f"{', '.join(KEYS)}")
    kind = data.get("kind", "grid")
    if kind not in KINDS:
        raise ArchScaleError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    base = _parse_base(data.get("base", {}))
    axes = _parse_axes(data.get("axes") or {}, kind)
    paired = _parse_paired(data.get("paired") or [], set(axes))
    if kind != "scaling" and not axes and not paired and not data.get("match"):
        raise ArchScaleError("axes", "the space varies nothing; add axes such as depth: [50, 101]")
    space = Space(
        name=str(data.get("name", default_name)), base=base, kind=kind, axes=axes, paired=tuple(paired),
        match=_parse_match(data.get("match")), constraints=_parse_constraints(data.get("constraints") or {}),
        samples=_samples(data, kind),
        seed=_whole(data, "seed", 0), description=str(data.get("description", "")),
        dataset_size=None if data.get("dataset_size") is None else _positive_int(data, "dataset_size", None),
        raw=data, **_parse_scaling(data, kind))
    return space


def _parse_base(base) -> ArchSpec:
    if isinstance(base, str):
        return get_preset(base)
    if isinstance(base, dict):
        return spec_from_dict(base)
    raise ArchScaleError("base", f"expected a preset name or ArchSpec fields, got {base!r}")


def _check_field(name: str, where: str) -> None:
    if name not in SPEC_FIELDS:
        raise ArchScaleError(f"{where}.{name}", f"unknown ArchSpec field{did_you_mean(name, SPEC_FIELDS)}; "
                                                f"axes can vary any of: {', '.join(SPEC_FIELDS)}")


def _parse_axes(axes, kind: str) -> dict:
    if not isinstance(axes, dict):
        raise ArchScaleError("axes", "expected a mapping of field: [values]")
    out = {}
    for name, values in axes.items():
        _check_field(name, "axes")
        if isinstance(values, dict):
            if kind != "random":
                raise ArchScaleError(f"axes.{name}", "ranges ({low, high, dist}) need kind: random; a grid takes "
                                                     "a list of values")
            out[name] = _parse_range(name, values)
        elif isinstance(values, list) and values:
            out[name] = [tuple(v) if isinstance(v, list) else v for v in values]
        else:
            raise ArchScaleError(f"axes.{name}", f"expected a non-empty list of values, got {values!r}")
    return out


def _parse_range(name: str, r: dict) -> dict:
    unknown = set(r) - {"low", "high", "dist", "step"}
    if unknown:
        raise ArchScaleError(f"axes.{name}", f"unknown range key {sorted(unknown)[0]!r}; use low, high, dist, step")
    try:
        lo, hi = float(r["low"]), float(r["high"])
    except (KeyError, TypeError, ValueError):
        raise ArchScaleError(f"axes.{name}", "a range needs numeric low and high") from None
    dist = r.get("dist", "uniform")
    if dist not in DISTS:
        raise ArchScaleError(f"axes.{name}", f"dist {dist!r} is not one of {', '.join(DISTS)}")
    if not 0 < lo <= hi if dist != "uniform" else not lo <= hi:
        raise ArchScaleError(f"axes.{name}", f"need low <= high (and low > 0 for {dist}), got {lo}..{hi}")
    if dist == "pow2" and 2 ** math.ceil(math.log2(lo)) > hi:
        raise ArchScaleError(f"axes.{name}", f"no power of two lies in {lo:g}..{hi:g}; widen the range or use "
                                             f"dist: uniform")
    step = r.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float)) or step <= 0):
        raise ArchScaleError(f"axes.{name}.step", f"expected a positive number, got {step!r}")
    integer = isinstance(getattr(ArchSpec(), name), int) and not isinstance(getattr(ArchSpec(), name), bool)
    return {"low": lo, "high": hi, "dist": dist, "step": step, "integer": integer}


def _parse_paired(paired, axis_names: set) -> list[dict]:
    if isinstance(paired, dict):
        paired = [paired]
    groups = []
    for i, group in enumerate(paired):
        if not isinstance(group, dict) or len(group) < 2:
            raise ArchScaleError(f"paired[{i}]", "each paired group maps two or more fields to equal-length lists")
        lengths = set()
        for name, values in group.items():
            _check_field(name, f"paired[{i}]")
            if name in axis_names:
                raise ArchScaleError(f"paired[{i}].{name}", "is also a separate axis; list it in one place")
            if not isinstance(values, list) or not values:
                raise ArchScaleError(f"paired[{i}].{name}", "expected a non-empty list")
            lengths.add(len(values))
        if len(lengths) > 1:
            raise ArchScaleError(f"paired[{i}]", f"lists of different lengths {sorted(lengths)}; paired axes move "
                                                 f"together, so give each the same number of values")
        groups.append({k: [tuple(v) if isinstance(v, list) else v for v in vals] for k, vals in group.items()})
    return groups


def _parse_match(match) -> dict | None:
    if match is None:
        return None
    if not isinstance(match, dict) or "solve" not in match:
        raise ArchScaleError("match", "expected {solve: FIELD, target: ...} or {solve: FIELD, target_from: {...}}")
    from .matching import SOLVABLE

    unknown = set(match) - {"solve", "target", "target_from", "tolerance"}
    if unknown:
        raise ArchScaleError("match", f"unknown key {sorted(unknown)[0]!r}; use solve, target, target_from, tolerance")
    if "tolerance" in match:
        _fraction(match, "tolerance", None, where="match.tolerance")
    if match["solve"] not in SOLVABLE:
        raise ArchScaleError("match.solve", f"cannot solve {match['solve']!r}{did_you_mean(match['solve'], SOLVABLE)}"
                                            f"; solvable: {', '.join(SOLVABLE)}")
    out = dict(match)
    if ("target" in match) == ("target_from" in match):
        raise ArchScaleError("match", "give exactly one of target (absolute) or target_from (per-config template)")
    if "target" in match:
        flops, label = resolve_target(match["target"])
        out["target"], out["label"] = flops, label
    else:
        if not isinstance(match["target_from"], dict):
            raise ArchScaleError("match.target_from", "expected ArchSpec fields, e.g. {cardinality: 1}")
        for name in match["target_from"]:
            _check_field(name, "match.target_from")
    return out


def _parse_constraints(c: dict) -> dict:
    if not isinstance(c, dict):
        raise ArchScaleError("constraints", f"expected a mapping of {', '.join(CONSTRAINTS)}")
    out = {}
    for key, value in c.items():
        if key not in CONSTRAINTS:
            raise ArchScaleError(f"constraints.{key}", f"unknown constraint{did_you_mean(key, CONSTRAINTS)}; "
                                                       f"known: {', '.join(CONSTRAINTS)}")
        out[key] = parse_count(value, f"constraints.{key}")
    return out


def _positive_int(data: dict, key: str, default):
    value = data.get(key, default)
    if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArchScaleError(key, f"expected a whole number >= 1, got {data.get(key)!r}")
    return value


def _whole(data: dict, key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArchScaleError(key, f"expected a whole number, got {value!r}")
    return value


def _fraction(data: dict, key: str, default, where: str | None = None) -> float:
    """A relative tolerance: a number above 0 (0.1 = within 10 %)."""
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ArchScaleError(where or key, f"expected a number above 0 (0.1 = within 10 %), got {value!r}")
    return float(value)


def _samples(data: dict, kind: str) -> int:
    if kind != "random":
        if "samples" in data:
            raise ArchScaleError("samples", "only applies to kind: random")
        return 0
    value = data.get("samples")
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ArchScaleError("samples", f"kind: random needs samples: N (a whole number >= 1), got {value!r}")
    return value


def _parse_scaling(data: dict, kind: str) -> dict:
    if kind != "scaling":
        for key in ("strategies", "multipliers", "regime_epochs"):
            if key in data:
                raise ArchScaleError(key, "only applies to kind: scaling")
        return {}
    strategies = data.get("strategies", list(STRATEGIES))
    if not isinstance(strategies, list) or not strategies:
        raise ArchScaleError("strategies", f"expected a list from {', '.join(STRATEGIES)}")
    for s in strategies:
        if s not in STRATEGIES:
            raise ArchScaleError("strategies", f"unknown strategy {s!r}{did_you_mean(s, STRATEGIES)}; "
                                               f"known: {', '.join(STRATEGIES)}")
    multipliers = data.get("multipliers", [2, 4, 8, 16])
    if not isinstance(multipliers, list) or not multipliers or not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0 for m in multipliers):
        raise ArchScaleError("multipliers", f"expected a list of positive FLOP multipliers, got {multipliers!r}")
    return {"strategies": tuple(strategies), "multipliers": tuple(float(m) for m in multipliers),
            "regime_epochs": _positive_int(data, "regime_epochs", 350),
            "tolerance": _fraction(data, "tolerance", DEFAULT_TOLERANCE)}
