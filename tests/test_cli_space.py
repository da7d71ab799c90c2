import json

import pytest

from experiments.cli import main


def test_space_resnet_rs_json_lists_all_175_configs(capsys):
    assert main(["space", "resnet_rs", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["n_configs"] == 175 and len(doc["configs"]) == 175
    row = doc["configs"][0]
    assert {"name", "params", "flops", "resolution", "train_flops_rs-10", "spec"} <= set(row)
    assert isinstance(row["params"], int) and isinstance(row["flops"], int)
    assert "1 multiply-add = 1 FLOP" in doc["flop_convention"]
    assert doc["totals"]["train_flops_rs-350"] == 35 * doc["totals"]["train_flops_rs-10"]


def test_space_equal_complexity_table(capsys):
    assert main(["space", "resnext_equal_complexity"]) == 0
    out = capsys.readouterr().out
    for cxd in ("1x64", "2x40", "4x24", "32x4"):
        assert cxd in out
    assert "TOTAL" in out and "1 multiply-add = 1 FLOP" in out
    # the totals are exact even where a pandas int64 sum would wrap around (these pass 2**63)
    assert main(["space", "resnext_equal_complexity", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for regime in ("rs-100", "rs-350"):
        exact = sum(r[f"train_flops_{regime}"] for r in doc["configs"])
        assert doc["totals"][f"train_flops_{regime}"] == exact
    assert exact > 2**63
    total_row = next(line for line in out.splitlines() if line.strip().startswith("TOTAL"))
    assert total_row.split()[-1] == f"{exact / 1e15:.4g}"


def test_space_csv_and_verify(capsys, tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("base: {block: basic, depth: 8, widths: [8, 16, 32], stem: cifar, resolution: 16}\n"
                 "axes: {width_multiplier: [1.0, 2.0], resolution: [16, 32]}\n")
    assert main(["space", str(f), "--format", "csv", "--verify", "2", "--dataset-size", "digits"]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("\n") == 5
    assert "verified 2 configs against fvcore: largest relative difference in params/FLOPs/activations = 0" in captured.err


def test_space_hours_from_measured_throughput(capsys, tmp_path):
    meas = tmp_path / "m.jsonl"
    meas.write_text(json.dumps({"flops": 1e9, "train_throughput": 100.0, "device": "cpu (2 threads)"}) + "\n")
    assert main(["space", "resnext_cifar", "--throughput", str(meas), "--regimes", "rs-10"]) == 0
    out = capsys.readouterr().out
    assert "hours rs-10" in out and "cpu (2 threads)" in out
    assert main(["space", "resnext_cifar", "--throughput", str(meas), "--regimes", "rs-10", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rate = 3 * 1e9 * 100.0  # training FLOPs per image x images/s
    assert doc["train_flops_per_s"] == pytest.approx(rate)
    for row in doc["configs"]:
        assert row["est_hours_rs-10"] == pytest.approx(row["train_flops_rs-10"] / rate / 3600)


def test_space_match_command(capsys):
    assert main(["space", "match", "--target", "resnet50", "--vary", "cardinality=1,2,4,8,32",
                 "--solve", "bottleneck_width", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [r["cardinality"] for r in doc["rows"]] == [1, 2, 4, 8, 32]
    assert [r["bottleneck_width"] for r in doc["rows"]][:3] == [64, 40, 24]
    assert main(["space", "match", "--target", "resnet50", "--vary", "cardinality=1,2,4,8,32",
                 "--solve", "bottleneck_width"]) == 0
    assert "ratio" in capsys.readouterr().out


def test_space_match_by_the_resnext_block_rule(capsys):
    assert main(["space", "match", "--target", "resnet50", "--vary", "cardinality=1,2,4,8,32",
                 "--solve", "bottleneck_width", "--match", "block", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["match"] == "block" and doc["target_block_params"] == 70_400
    assert [r["bottleneck_width"] for r in doc["rows"]] == [64, 40, 24, 14, 4]  # ResNeXt Table 2
    assert main(["space", "match", "--target", "resnet50", "--vary", "cardinality=8", "--solve",
                 "bottleneck_width", "--match", "block"]) == 0
    assert "by block" in capsys.readouterr().out


def test_space_scale_command(capsys):
    assert main(["space", "scale", "--base", "resnet50", "--strategies", "depth,resolution",
                 "--multipliers", "2,4"]) == 0
    out = capsys.readouterr().out
    assert out.count("yes") == 4 and "tolerance" in out
    assert main(["space", "scale", "--base", "resnetrs50", "--strategies", "resnet_rs", "--multipliers", "4",
                 "--regime", "rs-10", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["regime_epochs"] == 10 and "alpha = log(320/160)" in doc["rows"][0]["detail"]


@pytest.mark.parametrize("content,field", [
    ("base: resnet50\naxes: {cardinalty: [1, 2]}\n", "axes.cardinalty"),
    ("base: resnet50\naxes: {depth: [50, 101\n", "space"),
    ("base: resnet50\naxes: {depth: [50]}\nconstraints: {max_flops: 1M}\n", "space"),
    ("base: resnet50\naxes: {cardinality: [2]}\nmatch: {solve: bottleneck_width, target: 1K}\n", "space"),
])
def test_space_bad_input_exits_2_with_one_line(content, field, tmp_path, capsys):
    f = tmp_path / "bad.yaml"
    f.write_text(content)
    assert main(["space", str(f)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"error: {field}" in err


def test_space_match_unreachable_target_exits_2(capsys):
    assert main(["space", "match", "--target", "1K", "--base", "resnet50", "--solve", "bottleneck_width"]) == 2
    assert "out of reach" in capsys.readouterr().err


BIG = {"name": "big", "base": {"block": "bottleneck", "depth": [1, 1, 1], "widths": [8, 16, 32], "stem": "cifar",
                               "stem_width": 8, "resolution": 16, "num_classes": 10},
       "axes": {"width_multiplier": [0.5, 1.0, 1.5, 2.0], "resolution": [8, 16, 24],
                "cardinality": [1, 2, 4], "bottleneck_width": [4, 16]}}  # 72 points


def _big(tmp_path, monkeypatch):
    import yaml

    from experiments.cli import space

    monkeypatch.setattr(space, "SUMMARY_ABOVE", 30)  # the summary's threshold, lowered to keep the test fast

    f = tmp_path / "big.yaml"
    f.write_text(yaml.safe_dump(BIG))
    return str(f)


def test_a_big_space_prints_a_summary_and_all_prints_every_row(tmp_path, capsys, monkeypatch):
    import io

    import pandas as pd

    space = _big(tmp_path, monkeypatch)
    assert main(["space", space, "--format", "csv", "--regimes", "rs-10"]) == 0
    rows = pd.read_csv(io.StringIO(capsys.readouterr().out))  # every row, the independent reference
    n = len(rows)
    assert n > 30
    assert main(["space", space, "--regimes", "rs-10"]) == 0
    out, err = capsys.readouterr()
    steps = [line.split(" (")[0] for line in err.splitlines()]  # a big space says each step in a log
    assert steps == ["space big: 72 grid points", "space big: 72 networks checked and priced in 1 layout",
                     f"space big: {n} configs named"]
    lines = out.splitlines()
    assert f"summary of {n} configs" in out and len(lines) < 30 and max(map(len, lines)) < 200
    cheapest, dearest = rows.loc[rows["flops"].idxmin(), "name"], rows.loc[rows["flops"].idxmax(), "name"]
    at = {name: i for i, line in enumerate(lines) for name in (cheapest, dearest) if f" {name} " in line + " "}
    assert lines[at[cheapest] - 2].strip() == "the 5 cheapest:" and lines[at[dearest] - 2].strip() == "the 5 dearest:"
    budgets = lines[-2]
    assert f"<= {rows['flops'].max() / 1e6:.4g}M: {n}" in budgets
    assert main(["space", space, "--regimes", "rs-10", "--all"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == n + 4  # two header lines, the column names, TOTAL
    assert main(["space", space, "--regimes", "rs-10", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["configs"] is None and doc["n_configs"] == n and doc["cheapest"][0]["name"] == cheapest
    assert doc["range"]["flops"]["max"] == rows["flops"].max() and doc["totals"]["train_flops_rs-10"] == \
        int(rows["train_flops_rs-10"].sum())


def test_a_big_dry_run_prints_a_summary_with_the_same_totals_as_every_trial(tmp_path, capsys, monkeypatch):
    import yaml

    spec = tmp_path / "sweep.yaml"
    spec.write_text(yaml.safe_dump({"name": "big", "space": _big(tmp_path, monkeypatch), "regimes": ["rs-10", "rs-100"],
                                    "dataset": "digits", "seeds": 2, "output_dir": str(tmp_path / "out")}))
    assert main(["sweep", str(spec), "--dry-run", "--format", "json", "--all"]) == 0
    every = json.loads(capsys.readouterr().out)
    assert main(["sweep", str(spec), "--dry-run", "--format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["trials"] is None and summary["n_trials"] == every["n_trials"] == every["n_trials"] > 120
    assert summary["train_flops_total"] == every["train_flops_total"]
    assert main(["sweep", str(spec), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{every['n_trials']:,} trials over {every['n_trials'] // 4} configs" in out and "--all lists every config" in out and len(out.splitlines()) < 30


def test_space_scale_wraps_its_notes(capsys):
    assert main(["space", "scale", "--base", "resnetrs50", "--multipliers", "2,4", "--regime", "rs-10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 130  # the placement notes were 346-character lines
    assert any(line.startswith("[1] ") for line in lines) and "[1]" in lines[1 + 10]  # a table row points at it
