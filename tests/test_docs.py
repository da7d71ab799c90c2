"""docs/: the README's figure cannot go stale. `make docs` (docs/make_figures.py) copies the demo
run's report figure and writes a sidecar JSON of the networks drawn; the test checks them against
the demo spec as the planner expands it today, and the sidecar against the PNG's bytes."""
import hashlib
import importlib.util
import json
from pathlib import Path

import pytest

from experiments.results.schema import EVENTS, MANIFEST, PLAN
from experiments.sweep.spec import load_sweep, make_plan
from scaling import ArchScaleError
from scaling.yamlio import read_mapping

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "experiments" / "configs" / "digits_demo.yaml"
SIDECAR = ROOT / "docs" / "demo_pareto_flops.json"


def make_figures_module():
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "docs" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_figure_draws_the_networks_of_the_current_demo_spec():
    side = json.loads(SIDECAR.read_text())
    png = ROOT / "docs" / side["figure"]
    assert hashlib.sha256(png.read_bytes()).hexdigest() == side["png_sha256"]  # the sidecar is this PNG's
    readme = (ROOT / "README.md").read_text()
    assert f"](docs/{side['figure']})" in readme
    assert side["spec"] == read_mapping(DEMO, "sweep", "a sweep")  # drawn from a run of today's demo spec
    trials, _ = make_plan(load_sweep(DEMO), strict_data=False)
    planned = {}
    for t in trials:
        flops, params, seeds = planned.get(t["name"], (t["flops"], t["params"], set()))
        planned[t["name"]] = (flops, params, seeds | {t["seed"]})
    assert {n["name"]: (n["flops"], n["params"], n["seeds"]) for n in side["networks"]} == {
        name: (int(f), int(p), len(s)) for name, (f, p, s) in planned.items()}
    n_seeds = {len(s) for _, _, s in planned.values()}
    assert f"sweeps {len(planned)} tiny ResNeXts with {'two' if n_seeds == {2} else n_seeds} seeds each" in readme


def fake_run(folder: Path, statuses=("done", "done")) -> Path:
    """A finished two-trial run of one network with its report's figure, as the store writes it."""
    trials = [{"trial_id": f"n1__rs-10__s{s}", "name": "n1", "regime": "rs-10", "epochs": 1, "seed": s,
               "params": 1000, "flops": 5000, "train_flops": 1, "config": {}} for s in range(len(statuses))]
    (folder / "report" / "figures").mkdir(parents=True)
    (folder / "report" / "figures" / "pareto_flops.png").write_bytes(b"\x89PNG fake figure")
    (folder / PLAN).write_text(json.dumps({"name": "demo", "trials": trials}))
    (folder / MANIFEST).write_text(json.dumps({"name": "demo", "spec": {"name": "demo", "seeds": [0, 1]}}))
    events = [{"event": "end", "trial_id": t["trial_id"], "status": st, "time": 1.0}
              for t, st in zip(trials, statuses) if st != "pending"]
    (folder / EVENTS).write_text("".join(json.dumps(e) + "\n" for e in events))
    return folder


def test_make_figures_copies_the_report_figure_and_describes_it(tmp_path):
    run = fake_run(tmp_path / "run")
    written = make_figures_module().make_figures(run, tmp_path / "docs")
    assert sorted(p.name for p in written) == ["demo_pareto_flops.json", "demo_pareto_flops.png"]
    assert (tmp_path / "docs" / "demo_pareto_flops.png").read_bytes() == b"\x89PNG fake figure"
    side = json.loads((tmp_path / "docs" / "demo_pareto_flops.json").read_text())
    assert side["networks"] == [{"name": "n1", "flops": 5000, "params": 1000, "seeds": 2}]
    assert side["png_sha256"] == hashlib.sha256(b"\x89PNG fake figure").hexdigest() and side["sweep"] == "demo"


def test_make_figures_refuses_an_unfinished_run_or_one_without_its_report(tmp_path):
    module = make_figures_module()
    with pytest.raises(ArchScaleError, match="1 trials of .* have not finished"):
        module.make_figures(fake_run(tmp_path / "a", ("done", "pending")), tmp_path / "docs")
    run = fake_run(tmp_path / "b")
    (run / "report" / "figures" / "pareto_flops.png").unlink()
    with pytest.raises(ArchScaleError, match="write the run's report first"):
        module.make_figures(run, tmp_path / "docs")
    assert not (tmp_path / "docs").exists()
