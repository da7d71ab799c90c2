"""experiments/data/folder.py: ImageNet-layout folders decoded in workers or on the device, decode:
auto, bad files named or skipped, and batches of at least two images."""
import numpy as np
import pytest
import torch

from experiments.data.datasets import dataset_check, dataset_from, dataset_train_size, load_dataset
from experiments.data.folder import IMAGENET_MEAN, IMAGENET_STD, decode_batch, loader_cpus, read_encoded, read_image
from scaling import ArchScaleError


def write_folder(root, n=3, size=(40, 50), fmt="jpg", smooth=False):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("val", 2)):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                if smooth:  # photo-like: what JPEG is made for, so both decoders agree closely
                    yy, xx = np.mgrid[0:size[0], 0:size[1]] / max(size)
                    img = np.stack([np.sin(xx * rng.uniform(2, 6) + c) * np.cos(yy * rng.uniform(2, 6))
                                    for c in range(3)], 2) * 100 + 128
                    img = img.astype(np.uint8)
                else:
                    img = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
                Image.fromarray(img).save(root / split / cls / f"{i}.{fmt}", quality=95)


def _std_levels() -> float:
    """One grey level of the normalised batches, at the smallest std (the loosest channel)."""
    return 1 / 255 / min(IMAGENET_STD)


def test_folder_images_decode_to_uint8_and_are_normalised_on_the_device(tmp_path):
    from PIL import Image
    from torchvision.io import decode_jpeg, read_file
    from torchvision.transforms import v2

    write_folder(tmp_path)
    jpg = tmp_path / "train" / "cat" / "0.jpg"
    assert torch.equal(read_image(str(jpg)), decode_jpeg(read_file(str(jpg))))
    png = tmp_path / "x.png"
    Image.fromarray(np.full((5, 7), 9, dtype=np.uint8)).save(png)  # greyscale, not a JPEG: PIL
    assert read_image(str(png)).shape == (3, 5, 7) and read_image(str(png)).dtype == torch.uint8
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0}, 32, 3)
    img, label, index, draws = d.train_set[(0, 123)]
    assert img.dtype == torch.uint8 and img.shape == (3, 32, 32) and draws is not None  # what the workers hand over
    val, *_ = d.val_set[0]
    raw = read_image(d.val_set.samples[0][0])
    want = v2.functional.center_crop(v2.functional.resize(raw, [37], antialias=True), [32])  # 32 / 0.875 = 37
    assert torch.equal(val, want)
    xv, _ = next(d.val_batches(8))
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    assert torch.allclose(xv[0:1], (want[None].float() / 255 - mean) / std)
    d.set_randaugment(2, 10)
    x, y = next(d.train_batches(4, torch.Generator().manual_seed(0)))
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (4,)


@pytest.mark.parametrize("smooth", [False, True])
def test_device_and_worker_decoding_give_the_same_batches(tmp_path, smooth):
    write_folder(tmp_path, n=4, size=(48, 64), smooth=smooth)
    on_workers = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0, "decode": "workers"}, 24, 3)
    on_device = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0, "decode": "device"}, 24, 3)
    assert (on_workers.decode_choice, on_device.decode_choice) == ("workers", "device")
    assert on_device.train_set[(0, 5)][0].dim() == 1  # the workers only read the JPEG's bytes
    pairs = list(zip(on_workers.train_batches(4, torch.Generator().manual_seed(3)),
                     on_device.train_batches(4, torch.Generator().manual_seed(3))))
    pairs += list(zip(on_workers.val_batches(3), on_device.val_batches(3)))
    assert len(pairs) == 2 + 2
    for (a, ya), (b, yb) in pairs:  # same files, crops and flips; on a CPU the same decoder too
        assert torch.equal(ya, yb) and (a - b).abs().max() < 0.01 * _std_levels()


def test_jpegs_decode_in_batches_and_other_formats_in_the_workers(tmp_path):
    from PIL import Image

    write_folder(tmp_path)
    Image.fromarray(np.full((30, 45, 3), 9, dtype=np.uint8)).save(tmp_path / "val" / "dog" / "x.png")  # not a JPEG
    jpg, png = str(tmp_path / "train" / "cat" / "0.jpg"), str(tmp_path / "val" / "dog" / "x.png")
    items = [read_encoded(jpg), read_encoded(png)]
    assert items[0].dim() == 1 and items[1].shape == (3, 30, 45)
    decoded, failed = decode_batch(items, torch.device("cpu"))
    assert not failed and torch.equal(decoded[0], read_image(jpg)) and torch.equal(decoded[1], read_image(png))
    with pytest.raises(ArchScaleError, match="dataset.decode"):
        dataset_from({"name": "imagefolder", "root": str(tmp_path), "decode": "gpu"})


