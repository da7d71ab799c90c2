"""archscale suggest: writes the next sweep's spec, which `archscale sweep --dry-run` accepts."""
import yaml
from test_suggest import finished_run, width_wins

from experiments.cli import main


def test_suggest_writes_a_spec_that_dry_runs(tmp_path, capsys):
    run = finished_run(tmp_path, width_wins)
    out = tmp_path / "next.yaml"
    assert main(["suggest", str(run), "--budget", "2x", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("# Next sweep of") and f"archscale sweep {out} --dry-run" in printed
    spec = yaml.safe_load(out.read_text())
    assert spec["space"]["kind"] == "scaling" and spec["space"]["multipliers"] == [2.0]
    assert main(["sweep", str(out), "--dry-run"]) == 0
    assert "grid_next (dry run)" in capsys.readouterr().out


def test_suggest_defaults_to_next_yaml_in_the_run_and_refuses_a_bad_budget(tmp_path, capsys):
    run = finished_run(tmp_path, width_wins, seeds=(0,))
    assert main(["suggest", str(run)]) == 0 and (run / "next.yaml").is_file()
    capsys.readouterr()
    assert main(["suggest", str(run), "--budget", "twice"]) == 2
    assert "error: budget:" in capsys.readouterr().err
