import ast
import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import random_spec
from test_block_forms import BAD_COMBINATIONS

from scaling import NAMED_DEPTHS, PRESETS, ArchScaleError, ArchSpec, get_preset, load_spec, spec_from_dict


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_round_trip_yaml_and_json(name):
    spec = PRESETS[name]
    assert ArchSpec.from_yaml(spec.to_yaml()) == spec
    assert ArchSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["depth"] == spec.depth


def test_random_specs_round_trip():
    rng = random.Random(1)
    for _ in range(50):
        spec = random_spec(rng)
        assert ArchSpec.from_yaml(spec.to_yaml()) == spec
        assert ArchSpec.from_dict(json.loads(spec.to_json())) == spec


def test_spec_file_with_preset_and_overrides(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("preset: resnext50_32x4d\nresolution: 160\nwidth_multiplier: 1.5\n")
    spec = load_spec(f)
    assert spec == get_preset("resnext50_32x4d").replace(resolution=160, width_multiplier=1.5)
    j = tmp_path / "s.json"
    j.write_text(spec.to_json())
    assert load_spec(j) == spec


def test_named_depths_follow_torchvision_and_resnet_rs():
    assert NAMED_DEPTHS[("basic", 4)][18] == (2, 2, 2, 2)
    assert NAMED_DEPTHS[("basic", 4)][34] == (3, 4, 6, 3)
    assert NAMED_DEPTHS[("bottleneck", 4)][101] == (3, 4, 23, 3)
    assert NAMED_DEPTHS[("bottleneck", 4)][152] == (3, 8, 36, 3)
    assert NAMED_DEPTHS[("bottleneck", 4)][200] == (3, 24, 36, 3)
    assert NAMED_DEPTHS[("bottleneck", 4)][270] == (4, 29, 53, 4)
    assert NAMED_DEPTHS[("bottleneck", 4)][350] == (4, 36, 72, 4)
    assert NAMED_DEPTHS[("bottleneck", 4)][420] == (4, 44, 87, 4)
    for (block, _), table in NAMED_DEPTHS.items():
        per = 3 if block == "bottleneck" else 2
        for depth, layout in table.items():  # every name is within 2 of its layer count
            assert abs(per * sum(layout) + 2 - depth) <= 2, (block, depth)


def test_explicit_layout_and_depth_number():
    spec = ArchSpec(depth=[4, 29, 53, 4])
    assert spec.depth == (4, 29, 53, 4) and spec.layers == (4, 29, 53, 4)
    assert spec.depth_number == 270  # a named layout keeps its name
    assert ArchSpec(depth=[1, 1, 1, 1]).depth_number == 14
    assert ArchSpec(depth=50).slug() == "d50-w1-c1x64-r224"
    assert ArchSpec(depth=[1, 2, 1, 1], width_multiplier=0.25).slug() == "d1_2_1_1-w0.25-c1x64-r224"


def test_stem_pool_auto_resolves():
    assert ArchSpec(stem="cifar", widths=(16, 32, 64), depth=20, block="basic", resolution=32).stem_pool == "none"
    assert ArchSpec().stem_pool == "max"


def test_a_default_stem_pool_follows_a_changed_stem_and_an_explicit_one_stays():
    from scaling import get_preset

    assert get_preset("resnet50").replace(stem="cifar").stem_pool == "none"
    assert get_preset("resnext29_8x64d").replace(stem="imagenet").stem_pool == "max"
    assert spec_from_dict({"preset": "resnet50", "stem": "cifar"}).stem_pool == "none"
    assert get_preset("resnetrs50").replace(stem="cifar").stem_pool == "conv"  # ResNet-RS's own choice
    assert get_preset("resnet50").replace(stem="cifar", stem_pool="max").stem_pool == "max"
    with pytest.raises(ArchScaleError, match="unknown ArchSpec field.*did you mean 'cardinality'"):
        get_preset("resnet50").replace(cardinalty=2)


def test_yaml_numbers_are_coerced():
    spec = ArchSpec.from_yaml("depth: 50\nwidth_multiplier: 2\ncardinality: 32.0\nbottleneck_width: 4\n")
    assert spec.width_multiplier == 2.0 and isinstance(spec.width_multiplier, float)
    assert spec.cardinality == 32 and isinstance(spec.cardinality, int)


BAD = [
    (dict(depth=0), "depth", "positive"),
    (dict(depth=-50), "depth", "positive"),
    (dict(depth=[3, 0, 6, 3]), "depth", "at least one block"),
    (dict(depth=49), "depth", "not a named depth"),
    (dict(depth=18), "depth", "set block: basic"),
    (dict(depth=[3, 4, 6]), "depth", "one block count per width"),
    (dict(widths=(64, 0, 256, 512)), "widths", "positive"),
    (dict(width_multiplier=0), "width_multiplier", "> 0"),
    (dict(width_multiplier=-1.0), "width_multiplier", "> 0"),
    (dict(widen_factor=float("inf")), "widen_factor", "> 0"),
    (dict(width_multiplier=0.001), "width_multiplier", "no channels"),
    (dict(stem_width=0), "stem_width", ">= 1"),
    (dict(cardinality=0), "cardinality", ">= 1"),
    (dict(block="basic", depth=18, cardinality=32), "cardinality", "basic blocks"),
    (dict(block="resnext"), "block", "unknown block 'resnext'; known: basic, bottleneck"),
    (dict(stem="stem7"), "stem", "unknown stem 'stem7'"),
    (dict(downsample="c"), "downsample", "unknown downsample 'c'"),
    (dict(bottleneck_width=2, width_multiplier=0.25), "bottleneck_width", "rounds to 0"),
    (dict(resolution=0), "resolution", ">= 1"),
    (dict(radix=-1), "radix", ">= 0"),
    (dict(se_ratio=1.5), "se_ratio", "<= 1 (0 = no SE)"),
    (dict(dropout=1.0), "dropout", "< 1"),
    (dict(radix=2, preact=True), "radix", "pre-activation"),
    (dict(cardinality=2.5), "cardinality", "whole number"),
    (dict(preact="yes"), "preact", "true or false"),
]


BAD += BAD_COMBINATIONS


@pytest.mark.parametrize("fields,field,words", BAD, ids=[f"{b[1]}-{i}" for i, b in enumerate(BAD)])
def test_invalid_specs_name_the_field(fields, field, words):
    with pytest.raises(ArchScaleError) as e:
        ArchSpec(**fields)
    assert e.value.field == field
    assert words in str(e.value)
    assert "\n" not in str(e.value)


def test_unknown_field_and_preset():
    with pytest.raises(ArchScaleError, match="did you mean 'cardinality'") as e:
        ArchSpec.from_dict({"cardinalty": 32})
    assert e.value.field == "cardinalty"
    with pytest.raises(ArchScaleError, match="did you mean 'resnet50'") as e:
        get_preset("resnet5")
    assert e.value.field == "preset"


def test_malformed_yaml():
    with pytest.raises(ArchScaleError, match="not valid YAML"):
        ArchSpec.from_yaml("depth: [50\n")
    with pytest.raises(ArchScaleError, match="mapping"):
        ArchSpec.from_yaml("- 50\n")


def test_a_too_small_resolution_still_makes_a_spec():
    # whether the input fits the downsampling is scaling.check_fits's question (tests/test_complexity.py)
    spec = get_preset("resnet50").replace(resolution=16)
    assert spec.resolution == 16 and ArchSpec.from_json(spec.to_json()) == spec


# ----- a spec is plain data: no torch ---------------------------------------------------------
ROOT = Path(__file__).resolve().parents[1]
TORCH = ("torch", "torchvision", "fvcore")


def _imports(module: str) -> set[str]:
    """Every module an import statement of ``module`` names, at any level of the file (lazy ones too)."""
    package = ROOT / module.replace(".", "/")
    path = package / "__init__.py" if package.is_dir() else package.with_suffix(".py")
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            parts = module.split(".")
            base = ".".join(parts[:len(parts) - node.level] + [node.module] if node.level else [node.module]) \
                if node.module else ".".join(parts[:len(parts) - node.level])
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names
                         if (ROOT / base.replace(".", "/") / f"{a.name}.py").is_file())
    return names


