"""ArchSpec: a ResNet-family network described by a few numbers.

An ArchSpec is plain data (a frozen dataclass). It is validated when it is made (its fields and
their combinations; whether its input is large enough for its downsampling is
``scaling.check_fits``'s question, asked by the counters and ``build_model``), it round-trips
through JSON and YAML, and ``scaling.build_model`` turns it into a module. Imports no torch.
Every field's meaning follows torchvision's ``models/resnet.py`` where torchvision has the
concept (``groups`` = cardinality, ``width_per_group`` = bottleneck_width), and the papers
elsewhere (ResNet-B/C/D from "Bag of Tricks", SE, ResNeSt, SKNet, ResNet v2, ResNet-RS).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from .block_kinds import block_choices, block_kinds
from .cx import at_least, group_width, trunc
from .errors import ArchScaleError
from .validate import boolean, check_choice, check_keys, is_whole, number, whole
from .yamlio import load_yaml, yaml_problem

# Blocks per stage for the named depths, keyed by (block type, number of stages).
# 4-stage ImageNet layouts are torchvision's (18-152) and the ResNet-RS / TF model garden's
# (200, 270, 350, 420). 26 is timm's ResNet-26. 300 and 400 are in the ResNet-RS scaling grid
# but no official layout was published: they interpolate the official 270/350/420 layouts
# (first and last stage 4 blocks, the third stage about twice the second).
# 3-stage layouts are the CIFAR networks: ResNet-6n+2 (basic) and ResNeXt-29 style 9n+2.
NAMED_DEPTHS: dict[tuple[str, int], dict[int, tuple[int, ...]]] = {
    ("basic", 4): {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3)},
    ("bottleneck", 4): {
        26: (2, 2, 2, 2),
        38: (3, 3, 3, 3),
        50: (3, 4, 6, 3),
        101: (3, 4, 23, 3),
        152: (3, 8, 36, 3),
        200: (3, 24, 36, 3),
        270: (4, 29, 53, 4),
        300: (4, 32, 60, 4),
        350: (4, 36, 72, 4),
        400: (4, 42, 83, 4),
        420: (4, 44, 87, 4),
    },
    ("basic", 3): {8: (1, 1, 1), 14: (2, 2, 2), 20: (3, 3, 3), 32: (5, 5, 5), 44: (7, 7, 7),
                   56: (9, 9, 9), 110: (18, 18, 18)},
    ("bottleneck", 3): {11: (1, 1, 1), 20: (2, 2, 2), 29: (3, 3, 3), 38: (4, 4, 4),
                        47: (5, 5, 5), 56: (6, 6, 6)},
}

STEMS = ("imagenet", "deep", "cifar")
STEM_POOLS = ("max", "conv", "none")
DOWNSAMPLES = ("a", "b", "d")
BLOCK_FORMS = ("grouped", "branches", "concat")


@dataclass(frozen=True)
class ArchSpec:
    """A ResNet/ResNeXt-family network.

    Channel counts: stage ``i`` has ``planes_i = int(widths[i] * width_multiplier)`` and outputs
    ``planes_i * expansion`` channels (expansion 4 for bottleneck blocks, 1 for basic blocks).
    A bottleneck's 3x3 convolution has ``int(planes_i * bottleneck_width / 64 * widen_factor)``
    channels per group and ``cardinality`` groups (torchvision's formula; ResNeXt "32x4d" is
    cardinality 32, bottleneck_width 4).
    """

    #: "basic" (two 3x3 convs) or "bottleneck" (1x1, 3x3, 1x1 with 4x expansion).
    block: str = "bottleneck"
    #: A named depth (see NAMED_DEPTHS; e.g. 18, 50, 101, 350) or blocks per stage, e.g. (3, 4, 6, 3).
    depth: int | tuple[int, ...] = 50
    #: Base width ("planes") of each stage before the width multiplier; its length is the
    #: number of stages. Bottleneck stages output 4x this.
    widths: tuple[int, ...] = (64, 128, 256, 512)
    #: Channels out of the stem, before the width multiplier.
    stem_width: int = 64
    #: Scales the stem and every stage width (the ResNet-RS width axis, 0.25-2.0).
    width_multiplier: float = 1.0
    #: Groups of the bottleneck's 3x3 conv (ResNeXt's C; torchvision's ``groups``).
    cardinality: int = 1
    #: Channels per group in a stage of base width 64 (ResNeXt's d; torchvision's ``width_per_group``).
    bottleneck_width: int = 64
    #: Wide-ResNet widening: multiplies the bottleneck's inner width (torchvision's wide_resnet50_2
    #: is 2), or, for basic blocks, every stage width (WRN-n-k).
    widen_factor: float = 1.0
    #: Which of the ResNeXt paper's three equivalent bottleneck forms (its fig. 3) is built:
    #: "grouped" (c: one grouped 3x3 conv; torchvision's layout), "branches" (a: ``cardinality``
    #: parallel 1x1-3x3-1x1 paths of width d, summed before the last BN), "concat" (b: parallel
    #: 1x1-3x3 paths, concatenated before one shared 1x1). Same function, parameters and FLOPs;
    #: ``scaling.convert_block_form`` moves weights between them.
    block_form: str = "grouped"
    #: "imagenet" (7x7 stride-2 conv), "deep" (ResNet-C: three 3x3 convs, the first strided,
    #: inner width stem_width/2), "cifar" (one 3x3 stride-1 conv).
    stem: str = "imagenet"
    #: What follows the stem conv: "max" (3x3 stride-2 max-pool), "conv" (3x3 stride-2 conv +
    #: BN + ReLU, as ResNet-RS), "none". "auto" means "none" for the CIFAR stem, else "max"; a
    #: pool that is its stem's default follows the stem when a change (replace, an override, a
    #: space axis) gives another stem.
    stem_pool: str = "auto"
    #: Where a stage downsamples: "a" stride on the first 1x1 (original ResNet), "b" stride on the
    #: 3x3 (torchvision, "v1.5"), "d" as "b" plus a 2x2 average-pool before the 1x1 shortcut conv.
    downsample: str = "b"
    #: Squeeze-and-excitation after the block's last BN: reduced width int(C * se_ratio); 0 = none.
    se_ratio: float = 0.0
    #: ResNeSt split-attention radix for the bottleneck's 3x3 conv; 0 = plain (grouped) conv.
    radix: int = 0
    #: ResNeSt "avd": downsample with a 3x3 average-pool after the 3x3 conv instead of striding it.
    avd: bool = False
    #: SKNet selective kernel in place of the bottleneck's 3x3 conv: this many parallel grouped
    #: convs with kernels 3, 5, 7, ... (each conv-BN-ReLU), summed, pooled, FC-BN-ReLU to
    #: max(width // sk_reduction, sk_min_width), an FC per path, softmax across paths; 0 = none.
    #: The SKNet paper's networks use 2 (a 3x3 and a 5x5).
    sk_paths: int = 0
    #: SKNet's r: the attention's reduced width is max(width // sk_reduction, sk_min_width).
    #: Ignored when sk_paths is 0.
    sk_reduction: int = 16
    #: SKNet's L: the smallest reduced width of the attention (paper: 32). Ignored when sk_paths is 0.
    sk_min_width: int = 32
    #: Kernels larger than 3x3 as dilated 3x3 convs (5x5 -> 3x3 dilation 2, as the SKNet paper and
    #: timm do); false builds real 5x5, 7x7, ... kernels. Ignored when sk_paths is 0.
    sk_dilated: bool = True
    #: Pre-activation blocks (ResNet v2): BN-ReLU before each conv, no ReLU after the addition,
    #: a final BN-ReLU before the pooling.
    preact: bool = False
    #: The residual shortcut (identity or projection). False builds the plain network of the same
    #: depth and width (the ResNet paper's "plain" baseline): each block outputs its branch alone.
    shortcut: bool = True
    #: Stochastic depth: the last stage drops its residual branch with this probability, stage i
    #: of n with rate * (i + 2) / (n + 1) (the ResNet-RS rule: 2/5 ... 5/5 over four stages).
    stochastic_depth: float = 0.0
    #: Dropout probability before the classifier.
    dropout: float = 0.0
    #: Zero-initialise the last BN of each residual branch (torchvision's zero_init_residual).
    zero_init_residual: bool = False
    #: Classes of the classifier (its output width); a trainer sets it from the data set.
    num_classes: int = 1000
    #: Channels of the input images (3 for RGB, 1 for grey).
    in_channels: int = 3
    #: Input resolution in pixels (square images).
    resolution: int = 224

    def __post_init__(self):
        _normalise(self)
        _validate(self)

    # ----- derived numbers -------------------------------------------------------------
    @property
    def num_stages(self) -> int:
        return len(self.widths)

    @property
    def layers(self) -> tuple[int, ...]:
        """Blocks per stage."""
        if isinstance(self.depth, tuple):
            return self.depth
        return NAMED_DEPTHS[(self.block, self.num_stages)][self.depth]

    @property
    def depth_number(self) -> int:
        """The nominal depth: the named depth, or the weighted-layer count of a custom layout."""
        if isinstance(self.depth, int):
            return self.depth
        for name, layout in NAMED_DEPTHS.get((self.block, self.num_stages), {}).items():
            if layout == self.depth:
                return name
        return block_kinds()[self.block].convs * sum(self.depth) + 2

    @property
    def expansion(self) -> int:
        return block_kinds()[self.block].expansion

    @property
    def stem_channels(self) -> int:
        return stem_channels(self)

    @property
    def stage_planes(self) -> tuple[int, ...]:
        """Planes of each stage after the width multiplier (and basic-block widening)."""
        return stage_planes(self)

    def slug(self) -> str:
        """A short readable name, usable as a directory name: ``d50-w1-c32x4-r224`` (``d18-w1-r224``
        for basic blocks, which have no groups)."""
        return "-".join(p for p in (show(*(getattr(self, f) for f in shown)) for shown, show in SLUG_PARTS) if p)

    # ----- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-able dict of every field (tuples become lists)."""
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ArchSpec":
        """Build from a dict of ArchSpec fields (``scaling.presets.spec_from_dict`` also reads
        ``preset: NAME`` plus overrides)."""
        if not isinstance(data, dict):
            raise ArchScaleError("spec", f"expected a mapping of ArchSpec fields, got {type(data).__name__}")
        check_fields(data)
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @classmethod
    def from_json(cls, text: str) -> "ArchSpec":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ArchScaleError("spec", f"not valid JSON ({e})") from None
        return cls.from_dict(data)

    def to_yaml(self) -> str:
        import yaml

        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    @classmethod
    def from_yaml(cls, text: str) -> "ArchSpec":
        import yaml

        try:
            data = load_yaml(text)
        except yaml.YAMLError as e:
            raise ArchScaleError("spec", f"not valid YAML ({yaml_problem(e)})") from None
        return cls.from_dict(data)

    def replace(self, **changes) -> "ArchSpec":
        """A copy with some fields changed (validated like any new spec)."""
        check_fields(changes)
        return ArchSpec(**override(self.to_dict(), changes))


