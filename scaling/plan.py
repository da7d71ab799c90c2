"""What network an ArchSpec builds: its kind of block and the place, width and stride of each
block. Imports no torch; ``scaling.model`` builds the modules from it and ``scaling.analytic``
counts them in closed form (which also reads each block's keywords off the spec).
"""
from __future__ import annotations

from typing import Iterator

from .spec import ArchSpec


def block_kind(spec: ArchSpec) -> str:
    """"basic", "bottleneck", or "sk_bottleneck" (a bottleneck with a selective kernel for its 3x3)."""
    return "sk_bottleneck" if spec.sk_paths else spec.block


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
