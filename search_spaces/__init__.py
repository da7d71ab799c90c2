"""search_spaces: sets of ArchSpecs.

Grids, paired axes and random samples over any ArchSpec field (``space``, parsed from YAML by
``space_spec``), the papers' spaces as presets (``presets/*.yaml``), equal-complexity matching by
FLOPs, params or the ResNeXt paper's block rule (``matching``), scaling strategies
(``strategies``), pricing for the dry run (``pricing``), and a space of millions of configs as one
priced table (``table``, numpy over arrays of fields by ``scaling.batch``). Uses scaling/ only. FLOPs follow
``scaling.conventions.FLOP_CONVENTION``.
"""
from .matching import MATCH_BY, MatchResult, block_params, match, match_flops, resolve_target
from .pricing import price, verify_against_fvcore
from .space import Config, Expansion, Space, config_name, trains_under
from .space_spec import load_space, parse_space, space_presets
from .strategies import STRATEGIES, ScaledConfig, scale, scale_all
from .table import SpaceTable, space_table

__all__ = ["Config", "Expansion", "MATCH_BY", "MatchResult", "STRATEGIES", "ScaledConfig", "Space", "block_params",
           "config_name", "load_space", "match", "match_flops", "parse_space", "price", "resolve_target", "scale",
           "scale_all", "space_presets", "space_table", "SpaceTable", "trains_under", "verify_against_fvcore"]
