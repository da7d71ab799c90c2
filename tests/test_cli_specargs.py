"""experiments/cli/specargs.py: one command-line flag per ArchSpec field, values parsed as YAML."""
import dataclasses

import pytest

from experiments.cli import build_parser, specargs
from scaling.spec import ArchSpec


@pytest.mark.parametrize("text,value", [("50", 50), ("1.5", 1.5), ("1e-4", 1e-4), ("true", True),
                                        ("3,4,6,3", [3, 4, 6, 3]), ("deep", "deep"), ("[", "[")])
def test_parse_value(text, value):
    assert specargs.parse_value(text) == value


def test_every_archspec_field_is_a_flag():
    parser = build_parser()
    for command in ("count", "train"):
        args = parser.parse_args([command, "--cardinality", "32", "--se-ratio", "0.25"])
        assert specargs.spec_overrides(args) == {"cardinality": 32, "se_ratio": 0.25}
    flags = {a.dest for a in parser._subparsers._group_actions[0].choices["count"]._actions}
    assert {"spec_" + f.name for f in dataclasses.fields(ArchSpec)} <= flags


def test_a_new_archspec_field_is_a_flag_with_no_other_edit(monkeypatch):
    extended = dataclasses.make_dataclass("Extended", [("new_knob", int, 0)], bases=(ArchSpec,), frozen=True)
    monkeypatch.setattr(specargs, "ArchSpec", extended)
    args = build_parser().parse_args(["count", "resnet50", "--new-knob", "3", "--depth", "101"])
    assert specargs.spec_overrides(args) == {"depth": 101, "new_knob": 3}
