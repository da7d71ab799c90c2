import json
import subprocess
import sys

import pytest
import torchvision

from experiments.cli import main
from scaling.conventions import FLOP_CONVENTION


def _json_lines(out):
    return [json.loads(line) for line in out.strip().splitlines()]


def test_count_json_gives_torchvision_params_and_fvcore_flops(capsys):
    from scaling import get_preset
    from scaling.counting import fvcore_counts

    assert main(["count", "resnet50", "resnext50_32x4d", "wide_resnet50_2", "--json"]) == 0
    rows = _json_lines(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["resnet50", "resnext50_32x4d", "wide_resnet50_2"]
    for r in rows:
        assert {"name", "params", "flops", "activations", "resolution"} <= set(r)
        tv = getattr(torchvision.models, r["name"])()
        assert r["params"] == sum(p.numel() for p in tv.parameters())
        assert (r["params"], r["flops"], r["activations"]) == fvcore_counts(get_preset(r["name"]), tv)
        assert r["resolution"] == 224 and isinstance(r["flops"], int)


def test_count_from_flags_and_spec_file(capsys, tmp_path):
    assert main(["count", "--depth", "50", "--cardinality", "32", "--bottleneck-width", "4",
                 "--width-multiplier", "1.5", "--resolution", "160", "--json", "--counter", "analytic"]) == 0
    row = _json_lines(capsys.readouterr().out)[0]
    assert row["name"] == "d50-w1.5-c32x4-r160" and row["resolution"] == 160
    assert row["spec"]["cardinality"] == 32 and row["spec"]["width_multiplier"] == 1.5
    f = tmp_path / "net.yaml"
    f.write_text("preset: resnet18\nresolution: 128\n")
    assert main(["count", "--spec", str(f), "resnet18", "--counter", "analytic"]) == 0
    out = capsys.readouterr().out
    assert f"GFLOPs ({FLOP_CONVENTION})" in out and "resnet18" in out and "d18-w1-r128" in out


def test_count_depth_list_flag(capsys):
    assert main(["count", "--depth", "1,1,1,1", "--resolution", "64", "--json"]) == 0
    assert _json_lines(capsys.readouterr().out)[0]["spec"]["depth"] == [1, 1, 1, 1]


def test_count_measure_table(capsys):
    assert main(["count", "--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar",
                 "--resolution", "16", "--measure", "--device", "cpu", "--batch-size", "2", "--iters", "1"]) == 0
    out = capsys.readouterr().out
    assert "train img/s" in out and "cpu (" in out


@pytest.mark.parametrize("argv,field", [
    (["count", "resnet5"], "preset"),
    (["count", "--cardinality", "0"], "cardinality"),
    (["count", "--block", "resnext"], "block"),
    (["count", "resnet50", "--resolution", "8"], "resolution"),
    (["count", "--depth", "-50"], "depth"),
    (["count", "--spec", "/nonexistent.yaml"], "spec"),
    (["count"], "preset"),
])
def test_count_user_errors_exit_2_with_one_line(argv, field, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f": {field}:" in err


def test_console_script_is_installed():
    proc = subprocess.run([sys.executable, "-m", "experiments.cli", "count", "resnet18", "--counter", "analytic"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "11.69" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "experiments.cli", "count", "nope"], capture_output=True, text=True)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
