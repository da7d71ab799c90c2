"""Moving weights between the ResNeXt paper's three equivalent bottleneck forms (its fig. 3).

"grouped" keeps each bottleneck's conv1/conv2 and their BNs on the block; "branches" and "concat"
hold the same layers, under the same names, inside ``branches.N`` (``scaling.blocks.CardinalBranch``).
"""
from __future__ import annotations

import torch

from .errors import ArchScaleError
from .plan import stage_plan
from .spec import ArchSpec


def convert_block_form(state_dict: dict[str, torch.Tensor], spec: ArchSpec, to_form: str) -> dict[str, torch.Tensor]:
    """The weights of a ``spec`` model (built in ``spec.block_form``) for the same network in ``to_form``.

    Returns a new state dict that loads with ``strict=True`` into
    ``build_model(spec.replace(block_form=to_form))`` and computes the same function (eval mode; in
    training mode too, as BN statistics are per channel). The conversion is exact: a branch's conv1,
    conv2 and their BN parameters and running statistics are its d-channel slice (dim 0) of the
    grouped block's, and a branch's conv3 in the "branches" form is its slice of the input
    channels (dim 1) of the shared conv3; converting back concatenates them. Each branch gets a copy
    of ``num_batches_tracked``. Keys outside the bottlenecks' cardinal paths pass through unchanged.
    """
    if to_form == spec.block_form:
        return dict(state_dict)
    target = spec.replace(block_form=to_form)  # validates to_form and its combinations
    grouped = state_dict if spec.block_form == "grouped" else _merge_branches(state_dict, spec)
    return dict(grouped) if to_form == "grouped" else _split_branches(grouped, target)


def _branch_layers(spec: ArchSpec) -> tuple[str, ...]:
    """Names of the layers a CardinalBranch holds in ``spec.block_form``."""
    names = ("conv1", "bn2", "conv2", "bn3") if spec.preact else ("conv1", "bn1", "conv2", "bn2")
    return names + (("conv3",) if spec.block_form == "branches" else ())


def _block_prefixes(spec: ArchSpec) -> list[str]:
    return [f"layer{i + 1}.{j}." for i, j, *_ in stage_plan(spec)]


def _missing(key: str, spec: ArchSpec) -> ArchScaleError:
    return ArchScaleError("block_form", f"the state dict has no {key}; pass the spec of the model it came from "
                                        f"(block_form {spec.block_form!r}, cardinality {spec.cardinality})")


def _merge_branches(sd: dict, spec: ArchSpec) -> dict:
    """"branches"/"concat" state dict -> grouped: concatenate the C branches' tensors."""
    out, n, layers = {}, spec.cardinality, _branch_layers(spec)
    for prefix in _block_prefixes(spec):
        first = f"{prefix}branches.0."
        if not any(k.startswith(first) for k in sd):
            raise _missing(first + "conv1.weight", spec)
    for key, value in sd.items():
        prefix, _, rest = key.partition("branches.")
        if not rest or not prefix.startswith("layer"):
            out[key] = value
            continue
        branch, name, param = rest.split(".", 2)
        if branch != "0":
            continue
        if name not in layers:
            raise ArchScaleError("block_form", f"unexpected key {key} for block_form {spec.block_form!r}")
        parts = []
        for b in range(n):
            k = f"{prefix}branches.{b}.{name}.{param}"
            if k not in sd:
                raise _missing(k, spec)
            parts.append(sd[k])
        out[f"{prefix}{name}.{param}"] = (parts[0].clone() if parts[0].dim() == 0
                                          else torch.cat(parts, dim=1 if name == "conv3" else 0))
    return out


def _split_branches(sd: dict, spec: ArchSpec) -> dict:
    """Grouped state dict -> ``spec.block_form``: slice each cardinal path's channels into branches.N."""
    n, layers = spec.cardinality, _branch_layers(spec)
    per_block: dict[str, list[str]] = {}
    for prefix in _block_prefixes(spec):
        if prefix + "conv1.weight" not in sd:
            raise _missing(prefix + "conv1.weight", spec)
        per_block[prefix] = [k for k in sd if k.startswith(prefix) and k[len(prefix):].split(".")[0] in layers]
    owner = {k: prefix for prefix, keys in per_block.items() for k in keys}
    out = {}
    for key, value in sd.items():
        prefix = owner.get(key)
        if prefix is None:
            out[key] = value
        elif key == per_block[prefix][0]:  # emit the whole block's branches, branch by branch
            for b in range(n):
                for k in per_block[prefix]:
                    t, name = sd[k], k[len(prefix):].split(".")[0]
                    part = t.clone() if t.dim() == 0 else t.chunk(n, dim=1 if name == "conv3" else 0)[b].clone()
                    out[f"{prefix}branches.{b}.{k[len(prefix):]}"] = part
    return out
