"""experiments/data/user_loader.py: your own data set from a loader function, without editing the package."""
import numpy as np
import pytest
import torch
from sweep_helpers import tiny_sweep

from experiments.data.datasets import CUSTOM, DatasetConfig, dataset_from, dataset_train_size, load_dataset
from experiments.sweep.spec import load_sweep, make_plan
from scaling import ArchScaleError


def tiny_data(n=40, classes=4, grey=True, **extra):
    """A loader as a user writes one: uint8 images (any size) and integer labels, as numpy arrays."""
    rng = np.random.default_rng(0)
    shape = (n, 10, 10) if grey else (n, 3, 10, 10)
    x = rng.integers(0, 256, shape, dtype=np.uint8)
    y = np.arange(n) % classes
    return {"x_train": x, "y_train": y, "x_val": x[: n // 4], "y_val": y[: n // 4], **extra}


def folder_data(root):
    """A loader that returns an ImageNet-layout folder."""
    from PIL import Image

    for split in ("train", "val"):
        for c in ("cat", "dog"):
            (root_path := __import__("pathlib").Path(root) / split / c).mkdir(parents=True, exist_ok=True)
            for i in range(3 if split == "train" else 1):
                Image.new("RGB", (16, 16), (i * 40, 0, 0)).save(root_path / f"{i}.png")
    return root


def broken(kind):
    if kind == "list":
        return [1, 2]
    if kind == "float":
        return tiny_data() | {"x_train": np.zeros((4, 8, 8), dtype=np.float32)}
    if kind == "missing":
        return {"x_train": np.zeros((4, 8, 8), dtype=np.uint8)}
    if kind == "labels":
        return tiny_data(classes=4) | {"num_classes": 2}
    if kind == "lengths":
        return tiny_data() | {"y_val": np.zeros(3, dtype=np.int64)}
    return tiny_data() | {"colour": 1}


def test_a_loader_is_a_dataset_named_by_its_label():
    cfg = dataset_from({"loader": "test_dataset_loader:tiny_data", "options": {"n": 20}, "label": "mine"})
    assert (cfg.name, cfg.loader, cfg.options, cfg.display_name) == (CUSTOM, "test_dataset_loader:tiny_data",
                                                                     {"n": 20}, "mine")
    assert cfg.to_dict()["options"] == {"n": 20}
    assert "loader" not in DatasetConfig().to_dict() and "options" not in DatasetConfig().to_dict()  # plans unchanged


def test_in_memory_data_is_resized_replicated_and_measured():
    cfg = dataset_from({"loader": "test_dataset_loader:tiny_data", "options": {"n": 40, "classes": 4}})
    assert dataset_train_size(cfg) == 40
    d = load_dataset(cfg, 16, 3)
    assert d.x_train.shape == (40, 3, 16, 16) and d.x_train.dtype == torch.uint8 and d.y_train.dtype == torch.int64
    assert (d.train_size, d.val_size, d.num_classes, d.flip, d.pad) == (40, 10, 4, False, 2)
    assert d.name == "test_dataset_loader:tiny_data"
    x, y = next(d.train_batches(8, torch.Generator().manual_seed(0)))
    assert x.shape == (8, 3, 16, 16) and abs(float(x.mean())) < 0.5  # normalised with the measured mean/std


def test_the_loaders_own_settings_win():
    cfg = dataset_from({"loader": "test_dataset_loader:tiny_data",
                        "options": {"grey": False, "num_classes": 7, "mean": [0.5] * 3, "std": [0.25] * 3,
                                    "flip": True, "pad": 0}})
    d = load_dataset(cfg, 10, 3)
    assert (d.num_classes, d.flip, d.pad) == (7, True, 0)
    assert torch.allclose(d.mean.flatten(), torch.tensor([0.5] * 3))


def test_a_folder_from_a_loader_streams_like_imagefolder(tmp_path):
    cfg = dataset_from({"loader": "test_dataset_loader:folder_data", "root": str(tmp_path / "imgs"), "workers": 0})
    assert dataset_train_size(cfg) == 6
    d = load_dataset(cfg, 16, 3)
    assert (d.train_size, d.val_size, d.num_classes) == (6, 2, 2)


@pytest.mark.parametrize("kind,message", [
    ("list", "returned a list; return a mapping with x_train, y_train, x_val, y_val or an ImageNet-layout folder"),
    ("float", "x_train is torch.float32; give uint8 pixels (0-255)"),
    ("missing", "returned no y_train, x_val, y_val"),
    ("labels", "labels must lie in 0..1 (num_classes 2)"),
    ("lengths", "x_val holds 10 images and y_val 3 labels"),
    ("unknown", "returned unknown keys colour"),
])
def test_what_a_loader_returns_is_checked_with_one_line_errors(kind, message):
    cfg = dataset_from({"loader": "test_dataset_loader:broken", "options": {"kind": kind}})
    with pytest.raises(ArchScaleError) as e:
        load_dataset(cfg, 8, 1)
    assert e.value.field == "dataset.loader" and message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("value,field,message", [
    ({"loader": "test_dataset_loader.tiny_data"}, "dataset.loader", "expected 'package.module:name'"),
    ({"loader": "test_dataset_loader:nothing"}, "dataset.loader", "'test_dataset_loader' has no 'nothing'"),
    ({"loader": "no_such_pkg_xyz.data:load"}, "dataset.loader", "cannot import 'no_such_pkg_xyz.data'"),
    ({"loader": "test_dataset_loader:folder_data", "options": {"size": 3}}, "dataset.options",
     "does not take these arguments"),
    ({"loader": "test_dataset_loader:tiny_data", "options": [1]}, "dataset.options", "expected a mapping"),
    ({"loader": "test_dataset_loader:tiny_data", "name": "cifar10"}, "dataset.name", "name it with label:"),
    ({"name": "custom"}, "dataset.loader", "give loader:"),
    ({"loader": "test_dataset_loader:tiny_data", "loder": 1}, "dataset.loder", "did you mean 'loader'"),
])
def test_a_bad_loader_is_refused_when_the_spec_is_read(value, field, message):
    with pytest.raises(ArchScaleError) as e:
        dataset_from(value)
    assert e.value.field == field and message in str(e.value)


def test_a_sweep_spec_plans_with_a_loaders_data_set(tmp_path):
    sweep = load_sweep(tiny_sweep(tmp_path, dataset={"loader": "test_dataset_loader:tiny_data", "options": {"n": 32},
                                                     "label": "tiny"}))
    trials, _ = make_plan(sweep)
    assert trials[0]["dataset"] == "tiny" and trials[0]["config"]["dataset"]["loader"] == "test_dataset_loader:tiny_data"
    assert trials[0]["train_flops"] == 3 * trials[0]["flops"] * 32 * 2  # 32 training images, 2 epochs


def test_a_data_set_of_one_class_is_an_error(tmp_path):
    with pytest.raises(ArchScaleError) as e:
        load_dataset(dataset_from({"loader": "test_dataset_loader:tiny_data", "options": {"classes": 1}}), 8, 1)
    assert e.value.field == "dataset" and "has 1 class; a classification data set needs at least 2" in str(e.value)
    folder_data(tmp_path / "imgs")
    import shutil
    shutil.rmtree(tmp_path / "imgs" / "train" / "dog")
    with pytest.raises(ArchScaleError, match="train has 1 class"):  # refused before any trial trains
        dataset_train_size(dataset_from({"name": "imagefolder", "root": str(tmp_path / "imgs")}))