@pytest.mark.parametrize("start", ["scaling.spec", "scaling.presets", "scaling.analytic"])
def test_spec_modules_reach_no_module_that_imports_torch(start):
    parent, todo = {start: None}, [start]
    while todo:
        module = todo.pop()
        for name in _imports(module):
            if name.split(".")[0] == "scaling" and name not in parent:
                parent[name] = module
                todo.append(name)
            elif name.split(".")[0] in TORCH:
                chain = [module]
                while parent[chain[-1]]:
                    chain.append(parent[chain[-1]])
                pytest.fail(f"{' <- '.join(chain)} imports {name}")
    assert "scaling.spec" in parent  # the walk went somewhere


def test_specs_presets_and_closed_form_counts_import_no_torch():
    code = textwrap.dedent("""
        import sys
        import scaling.spec
        spec = scaling.spec.ArchSpec(depth=50, cardinality=32, bottleneck_width=4, resolution=160)
        from scaling import PRESETS, analytic_counts, check_fits, complexity, get_preset, min_resolution
        from scaling import spec_from_dict
        check_fits(spec)
        analytic_counts(spec)
        min_resolution(spec)
        spec_from_dict({"preset": "resnest50", "resolution": 160})
        for name in PRESETS:  # every block and attention module's closed form
            complexity(get_preset(name), counter="analytic")
        print(sorted(m for m in sys.modules if m.split(".")[0] in %r))
    """ % (TORCH,))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"


def test_basic_blocks_are_named_without_groups_and_bottlenecks_keep_theirs():
    from scaling.spec import legacy_name

    assert get_preset("resnet18").slug() == "d18-w1-r224"  # cardinality does not apply to basic blocks
    assert get_preset("resnext50_32x4d").slug() == "d50-w1-c32x4-r224" and get_preset("resnet50").slug() == \
        "d50-w1-c1x64-r224"
    assert legacy_name("d18-w1-r224-se0.25", "basic", 1, 64) == "d18-w1-c1x64-r224-se0.25"
    assert legacy_name("d50-w1-c32x4-r224", "bottleneck", 32, 4) == "d50-w1-c32x4-r224"
