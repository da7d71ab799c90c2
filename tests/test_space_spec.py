import pytest

from scaling import ArchScaleError
from scaling.conventions import DATASET_TRAIN_SIZES
from search_spaces import load_space, parse_space


@pytest.mark.parametrize("data,field,words", [
    ({"base": "resnet50", "axes": {"cardinalty": [1, 2]}}, "axes.cardinalty", "did you mean 'cardinality'"),
    ({"base": "resnet50", "axis": {"depth": [50]}}, "axis", "did you mean 'axes'"),
    ({"base": "resnet50", "axes": {"depth": []}}, "axes.depth", "non-empty list"),
    ({"base": "resnet50", "axes": {"width_multiplier": {"low": 1, "high": 2}}}, "axes.width_multiplier", "kind: random"),
    ({"base": "resnet50", "kind": "random", "axes": {"depth": [50]}}, "samples", "samples: N"),
    ({"base": "resnet50", "kind": "sweep", "axes": {"depth": [50]}}, "kind", "known: grid, random, scaling"),
    ({"base": "resnet5", "axes": {"depth": [50]}}, "preset", "did you mean"),
    ({"base": "resnet50"}, "axes", "varies nothing"),
    ({"base": "resnet50", "paired": [{"cardinality": [1, 2], "bottleneck_width": [64]}]}, "paired[0]", "different lengths"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "constraints": {"max_flop": 1}}, "constraints.max_flop", "did you mean"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "match": {"solve": "depthh", "target": "resnet50"}}, "match.solve", "unknown field to solve 'depthh' (did you mean 'depth'?)"),
    ({"base": "resnet50", "kind": "scaling", "strategies": ["deep"]}, "strategies", "did you mean 'depth'"),
    ({"base": "resnet50", "kind": "scaling", "tolerance": "abc"}, "tolerance", "number > 0 (0.1 = within 10 %)"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "seed": "abc"}, "seed", "whole number"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "dataset_size": 0}, "dataset_size", ">= 1"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "dataset_size": "cifar"}, "dataset_size", "did you mean 'cifar10'"),
    ({"base": "resnet50", "axes": {"cardinality": [1]},
      "match": {"solve": "bottleneck_width", "target": "resnet50", "tolerance": "abc"}}, "match.tolerance", "> 0"),
    ({"base": "resnet50", "kind": "random", "samples": 2,
      "axes": {"width_multiplier": {"low": 0.5, "high": 2, "step": "abc"}}}, "axes.width_multiplier.step", "number > 0"),
    ({"base": "resnet50", "kind": "random", "samples": 2,
      "axes": {"width_multiplier": {"low": 0.5, "high": 2, "step": -0.25}}}, "axes.width_multiplier.step", "number > 0"),
    ({"base": "resnet50", "kind": "random", "samples": 2,
      "axes": {"width_multiplier": {"low": 0.6, "high": 0.9, "dist": "pow2"}}}, "axes.width_multiplier", "no power of two"),
    ({"base": "resnet50", "kind": "random", "samples": 2,
      "axes": {"width_multiplier": {"low": 0.5, "hi": 2}}}, "axes.width_multiplier.hi", "did you mean 'high'"),
    ({"base": "resnet50", "kind": "random", "samples": 2,
      "axes": {"width_multiplier": {"low": 0.5, "high": 2, "dist": "log"}}}, "axes.width_multiplier.dist",
     "known: uniform, log_uniform, pow2"),
    ({"base": "resnet50", "axes": {"depth": [50]}, "match": {"solve": "depth", "targt": "resnet50"}}, "match.targt",
     "did you mean 'target'"),
    ({"base": "resnet50", "kind": "scaling", "multipliers": [2, -1]}, "multipliers", "number > 0"),
    ({"base": "resnet50", "kind": "scaling", "regime_epochs": 0}, "regime_epochs", ">= 1"),
    ({"base": "resnet50", "kind": "random", "samples": True, "axes": {"depth": [50]}}, "samples", "whole number"),
])
def test_bad_space_specs_name_the_problem(data, field, words):
    with pytest.raises(ArchScaleError) as e:
        parse_space(data)
    assert e.value.field == field and words in str(e.value) and "\n" not in str(e.value)


def test_dataset_size_is_a_number_or_a_known_data_set():
    spec = {"base": "resnet50", "axes": {"depth": [50]}}
    assert parse_space(spec).dataset_size is None
    assert parse_space({**spec, "dataset_size": 1000}).dataset_size == 1000
    assert parse_space({**spec, "dataset_size": "imagenet"}).dataset_size == DATASET_TRAIN_SIZES["imagenet"]


def test_malformed_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("base: resnet50\naxes: {depth: [50, 101\n")
    with pytest.raises(ArchScaleError, match=r"not valid YAML \(line 3, column 1: expected ',' or ']'"):
        load_space(str(bad))
    with pytest.raises(ArchScaleError, match="no such file"):
        load_space(str(tmp_path / "missing.yaml"))
    with pytest.raises(ArchScaleError, match="neither a space preset nor a file.*did you mean 'resnet_rs'"):
        load_space("resnet_r")
