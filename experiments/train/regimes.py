"""Training regimes as named, inspectable data; ``experiments.train.sources`` says where each value comes from.

``rs-350`` is the ResNet-RS recipe (Bello et al. 2021, and tensorflow/tpu
models/official/resnet/resnet_rs/configs/*.yaml run by resnet_main.py, the TF1 code): 350 epochs at batch
4096, SGD with momentum 0.9, learning rate 0.1 per 256 images (1.6), cosine decay after a 5-epoch
linear warm-up, weight decay 4e-5 on every parameter but batch norm's, label smoothing 0.1, an
EMA of the weights (0.9999), and dropout, stochastic depth and RandAugment (2 ops per image)
set per model by the official configs (``RS_CONFIGS``). Where the TF1 code and the TF2 configs
(tensorflow/models imagenet_resnetrs*.yaml) differ, the recipe follows TF2, which matches the paper:
the cosine schedule (TF1's resnet_main.py steps), plain momentum (TF1 uses Nesterov), and the
5-epoch warm-up is TF2's (``experiments.train.sources`` says which file each value comes from).
A network that is not one of those
configs takes the settings of the configs of its size (``size_table``: the bounds are the
geometric midpoints between neighbouring groups of configs, in FLOPs of ``scaling.FLOP_CONVENTION``):

    FLOPs (fvcore)     official configs                      dropout  stoch. depth  RandAug mag.
    < 5.0 G            RS-50/101 @160                        0.25     0.0           10
    < 17.8 G           RS-101 @192, RS-152 @192/224/256      0.25     0.0           15
    < 43.2 G           RS-200/270/350 @256                   0.25     0.1           15
    larger             RS-350/420 @320                       0.40     0.1           15

RandAugment magnitudes are on the official TensorFlow scale that the paper and its configs use
(tensorflow/tpu ``autoaugment.py``): level 10 is every op at its maximum (rotate 30 degrees, shear
0.3, translate 100 px at 224 px, enhance factor 1.9), 15 is 1.5x past it, and each image draws its
own 2 ops; experiments/data/augment.py implements it. timm's ``rand-mM`` has the same scale but
clips the magnitude at ``mmax``, 10 by default, so timm's ``rand-m15`` is ``rand-m10``; the
official 15 is timm's ``rand-m15-mmax15``. (torchvision's ``RandAugment(magnitude=M)`` is another
scale: its 10 is a third of ours.)

``rs-100`` and ``rs-10`` are the paper's shorter scaling-study regimes. The paper gives no
recipe for them, so two things are this project's choice: ``regularization_scale`` multiplies
the per-model dropout, stochastic depth and RandAugment magnitude (rs-100: 0.5, rs-10: 0, i.e.
none), and rs-10 warms up for 1 epoch. ``regularization_scale: 1`` and ``warmup_epochs: 5``
restore the official values.

``classic-90`` is the torchvision / ResNeXt recipe: batch 256, learning rate 0.1, step decay by 10x
at epochs 30, 60 and 80, weight decay 1e-4 on every parameter, no label smoothing, no EMA, no
RandAugment; dropout and stochastic depth are the ArchSpec's own.

A regime shrinks for small data and tests with ``with_epochs(n)``, which keeps its shape (the
warm-up and step-decay points stay at the same fraction of training). Any field can be
overridden with ``Regime.replace`` or a ``regime:`` mapping in a trial or sweep spec.

Shortened by more than ``SHORTENING_WARNING`` (4x) from its named regime (``--epochs``, ``epochs:``),
a regime keeps what was tuned for the full length: the regularization (dropout, stochastic depth,
RandAugment at its ``regularization_scale``), the EMA decay, weight decay, label smoothing and the
warm-up's share of training. ``shortening_warning`` says so in one line (``archscale sweep``, its
``--dry-run``, ``archscale train`` and the report print it), naming the shorter named regime that
fits. ``regularization_by_length: true`` is the documented way out, **our choice** (the paper trains
no shortened regime): it multiplies ``regularization_scale`` by epochs / the named regime's epochs,
and shortens the EMA's horizon (1 / (1 - decay) steps) by the same factor (``length_factor``,
``effective_regularization_scale``, ``effective_ema_decay``).
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

from scaling import ArchScaleError, ArchSpec, analytic_counts
from scaling.validate import boolean, check_choice, check_keys, is_number, number, whole

from ..data.augment import MAX_MAGNITUDE


@dataclass(frozen=True)
class Regime:
    """How one trial trains. Learning rate = ``lr_per_256 * batch_size / 256``."""

    name: str
    epochs: int
    batch_size: int = 4096
    lr_per_256: float = 0.1
    #: "cosine" (to 0 after warm-up) or "step" (times ``step_gamma`` at each of ``step_epochs``).
    schedule: str = "cosine"
    warmup_epochs: float = 5.0
    step_epochs: tuple[float, ...] = ()
    step_gamma: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 4e-5
    #: Which parameters weight decay applies to (see WEIGHT_DECAY_ON): "all" (torchvision's classic
    #: recipe), "all_but_bn" (ResNet-RS's official code: every variable but batch norm's, so biases
    #: decay), "weights" (conv and linear weights only: no BN, no biases).
    weight_decay_on: str = "all_but_bn"
    label_smoothing: float = 0.1
    #: EMA decay of the weights per step (0 = no EMA); evaluated with the EMA weights when on.
    ema_decay: float = 0.9999
    #: "auto" (by model size, see the module docstring), "spec" (the ArchSpec's own), or a number.
    dropout: Any = "auto"
    stochastic_depth: Any = "auto"
    #: RandAugment layers (0 = off) and magnitude ("auto" = by model size).
    randaugment_layers: int = 2
    randaugment_magnitude: Any = "auto"
    #: Multiplies dropout, stochastic depth and the RandAugment magnitude chosen by "auto" (1 = the
    #: official per-model settings; the shorter rs-* regimes' smaller values are this project's choice).
    regularization_scale: float = 1.0
    #: Scale regularization and the EMA's horizon with a shortened length (our choice; see the module
    #: docstring and ``length_factor``).
    regularization_by_length: bool = False
    description: str = ""
    #: The named regime this one was derived from (``{name: ..., base: ...}``); "" for a named regime.
    base: str = ""

    @property
    def lr(self) -> float:
        """Peak learning rate at this regime's batch size."""
        return self.lr_per_256 * self.batch_size / 256

    @property
    def named(self) -> "Regime | None":
        """The named regime this one is (or was derived from), None for one of no named regime."""
        return REGIMES.get(self.base or self.name)

    @property
    def length_factor(self) -> float:
        """epochs / the named regime's epochs (at most 1) when ``regularization_by_length``, else 1."""
        named = self.named
        if not self.regularization_by_length or named is None:
            return 1.0
        return min(1.0, self.epochs / named.epochs)

    @property
    def effective_regularization_scale(self) -> float:
        """``regularization_scale`` x ``length_factor``: what scales the per-model regularization."""
        return self.regularization_scale * self.length_factor

    @property
    def effective_ema_decay(self) -> float:
        """The EMA decay the trial uses: ``ema_decay``, its horizon 1 / (1 - decay) steps shortened by
        ``length_factor`` (no EMA when that leaves less than one step)."""
        if self.ema_decay <= 0 or self.length_factor == 1:
            return self.ema_decay
        return max(0.0, 1 - (1 - self.ema_decay) / self.length_factor)

    def with_epochs(self, epochs: int) -> "Regime":
        """The same regime over ``epochs`` epochs: warm-up and decay points keep their fractions."""
        whole(epochs, "epochs", low=1)
        f = epochs / self.epochs
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=self.warmup_epochs * f,
                                   step_epochs=tuple(e * f for e in self.step_epochs))

    def replace(self, **changes) -> "Regime":
        """A copy with fields overridden (validated); ``epochs`` rescales the shape (with_epochs).

        The old boolean ``decay_norm_and_bias`` is read as ``weight_decay_on`` "all" (true) or
        "weights" (false), what it meant, so older sweep plans and specs still load. ``lr``, the
        peak learning rate at this (or the new) batch size, is set through the field it derives
        from: lr_per_256 = lr x 256 / batch_size (with lr_per_256 too, the two must agree).
        """
        if "lr" in changes:
            changes = self._lr_as_lr_per_256(dict(changes))
        if "decay_norm_and_bias" in changes:
            legacy = changes.pop("decay_norm_and_bias")
            boolean(legacy, "regime.decay_norm_and_bias")
            changes.setdefault("weight_decay_on", "all" if legacy else "weights")
        check_keys(changes, sorted(f.name for f in dataclasses.fields(self)), "regime", "regime field")
        epochs = changes.pop("epochs", None)
        out = self.with_epochs(int(epochs)) if epochs is not None and epochs != self.epochs else self
        if "step_epochs" in changes:
            v = changes["step_epochs"]
            v = [v] if is_number(v) else v
            if not isinstance(v, (list, tuple)) or not all(is_number(e) and e >= 0 for e in v):
                raise ArchScaleError("regime.step_epochs", f"expected a list of epochs (numbers >= 0), got {v!r}")
            changes["step_epochs"] = tuple(v)
        out = dataclasses.replace(out, **changes)
        _validate(out)
        return out

    def _lr_as_lr_per_256(self, changes: dict) -> dict:
        lr = changes.pop("lr")
        number(lr, "regime.lr", low=0, low_open=True)
        batch = changes.get("batch_size", self.batch_size)
        whole(batch, "regime.batch_size", low=1)
        per_256 = lr * 256 / batch
        given = changes.setdefault("lr_per_256", per_256)
        if not math.isclose(given, per_256, rel_tol=1e-9):
            raise ArchScaleError("regime.lr", f"lr {lr:g} and lr_per_256 {given:g} disagree at batch {batch} "
                                              f"(lr = lr_per_256 x batch_size / 256); give one of them")
        return changes

    def lr_at(self, step: int, steps_per_epoch: int) -> float:
        """Learning rate at optimizer step ``step`` (0-based) of a run of ``epochs`` epochs."""
        epoch = step / steps_per_epoch
        if self.warmup_epochs > 0 and epoch < self.warmup_epochs:
            return self.lr * (step + 1) / (self.warmup_epochs * steps_per_epoch)
        if self.schedule == "cosine":
            span = max(self.epochs - self.warmup_epochs, 1e-12)
            progress = min(max((epoch - self.warmup_epochs) / span, 0.0), 1.0)
            return self.lr * 0.5 * (1 + math.cos(math.pi * progress))
        return self.lr * self.step_gamma ** sum(epoch >= e for e in self.step_epochs)

    def regularization(self, spec: ArchSpec) -> dict:
        """Effective dropout, stochastic depth and RandAugment (layers, magnitude) for ``spec``."""
        auto = size_regularization(spec)
        s = self.effective_regularization_scale

        def pick(value, key, spec_value):
            if value == "auto":
                return round(auto[key] * s, 4)
            if value == "spec":
                return spec_value
            return float(value)

        magnitude = min(pick(self.randaugment_magnitude, "randaugment_magnitude", 0), MAX_RANDAUGMENT_MAGNITUDE)
        layers = self.randaugment_layers if magnitude > 0 else 0
        return {"dropout": pick(self.dropout, "dropout", spec.dropout),
                "stochastic_depth": pick(self.stochastic_depth, "stochastic_depth", spec.stochastic_depth),
                "randaugment_layers": layers, "randaugment_magnitude": magnitude if layers else 0}

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["step_epochs"] = list(self.step_epochs)
        d["lr"] = self.lr
        return d


