"""Where every value of a training recipe comes from: one source table for the CLI, README and reports.

Each field of a regime (``experiments.train.regimes``) has a source of one kind:

- ``paper``: the paper, with its section or table;
- ``official config``: a file of the official code: the TF1 code (tensorflow/tpu
  models/official/resnet/resnet_main.py and resnet_rs/configs/) or the TF2 configs (tensorflow/models
  imagenet_resnetrs*.yaml, the port the ResNet-RS README points to). Where the two differ, the recipe
  follows the TF2 configs, because they match what the paper describes: the schedule (TF2 cosine, as
  the paper's section 4.2 and Table 1; TF1's resnet_main.py has only a step schedule), the optimizer
  (TF2 plain momentum, the paper's "Momentum optimizer"; TF1 Nesterov); the warm-up's length is the
  TF2 configs' too (1560 steps = 5 epochs). Every other value comes from the TF1 configs and code,
  which hold the paper's per-model settings;
- ``project choice``: this project's, with a one-line reason (where the paper is silent);
- ``override``: the user set the value (a sweep spec, ``--set`` or ``--epochs``) and it differs from
  its named regime's. A value that only follows a shortened length (the warm-up and step epochs keep
  their share of training) keeps its named regime's source, with the scaling said;
- ``not used``: the field has no effect in this regime.

``regime_sources(regime, spec)`` gives the rows (field, value, source, where) that
``archscale train --show-regime`` prints, that a sweep's manifest records for the report's Run
section, and that README's recipe table is made of (``sources_markdown``; a test keeps them equal).
With a spec it adds the values that depend on the network: the effective dropout, stochastic
depth and RandAugment, and the zero-initialised last BN of each block.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from scaling import ArchSpec

from .regimes import REGIMES, RS_CONFIGS, Regime, official_config_of, rs_config_file, size_table

PAPER, OFFICIAL, OURS, OVERRIDE, UNUSED = "paper", "official config", "project choice", "override", "not used"
KINDS = (PAPER, OFFICIAL, OURS, OVERRIDE, UNUSED)


@dataclass(frozen=True)
class Source:
    """Where a value comes from: its kind (see KINDS) and where exactly (a section, a file, a reason)."""

    kind: str
    where: str


RS_PAPER = "ResNet-RS paper"
#: Files of tensorflow/tpu models/official/resnet/ (RS_CONFIGS: its resnet_rs/configs/, all eleven agree).
TPU = "tensorflow/tpu "
RS_CONFIGS_FILES = "resnet_rs/configs/*.yaml"
#: tensorflow/models official/vision/configs/experiments/image_classification/ (the TF2 port).
GARDEN = "tensorflow/models imagenet_resnetrs*.yaml"
TORCHVISION = "torchvision references/classification/train.py"

_RS_SHARED = {
    "batch_size": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: train_batch_size 4096"),
    "lr_per_256": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: base_learning_rate 0.1, scaled by batch/256 in "
                                   f"resnet_main.py (1.6 at 4096)"),
    "schedule": Source(PAPER, f"ResNet-RS, section 4.2 (cosine instead of EfficientNet's exponential decay) and "
                              f"Table 1 (+ cosine LR decay); {GARDEN}: cosine. tensorflow/tpu resnet_main.py "
                              f"has only a step schedule"),
    "step_epochs": Source(UNUSED, "the cosine schedule has no steps"),
    "step_gamma": Source(UNUSED, "the cosine schedule has no steps"),
    "momentum": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: momentum 0.9"),
    "nesterov": Source(OFFICIAL, f"{GARDEN}: plain SGD momentum (the paper, section 4.2: the Momentum optimizer); "
                                 f"tensorflow/tpu resnet_main.py uses Nesterov"),
    "weight_decay": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: weight_decay 4.0e-05 ({RS_PAPER}, Table 1: "
                                     f"decreased weight decay)"),
    "weight_decay_on": Source(OFFICIAL, f"{TPU}resnet_main.py: L2 on every trainable variable whose name lacks "
                                        f"'batch_normalization', so biases (SE convs, classifier) decay too"),
    "label_smoothing": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: label_smoothing 0.1"),
    "ema_decay": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: moving_average_decay 0.9999 (resnet_main.py: "
                                  f"ExponentialMovingAverage with num_updates, as experiments.train.loop.Ema)"),
    "dropout": Source(OFFICIAL, "auto: the dropout_rate of the official config of the network's size "
                                "(see effective_dropout)"),
    "stochastic_depth": Source(OFFICIAL, "auto: the drop_connect_rate of the official config of the network's "
                                         "size, x (i + 2) / 5 in stage i as resnet_model.py (see "
                                         "effective_stochastic_depth)"),
    "randaugment_layers": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: randaug_num_layers 2 (ops drawn per image)"),
    "randaugment_magnitude": Source(OFFICIAL, "auto: the randaug_magnitude (10 or 15) of the official config of "
                                              "the network's size, on the TensorFlow scale where 10 is full "
                                              "strength (see effective_randaugment_magnitude); timm clips at "
                                              "mmax 10 by default, so 15 is timm's rand-m15-mmax15"),
}
_BY_LENGTH = Source(OURS, "off: the named regime's regularization and EMA whatever the length; true scales both "
                          "with epochs / the named regime's epochs (ours: the paper trains no shortened regime)")
_RS_SHARED["regularization_by_length"] = _BY_LENGTH
_SCALING_STUDY = Source(PAPER, "ResNet-RS, the scaling study's 10, 100 and 350-epoch regimes")
_NO_SHORT_RECIPE = "the paper gives no recipe for its 10 and 100-epoch runs"

SOURCES: dict[str, dict[str, Source]] = {
    "rs-350": {
        "epochs": Source(OFFICIAL, f"{TPU}{RS_CONFIGS_FILES}: train_steps 109475 x batch 4096 = 350 epochs of "
                                   f"1,281,167 images ({RS_PAPER}, section 4.2: 350 epochs)"),
        "warmup_epochs": Source(OFFICIAL, f"{GARDEN}: linear warm-up of 1560 steps = 5 epochs of 312"),
        "regularization_scale": Source(OFFICIAL, "1: the official per-model settings unchanged"),
        **_RS_SHARED,
    },
    "rs-100": {
        "epochs": _SCALING_STUDY,
        "warmup_epochs": Source(OURS, f"the 350-epoch recipe's 5 epochs; {_NO_SHORT_RECIPE}"),
        "regularization_scale": Source(OURS, f"half the per-model regularisation: {_NO_SHORT_RECIPE}, and it finds "
                                             f"regularisers help more in longer training; 1 restores the official"),
        **_RS_SHARED,
    },
    "rs-10": {
        "epochs": _SCALING_STUDY,
        "warmup_epochs": Source(OURS, f"5 of 10 epochs would be half the run; {_NO_SHORT_RECIPE}"),
        "regularization_scale": Source(OURS, f"no dropout, stochastic depth or RandAugment in 10 epochs: "
                                             f"{_NO_SHORT_RECIPE}; 1 restores the official per-model settings"),
        **_RS_SHARED,
    },
    "classic-90": {
        "epochs": Source(OFFICIAL, f"{TORCHVISION}: --epochs 90"),
        "batch_size": Source(OFFICIAL, f"{TORCHVISION}: 32 images per GPU on 8 GPUs"),
        "lr_per_256": Source(OFFICIAL, f"{TORCHVISION}: --lr 0.1 at batch 256"),
        "schedule": Source(OFFICIAL, f"{TORCHVISION}: step decay (multisteplr)"),
        "warmup_epochs": Source(OFFICIAL, f"{TORCHVISION}: no warm-up"),
        "step_epochs": Source(OURS, "30, 60 and 80 of 90, as tensorflow/tpu resnet_main.py's 90-epoch schedule "
                                    "(torchvision's steps every 30: 30 and 60)"),
        "step_gamma": Source(OFFICIAL, f"{TORCHVISION}: --lr-gamma 0.1"),
        "momentum": Source(OFFICIAL, f"{TORCHVISION}: --momentum 0.9"),
        "nesterov": Source(OFFICIAL, f"{TORCHVISION}: plain SGD momentum"),
        "weight_decay": Source(OFFICIAL, f"{TORCHVISION}: --wd 1e-4"),
        "weight_decay_on": Source(OFFICIAL, f"{TORCHVISION}: --norm-weight-decay unset, so every parameter decays"),
        "label_smoothing": Source(OFFICIAL, f"{TORCHVISION}: --label-smoothing 0"),
        "ema_decay": Source(OFFICIAL, f"{TORCHVISION}: no --model-ema"),
        "dropout": Source(OFFICIAL, "spec: the network's own (torchvision's ResNets have none)"),
        "stochastic_depth": Source(OFFICIAL, "spec: the network's own (torchvision's ResNets have none)"),
        "randaugment_layers": Source(OFFICIAL, f"{TORCHVISION}: no --auto-augment"),
        "randaugment_magnitude": Source(OFFICIAL, f"{TORCHVISION}: no --auto-augment"),
        "regularization_scale": Source(UNUSED, "dropout and stochastic depth come from the spec"),
        "regularization_by_length": _BY_LENGTH,
    },
}
#: Regime fields that are names or notes rather than recipe values.
NOT_RECIPE = ("name", "description", "base")


def regime_fields() -> list[str]:
    """The recipe fields of a Regime, in declaration order (``NOT_RECIPE`` left out)."""
    return [f.name for f in dataclasses.fields(Regime) if f.name not in NOT_RECIPE]


def source_of(regime: Regime, field: str) -> Source:
    """The source of ``regime``'s ``field``: its named regime's, or ``override`` where the user set it.

    Fields that ``Regime.with_epochs`` rescales (the warm-up, the step epochs) are compared with the
    named regime at this regime's length, so setting only ``epochs`` makes ``epochs`` an override and
    leaves the warm-up its named regime's source, saying it was scaled."""
    named = REGIMES.get(regime.base or regime.name)
    if named is None:
        return Source(OVERRIDE, f"regime {regime.name!r} is not derived from a named regime")
    value = getattr(regime, field)
    if value == getattr(named, field):
        return SOURCES[named.name][field]
    shaped = named.with_epochs(regime.epochs)
    if field != "epochs" and value == getattr(shaped, field):
        source = SOURCES[named.name][field]
        return Source(source.kind, f"{source.where}; scaled to {regime.epochs} of {named.epochs} epochs, as the "
                                   f"regime's shape keeps it (named value {_show(getattr(named, field))})")
    return Source(OVERRIDE, f"{named.name} has {_show(getattr(named, field))}")