# The derived widths, for an ArchSpec or a ``scaling.batch.SpecBatch`` (numeric fields as arrays).
def stem_channels(s) -> int:
    """Channels out of the stem: int(stem_width x width_multiplier), at least 1."""
    return at_least(trunc(s.stem_width * s.width_multiplier), 1)


def stage_planes(s) -> tuple[int, ...]:
    """Planes of each stage: int(width x width_multiplier (x widen_factor for basic blocks))."""
    widen = 1.0 if block_kinds()[s.block].grouped else s.widen_factor
    return tuple(trunc(w * s.width_multiplier * widen) for w in s.widths)


def _depth_part(depth) -> str:
    return f"d{depth if isinstance(depth, int) else '_'.join(map(str, depth))}"


def _groups_part(block: str, cardinality: int, bottleneck_width: int) -> str:
    """ResNeXt's C x d, for the kinds of block that have groups (a basic block's name has none)."""
    return f"c{cardinality}x{bottleneck_width}" if block_kinds()[block].grouped else ""


def legacy_name(name: str, block: str, cardinality: int, bottleneck_width: int) -> str:
    """The name a config had before names left out C x d for blocks without groups (basic blocks
    were ``d18-w1-c1x64-r224``): ``name`` with ``c1x64`` put back after its width part; ``name``
    itself for blocks with groups. Lets a sweep folder of that time resume."""
    if block_kinds()[block].grouped:
        return name
    parts = name.split("-")
    return "-".join(parts[:2] + [f"c{cardinality}x{bottleneck_width}"] + parts[2:])