#: The parameter sets weight decay can apply to (``Regime.weight_decay_on``).
WEIGHT_DECAY_ON = ("all", "all_but_bn", "weights")

#: The largest RandAugment magnitude a regime takes, on the official scale (see augment.py).
MAX_RANDAUGMENT_MAGNITUDE = MAX_MAGNITUDE

#: The official per-model settings: (depth, resolution) -> (dropout, stochastic depth, RandAugment
#: magnitude), from tensorflow/tpu models/official/resnet/resnet_rs/configs/resnetrs{depth}_i{res}.yaml
#: (dropout_rate, drop_connect_rate (null = 0), randaug_magnitude).
RS_CONFIGS: dict[tuple[int, int], tuple[float, float, int]] = {
    (50, 160): (0.25, 0.0, 10), (101, 160): (0.25, 0.0, 10), (101, 192): (0.25, 0.0, 15),
    (152, 192): (0.25, 0.0, 15), (152, 224): (0.25, 0.0, 15), (152, 256): (0.25, 0.0, 15),
    (200, 256): (0.25, 0.1, 15), (270, 256): (0.25, 0.1, 15), (350, 256): (0.25, 0.1, 15),
    (350, 320): (0.4, 0.1, 15), (420, 320): (0.4, 0.1, 15),
}


