"""experiments/sweep/resources.py: a sweep spec's resources: and scheduler:, typed and checked."""
import pytest

from experiments.sweep.resources import Resources, Scheduler
from scaling import ArchScaleError


def test_defaults_are_auto_cpus_auto_gpus_and_fifo():
    r, s = Resources.from_spec({}), Scheduler.from_spec("fifo")
    assert r == Resources() and r.cpus == "auto" and r.gpus == "auto" and r.max_concurrent is None
    assert r.to_dict() == {"workers": 1, "cpus": "auto", "gpus": "auto", "max_concurrent": None, "custom": {}}
    assert Resources(trials_per_gpu="auto").to_dict()["trials_per_gpu"] == "auto"
    assert s == Scheduler() and s.to_dict() == {"name": "fifo", "metric": "val_top1", "mode": "max"}


def test_fields_are_typed_attributes():
    r = Resources.from_spec({"cpus": 2, "gpus": 0.5, "max_concurrent": 3, "custom": {"tpu": 1}})
    assert isinstance(r.cpus, float) and r.cpus == 2.0 and r.gpus == 0.5 and r.custom == {"tpu": 1}
    s = Scheduler.from_spec({"name": "asha", "grace_period": 2, "reduction_factor": 3})
    assert (s.name, s.grace_period, s.reduction_factor, s.metric, s.mode) == ("asha", 2, 3.0, "val_top1", "max")
    assert s.to_dict() == {"name": "asha", "metric": "val_top1", "mode": "max", "grace_period": 2,
                           "reduction_factor": 3.0}
    assert Scheduler.from_spec({"name": "asha"}).to_dict()["reduction_factor"] == 2.0


@pytest.mark.parametrize("value,message", [
    ([1], "resources: expected a mapping: {workers: 1, cpus: 1, gpus: auto, max_concurrent: 4}"),
    ({"gpu": 1}, "resources.gpu: unknown resource (did you mean 'gpus'?); known: workers, cpus, gpus, trials_per_gpu, "
                 "max_concurrent, custom"),
    ({"cpus": 0}, "resources.cpus: CPUs per trial must be auto or a positive number, got 0"),
    ({"cpus": True}, "resources.cpus: CPUs per trial must be auto or a positive number, got True"),
    ({"gpus": -1}, "resources.gpus: GPUs per trial must be auto or a number >= 0 (0.5 packs two trials per GPU), "
                   "got -1"),
    ({"gpus": 1.5}, "resources.gpus: fractions are for sharing one GPU: use <= 1 (several GPUs per trial: workers: N, "
                    "gpus: 1)"),
    ({"gpus": 2}, "resources.gpus: a worker trains on one GPU: for a trial on 2 GPUs use workers: 2, gpus: 1"),
    ({"workers": 4, "gpus": 2}, "resources.gpus: a worker trains on one GPU: for a trial on 8 GPUs use workers: 8, "
                                "gpus: 1"),
    ({"workers": 2, "gpus": 0.5}, "resources.gpus: data-parallel workers need a whole GPU each (NCCL runs one rank per "
                                  "GPU); use gpus: 1, or workers: 1 to share a GPU"),
    ({"workers": 0}, "resources.workers: expected a whole number >= 1, got 0"),
    ({"workers": 1.5}, "resources.workers: expected a whole number >= 1, got 1.5"),
    ({"max_concurrent": 0}, "resources.max_concurrent: expected a whole number >= 1, got 0"),
    ({"custom": {"tpu": 0}}, "resources.custom: expected {resource_name: amount > 0}"),
])
def test_bad_resources_are_one_line_errors(value, message):
    with pytest.raises(ArchScaleError) as e:
        Resources.from_spec(value)
    assert str(e.value) == message


@pytest.mark.parametrize("value,message", [
    ("hyperband", "scheduler: expected fifo or asha (or {name: asha, grace_period: 1, reduction_factor: 2}), "
                  "got {'name': 'hyperband'}"),
    ({"name": "asha", "grace_periods": 1}, "scheduler.grace_periods: unknown scheduler option (did you mean 'grace_period'?); "
                                   "known: name, grace_period, reduction_factor, metric, mode"),
    ({"name": "asha", "mode": "up"}, "scheduler.mode: must be max or min"),
    ({"name": "asha", "grace_period": 0}, "scheduler.grace_period: epochs before a trial can be stopped: >= 1, got 0"),
    ({"name": "asha", "reduction_factor": 1}, "scheduler.reduction_factor: must be > 1, got 1"),
])
def test_bad_schedulers_are_one_line_errors(value, message):
    with pytest.raises(ArchScaleError) as e:
        Scheduler.from_spec(value)
    assert str(e.value) == message


def test_constructing_directly_checks_too():
    with pytest.raises(ArchScaleError, match="resources.cpus"):
        Resources(cpus=-1)
    with pytest.raises(ArchScaleError, match="scheduler.reduction_factor"):
        Scheduler(name="asha", reduction_factor=0.5)


