"""The kinds of residual block: one table, filled by the blocks' closed forms as they are defined.

A kind is registered where its torch-free closed form is written (``scaling/analytic.py``)::

    @register_block("basic", expansion=1, convs=2, module="scaling.blocks:BasicBlock")
    def basic_block_cx(cx, cin, planes, stride, *, drop_prob, downsample, ...): ...

and its module is the class that ``module`` names (``scaling/blocks.py``), taking the same
keyword-only arguments (``tests/test_complexity.py`` checks every kind's two signatures match and
that their counts equal fvcore's). So a new kind of block is two files: its module, and its closed
form with this decorator. Everything else reads the table: the ArchSpec's ``block`` choices and
expansion, the model builder, the closed-form counter and equal-FLOP matching.

This module imports no torch (the spec and the counter import it); ``module`` is imported only
when a model is built.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Callable

__all__ = ["BlockKind", "BLOCK_KINDS", "register_block", "block_kinds", "block_choices"]


@dataclass(frozen=True)
class BlockKind:
    """A kind of residual block."""

    name: str
    #: Output channels per ``planes`` (1 basic, 4 bottleneck).
    expansion: int
    #: Weighted layers per block, for the nominal depth of a custom layout (2 basic, 3 bottleneck).
    convs: int
    #: The closed form: ``f(cx, cin, planes, stride, *, drop_prob, <ArchSpec fields>)`` (torch-free).
    closed_form: Callable
    #: "package.module:Class" of the nn.Module, built as ``Class(cin, planes, stride, drop_prob=, ...)``.
    module: str
    #: Takes the bottleneck's options (cardinality, bottleneck_width, radix, avd, SK, block_form);
    #: a kind that does not accepts only their defaults, and ``widen_factor`` instead.
    grouped: bool = True
    #: A value of ``ArchSpec.block``. False for a kind another field selects (``sk_bottleneck``: a
    #: bottleneck with ``sk_paths`` set; see ``scaling.plan.block_kind``).
    selectable: bool = True

    def module_class(self) -> type:
        """The nn.Module class (imports torch)."""
        mod, _, cls = self.module.partition(":")
        return getattr(importlib.import_module(mod), cls)


#: Every kind, by name, in registration order.
BLOCK_KINDS: dict[str, BlockKind] = {}


def register_block(name: str, *, expansion: int, convs: int, module: str, grouped: bool = True,
                   selectable: bool = True):
    """Decorator for a closed form: registers the kind ``name`` with it (see the module docstring)."""
    def add(closed_form: Callable) -> Callable:
        if name in BLOCK_KINDS and BLOCK_KINDS[name].closed_form.__qualname__ != closed_form.__qualname__:
            raise ValueError(f"block kind {name!r} is already registered")
        BLOCK_KINDS[name] = BlockKind(name, expansion, convs, closed_form, module, grouped, selectable)
        return closed_form
    return add


def block_kinds() -> dict[str, BlockKind]:
    """The table, once every built-in kind has registered (they do when scaling.analytic loads)."""
    from . import analytic  # noqa: F401  (its closed forms register the kinds)

    return BLOCK_KINDS


def block_choices() -> tuple[str, ...]:
    """The values ``ArchSpec.block`` takes."""
    return tuple(name for name, kind in block_kinds().items() if kind.selectable)
