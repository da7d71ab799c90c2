"""Costs measured once per network and device: the store, the cache, the sweep's cost step,
``archscale costs`` and the report's cost axes."""
from __future__ import annotations

import pandas as pd
import pytest
from sweep_helpers import tiny_sweep

from experiments.cli import main
from experiments.results.costs import (COSTS, cache_path, cached_rows, cost_key, cost_rows, network_fingerprint,
                                       read_costs, write_costs)
from experiments.results.schema import COST_COLUMNS, CostRecord
from experiments.sweep.costs import cost_step, cost_task_resources
from experiments.sweep.resources import Launch
from experiments.sweep.spec import load_sweep, prepare
from experiments.train import costs as measuring
from scaling import ArchSpec

FAST = {"warmup": 1, "repeats": 2, "min_block_s": 0.0, "iters": 2}


@pytest.fixture
def fast_timing(monkeypatch):
    """Measure with the fewest calls (what is tested is which networks get measured, not the figures);
    returns the list of requests measured."""
    monkeypatch.setitem(measuring.SETTINGS, "cpu", FAST)
    measured = []
    real = measuring.measure_request

    def spy(req, device, where):
        measured.append(req.name)
        return real(req, device, where)

    monkeypatch.setattr(measuring, "measure_request", spy)
    return measured


def in_process(fn, resources, *args):
    """Runs the cost task here instead of in Ray (what Ray would be asked for is checked apart)."""
    in_process.resources = resources
    return fn(*args)


def two_networks(out, **extra) -> tuple:
    """A prepared sweep of 2 networks x 2 regimes (another dropout each) x 2 seeds: 8 trials."""
    spec = tiny_sweep(out, widths=(1.0, 2.0), seeds=(0, 1),
                      regimes=[{"name": "rs-10", "epochs": 2}, {"name": "rs-10b", "base": "rs-10", "epochs": 2,
                                                                  "dropout": 0.3}], **extra)
    sweep = load_sweep(spec)
    trials, _ = prepare(sweep)
    return sweep, trials


def test_fingerprint_names_the_network_whatever_the_regime_sets():
    base = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", resolution=12)
    assert network_fingerprint(base) == network_fingerprint(base.replace(dropout=0.3, stochastic_depth=0.1))
    assert network_fingerprint(base) == network_fingerprint(base.to_dict())
    assert network_fingerprint(base) != network_fingerprint(base.replace(width_multiplier=2.0))
    assert network_fingerprint(base) != network_fingerprint(base.replace(resolution=16))


def test_store_keeps_one_row_per_key_and_the_newest_wins(tmp_path):
    row = dict(fingerprint="f1", device="cpu x (1 threads)", batch_size=64, precision="float32", channels_last=False,
               torch_version="2.x", latency_ms=1.0)
    write_costs(tmp_path / COSTS, [CostRecord(**row), CostRecord(**{**row, "fingerprint": "f2"})])
    table = write_costs(tmp_path / COSTS, [CostRecord(**{**row, "latency_ms": 2.0})])
    assert list(table.columns) == COST_COLUMNS and len(table) == 2
    back = {r.fingerprint: r for r in cost_rows(read_costs(tmp_path / COSTS))}
    assert back["f1"].latency_ms == 2.0 and back["f2"].latency_ms == 1.0
    # a batch read back as a float (a column with gaps) still finds its row
    assert cost_key({**row, "batch_size": 64.0}) in cached_rows(tmp_path / COSTS)


