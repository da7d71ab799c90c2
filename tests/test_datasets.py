import pickle

import numpy as np
import pytest
import torch

from experiments.data.datasets import dataset_from, digits_split_sizes, load_dataset
from scaling import ArchScaleError


def test_digits_split_resolution_and_channels():
    d = load_dataset("digits", 24, 3)
    assert (d.train_size, d.val_size) == digits_split_sizes() == (1438, 359)
    assert d.x_train.shape[1:] == (3, 24, 24) and d.x_train.dtype == torch.uint8
    again = load_dataset("digits", 24, 3)
    assert torch.equal(d.y_val, again.y_val)  # the split is fixed
    x, y = next(d.train_batches(32, torch.Generator().manual_seed(0)))
    assert x.shape == (32, 3, 24, 24) and x.dtype == torch.float32 and y.shape == (32,)
    assert abs(float(x.mean())) < 0.5


def test_batched_augmentation_is_seeded_and_keeps_shapes():
    d = load_dataset("digits", 16, 1)
    a = next(d.train_batches(64, torch.Generator().manual_seed(3)))[0]
    b = next(d.train_batches(64, torch.Generator().manual_seed(3)))[0]
    c = next(d.train_batches(64, torch.Generator().manual_seed(4)))[0]
    assert torch.equal(a, b) and not torch.equal(a, c)
    d.set_randaugment(2, 9)
    x = next(d.train_batches(64, torch.Generator().manual_seed(3)))[0]
    assert x.shape == a.shape and not torch.equal(x, a)


def _write_cifar(root, name):
    rng = np.random.default_rng(0)
    if name == "cifar10":
        base = root / "cifar-10-batches-py"
        base.mkdir(parents=True)
        for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            with open(base / f, "wb") as fh:
                pickle.dump({"data": rng.integers(0, 256, (4, 3072), dtype=np.uint8),
                             "labels": list(rng.integers(0, 10, 4))}, fh)
        with open(base / "batches.meta", "wb") as fh:
            pickle.dump({"label_names": [str(i) for i in range(10)]}, fh)
    else:
        base = root / "cifar-100-python"
        base.mkdir(parents=True)
        for f, n in (("train", 20), ("test", 8)):
            with open(base / f, "wb") as fh:
                pickle.dump({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                             "fine_labels": list(rng.integers(0, 100, n)), "coarse_labels": [0] * n}, fh)
    return base


def test_cifar10_and_cifar100_from_torchvisions_on_disk_format(tmp_path, monkeypatch):
    base = _write_cifar(tmp_path / "c10", "cifar10")
    d = load_dataset({"name": "cifar10", "root": str(tmp_path / "c10")}, 32, 3)
    assert (d.train_size, d.val_size, d.num_classes) == (20, 4, 10) and d.flip and d.pad == 4
    with open(base / "data_batch_1", "rb") as fh:
        first = pickle.load(fh)
    assert torch.equal(d.x_train[0], torch.from_numpy(first["data"][0]).view(3, 32, 32))
    import torchvision  # torchvision itself reads the same files (its md5 check aside: they are fakes)

    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    tv = torchvision.datasets.CIFAR10(str(tmp_path / "c10"), train=True, download=False)
    assert len(tv) == 20 and tv.targets == d.y_train.tolist()
    _write_cifar(tmp_path / "c100", "cifar100")
    d = load_dataset({"name": "cifar100", "root": str(tmp_path / "c100")}, 16, 3)
    assert (d.train_size, d.val_size, d.num_classes) == (20, 8, 100) and d.x_train.shape[-1] == 16


def test_imagefolder_in_imagenet_layout(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(
                    tmp_path / split / cls / f"{i}.jpg")
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path), "label": "imagenet", "workers": 0}, 32, 3)
    assert (d.train_size, d.val_size, d.num_classes, d.name) == (6, 4, 2, "imagenet")
    x, y = next(d.train_batches(4, torch.Generator().manual_seed(0)))
    assert x.shape == (4, 3, 32, 32)
    xv, yv = next(d.val_batches(8))
    assert xv.shape == (4, 3, 32, 32) and sorted(yv.tolist()) == [0, 0, 1, 1]