def rs_config_file(depth: int, resolution: int) -> str:
    """The official config file of the ResNet-RS model at (depth, resolution)."""
    return f"resnetrs{depth}_i{resolution}.yaml"


@functools.lru_cache(maxsize=None)
def size_table() -> tuple[tuple[float, tuple[float, float, int]], ...]:
    """((upper FLOP bound, settings), ...): the official configs' settings in order of model size.

    The official configs fall into groups of equal settings that do not overlap in FLOPs; each
    bound is the geometric midpoint between the largest network of one group and the smallest of
    the next (FLOPs of the ResNet-RS presets at those resolutions, ``scaling.FLOP_CONVENTION``).
    """
    from scaling import get_preset

    flops = {key: analytic_counts(get_preset(f"resnetrs{key[0]}").replace(resolution=key[1])).flops
             for key in RS_CONFIGS}
    order = sorted(RS_CONFIGS, key=flops.get)
    groups: list[list] = []
    for key in order:
        if groups and RS_CONFIGS[groups[-1][-1]] == RS_CONFIGS[key]:
            groups[-1].append(key)
        else:
            groups.append([key])
    bounds = [math.sqrt(flops[a[-1]] * flops[b[0]]) for a, b in zip(groups, groups[1:])] + [math.inf]
    return tuple((bound, RS_CONFIGS[group[0]]) for bound, group in zip(bounds, groups))


