"""What network an ArchSpec builds: its kind of block, the keywords every block takes, and the
place, width and stride of each block. Imports no torch.

The one place where the spec's flags become block keywords: ``scaling.model`` builds the modules
from it and ``scaling.analytic`` counts them in closed form.
"""
from __future__ import annotations

from typing import Any, Iterator

from .spec import ArchSpec

_SHARED = {"downsample": "downsample", "se_ratio": "se_ratio", "shortcut": "shortcut"}
_BOTTLENECK = {"cardinality": "cardinality", "base_width": "bottleneck_width", "widen": "widen_factor", "avd": "avd"}

#: For each kind of block, its keywords and the ArchSpec field each one reads.
BLOCK_FIELDS: dict[str, dict[str, str]] = {
    "basic": {"preact": "preact", **_SHARED},
    "bottleneck": {**_BOTTLENECK, "form": "block_form", "preact": "preact", "radix": "radix", **_SHARED},
    "sk_bottleneck": {**_BOTTLENECK, "sk_paths": "sk_paths", "sk_reduction": "sk_reduction",
                      "sk_min_width": "sk_min_width", "sk_dilated": "sk_dilated", **_SHARED},
}


def block_kind(spec: ArchSpec) -> str:
    """"basic", "bottleneck", or "sk_bottleneck" (a bottleneck with a selective kernel for its 3x3)."""
    return "sk_bottleneck" if spec.sk_paths else spec.block


def block_keywords(spec: ArchSpec) -> dict[str, Any]:
    """The keywords every block of ``spec`` takes besides its (cin, planes, stride, drop_prob)."""
    return {keyword: getattr(spec, name) for keyword, name in BLOCK_FIELDS[block_kind(spec)].items()}


def stage_plan(spec: ArchSpec) -> Iterator[tuple[int, int, int, int, int, float]]:
    """Yield (stage index, block index, in channels, planes, stride, drop-path rate) per block.

    The first block of every stage but the first strides by 2. Stochastic depth follows the
    ResNet-RS rule: stage i of n drops its residual branch with rate * (i + 2) / (n + 1).
    """
    cin = spec.stem_channels
    for i, (planes, blocks) in enumerate(zip(spec.stage_planes, spec.layers)):
        drop = spec.stochastic_depth * (i + 2) / (spec.num_stages + 1)
        for j in range(blocks):
            yield i, j, cin, planes, (2 if i > 0 and j == 0 else 1), drop
            cin = planes * spec.expansion
