"""trials_per_gpu: the resources field, the choice from injected measurements, the cost step's and
the dry run's account of it, and (slow) the copies measured for it."""
from __future__ import annotations

import pytest
from sweep_helpers import tiny_sweep

from experiments.cli import main
from experiments.results.costs import COSTS, read_costs, write_costs
from experiments.results.schema import CostRecord
from experiments.sweep import costs as step_module
from experiments.sweep.packing import CONTEXT_BYTES, NO_GPU, choose_trials_per_gpu
from experiments.sweep.resources import Launch, Resources
from experiments.sweep.spec import load_sweep, prepare
from scaling import ArchScaleError

GIB = 2**30
H200 = 141 * 10**9


def test_trials_per_gpu_shares_each_gpu_and_is_checked():
    gpus = {"CPU": 16.0, "GPU": 1.0}
    assert Resources(trials_per_gpu=4).per_worker(gpus) == {"cpu": 4.0, "gpu": 0.25}
    assert Resources(trials_per_gpu="auto").per_worker(gpus)["gpu"] == 1.0  # until the cost step chooses
    assert Resources(trials_per_gpu="auto").packed(8).per_worker(gpus) == {"cpu": 2.0, "gpu": 0.125}
    assert Resources(trials_per_gpu=4).per_worker({"CPU": 4.0}) == {"cpu": 1.0, "gpu": 0.0}  # no GPU: CPU trials
    assert Resources(trials_per_gpu=4).concurrency(gpus, 10) == 4
    with pytest.raises(ArchScaleError, match="resources.trials_per_gpu: give either gpus: 0.5 or trials_per_gpu"):
        Resources(gpus=0.5, trials_per_gpu=2)
    with pytest.raises(ArchScaleError, match="resources.trials_per_gpu: data-parallel workers need a whole GPU"):
        Resources(workers=2, trials_per_gpu="auto")
    with pytest.raises(ArchScaleError, match="resources.trials_per_gpu"):
        Resources.from_spec({"trials_per_gpu": 0})


def test_choice_takes_the_most_copies_that_fit_and_pay():
    rates = {1: 10_000.0, 2: 18_000.0, 4: 30_000.0, 8: 31_000.0}
    p = choose_trials_per_gpu(2 * GIB, H200, rates, "d8-w1")
    assert p.trials_per_gpu == 4  # 8 copies gain 3 % over 4: not worth sharing further
    assert "8 copies train +3% in all against 4 (under the 10%" in p.why and "d8-w1" in p.why
    # memory bounds it: 8 x (15 GiB + context) does not fit in 90 % of the GPU
    assert choose_trials_per_gpu(15 * GIB, H200, {**rates, 8: 60_000.0}).trials_per_gpu == 4
    big = choose_trials_per_gpu(60 * GIB, H200, rates)
    assert big.trials_per_gpu == 1 and "2 do not fit" in big.why
    # a large network that sharing does not speed up stays alone
    assert choose_trials_per_gpu(GIB, H200, {1: 5000.0, 2: 5100.0, 4: 5000.0, 8: 4900.0}).trials_per_gpu == 1
    # a count that failed (out of memory) ends the search; no single-copy figure: one per GPU
    assert choose_trials_per_gpu(GIB, H200, {1: 1.0, 2: 2.0, 4: None, 8: 8.0}).trials_per_gpu == 2
    assert choose_trials_per_gpu(GIB, H200, {}).trials_per_gpu == 1
    assert CONTEXT_BYTES == GIB


def fake_gpu_rows(requests, rates: dict) -> list[CostRecord]:
    return [CostRecord(fingerprint=r.fingerprint, name=r.name, device="NVIDIA H200", batch_size=r.batch_size,
                       precision="bfloat16", channels_last=True, peak_memory_bytes=GIB, device_memory_bytes=H200,
                       latency_ms=1.0, throughput=1e5, train_images_per_s=1e4,
                       **{f"aggregate_images_per_s_{k}": v for k, v in rates.items()}) for r in requests]