def official_config_of(spec: ArchSpec) -> str | None:
    """The official config file ``spec`` is (a ResNet-RS preset at an official resolution), or None."""
    from scaling import PRESETS

    if not isinstance(spec.depth, int) or (spec.depth, spec.resolution) not in RS_CONFIGS:
        return None
    preset = PRESETS.get(f"resnetrs{spec.depth}")
    plain = dict(dropout=0.0, stochastic_depth=0.0, num_classes=1000)
    same = preset is not None and spec.replace(**plain) == preset.replace(resolution=spec.resolution, **plain)
    return rs_config_file(spec.depth, spec.resolution) if same else None


def size_regularization(spec: ArchSpec) -> dict:
    """The ResNet-RS per-model regularisation for a network of ``spec``'s FLOPs (see size_table)."""
    flops = analytic_counts(spec).flops
    for bound, (dropout, sd, magnitude) in size_table():
        if flops < bound:
            return {"dropout": dropout, "stochastic_depth": sd, "randaugment_magnitude": magnitude}
    raise AssertionError("unreachable")


_RS = dict(batch_size=4096, lr_per_256=0.1, schedule="cosine", momentum=0.9, weight_decay=4e-5,
           weight_decay_on="all_but_bn", label_smoothing=0.1, ema_decay=0.9999, randaugment_layers=2)
REGIMES: dict[str, Regime] = {
    "rs-350": Regime("rs-350", 350, warmup_epochs=5, regularization_scale=1.0, **_RS,
                     description="ResNet-RS, 350 epochs: the paper's recipe and the official per-model configs"),
    "rs-100": Regime("rs-100", 100, warmup_epochs=5, regularization_scale=0.5, **_RS,
                     description="ResNet-RS recipe over 100 epochs; half-strength regularisation (our choice)"),
    "rs-10": Regime("rs-10", 10, warmup_epochs=1, regularization_scale=0.0, **_RS,
                    description="ResNet-RS recipe over 10 epochs; no dropout, stochastic depth or RandAugment "
                                "and a 1-epoch warm-up (our choices)"),
    "classic-90": Regime("classic-90", 90, batch_size=256, lr_per_256=0.1, schedule="step", warmup_epochs=0,
                         step_epochs=(30, 60, 80), step_gamma=0.1, weight_decay=1e-4, weight_decay_on="all",
                         label_smoothing=0.0, ema_decay=0.0, dropout="spec", stochastic_depth="spec",
                         randaugment_layers=0, randaugment_magnitude=0,
                         description="torchvision / ResNeXt: step decay 30/60/80, weight decay 1e-4"),
}


#: Shortening a named regime by more than this factor warns (``shortening_warning``): 4x leaves the
#: 350-epoch recipe at 87 epochs and the 100-epoch one at 25, where its full-length regularization is
#: already the issue's failure (our threshold).
SHORTENING_WARNING = 4