def regime_sources(regime: Regime, spec: ArchSpec | None = None) -> list[dict]:
    """One row per recipe value: ``{"field", "value", "source", "where"}`` (see the module docstring).

    Every recipe field of ``regime``, then ``lr`` (derived), then, given ``spec``, the effective
    regularisation for that network and its ``zero_init_residual``.
    """
    rows = [_row(f, getattr(regime, f), source_of(regime, f)) for f in regime_fields()]
    rows.append(_row("lr", regime.lr, Source(source_of(regime, "lr_per_256").kind,
                                             f"lr_per_256 x batch_size / 256 = {regime.lr:g}")))
    if regime.length_factor != 1:
        why = (f"x {regime.length_factor:.4g} = {regime.epochs} / {regime.named.epochs} epochs "
               f"(regularization_by_length, ours)")
        rows.append(_row("effective_regularization_scale", regime.effective_regularization_scale,
                         Source(OURS, f"regularization_scale {regime.regularization_scale:g} {why}")))
        rows.append(_row("effective_ema_decay", regime.effective_ema_decay,
                         Source(OURS, f"ema_decay {regime.ema_decay:g} with its horizon 1 / (1 - decay) {why}")))
    if spec is not None:
        rows += spec_sources(regime, spec)
    return rows


def spec_sources(regime: Regime, spec: ArchSpec) -> list[dict]:
    """The rows of the values that depend on the network: effective regularisation and zero-init."""
    reg = regime.regularization(spec)
    rows = [_row(f"effective_{field}", reg[field], _effective_source(regime, spec, field, reg))
            for field in ("dropout", "stochastic_depth", "randaugment_layers", "randaugment_magnitude")]
    rows.append(_row("zero_init_residual", spec.zero_init_residual, _zero_init_source(spec)))
    return rows