def test_cache_place_env_then_spec_then_the_user_cache_and_off(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCALE_COST_CACHE", str(tmp_path / "env.parquet"))
    assert cache_path("/elsewhere.parquet") == tmp_path / "env.parquet"
    monkeypatch.setenv("ARCHSCALE_COST_CACHE", "off")
    assert cache_path() is None
    monkeypatch.delenv("ARCHSCALE_COST_CACHE")
    assert cache_path(str(tmp_path / "spec.parquet")) == tmp_path / "spec.parquet" and cache_path(False) is None
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_path() == tmp_path / "xdg" / "archscale" / COSTS


def test_the_cost_task_holds_the_whole_device():
    nodes = [{"CPU": 16.0, "GPU": 1.0}, {"CPU": 4.0}]
    assert cost_task_resources(Launch(cpus=4, gpus=0.25), nodes) == {"num_cpus": 16.0, "num_gpus": 1.0}
    assert cost_task_resources(Launch(cpus=1, gpus=0.0), [{"CPU": 2.0}]) == {"num_cpus": 2.0, "num_gpus": 0.0}


def test_cost_step_measures_each_network_once_and_a_second_sweep_reuses_the_cache(tmp_path, fast_timing):
    sweep, trials = two_networks(tmp_path / "one")
    step = cost_step(sweep, trials, Launch(cpus=1, gpus=0.0), [{"CPU": 2.0}], quiet=True, submit=in_process)
    store = read_costs(sweep.output_dir / COSTS)
    networks = {network_fingerprint(t["config"]["spec"]) for t in trials}
    assert len(trials) == 8 and len(networks) == 2
    assert len(store) == 2 and set(store["fingerprint"]) == networks and step.measured == 2 and step.task
    assert sorted(fast_timing) == sorted({t["name"] for t in trials})
    assert in_process.resources == {"num_cpus": 2.0, "num_gpus": 0.0}
    row = cost_rows(store)[0]
    assert row.device.startswith("cpu ") and row.device.endswith("(1 threads)") and row.precision == "float32"
    assert row.latency_ms > 0 and row.throughput > 0 and row.train_images_per_s > 0 and row.repeats == 2
    assert row.batch_size == 64 and row.infer_batch_size == 256 and row.torch_version and "Ray task" in row.method
    # another sweep of the same networks, in another output directory: all from the cache, no task
    fast_timing.clear()
    other, other_trials = two_networks(tmp_path / "two")
    again = cost_step(other, other_trials, Launch(cpus=1, gpus=0.0), [{"CPU": 2.0}], quiet=True,
                      submit=lambda *a: pytest.fail("no task should start"))
    assert fast_timing == [] and again.measured == 0 and not again.task
    assert sorted(read_costs(other.output_dir / COSTS)["latency_ms"]) == sorted(store["latency_ms"])


def test_archscale_costs_fills_a_store_that_lacks_rows(tmp_path, fast_timing, capsys, monkeypatch):
    monkeypatch.setenv("ARCHSCALE_COST_CACHE", "off")
    sweep, trials = two_networks(tmp_path / "run")
    cost_step(sweep, trials, Launch(cpus=1, gpus=0.0), [{"CPU": 2.0}], quiet=True, submit=in_process)
    store = read_costs(sweep.output_dir / COSTS)
    kept = store.iloc[[0]]
    kept.to_parquet(sweep.output_dir / COSTS, index=False)  # the store lost a row
    fast_timing.clear()
    assert main(["costs", str(sweep.output_dir), "--device", "cpu", "--threads", "1"]) == 0
    filled = read_costs(sweep.output_dir / COSTS)
    assert len(filled) == 2 and len(fast_timing) == 1 and fast_timing[0] != kept["name"].iloc[0]
    assert filled.set_index("fingerprint").loc[kept["fingerprint"].iloc[0], "measured_at"] == kept["measured_at"].iloc[0]
    assert "1 measured, 1 already known" in capsys.readouterr().out


def report_run() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(trials whose own latency and throughput are overheard nonsense, the cost store of their 2 networks)."""
    trials = pd.DataFrame([
        {"trial_id": f"{n}__s{s}", "name": n, "regime": "rs-10", "epochs": 2, "seed": s, "status": "done",
         "final_top1": top1 + s, "flops": flops, "params": 1000, "fingerprint": fp, "batch_size": 64,
         "epochs_done": 2, "images_per_epoch": 640, "latency_ms": 999.0, "throughput": 1.0}  # overheard: ignored
        for n, fp, flops, top1 in (("small", "fa", 1e6, 80.0), ("big", "fb", 4e6, 90.0)) for s in (0, 1)])
    costs = pd.DataFrame([CostRecord(fingerprint=fp, name=n, device="GPU X", batch_size=64, latency_ms=lat,
                                     throughput=tput, train_images_per_s=ips, spread=0.02,
                                     method="alone on the device").row()
                          for fp, n, lat, tput, ips in (("fa", "small", 0.5, 4000.0, 1280.0),
                                                        ("fb", "big", 2.0, 1000.0, 320.0))])
    return trials, costs


def test_report_cost_columns_come_from_the_store_not_the_trials():
    from reports.costs import attach_costs

    trials, costs = report_run()
    joined, source = attach_costs(trials, costs)
    assert list(joined["latency_ms"]) == [0.5, 0.5, 2.0, 2.0] and list(joined["throughput"]) == [4000.0] * 2 + [1000.0] * 2
    assert list(joined["measured_train_time_s"]) == [1.0, 1.0, 4.0, 4.0]  # 2 epochs x 640 images / measured rate
    assert source["device"] == "GPU X" and source["networks"] == 2
    bare, none = attach_costs(trials, None)
    assert none is None and bare["latency_ms"].isna().all() and bare["measured_train_time_s"].isna().all()


@pytest.mark.slow
def test_report_cost_axes_read_the_store_and_say_where_it_was_measured(tmp_path):
    from reports import write_report

    trials, costs = report_run()
    summary = write_report(trials, None, tmp_path / "report", costs=costs)
    pareto = pd.read_csv(tmp_path / "report" / "tables" / "pareto.csv")
    got = pareto.set_index(["cost", "name"])["cost_value"]
    assert got[("latency_ms", "big")] == 2.0 and got[("throughput", "small")] == 4000.0
    assert got[("train_time_s", "big")] == 4.0
    text = (tmp_path / "report" / "report.md").read_text()
    assert "measured on GPU X, not by the trials: alone on the device" in text
    # without a cost store the cost axes are not drawn (the trials' own timings are not costs)
    bare = write_report(trials, None, tmp_path / "bare")
    assert any("latency" in s and "archscale costs" in s for s in bare["skipped"])
    assert len(summary["figures"]) > len(bare["figures"])


def test_a_plan_written_before_trials_stopped_timing_inference_still_resumes(tmp_path):
    import json

    from experiments.results.schema import PLAN

    sweep, trials = two_networks(tmp_path / "run")
    plan = json.loads((sweep.output_dir / PLAN).read_text())
    for t in plan["trials"]:
        t["config"]["measure_inference"] = True
    (sweep.output_dir / PLAN).write_text(json.dumps(plan))
    again = load_sweep({**tiny_sweep(tmp_path / "run", widths=(1.0, 2.0), seeds=(0, 1), regimes=[
        {"name": "rs-10", "epochs": 2}, {"name": "rs-10b", "base": "rs-10", "epochs": 2, "dropout": 0.3}]),
        "trial": {"max_steps_per_epoch": 4, "measure_inference": False}})  # an old spec's option: accepted, unused
    assert len(prepare(again)[0]) == len(trials)


@pytest.mark.slow
def test_a_real_sweep_measures_each_network_once_as_a_ray_task_and_the_next_reuses_it(tmp_path, fresh_ray, capsys):
    from experiments.sweep.run import run_sweep

    spec = tiny_sweep(tmp_path / "one", widths=(1.0, 2.0), seeds=(0, 1), epochs=1, steps=2)
    summary = run_sweep(spec, num_cpus=2)
    out = capsys.readouterr().out
    assert summary.counts == {"done": 4}
    assert "costs: 2 networks on cpu " in out and "2 measured, 0 from the cost cache" in out and "Ray task" in out
    store = read_costs(tmp_path / "one" / COSTS)
    assert len(store) == 2 and "a Ray task holding 2 CPUs" in store["method"].iloc[0]
    from experiments.results.store import load_results

    trials, _ = load_results(tmp_path / "one")
    assert set(trials["fingerprint"]) == set(store["fingerprint"]) and trials["observed_images_per_s"].gt(0).all()
    assert "latency_ms" not in trials and "throughput" not in trials
    run_sweep({**spec, "output_dir": str(tmp_path / "two")}, num_cpus=2)
    assert "0 measured, 2 from the cost cache or store" in capsys.readouterr().out