def shortening_warning(regime: Regime) -> str | None:
    """One line when ``regime`` trains more than SHORTENING_WARNING x fewer epochs than its named regime:
    what stays tuned for the full length, and the shorter named regime that fits; None otherwise."""
    named = regime.named
    if named is None or regime.epochs * SHORTENING_WARNING >= named.epochs:
        return None
    kept = []
    scaled = regime.regularization_by_length and regime.length_factor < 1
    if not scaled and regime.regularization_scale > 0 and "auto" in (regime.dropout, regime.stochastic_depth,
                                                                       regime.randaugment_magnitude):
        kept.append(f"dropout, stochastic depth and RandAugment at regularization_scale "
                    f"{regime.regularization_scale:g}")
    if not scaled and regime.ema_decay > 0:
        kept.append(f"EMA {regime.ema_decay:g}")
    kept.append(f"weight decay {regime.weight_decay:g}")
    if regime.label_smoothing:
        kept.append(f"label smoothing {regime.label_smoothing:g}")
    if regime.warmup_epochs:
        kept.append(f"a warm-up of {regime.warmup_epochs / regime.epochs:.0%} of training")
    family = named.name.split("-")[0]
    shorter = [r for r in REGIMES.values() if r.name.split("-")[0] == family and r.epochs < named.epochs]
    fit = min(shorter, key=lambda r: abs(math.log(r.epochs / regime.epochs)), default=None)
    instead = (f"the shorter regime that fits is {fit.name} ({fit.epochs} epochs)" if fit else
               f"no shorter named regime of the {family} family exists")
    if scaled:
        way = "; regularization and EMA scaled with the length (regularization_by_length, our choice)"
    elif any(k.startswith(("dropout", "EMA")) for k in kept):  # something the option would scale
        way = ", or set regularization_by_length: true (our choice) to scale regularization and the EMA with the length"
    else:
        way = ""
    return (f"regime {regime.name} trains {regime.epochs} of {named.name}'s {named.epochs} epochs "
            f"({named.epochs / regime.epochs:.0f}x shorter) keeping what was tuned for {named.epochs}: "
            f"{', '.join(kept)}; {instead}{way}")


def get_regime(name: str, **overrides) -> Regime:
    """A named regime, with field overrides (``epochs`` keeps the schedule's shape)."""
    check_choice(name, REGIMES, "regime", "regime")
    return REGIMES[name].replace(**overrides) if overrides else REGIMES[name]


def regime_from(value) -> Regime:
    """A Regime from a name or a mapping ``{name: rs-10, epochs: 5, batch_size: 64, ...}``.

    ``{name: my-recipe, base: classic-90, ...}`` starts from ``base`` and calls the result ``name``.
    """
    if isinstance(value, Regime):
        return value
    if isinstance(value, str):
        return get_regime(value)
    if isinstance(value, dict) and "name" in value:
        rest = {k: v for k, v in value.items() if k not in ("name", "base")}
        if value.get("base"):
            if not str(value["name"]).strip():
                raise ArchScaleError("regime.name", "a derived regime needs a non-empty name")
            return get_regime(value["base"], **rest).replace(name=str(value["name"]), base=str(value["base"]))
        return get_regime(value["name"], **rest)
    raise ArchScaleError("regime", f"expected a regime name ({', '.join(REGIMES)}) or a mapping with "
                                   f"name: and overrides, got {value!r}")


def _validate(r: Regime) -> None:
    check_choice(r.schedule, ("cosine", "step"), "regime.schedule", "schedule")
    check_choice(r.weight_decay_on, WEIGHT_DECAY_ON, "regime.weight_decay_on", "parameter set")
    if r.base:
        check_choice(r.base, REGIMES, "regime.base", "regime")
    for key, low in (("batch_size", 1), ("randaugment_layers", 0)):
        whole(getattr(r, key), f"regime.{key}", low=low)
    boolean(r.nesterov, "regime.nesterov")
    boolean(r.regularization_by_length, "regime.regularization_by_length")
    number(r.step_gamma, "regime.step_gamma", low=0, low_open=True)
    for key in ("lr_per_256", "weight_decay", "label_smoothing", "momentum", "warmup_epochs", "ema_decay",
                "regularization_scale"):
        number(getattr(r, key), f"regime.{key}", low=0)
    if not r.ema_decay < 1 or not r.label_smoothing < 1:
        raise ArchScaleError("regime", "ema_decay and label_smoothing must be below 1")
    if r.nesterov and r.momentum == 0:
        raise ArchScaleError("regime.nesterov", "Nesterov momentum needs momentum > 0; set nesterov: false")
    for key in ("dropout", "stochastic_depth"):
        v = getattr(r, key)
        if v not in ("auto", "spec") and (not is_number(v) or not 0 <= v < 1):
            raise ArchScaleError(f"regime.{key}", f"must be auto, spec or a number >= 0 and below 1, got {v!r}")
    v = r.randaugment_magnitude
    if v not in ("auto", "spec") and (not is_number(v) or not 0 <= v <= MAX_RANDAUGMENT_MAGNITUDE):
        raise ArchScaleError("regime.randaugment_magnitude",
                             f"must be auto, spec or a number from 0 to {MAX_RANDAUGMENT_MAGNITUDE:g} on the official "
                             f"TensorFlow scale (10 = each op at its maximum, e.g. rotate 30 degrees), got {v!r}")
