"""experiments/cli/list_.py: `archscale list presets|regimes|spaces|datasets`."""
import pytest

from experiments.cli import main
from experiments.data.datasets import DATASETS
from experiments.train.regimes import REGIMES
from scaling.presets import PRESETS
from search_spaces import space_presets


def lines(capsys):
    return capsys.readouterr().out.splitlines()


def test_list_presets_shows_every_preset_with_its_cost(capsys):
    assert main(["list", "presets"]) == 0
    out = lines(capsys)
    assert out[0].split() == ["name", "block", "depth", "C", "x", "d", "width", "res", "params", "(M)", "GFLOPs"]
    names = [ln.split()[0] for ln in out[1:-1]]
    assert names == list(PRESETS)
    resnet50 = next(ln.split() for ln in out if ln.startswith("resnet50 "))
    assert resnet50 == ["resnet50", "bottleneck", "50", "1x64", "1", "224", "25.56", "4.112"]
    assert "fvcore" in out[-1]


def test_list_regimes_spaces_and_datasets(capsys):
    assert main(["list", "regimes"]) == 0
    assert [ln.split()[0] for ln in lines(capsys)[1:-1]] == list(REGIMES)
    assert main(["list", "spaces"]) == 0
    spaces = [ln.split()[0] for ln in lines(capsys)]
    assert spaces == space_presets()
    assert main(["space", "list"]) == 0  # kept, and the same list
    assert [ln.split()[0] for ln in lines(capsys)] == spaces
    assert main(["list", "datasets"]) == 0
    out = lines(capsys)
    assert [ln.split()[0] for ln in out[:-1]] == list(DATASETS) == ["digits", "cifar10", "cifar100", "imagefolder", "synthetic"]
    assert "loader" in out[-1]


def test_list_of_something_unknown_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        main(["list", "models"])
    assert e.value.code == 2 and "invalid choice: 'models'" in capsys.readouterr().err
