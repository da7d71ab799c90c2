"""experiments/cli/progress.py: tqdm bars on the long steps, and none when stderr is not a terminal."""
import pytest

from experiments.cli import main, progress

TINY = ["--block", "basic", "--depth", "8", "--widths", "8,16,32", "--stem", "cifar", "--stem-width", "8",
        "--resolution", "12"]


@pytest.fixture
def terminal(monkeypatch):
    monkeypatch.setattr(progress, "_tty", lambda: True)


def test_a_bar_yields_the_same_items_and_is_silent_off_a_terminal(capsys):
    assert list(progress.bar(range(5), total=5, desc="x")) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def test_on_a_terminal_the_bar_shows_on_stderr(terminal, capsys):
    assert list(progress.bar(range(3), total=3, desc="steps")) == [0, 1, 2]
    err = capsys.readouterr().err
    assert "steps:" in err and "/3 [" in err  # tqdm redraws at most every 0.1 s: the 0/3 frame


def test_train_shows_the_steps_of_each_epoch(terminal, capsys):
    assert main(["train", *TINY, "--epochs", "1", "--max-steps-per-epoch", "3"]) == 0
    captured = capsys.readouterr()
    assert "epoch 1/1:" in captured.err and "/3 [" in captured.err
    assert "epoch   1/1" in captured.out  # the epoch lines stay on stdout


def test_space_verify_and_count_measure_show_bars(terminal, capsys, tmp_path):
    import yaml

    space = tmp_path / "tiny.yaml"
    space.write_text(yaml.safe_dump({"base": {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar",
                                              "stem_width": 8, "resolution": 12},
                                     "axes": {"width_multiplier": [0.5, 1.0]}}))
    assert main(["space", str(space), "--verify", "2"]) == 0
    assert "fvcore:" in capsys.readouterr().err
    assert main(["count", *TINY, "--measure", "--iters", "1", "--batch-size", "2", "--device", "cpu"]) == 0
    assert "measure:" in capsys.readouterr().err


def test_write_report_hands_its_sections_to_progress(tmp_path):
    import pandas as pd

    from reports.report import NO_RESULT_SECTIONS, write_report

    seen = []

    def spy(items, total, desc):
        seen.append((desc, total))
        return items

    trials = pd.DataFrame([{"trial_id": "a", "name": "a", "regime": "rs-10", "status": "pending", "seed": 0,
                            "params": 1, "flops": 1}])
    write_report(trials, None, tmp_path / "report", progress=spy)
    assert seen == [("report", len(NO_RESULT_SECTIONS))]


def test_json_lines_of_count_are_written_whole_under_a_bar(terminal, capsys):
    assert main(["count", "resnet18", "resnet34", "--counter", "analytic", "--json"]) == 0
    import json

    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["resnet18", "resnet34"]


def test_off_a_terminal_long_steps_print_a_line_per_finished_item(capsys, tmp_path):
    import yaml

    space = tmp_path / "tiny.yaml"
    space.write_text(yaml.safe_dump({"base": {"block": "basic", "depth": 8, "widths": [8, 16, 32], "stem": "cifar",
                                              "stem_width": 8, "resolution": 12},
                                     "axes": {"width_multiplier": [0.5, 1.0]}}))
    assert main(["space", str(space), "--verify", "2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0] for line in err] == ["fvcore 1/2", "fvcore 2/2"]
    assert {line.split(": ")[1].split(" (")[0] for line in err} == {"d8-w0.5-r12", "d8-w1-r12"}
    assert main(["count", *TINY, "--measure", "--iters", "1", "--batch-size", "2", "--device", "cpu"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("measure 1/1: ") and err[0].endswith(" s)")
    assert main(["count", "resnet18", "resnet34", "--counter", "analytic"]) == 0
    assert capsys.readouterr().err == ""  # a quick step stays silent