def test_decode_auto_chooses_workers_on_a_cpu_and_the_trial_records_it(tmp_path, capsys):
    from experiments.data.folder import measure_decode
    from experiments.train.trial import train_trial

    write_folder(tmp_path, n=4, size=(24, 24))
    cfg = dataset_from({"name": "imagefolder", "root": str(tmp_path), "workers": 0})
    assert cfg.decode == "auto"
    d = load_dataset(cfg, 16, 3)
    assert d.decode_choice == "workers" and "decode: auto chose workers" in d.decode_note
    rates = measure_decode(d.train_samples, 16, torch.device("cpu"), workers=3, images=4)  # what a GPU node times
    assert set(rates) == {"workers", "device"} and min(rates.values()) > 0
    spec = {"block": "basic", "depth": 8, "widths": [4, 8, 8], "stem": "cifar", "stem_width": 4, "resolution": 16}
    result = train_trial({"spec": spec, "regime": {"name": "rs-10", "epochs": 1, "batch_size": 4},
                          "dataset": cfg.to_dict(),
                          "checkpoint_every": 0, "device": "cpu", "max_steps_per_epoch": 1})
    assert result["decode"] == "workers" and result["history"][0]["decode"] == "workers"
    assert "imagefolder: decode: auto chose workers" in capsys.readouterr().out
    explicit = load_dataset({**cfg.to_dict(), "decode": "device"}, 16, 3)
    assert explicit.decode_choice == "device" and explicit.decode_note == ""  # nothing to say when told


def _corrupt(tmp_path):
    """A folder with a truncated JPEG in train/cat and a text file named .jpg in train/dog."""
    write_folder(tmp_path, n=4)
    truncated = tmp_path / "train" / "cat" / "1.jpg"
    truncated.write_bytes(truncated.read_bytes()[:400])
    not_image = tmp_path / "train" / "dog" / "2.jpg"
    not_image.write_text("<html>404</html>")
    return str(truncated), str(not_image)


@pytest.mark.parametrize("decode", ["workers", "device"])
def test_a_bad_image_stops_the_run_with_one_line_naming_it(tmp_path, decode):
    truncated, not_image = _corrupt(tmp_path)
    cfg = {"name": "imagefolder", "root": str(tmp_path), "workers": 0, "decode": decode}
    with pytest.raises(ArchScaleError) as e:  # planning reads each file's first bytes
        dataset_train_size(cfg)
    assert not_image in str(e.value) and "not an image" in str(e.value) and "on_bad_file: skip" in str(e.value)
    (tmp_path / "train" / "dog" / "2.jpg").unlink()
    assert dataset_train_size(cfg) == 7  # a truncated JPEG starts like one: found when decoded
    d = load_dataset(cfg, 16, 3)
    with pytest.raises(ArchScaleError) as e:
        for _ in d.train_batches(7, torch.Generator().manual_seed(0)):
            pass
    message = str(e.value)
    assert truncated in message and "\n" not in message and "0x" not in message and ".cpp" not in message


@pytest.mark.parametrize("decode", ["workers", "device"])
def test_on_bad_file_skip_leaves_bad_images_out_with_a_count(tmp_path, decode, capsys):
    truncated, not_image = _corrupt(tmp_path)
    cfg = {"name": "imagefolder", "root": str(tmp_path), "workers": 0, "decode": decode, "on_bad_file": "skip"}
    assert dataset_train_size(cfg) == 7
    check = dataset_check(cfg)
    assert check["bad_files_skipped"] == 1 and check["skipped"][0]["path"] == not_image
    d = load_dataset(cfg, 16, 3)
    assert d.train_size == 7 and list(d.skipped) == [not_image]
    batches = list(d.train_batches(7, torch.Generator().manual_seed(0)))
    assert [len(y) for _, y in batches] == [7]  # the truncated image's place went to another image
    assert set(d.skipped) == {not_image, truncated}
    out = capsys.readouterr().out
    assert f"skipped {truncated}" in out and "2 files skipped (on_bad_file: skip)" in out
    list(d.train_batches(7, torch.Generator().manual_seed(1)))
    assert capsys.readouterr().out.count(truncated) == 0  # each file is reported once
    bad_val = tmp_path / "val" / "dog" / "0.jpg"
    bad_val.write_bytes(bad_val.read_bytes()[:300])
    labels = torch.cat([y for _, y in d.val_batches(3)])
    assert sorted(labels.tolist()) == [0, 0, 1] and str(bad_val) in d.skipped  # left out, not replaced


def test_archscale_train_names_a_corrupt_image_in_one_line_and_skips_it_on_request(tmp_path, capsys):
    from experiments.cli import main

    truncated, _ = _corrupt(tmp_path)
    (tmp_path / "train" / "dog" / "2.jpg").unlink()
    args = ["train", "--block", "basic", "--depth", "8", "--widths", "4,8,8", "--stem", "cifar", "--stem-width", "4",
            "--resolution", "16", "--epochs", "1", "--batch-size", "4", "--dataset", "imagefolder", "--data-root",
            str(tmp_path), "--device", "cpu", "--cpus", "1"]
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if not ln.startswith("warning:")]
    assert len(err) == 1 and truncated in err[0]  # one line, no traceback (a short-regime warning aside)
    assert main(args + ["--on-bad-file", "skip", "--json"]) == 0
    assert f"skipped {truncated}" in capsys.readouterr().out