def test_per_trial_request_and_concurrency_on_a_cluster():
    cpu_only, gpus = {"CPU": 8.0}, {"CPU": 16.0, "GPU": 2.0}
    auto = Resources(cpus=2)
    assert auto.per_trial(cpu_only) == {"cpu": 2.0, "gpu": 0.0}
    assert auto.per_trial(gpus) == {"cpu": 2.0, "gpu": 1.0}
    assert auto.concurrency(cpu_only, n_trials=10) == 4  # CPUs bound
    assert auto.concurrency(gpus, n_trials=10) == 2  # GPUs bound
    assert Resources(cpus=1, gpus=0.5).concurrency(gpus, n_trials=10) == 4  # two trials per GPU
    assert Resources(cpus=1, max_concurrent=3).concurrency(cpu_only, n_trials=10) == 3
    assert Resources(cpus=1).concurrency(cpu_only, n_trials=2) == 2
    assert Resources(cpus=16).concurrency(cpu_only, n_trials=2) == 1  # at least one
    assert Resources(cpus=1, custom={"tpu": 1}).per_trial(cpu_only) == {"cpu": 1.0, "gpu": 0.0, "tpu": 1}
    with pytest.raises(ArchScaleError, match="trials ask for 1 GPU but the Ray cluster has none"):
        Resources(gpus=1).per_trial(cpu_only)


def test_auto_cpus_give_a_gpu_trial_the_nodes_cpus_per_gpu():
    gpus, cpu_only = {"CPU": 16.0, "GPU": 2.0}, {"CPU": 8.0}
    assert Resources().per_trial(gpus) == {"cpu": 8.0, "gpu": 1.0}  # enough to feed a GPU's data loading
    assert Resources(gpus=0.5).per_trial(gpus) == {"cpu": 4.0, "gpu": 0.5}
    assert Resources().per_trial(cpu_only) == {"cpu": 1.0, "gpu": 0.0}
    assert Resources(gpus=0).per_trial(gpus) == {"cpu": 1.0, "gpu": 0.0}
    assert Resources().concurrency(gpus, n_trials=10) == 2


def test_data_parallel_trials_request_a_driver_and_whole_sets_of_workers():
    from experiments.sweep.resources import DRIVER_REQUEST, Launch

    cluster = {"CPU": 64.0, "GPU": 16.0}
    nodes = [{"CPU": 32.0, "GPU": 8.0}, {"CPU": 32.0, "GPU": 8.0}]
    r = Resources(workers=8, cpus=4, gpus="auto")
    assert r.per_worker(cluster) == {"cpu": 4.0, "gpu": 1.0}
    assert r.per_trial(cluster) == DRIVER_REQUEST  # Ray Train requests the workers, Tune only the driver
    assert r.worker_slots(cluster, nodes) == 16 and r.concurrency(cluster, 10, nodes) == 2
    assert Resources(workers=3, cpus=4, gpus=1).concurrency(cluster, 10, nodes) == 5  # 16 slots // 3
    assert r.launch(cluster, "/runs/dp") == Launch(workers=8, cpus=4.0, gpus=1.0, custom={}, storage_path="/runs/dp")
    assert Launch(workers=8, gpus=1.0, storage_path="/s").run_path("t__rs-10__s0") == "/s/t__rs-10__s0"
    assert Launch(gpus=0.5).device_share == 0.5 and Launch(gpus=0.0).device_share == 1.0
    assert r.describe(cluster) == "8 workers x (4 CPU, 1 GPU) each"
    assert Resources(cpus=2).describe(cluster) == "2 CPU, 1 GPU each"
    # a single worker: the request and concurrency of before
    assert Resources(cpus=2).concurrency(cluster, 100, nodes) == Resources(cpus=2).concurrency(cluster, 100) == 16


def test_placement_problem_names_what_a_trial_needs_and_what_the_nodes_hold():
    cluster = {"CPU": 16.0, "GPU": 4.0}
    nodes = [{"CPU": 8.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 2.0}]
    assert Resources(workers=4, cpus=4, gpus=1).placement_problem(cluster, nodes) is None  # 2 per node
    assert Resources(workers=4, cpus=8, gpus=1).placement_problem(cluster, nodes) == (
        "a trial needs 4 workers of 8 CPU, 1 GPU each, but the cluster's nodes (8 CPU, 2 GPU; 8 CPU, 2 GPU) hold "
        "only 2; trials would wait forever: lower resources.workers or the per-worker resources, or add nodes")
    assert "hold only 1" in Resources(workers=2, cpus=1, gpus=0, custom={"fast": 1}).placement_problem(
        {"CPU": 4.0, "fast": 1.0}, [{"CPU": 4.0, "fast": 1.0}])
    assert Resources(workers=1, cpus=12).placement_problem(cluster, nodes) is not None  # no node has 12 CPUs