def test_synthetic_any_size():
    d = load_dataset({"name": "synthetic", "train_size": 40, "val_size": 8, "num_classes": 7}, 20, 3, seed=1)
    assert (d.train_size, d.val_size, d.num_classes) == (40, 8, 7) and d.x_train.shape[1:] == (3, 20, 20)


@pytest.mark.parametrize("cfg,words", [
    ({"name": "cifar10"}, "give root: PATH"),
    ({"name": "cifar10", "root": "/nonexistent"}, "cifar-10-batches-py/{data_batch_1..5"),
    ({"name": "cifar100", "root": "/nonexistent"}, "cifar-100-python/{train, test, meta}"),
    ({"name": "imagefolder", "root": "/nonexistent"}, "ROOT/train/<class>/<image>"),
    ({"name": "imagenet"}, "did you mean 'imagefolder'"),
    ({"name": "digits", "size": 3}, "unknown dataset field"),
    ({"name": "digits", "val_fraction": "abc"}, "val_fraction: must be a number in (0, 1), got 'abc'"),
    ({"name": "synthetic", "train_size": "10"}, "train_size: must be a whole number >= 1"),
])
def test_bad_dataset_paths_name_the_expected_layout(cfg, words):
    with pytest.raises(ArchScaleError) as e:
        load_dataset(dataset_from(cfg) if "size" not in cfg else cfg, 32, 3)
    assert words in str(e.value) and "\n" not in str(e.value)


def test_malformed_cifar_and_folder_without_val(tmp_path):
    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    for f in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        (base / f).write_bytes(b"not a pickle")
    with pytest.raises(ArchScaleError, match="is not in torchvision's format"):
        load_dataset({"name": "cifar10", "root": str(tmp_path)}, 32, 3)
    (tmp_path / "imgs" / "train" / "a").mkdir(parents=True)
    with pytest.raises(ArchScaleError, match="no val/ class folders"):
        load_dataset({"name": "imagefolder", "root": str(tmp_path / "imgs")}, 32, 3)


def test_chunked_resize_equals_resizing_all_at_once():
    from experiments.data.datasets import _resize_uint8

    x = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    for size in (48, 20):
        whole = _resize_uint8(x, size, chunk_bytes=2**40)
        chunked = _resize_uint8(x, size, chunk_bytes=4 * 3 * 48 * 48 * 3)  # three images at a time
        assert chunked.dtype == torch.uint8 and chunked.shape == (10, 3, size, size)
        assert torch.equal(whole, chunked)
    assert _resize_uint8(x, 32) is x


def test_cifar_at_a_new_resolution_resizes_a_bounded_chunk_at_a_time(tmp_path, monkeypatch):
    import experiments.data.datasets as datasets

    _write_cifar(tmp_path, "cifar10")  # 20 training images
    whole = load_dataset({"name": "cifar10", "root": str(tmp_path)}, 64, 3).x_train
    sizes = []
    interpolate = torch.nn.functional.interpolate

    def recording(x, *args, **kwargs):
        sizes.append(len(x))
        return interpolate(x, *args, **kwargs)

    monkeypatch.setattr(torch.nn.functional, "interpolate", recording)
    monkeypatch.setattr(datasets, "RESIZE_CHUNK_BYTES", 4 * 3 * 64 * 64 * 6)  # six images of float32 scratch
    d = load_dataset({"name": "cifar10", "root": str(tmp_path)}, 64, 3)
    assert d.x_train.dtype == torch.uint8 and torch.equal(d.x_train, whole)
    assert sizes and max(sizes) == 6  # never all 20 (or 50k) images in float32 at once


