"""experiments/ray_options.py: a sweep spec's resources: and scheduler:, typed and checked."""
import pytest

from experiments.ray_options import Resources, Scheduler
from scaling import ArchScaleError


def test_defaults_are_auto_cpus_auto_gpus_and_fifo():
    r, s = Resources.from_spec({}), Scheduler.from_spec("fifo")
    assert r == Resources() and r.cpus == "auto" and r.gpus == "auto" and r.max_concurrent is None
    assert r.to_dict() == {"cpus": "auto", "gpus": "auto", "max_concurrent": None, "custom": {}}
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
    ([1], "resources: expected a mapping: {cpus: 1, gpus: auto, max_concurrent: 4}"),
    ({"gpu": 1}, "resources.gpu: unknown resource (did you mean 'gpus'?); known: cpus, gpus, max_concurrent, custom"),
    ({"cpus": 0}, "resources.cpus: CPUs per trial must be auto or a positive number, got 0"),
    ({"cpus": True}, "resources.cpus: CPUs per trial must be auto or a positive number, got True"),
    ({"gpus": -1}, "resources.gpus: GPUs per trial must be auto or a number >= 0 (0.5 packs two trials per GPU), "
                   "got -1"),
    ({"gpus": 1.5}, "resources.gpus: fractions are for sharing one GPU: use <= 1 or a whole number"),
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