def test_cost_step_on_a_gpu_cluster_measures_copies_of_the_costliest_network_and_chooses(tmp_path, monkeypatch,
                                                                                           capsys):
    # the GPU is injected: this machine's kind of device is unknown, so the (in-process) task measures
    spec = tiny_sweep(tmp_path / "run", widths=(1.0, 2.0), resources={"gpus": "auto", "trials_per_gpu": "auto"})
    sweep = load_sweep(spec)
    trials, _ = prepare(sweep)
    monkeypatch.setattr(step_module, "kind_here", lambda dev_type, threads=None: None)
    asked = {}

    def task(fn, resources, requests, known, dev_type, threads, where, pack):
        asked.update(resources=resources, dev_type=dev_type, pack=requests[pack].name)
        rows = fake_gpu_rows(requests, {1: 1000.0, 2: 1900.0, 4: 3000.0, 8: 3100.0})
        return rows, rows

    step = step_module.cost_step(sweep, trials, Launch(cpus=16, gpus=1.0), [{"CPU": 16.0, "GPU": 1.0}], submit=task)
    assert asked == {"resources": {"num_cpus": 16.0, "num_gpus": 1.0}, "dev_type": "cuda",
                     "pack": max(trials, key=lambda t: t["flops"])["name"]}
    assert step.packing.trials_per_gpu == 4
    assert "trials_per_gpu: auto -> 4: 4 trials per GPU" in capsys.readouterr().out
    assert len(read_costs(sweep.output_dir / COSTS)) == 2


def test_cost_step_on_cpus_says_there_is_no_gpu_to_share(tmp_path, monkeypatch):
    monkeypatch.setitem(step_module.measure_costs.__globals__["SETTINGS"], "cpu",
                        {"warmup": 1, "repeats": 1, "min_block_s": 0.0, "iters": 1})
    sweep = load_sweep(tiny_sweep(tmp_path / "run", resources={"cpus": 1, "gpus": "auto", "trials_per_gpu": "auto"}))
    trials, _ = prepare(sweep)
    step = step_module.cost_step(sweep, trials, Launch(cpus=1, gpus=0.0), [{"CPU": 2.0}], quiet=True,
                                 submit=lambda fn, res, *a: fn(*a))
    assert step.packing.trials_per_gpu == 1 and step.packing.why == NO_GPU


def test_dry_run_prints_the_choice_from_cached_measurements_or_how_it_will_be_made(tmp_path, monkeypatch, capsys):
    spec = tiny_sweep(tmp_path / "run", resources={"gpus": "auto", "trials_per_gpu": "auto"})
    path = tmp_path / "sweep.yaml"
    import yaml

    path.write_text(yaml.safe_dump(spec))
    assert main(["sweep", str(path), "--dry-run", "--num-gpus", "0"]) == 0
    assert f"trials_per_gpu: auto -> 1: {NO_GPU}" in capsys.readouterr().out
    # a GPU here (injected) whose measurements the cache holds: the choice, and why
    monkeypatch.setattr(step_module, "kind_here", lambda dev_type, threads=None: "NVIDIA H200")
    sweep = load_sweep(spec)
    trials, _ = prepare(sweep)
    requests = step_module.plan_requests(trials)
    write_costs(sweep.output_dir / COSTS, fake_gpu_rows(requests, {1: 1e3, 2: 2e3, 4: 4e3, 8: 8e3}))
    # (the key's precision needs a real GPU's capability: look rows up by network alone)
    monkeypatch.setattr(step_module, "known_costs", lambda reqs, kind, dev_type, known: [
        next((r for r in known.values() if r.fingerprint == q.fingerprint), None) for q in reqs])
    assert main(["sweep", str(path), "--dry-run", "--num-gpus", "1"]) == 0
    out = capsys.readouterr().out
    assert "trials_per_gpu: auto -> 8 (measurements cached for NVIDIA H200): 8 trials per GPU" in out


@pytest.mark.slow
def test_copies_train_at_once_in_their_own_processes():
    from experiments.train.costs import aggregate_train_rates, cost_requests

    sweep = load_sweep(tiny_sweep("/tmp/unused"))
    from experiments.sweep.spec import make_plan

    trials, _ = make_plan(sweep)
    req = cost_requests(trials, 1438)[0]
    rates = aggregate_train_rates(req, "cpu", (1, 2), seconds=0.3, threads=1)
    assert set(rates) == {1, 2} and all(v and v > 0 for v in rates.values())