def _zero_init_source(spec: ArchSpec) -> Source:
    """ResNet-RS networks zero-initialise each block's last BN (the official code always does)."""
    official = Source(OFFICIAL, f"{TPU}resnet_model.py: each block's last batch norm has init_zero=True")
    if is_resnet_rs(spec):
        return official if spec.zero_init_residual else Source(OVERRIDE, f"the official code zero-initialises "
                                                                         f"it ({official.where})")
    torchvision = "pytorch/vision torchvision/models/resnet.py: zero_init_residual=False by default"
    return Source(OVERRIDE, f"set in the spec; {torchvision}") if spec.zero_init_residual else \
        Source(OFFICIAL, torchvision)


def is_resnet_rs(spec: ArchSpec) -> bool:
    """Whether ``spec`` has the ResNet-RS architecture (ResNet-D stem and shortcut, conv stem pool, SE 0.25)."""
    return (spec.stem, spec.stem_pool, spec.downsample, spec.se_ratio) == ("deep", "conv", "d", 0.25)


def _effective_source(regime: Regime, spec: ArchSpec, field: str, reg: dict) -> Source:
    """Where the effective ``field`` (after "auto", "spec" and regularization_scale) comes from."""
    if field == "randaugment_layers":
        if regime.randaugment_layers and not reg["randaugment_layers"]:  # no magnitude, no ops
            return _effective_source(regime, spec, "randaugment_magnitude", reg)
        return source_of(regime, "randaugment_layers")
    value = getattr(regime, field)
    if value == "spec":
        return Source(source_of(regime, field).kind, f"the spec's {field}")
    if value != "auto":
        return source_of(regime, field)
    key = {"dropout": "dropout_rate", "stochastic_depth": "drop_connect_rate",
           "randaugment_magnitude": "randaug_magnitude"}[field]
    config = official_config_of(spec)
    if config:
        base = Source(OFFICIAL, f"{TPU}resnet_rs/configs/{config}: {key}")
    else:
        bounds = ", ".join(f"{b / 1e9:.3g}" for b, _ in size_table()[:-1])
        base = Source(OURS, f"not an official config: the {key} of the configs of its FLOPs (bounds {bounds} G "
                            f"fvcore, the geometric midpoints between neighbouring configs)")
    scale = regime.effective_regularization_scale
    if scale == 1:
        return base
    if regime.length_factor != 1:
        return Source(OURS, f"{base.where} x effective_regularization_scale {scale:.4g} (regularization_by_length)")
    scale_source = source_of(regime, "regularization_scale")
    return Source(scale_source.kind, f"{base.where} x regularization_scale {scale:g} ({scale_source.kind})")