def test_no_training_batch_holds_a_single_image(tmp_path):
    from experiments.train.loop import effective_batch_size
    from experiments.train.regimes import get_regime

    rs10 = get_regime("rs-10")
    assert effective_batch_size(rs10, 13) == 2 and effective_batch_size(rs10, 40) == 2  # was 1 for 13 images
    with pytest.raises(ArchScaleError, match="a batch needs at least 2"):
        effective_batch_size(rs10, 1)
    from experiments.train.loop import split_batch

    assert split_batch(4, 2, "workers") == 2
    with pytest.raises(ArchScaleError, match="gives each of 2 workers one image.*use at most 1 worker"):
        split_batch(2, 2, "workers")  # data-parallel: no worker steps on one image either
    write_folder(tmp_path, n=2)
    (tmp_path / "train" / "cat" / "0.jpg").write_bytes(b"\xff\xd8\xff broken")
    (tmp_path / "train" / "cat" / "1.jpg").write_bytes(b"\xff\xd8\xff broken too")
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0, "on_bad_file": "skip",
                      "decode": "workers"}, 16, 3)
    sizes = [len(y) for _, y in d.train_batches(2, torch.Generator().manual_seed(0))]
    assert sizes and all(s == 2 for s in sizes)  # the all-bad batch is dropped, the others are whole


def test_folder_workers_follow_the_trials_cpus_without_oversubscription():
    # (cpus, workers, cuda, node CPUs, GPUs) -> (workers, training-process threads, warns)
    assert loader_cpus(None, None, True, node_cpus=16, gpus=2)[:2] == (8, 1)  # the node's CPUs per GPU
    assert loader_cpus(6, None, True, node_cpus=16)[:2] == (6, 1)
    assert loader_cpus(8, None, False, node_cpus=16)[:2] == (4, 4)  # CPU trial: half load, half train
    assert loader_cpus(None, None, False, node_cpus=4)[:2] == (2, 2)
    assert loader_cpus(8, 3, False)[:2] == (3, 5) and loader_cpus(2, 0, False)[:2] == (0, 2)
    for cpus, workers, cuda in ((1, None, False), (3, None, False), (4, 2, True), (16, None, True)):
        w, threads, _ = loader_cpus(cpus, workers, cuda, node_cpus=16)
        assert threads >= 1 and (w + threads <= cpus or threads == 1)
    assert "will starve the GPU" in loader_cpus(1, None, True)[2] and "\n" not in loader_cpus(1, None, True)[2]
    assert loader_cpus(1, None, False)[2] is None and loader_cpus(4, None, True)[2] is None


def test_folder_data_takes_its_workers_from_the_trial(tmp_path):
    write_folder(tmp_path, n=1)
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path)}, 32, 3, cpus=4)
    assert (d.workers, d.main_threads) == (2, 2)
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 1}, 32, 3, cpus=4)
    assert (d.workers, d.main_threads) == (1, 3)
    with pytest.raises(ArchScaleError, match="dataset.workers: DataLoader workers"):
        dataset_from({"name": "imagefolder", "root": str(tmp_path), "workers": -1})


def test_folder_shards_split_each_batch_over_workers(tmp_path):
    write_folder(tmp_path, n=4)
    d = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0}, 16, 3)
    whole = list(d.train_batches(4, torch.Generator().manual_seed(1)))
    parts = [list(d.train_batches(4, torch.Generator().manual_seed(1), shard=(r, 2))) for r in range(2)]
    assert [len(p) for p in parts] == [2, 2] and all(len(y) == 2 for p in parts for _, y in p)
    assert sorted(int(i) for p in parts for _, y in p for i in y) == [0] * 4 + [1] * 4  # each image once
    for b, (x, y) in enumerate(whole):  # the workers' parts make up the one-worker batch, crops included
        assert torch.equal(torch.cat([p[b][0] for p in parts]), x)
        assert torch.equal(torch.cat([p[b][1] for p in parts]), y)
    val = [torch.cat([y for _, y in d.val_batches(3, shard=(r, 2))]) for r in range(2)]
    assert sum(map(len, val)) == d.val_size


def test_worker_processes_are_kept_across_epochs_and_give_what_in_process_loading_gives(tmp_path):
    write_folder(tmp_path, n=4)
    kept = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 1, "decode": "workers"}, 16, 3)
    here = load_dataset({"name": "imagefolder", "root": str(tmp_path), "workers": 0, "decode": "workers"}, 16, 3)
    for seed in (0, 1):  # two epochs through one DataLoader and its worker
        for (a, ya), (b, yb) in zip(kept.train_batches(4, torch.Generator().manual_seed(seed)),
                                    here.train_batches(4, torch.Generator().manual_seed(seed))):
            assert torch.equal(a, b) and torch.equal(ya, yb)
    assert len(kept._loaders) == 1 and next(iter(kept._loaders.values())).persistent_workers
    assert len(torch.cat([y for _, y in kept.val_batches(3)])) == kept.val_size == 4
