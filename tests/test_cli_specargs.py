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


def test_each_flag_is_helped_by_its_fields_documentation():
    from scaling.fielddocs import field_docs

    count = build_parser()._subparsers._group_actions[0].choices["count"]
    by_dest = {a.dest: a for a in count._actions}
    docs = field_docs(ArchSpec)
    for f in dataclasses.fields(ArchSpec):
        action = by_dest["spec_" + f.name]
        assert action.help.startswith(docs[f.name].replace("%", "%%")) and "ArchSpec default" in action.help
    assert by_dest["spec_cardinality"].metavar == "CARDINALITY"
    help_text = count.format_help()
    assert "Groups of the bottleneck's 3x3 conv" in help_text and " V " not in help_text


def test_boolean_fields_are_on_off_flags():
    parser = build_parser()
    assert specargs.spec_overrides(parser.parse_args(["count", "resnet50", "--preact"])) == {"preact": True}
    assert specargs.spec_overrides(parser.parse_args(["count", "--no-shortcut", "resnet50"])) == {"shortcut": False}
    assert specargs.spec_overrides(parser.parse_args(["count", "resnet50"])) == {}  # not given: the preset's
    bools = [f.name for f in dataclasses.fields(ArchSpec) if isinstance(f.default, bool)]
    assert {"avd", "sk_dilated", "preact", "shortcut", "zero_init_residual"} <= set(bools)
    for name in bools:
        flag = name.replace("_", "-")
        assert specargs.spec_overrides(parser.parse_args(["train", f"--no-{flag}"])) == {name: False}


def test_count_with_a_boolean_flag_runs(capsys):
    from experiments.cli import main

    assert main(["count", "resnet18", "--preact", "--counter", "analytic", "--json"]) == 0
    import json

    assert json.loads(capsys.readouterr().out)["spec"]["preact"] is True