def _row(field: str, value, source: Source) -> dict:
    return {"field": field, "value": _show(value), "source": source.kind, "where": source.where}


def _show(value):
    """A value as the tables print it: tuples as lists, floats without noise."""
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


def sources_text(rows: list[dict]) -> str:
    """The rows as an aligned plain-text table (``archscale train --show-regime``)."""
    width = max(len(r["field"]) for r in rows)
    vwidth = max(len(str(r["value"])) for r in rows)
    return "\n".join(f"  {r['field']:{width}s}  {str(r['value']):{vwidth}s}  {r['source']}: {r['where']}"
                     for r in rows)


def sources_markdown(rows: list[dict]) -> str:
    """The rows as a Markdown table (README, the report's Run section)."""
    lines = ["| field | value | source | where |", "|---|---|---|---|"]
    lines += [f"| `{r['field']}` | {r['value']} | {r['source']} | {r['where']} |" for r in rows]
    return "\n".join(lines)


def rs_config_rows() -> list[dict]:
    """The official per-model settings, one row per config file (for tables and tests)."""
    return [{"config": rs_config_file(d, r), "depth": d, "resolution": r, "dropout": v[0],
             "stochastic_depth": v[1], "randaugment_magnitude": v[2]} for (d, r), v in RS_CONFIGS.items()]