#: The parts of ``ArchSpec.slug``, in order: (the fields a part shows, their formatter); an empty part
#: is left out. One table, so that a table of many specs is named column by column the same way.
SLUG_PARTS = ((("depth",), _depth_part), (("width_multiplier",), lambda w: f"w{_fmt(w)}"),
              (("block", "cardinality", "bottleneck_width"), _groups_part), (("resolution",), lambda r: f"r{r}"))


def check_fields(data: dict) -> None:
    """Refuse keys that are not ArchSpec fields (a one-line error with 'did you mean')."""
    check_keys(data, sorted(f.name for f in fields(ArchSpec)), what="ArchSpec field")


def _default_pool(stem: str) -> str:
    return "none" if stem == "cifar" else "max"


def override(base: dict, changes: dict) -> dict:
    """``base`` with ``changes``; a stem pool that was the old stem's default follows a new stem."""
    out = {**base, **changes}
    if base and "stem" in changes and "stem_pool" not in changes \
            and base.get("stem_pool") == _default_pool(base.get("stem", "imagenet")):
        out["stem_pool"] = "auto"
    return out


def _fmt(x: float) -> str:
    return f"{x:g}"


# ----- validation ---------------------------------------------------------------------------
# Every int, float and bool field is type-checked by its annotation; these give the bounds.
#: Lowest value of the whole-number fields (the rest: any whole number; sk_paths has its own rule).
_WHOLE_LOW = {"stem_width": 1, "cardinality": 1, "bottleneck_width": 1, "radix": 0, "sk_reduction": 1,
              "sk_min_width": 1, "num_classes": 1, "in_channels": 1, "resolution": 1}