def test_randaugment_is_per_image_on_the_official_scale_and_labels_follow_their_images():
    from experiments.data.augment import RandAugment

    d = load_dataset({"name": "synthetic", "train_size": 256, "val_size": 8, "num_classes": 256}, 8, 3)
    d.set_randaugment(2, 15)
    assert isinstance(d.randaugment, RandAugment) and d.randaugment.magnitude == 15.0
    d.set_randaugment(2, 0)
    assert d.randaugment is None
    # constant images whose value is their label: a RandAugment that only reorders the batch as its
    # plan says must leave every image with its own label
    d.x_train = torch.arange(256, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 8, 8).contiguous()
    d.y_train = torch.arange(256)
    d.mean, d.std = torch.zeros(1, 3, 1, 1), torch.full((1, 3, 1, 1), 1 / 255)

    class Reorder(RandAugment):
        def __call__(self, x, plan):
            return x[plan.order]

    d.randaugment = Reorder(2, 10)
    orders = []
    for x, y in d.train_batches(64, torch.Generator().manual_seed(0)):
        assert torch.equal(x[:, 0, 0, 0].round().long(), y)
        orders.append(y)
    assert len(orders) == 4 and sorted(torch.cat(orders).tolist()) == list(range(256))


def test_in_memory_epoch_randomness_is_drawn_before_the_first_batch():
    d = load_dataset("digits", 16, 1)
    d.set_randaugment(2, 10)
    g = torch.Generator().manual_seed(0)
    batches = d.train_batches(32, g, max_batches=3)
    next(batches)
    state = g.get_state()
    list(batches)
    assert torch.equal(g.get_state(), state)  # later batches draw nothing


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_shards_make_up_the_one_worker_batch_with_its_crops(workers):
    d = load_dataset("digits", 16, 1)  # random pad-and-crop: every image keeps the draw of the whole batch
    whole = list(d.train_batches(64, torch.Generator().manual_seed(5), 3))
    shards = [list(d.train_batches(64, torch.Generator().manual_seed(5), 3, shard=(r, workers)))
              for r in range(workers)]
    for b, (x, y) in enumerate(whole):
        assert all(len(s[b][1]) == 64 // workers for s in shards)
        assert torch.equal(torch.cat([s[b][0] for s in shards]), x)
        assert torch.equal(torch.cat([s[b][1] for s in shards]), y)


def test_validation_shards_cover_the_set_once():
    d = load_dataset("digits", 8, 1)
    parts = [torch.cat([y for _, y in d.val_batches(50, shard=(r, 3))]) for r in range(3)]
    assert [len(p) for p in parts] == [119, 120, 120] and sum(map(len, parts)) == d.val_size
    assert torch.equal(torch.cat(parts), torch.cat([y for _, y in d.val_batches(50)]))


def test_worker_shards_with_randaugment_keep_labels_with_their_images_and_cover_each_image_once():
    from experiments.data.augment import RandAugment

    d = load_dataset({"name": "synthetic", "train_size": 256, "val_size": 8, "num_classes": 256}, 8, 3)
    d.x_train = torch.arange(256, dtype=torch.uint8).view(-1, 1, 1, 1).expand(-1, 3, 8, 8).contiguous()
    d.y_train, d.pad, d.flip = torch.arange(256), 0, False
    d.mean, d.std = torch.zeros(1, 3, 1, 1), torch.full((1, 3, 1, 1), 1 / 255)

    class Reorder(RandAugment):  # only the reordering each worker's plan asks for
        def __call__(self, x, plan):
            return x[plan.order]

    d.randaugment = Reorder(2, 10)
    seen = []
    for rank in range(2):
        for x, y in d.train_batches(64, torch.Generator().manual_seed(0), shard=(rank, 2)):
            assert len(y) == 32 and torch.equal(x[:, 0, 0, 0].round().long(), y)
            seen.append(y)
    assert sorted(torch.cat(seen).tolist()) == list(range(256))
