"""experiments/data/resident.py: in-memory data built once, shared without copies, and kept on the
device by a process for its next trial."""
import numpy as np
import pytest
import torch

from experiments.data import resident
from experiments.data.datasets import DatasetConfig, dataset_from, load_dataset
from experiments.data.resident import build_shared, data_key, from_arrays, resident_dataset, to_arrays


@pytest.fixture(autouse=True)
def empty_cache():
    resident.forget_resident()
    yield
    resident.forget_resident()


def _counting(monkeypatch) -> list:
    calls, original = [], resident.load_dataset

    def counted(*a, **kw):
        calls.append(a[1:3])
        return original(*a, **kw)

    monkeypatch.setattr(resident, "load_dataset", counted)
    return calls


def test_a_reused_worker_keeps_its_data_for_the_next_trial(monkeypatch):
    from experiments.train.trial import TrialConfig, TrialRun
    from test_trainer import config

    calls = _counting(monkeypatch)
    small = {"name": "synthetic", "train_size": 64, "val_size": 16}
    runs = [TrialRun(TrialConfig.from_dict(config(dataset=small, seed=seed)))  # a trial's set-up, as a worker's
            for seed in (0, 0, 1)]  # the synthetic set is drawn from the seed: seed 1's is another data set
    assert len(calls) == 2 and runs[0].data is runs[1].data and runs[2].data is not runs[0].data
    assert runs[0].phases.seconds["data"] > 0
    held = resident_dataset(dataset_from(small), 16, 3, 0, torch.device("cpu"))
    assert len(calls) == 2 and held.train_size == 64  # still there, not built again


def test_the_cache_is_per_resolution_and_keeps_the_latest_two(monkeypatch):
    calls = _counting(monkeypatch)
    cfg, cpu = DatasetConfig(), torch.device("cpu")
    a = resident_dataset(cfg, 10, 1, 0, cpu)
    assert resident_dataset(cfg, 10, 1, 5, cpu) is a  # digits do not depend on the seed
    resident_dataset(cfg, 12, 1, 0, cpu)
    resident_dataset(cfg, 14, 1, 0, cpu)  # the third evicts the least recently used (10 px)
    resident_dataset(cfg, 10, 1, 0, cpu)
    assert calls == [(10, 1), (12, 1), (14, 1), (10, 1)]


def test_shared_arrays_are_viewed_not_copied_and_train_the_same():
    data = load_dataset(DatasetConfig(), 10, 1)
    arrays = to_arrays(data)
    arrays["x_train"].setflags(write=False)  # as Ray's object store serves them
    again = from_arrays(arrays)
    assert np.shares_memory(again.x_train.numpy(), arrays["x_train"])
    assert torch.equal(again.x_train, data.x_train) and torch.equal(again.y_val, data.y_val)
    assert again.num_classes == data.num_classes and torch.equal(again.mean, data.mean) and again.pad == data.pad
    g1, g2 = torch.Generator().manual_seed(0), torch.Generator().manual_seed(0)
    (x1, y1), (x2, y2) = next(data.train_batches(32, g1)), next(again.train_batches(32, g2))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_a_shared_data_set_is_built_once_per_shape_and_a_loader_runs_once(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(__import__("pathlib").Path(__file__).parent))
    log = tmp_path / "calls"
    cfg = dataset_from({"loader": "sweep_helpers:counted_loader", "options": {"log": str(log)}})
    from experiments.data.datasets import dataset_train_size

    assert dataset_train_size(cfg) == 64  # planning asks for the size: the loader runs
    shared = build_shared(cfg, {(8, 3, 0), (8, 3, 1), (12, 3, 0)})
    assert sorted(shared) == sorted({data_key(cfg, 8, 3, 0), data_key(cfg, 12, 3, 0)})
    assert len(log.read_text().splitlines()) == 1  # the size and both resolutions came from one call
    assert shared[data_key(cfg, 12, 3, 0)]["x_train"].shape == (64, 3, 12, 12)


def test_folder_data_is_not_shared(tmp_path):
    from test_dataset_loader import folder_data

    folder_data(tmp_path)
    assert build_shared(DatasetConfig(name="imagefolder", root=str(tmp_path)), {(16, 3, 0)}) == {}