#: Bounds of the real-number fields (``scaling.validate.number``'s keywords).
_NUMBER = {"width_multiplier": dict(low=0, low_open=True), "widen_factor": dict(low=0, low_open=True),
           "se_ratio": dict(low=0, high=1, hint="0 = no SE"),
           "stochastic_depth": dict(low=0, high=1, high_open=True), "dropout": dict(low=0, high=1, high_open=True)}
_CHOICES = {"block": block_choices, "stem": STEMS, "stem_pool": STEM_POOLS + ("auto",),
            "downsample": DOWNSAMPLES, "block_form": BLOCK_FORMS}
#: What a kind of block that is not grouped (basic) supports of the bottleneck's options.
_BASIC_ONLY = (("cardinality", 1), ("bottleneck_width", 64), ("radix", 0), ("avd", False), ("sk_paths", 0),
               ("block_form", "grouped"))


def _set(spec, name, value):
    object.__setattr__(spec, name, value)


_TYPES = {f.name: f.type for f in fields(ArchSpec)}


def normalise_value(name: str, v):
    """One int, float or bool field's value, type- and range-checked and coerced (whole floats to
    ints, ints to floats); ArchScaleError(name) when it is out of range or of another type."""
    kind = _TYPES[name]
    if kind == "int":
        return whole(int(v) if isinstance(v, float) and v.is_integer() else v, name, low=_WHOLE_LOW.get(name))
    if kind == "float":
        return number(v, name, **_NUMBER.get(name, {}))
    boolean(v, name)
    return v


def _normalise(spec: ArchSpec) -> None:
    """Check each field's type and range; coerce (lists -> tuples, whole floats -> ints, ints ->
    floats, choices to lower case) and resolve 'auto'."""
    for f in fields(ArchSpec):
        if f.type in ("int", "float", "bool"):
            _set(spec, f.name, normalise_value(f.name, getattr(spec, f.name)))
    for name, choices in _CHOICES.items():
        v, choices = getattr(spec, name), (choices() if callable(choices) else choices)
        _set(spec, name, check_choice(v.lower() if isinstance(v, str) else v, choices, name, name.replace("_", " ")))
    if spec.stem_pool == "auto":
        _set(spec, "stem_pool", _default_pool(spec.stem))
    for name in ("depth", "widths"):
        v = getattr(spec, name)
        if isinstance(v, (list, tuple)):
            if not v or not all(is_whole(x) for x in v):
                raise ArchScaleError(name, f"expected a list of whole numbers, got {list(v)!r}")
            _set(spec, name, tuple(v))
        elif not (name == "depth" and is_whole(v)):
            what = "a named depth or a list of blocks per stage" if name == "depth" else "a list of stage widths"
            raise ArchScaleError(name, f"expected {what}, got {v!r}")


def _validate(s: ArchSpec) -> None:
    """Refuse layouts, widths and option combinations that describe no network."""
    if any(w <= 0 for w in s.widths):
        raise ArchScaleError("widths", f"every stage width must be positive, got {list(s.widths)}")
    _validate_depth(s)
    for name, bad in numeric_faults(s):
        if bad:
            raise ArchScaleError(name, _numeric_message(s, name))
    if s.sk_paths < 0 or s.sk_paths == 1:
        raise ArchScaleError("sk_paths", f"must be 0 (no selective kernel) or at least 2 kernels to select "
                                         f"between (SKNet uses 2), got {s.sk_paths}")
    if not block_kinds()[s.block].grouped:
        for name, default in _BASIC_ONLY:
            if getattr(s, name) != default:
                raise ArchScaleError(name, _numeric_message(s, name))
    _validate_combinations(s)


