"""experiments/cli/train.py: `archscale train` writes its history files; a loader's data set from the CLI."""
import csv
import json

from experiments.cli import main
from experiments.results.train_history import HISTORY_CSV, HISTORY_JSON

TINY = ["--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar", "--stem-width", "8",
        "--resolution", "12", "--max-steps-per-epoch", "2", "--set", "ema_decay=0"]


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_history_goes_next_to_the_checkpoint_every_epoch_and_survives_a_resume(tmp_path, capsys):
    ckpt = tmp_path / "ckpt"
    assert main(["train", *TINY, "--epochs", "2", "--checkpoint-dir", str(ckpt)]) == 0
    assert f"history: {ckpt / HISTORY_CSV}" in capsys.readouterr().out
    rows = read_csv(ckpt / HISTORY_CSV)
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"train_loss", "val_top1", "lr", "time_s"} <= set(rows[0])
    doc = json.loads((ckpt / HISTORY_JSON).read_text())
    assert doc["summary"]["status"] == "done" and doc["summary"]["final_top1"] == float(rows[-1]["val_top1"])
    assert doc["config"]["spec"]["widths"] == [8, 16, 32] and "history" not in doc["summary"]
    # a longer run resumed from it: the files hold the epochs before the resume too
    assert main(["train", *TINY, "--epochs", "2", "--checkpoint-dir", str(ckpt), "--resume"]) == 0
    assert [r["epoch"] for r in read_csv(ckpt / HISTORY_CSV)] == ["1", "2"]


def test_output_dir_gets_the_history_after_each_epoch(tmp_path, capsys, monkeypatch):
    from experiments.results import train_history as history

    seen = []
    real = history.write_history

    def spy(folder, rows, **kw):
        seen.append((len(rows), kw.get("summary") is not None))
        return real(folder, rows, **kw)

    monkeypatch.setattr(history, "write_history", spy)
    assert main(["train", *TINY, "--epochs", "2", "--output-dir", str(tmp_path / "out"), "--json"]) == 0
    assert seen == [(1, False), (2, False), (2, True)]  # each epoch, then with the summary
    result = json.loads(capsys.readouterr().out)
    assert json.loads((tmp_path / "out" / HISTORY_JSON).read_text())["summary"]["final_top1"] == result["final_top1"]


def test_a_loader_from_the_command_line_and_no_files_without_a_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *TINY, "--epochs", "1", "--dataset-loader", "test_dataset_loader:tiny_data",
                 "--dataset-option", "n=24", "--dataset-option", "classes=3", "--dataset-label", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "on tiny, seed 0" in out and "done: final top-1" in out and "history:" not in out
    assert list(tmp_path.iterdir()) == []


def test_loader_flag_errors_are_one_line(capsys):
    for argv, message in (
            (["--dataset-loader", "test_dataset_loader:folder_data", "--dataset-option", "nn=3"],
             "dataset.options: test_dataset_loader:folder_data does not take these arguments"),
            (["--dataset-loader", "nowhere"], "dataset.loader: expected 'package.module:name'"),
            (["--dataset-option", "n=3"], "dataset_option: --dataset-option is for --dataset-loader's function"),
            (["--dataset", "digits", "--dataset-loader", "a:b"], "dataset: give --dataset or --dataset-loader")):
        assert main(["train", *TINY, *argv]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_a_cut_batch_is_one_notice_line_and_lr_is_settable(tmp_path, capsys):
    """digits has 1,438 training images: rs-10's batch 4096 is cut to 64 (1/16 of them at most,
    a power of two); --set lr gives the peak rate at the regime's batch, which the cut scales."""
    assert main(["train", *TINY, "--epochs", "1", "--set", "lr=0.8"]) == 0
    out = capsys.readouterr().out.splitlines()
    notes = [ln for ln in out if ln.startswith("note: ")]
    assert notes == ["note: rs-10's batch 4096 cut to 64 for 1438 training images (at most 1/16 of them, a power "
                     "of two); lr follows it: 0.8 -> 0.0125"]
    assert "batch 64, lr 0.0125)" in out[-1]
    from experiments.train.loop import batch_cut_note
    from experiments.train.regimes import get_regime

    assert batch_cut_note(get_regime("rs-10", batch_size=64), 1438) is None  # a batch that fits: no notice


def test_a_top5_of_five_classes_or_fewer_is_noted_as_trivial():
    from experiments.cli.train import top5_note

    assert top5_note(5) == " (trivially: 5 classes, top-5 holds them all)" and top5_note(1).startswith(" (trivially: 1 class,")
    assert top5_note(6) == "" and top5_note(None) == ""
