"""Spaces: a base ArchSpec plus the axes to vary, expanded into named configs.

``Space`` is a validated space spec (parsed by ``search_spaces.space_spec``, which documents the
YAML); ``Space.expand()`` walks its points (grid product, random samples or scaling strategies),
turns each into a spec, drops and counts the invalid ones, and names the rest (``config_name``).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from scaling import ArchScaleError, ArchSpec, analytic_counts, check_fits
from scaling.spec import SLUG_PARTS
from scaling.wording import plural

from .matching import match
from .strategies import DEFAULT_TOLERANCE, STRATEGIES, scale

#: The fields a space can vary: every ArchSpec field.
SPEC_FIELDS = tuple(f.name for f in dataclasses.fields(ArchSpec))
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
        return expansion_summary(self.space, len(self.configs), self.dropped, self.duplicates)


def expansion_summary(space: "Space", n_configs: int, dropped: dict, duplicates: int) -> str:
    """One line: how many configs, how many dropped and why, duplicates removed."""
    parts = [f"{n_configs:,} configs"]
    if space.kind == "random" and n_configs < space.samples:
        parts[0] += (f" (of {space.samples} samples asked: the space ran out of distinct valid "
                     f"configs; widen the ranges or ask for fewer)")
    if dropped:
        why = "; ".join(f"{n:,} by {k} (e.g. {msg})" for k, (n, msg) in dropped.items())
        parts.append(f"{sum(n for n, _ in dropped.values()):,} dropped: {why}")
    if duplicates:
        parts.append(f"{plural(duplicates, 'duplicate', fmt=',')} removed")
    return ", ".join(parts)


@dataclass(frozen=True)
class Space:
    """A validated space spec (``search_spaces.space_spec`` parses one); ``expand()`` makes its configs."""

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
    #: Pins the training length the resnet_rs strategy assumes; None (the default): the regimes the
    #: space is expanded for (a sweep's, see ``expand``). A sweep refuses a pin its regimes disagree with.
    regime_epochs: int | None = None
    #: Options of the resnet_rs strategy that replace its rules: width_share, resolution_exponent.
    resnet_rs: dict = field(default_factory=dict)
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

    def expand(self, epochs=None) -> Expansion:
        """Every config of the space, validated, matched, constrained, deduplicated and named.

        ``epochs``: the training lengths (epochs) of the regimes the configs will train under. The
        resnet_rs strategy grows depth or width by the training length, so a scaling space with it
        makes one config per length, tagged ``regime_epochs`` (the lengths it is for; a network that
        two lengths share is one config tagged with both). Points that make no valid network are
        dropped and counted by the field at fault (with the first message as an example);
        ArchScaleError("space") when none is left.
        """
        lengths = self._lengths(epochs)
        dropped: dict[str, tuple[int, str]] = {}
        kept: list[tuple[ArchSpec, dict]] = []
        seen: dict[ArchSpec, dict] = {}
        duplicates = 0
        for point in self._points(lengths):
            try:
                spec, tags = self._realise(point)
                if spec in seen:
                    duplicates += _merge_lengths(seen[spec], tags)
                    continue
                seen[spec] = tags
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
    def _lengths(self, epochs) -> tuple:
        """The training lengths the resnet_rs strategy is expanded for: (None,) when it needs none."""
        if self.kind != "scaling" or "resnet_rs" not in self.strategies or "width_share" in self.resnet_rs:
            return (None,)
        if self.regime_epochs:
            return (self.regime_epochs,)
        given = sorted({int(e) for e in ([epochs] if isinstance(epochs, (int, float)) else epochs or ())})
        if not given:
            raise ArchScaleError("regimes", "the resnet_rs strategy grows depth or width by the training length: "
                                            "expand the space for its regimes (a sweep does; 'archscale space' "
                                            "takes --regimes)")
        return tuple(given)

    def _points(self, lengths=(None,)):
        """The raw points of the space, in order: (strategy, FLOP multiplier, training length) for the
        scaling kind (the base first; the length only for resnet_rs), field changes for the grid and
        random kinds."""
        if self.kind == "scaling":
            yield "base", 1.0, None
            for strategy, multiplier in itertools.product(self.strategies, self.multipliers):
                for length in (lengths if strategy == "resnet_rs" else (None,)):
                    yield strategy, multiplier, length
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

    def _scaled(self, strategy: str, multiplier: float, length: int | None) -> tuple[ArchSpec, dict]:
        """The base grown by ``strategy`` to ``multiplier`` x its FLOPs (for a training ``length`` in
        epochs, resnet_rs only), tagged with how close it came."""
        if strategy == "base":
            return self.base.replace(), {"strategy": "base", "flop_multiplier": 1.0}
        s = scale(self.base, strategy, multiplier, tolerance=self.tolerance, regime_epochs=length, **self.resnet_rs)
        base = self.base.to_dict()
        spec = self.base.replace(**{k: v for k, v in s.spec.to_dict().items() if v != base[k]})
        tags = {"strategy": strategy, "flop_multiplier": float(multiplier), "target_flops": s.target,
                "flop_ratio": round(s.ratio, 4), "within_tolerance": s.within_tolerance}
        if length is not None:
            tags["regime_epochs"] = (length,)
        return spec, tags

    def _solve(self, spec: ArchSpec, tags: dict) -> tuple[ArchSpec, dict]:
        """``spec`` with the match's field solved to the target's complexity (``match.by``), tagged
        with its group, the rule, how close it came and, against a template network, its FLOP ratio."""
        m = self.match
        template = None
        if "target_from" in m:
            template = spec.replace(**m["target_from"])
            check_fits(template)
            target, label = template, template.slug()
        else:
            target, label = m["target"], m["label"]
        by = m.get("by", "flops")
        result = match(spec, target, m["solve"], by=by, tolerance=m.get("tolerance", 0.15))
        tags = {**tags, "group": label, "match_by": by, "match_ratio": round(result.ratio, 4)}
        if by == "flops":
            tags["flop_ratio"] = round(result.ratio, 4)
        elif template is not None:
            tags["flop_ratio"] = round(result.flops / analytic_counts(template).flops, 4)
        return result.spec, tags

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


def _merge_lengths(kept: dict, tags: dict) -> int:
    """A duplicate of a kept config: its training lengths join the kept one's (a config for every
    length when either has no ``regime_epochs`` tag). Returns 1 when it counts as a duplicate."""
    if "regime_epochs" not in kept:
        return 1
    if "regime_epochs" not in tags:
        del kept["regime_epochs"]
        return 1
    kept["regime_epochs"] = tuple(sorted(set(kept["regime_epochs"]) | set(tags["regime_epochs"])))
    return 0


def trains_under(config: Config, epochs: int) -> bool:
    """Whether ``config`` is meant for a regime of ``epochs`` epochs (the resnet_rs strategy's configs
    are made for given training lengths; every other config trains under every regime)."""
    lengths = config.tags.get("regime_epochs")
    return lengths is None or int(epochs) in lengths


def config_name(spec: ArchSpec, extra_fields=()) -> str:
    """``d101-w1.5-c32x4-r224`` plus a tag per other varied field; safe as a directory name."""
    parts = (show(*(getattr(spec, f) for f in shown)) for shown, show in name_parts(extra_fields))
    return "-".join(p for p in parts if p)


def name_parts(extra_fields=()) -> list[tuple[tuple[str, ...], Callable]]:
    """The parts of a config's name, in order: (the ArchSpec fields a part shows, the function that
    writes it from their values, safe as a directory name); empty parts are left out. The slug's
    parts, then a tag per other varied field."""
    parts = [(shown, _safe(show)) for shown, show in SLUG_PARTS]
    return parts + [((f,), _safe(functools.partial(_tag, f))) for f in extra_fields]


def _tag(name: str, value) -> str:
    if isinstance(value, bool):
        value = int(value)
    elif isinstance(value, tuple):
        value = "_".join(map(str, value))
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"{TAGS.get(name, name)}{value}"


def _safe(show: Callable) -> Callable:
    return lambda *values: re.sub(r"[^A-Za-z0-9._-]", "", show(*values))


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