#: The fields that ``scaling.batch`` lets vary within one batch of networks (as arrays); every other
#: field shapes the network's layout and is one value per batch.
NUMERIC_FIELDS = ("stem_width", "width_multiplier", "cardinality", "bottleneck_width", "widen_factor", "se_ratio",
                  "num_classes", "in_channels", "resolution")


def numeric_faults(s) -> list[tuple[str, object]]:
    """The checks that combine numeric fields, in the order ArchSpec makes them: (field blamed,
    whether the check fails), a bool for an ArchSpec and a mask for a ``scaling.batch.SpecBatch``."""
    planes = s.stage_planes
    empty = s.stem_channels < 1
    for p in planes:
        empty = empty | (p < 1)
    faults = [("width_multiplier", empty)]
    if s.stem == "deep":
        faults.append(("stem_width", s.stem_channels < 2))
    if not block_kinds()[s.block].grouped:
        faults += [("cardinality", s.cardinality != 1), ("bottleneck_width", s.bottleneck_width != 64)]
    else:
        no_group = False
        for p in planes:
            no_group = no_group | (group_width(p, s.bottleneck_width, s.widen_factor) < 1)
        faults.append(("bottleneck_width", no_group))
    return faults


def _numeric_message(s: ArchSpec, name: str) -> str:
    if not block_kinds()[s.block].grouped and name in dict(_BASIC_ONLY):
        return (f"{s.block} blocks support only {name}={dict(_BASIC_ONLY)[name]!r}; "
                f"use block: bottleneck for ResNeXt/ResNeSt/SKNet options")
    if name == "width_multiplier":
        return f"{s.width_multiplier} leaves a stage with no channels; use a larger multiplier"
    if name == "stem_width":
        return "the deep stem needs at least 2 channels (its inner width is half)"
    i, planes = next((i, p) for i, p in enumerate(s.stage_planes)
                     if group_width(p, s.bottleneck_width, s.widen_factor) < 1)
    return (f"{s.bottleneck_width} per group at stage {i + 1} ({planes} planes) rounds to 0 channels per group; "
            f"raise bottleneck_width or width_multiplier")


def _validate_depth(s: ArchSpec) -> None:
    table = NAMED_DEPTHS.get((s.block, s.num_stages), {})
    if isinstance(s.depth, tuple):
        if len(s.depth) != s.num_stages:
            raise ArchScaleError("depth", f"{len(s.depth)} stages of blocks {list(s.depth)} but {s.num_stages} "
                                          f"stage widths {list(s.widths)}; give one block count per width")
        if any(n <= 0 for n in s.depth):
            raise ArchScaleError("depth", f"every stage needs at least one block, got {list(s.depth)}")
    elif s.depth <= 0:
        raise ArchScaleError("depth", f"must be positive, got {s.depth}")
    elif s.depth not in table:
        other = "basic" if s.block == "bottleneck" else "bottleneck"
        hint = ""
        if s.depth in NAMED_DEPTHS.get((other, s.num_stages), {}):
            hint = f"; {s.depth} is a {other}-block depth: set block: {other}"
        named = ", ".join(map(str, table)) or "none"
        raise ArchScaleError("depth", f"{s.depth} is not a named depth for {s.block} blocks with "
                                      f"{s.num_stages} stages (named: {named}){hint}; or give blocks "
                                      f"per stage as a list, e.g. [3, 4, 6, 3]")


def _validate_combinations(s: ArchSpec) -> None:
    """Options that exclude each other."""
    if s.preact and s.radix:
        raise ArchScaleError("radix", "split attention is not defined for pre-activation blocks; "
                                      "set radix: 0 or preact: false")
    if s.sk_paths and s.radix:
        raise ArchScaleError("sk_paths", "selective kernel and split attention both replace the 3x3 conv; "
                                         "set sk_paths: 0 or radix: 0")
    if s.sk_paths and s.preact:
        raise ArchScaleError("sk_paths", "the selective kernel is not defined for pre-activation blocks; "
                                         "set sk_paths: 0 or preact: false")
    if s.block_form != "grouped":
        for name, what in (("radix", "split attention"), ("sk_paths", "a selective kernel")):
            if getattr(s, name):
                raise ArchScaleError("block_form", f"{s.block_form!r} is defined for plain grouped 3x3 convs, "
                                                   f"not {what}; set block_form: grouped or {name}: 0")
    if not s.shortcut:
        for name, value in (("stochastic_depth", 0.0), ("zero_init_residual", False)):
            if getattr(s, name) != value:
                raise ArchScaleError(name, f"without a shortcut {name} would zero whole blocks and cut the "
                                           f"network; set {name}: {str(value).lower()} or shortcut: true")
