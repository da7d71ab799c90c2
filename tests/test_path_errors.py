"""Every path and file a user names that cannot serve is one line on stderr with exit status 2,
and nothing is left behind: output folders, spec files, plan.json, suggest --out, loader options,
a cluster address."""
import os
import socket
from pathlib import Path

import pytest
import yaml
from sweep_helpers import tiny_sweep

from experiments.cli import main


def one_line_error(capsys, command: str, starts: str) -> str:
    captured = capsys.readouterr()
    err = captured.err
    assert err.count("\n") == 1, err
    assert err.startswith(f"archscale {command}: error: {starts}"), err
    return err


def spec_file(tmp_path, output_dir, **extra) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(tiny_sweep(output_dir, **extra)))
    return path


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_output_dir_that_is_a_file(tmp_path, capsys, dry_run):
    (tmp_path / "taken").write_text("mine")
    spec = spec_file(tmp_path, tmp_path / "taken")
    assert main(["sweep", str(spec), *(["--dry-run"] if dry_run else [])]) == 2
    one_line_error(capsys, "sweep", f"output_dir: {tmp_path / 'taken'} is a file; name a folder")
    assert main(["sweep", str(spec), "--output-dir", str(tmp_path / "taken" / "out"), "--dry-run"]) == 2
    one_line_error(capsys, "sweep", f"output_dir: {tmp_path / 'taken'} is a file, so")
    assert (tmp_path / "taken").read_text() == "mine" and listing(tmp_path) == ["s.yaml", "taken"]


def unwritable_folder(tmp_path) -> Path:
    """A folder this process cannot create entries in: a read-only folder, or for root (whom
    permissions do not stop) sysfs, which refuses new entries to everyone."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        return ro
    if not Path("/sys/kernel").is_dir():
        pytest.skip("no sysfs to stand for an unwritable folder")
    return Path("/sys")


@pytest.mark.parametrize("dry_run", [True, False])
def test_an_output_dir_that_cannot_be_written(tmp_path, capsys, dry_run):
    parent = unwritable_folder(tmp_path)
    out = parent / "archscale-out"
    assert main(["sweep", str(spec_file(tmp_path, out)), *(["--dry-run"] if dry_run else [])]) == 2
    one_line_error(capsys, "sweep", f"output_dir: {out} cannot be written (")
    assert not out.exists()


def test_suggest_out_naming_a_folder(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "folder").mkdir()
    assert main(["suggest", str(tmp_path / "run"), "--out", str(tmp_path / "folder")]) == 2
    one_line_error(capsys, "suggest", f"out: {tmp_path / 'folder'} is a folder; name a file")
    assert listing(tmp_path) == ["folder", "run"]


def test_a_spec_that_is_not_utf8(tmp_path, capsys):
    spec = tmp_path / "latin1.yaml"
    spec.write_bytes(yaml.safe_dump(tiny_sweep(tmp_path / "out")).replace("tiny", "t\xe9").encode("latin-1"))
    assert main(["sweep", str(spec), "--dry-run"]) == 2
    one_line_error(capsys, "sweep", f"sweep: {spec} is not UTF-8 text (byte 0xe9 at offset ")
    arch = tmp_path / "arch.yaml"
    arch.write_bytes(b"preset: resnet18\n# caf\xe9\n")
    assert main(["count", "--spec", str(arch)]) == 2
    one_line_error(capsys, "count", f"spec: {arch} is not UTF-8 text (byte 0xe9")


@pytest.mark.parametrize("command", ["status", "report"])
@pytest.mark.parametrize("content", ['{"name": "tiny", "trials": [', "[1, 2]", "\xff"])
def test_a_corrupt_plan_json(tmp_path, capsys, command, content):
    (tmp_path / "plan.json").write_bytes(content.encode("latin-1"))
    before = listing(tmp_path)
    assert main([command, str(tmp_path)]) == 2
    one_line_error(capsys, command, f"run_dir: {tmp_path / 'plan.json'} ")
    assert listing(tmp_path) == before


def test_a_corrupt_plan_json_under_a_rerun(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "plan.json").write_text("{")
    assert main(["sweep", str(spec_file(tmp_path, out))]) == 2
    one_line_error(capsys, "sweep", f"output_dir: {out / 'plan.json'} is not readable JSON (JSONDecodeError); ")
    assert listing(out) == ["driver.lock", "plan.json"]


def test_a_loader_option_of_the_wrong_type(tmp_path, capsys, monkeypatch):
    (tmp_path / "myloader.py").write_text("def load(n=600, flip=False, tag='x'):\n"
                                          "    raise AssertionError('not called')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["train", "--preset", "resnet18", "--resolution", "16", "--dataset-loader", "myloader:load",
                 "--dataset-option", "n=abc"]) == 2
    one_line_error(capsys, "train", "dataset.options.n: 'abc' is not an int, as myloader:load takes it (n=600 by "
                                    "default); give e.g. n=600")
    assert main(["train", "--preset", "resnet18", "--resolution", "16", "--dataset-loader", "myloader:load",
                 "--dataset-option", "flip=1"]) == 2
    one_line_error(capsys, "train", "dataset.options.flip: 1 is not a bool")
    spec = spec_file(tmp_path, tmp_path / "out", dataset={"loader": "myloader:load", "options": {"n": "abc"}})
    assert main(["sweep", str(spec), "--dry-run"]) == 2
    one_line_error(capsys, "sweep", "dataset.options.n: 'abc' is not an int")


def test_a_bad_address_leaves_no_manifest_or_plan(tmp_path, capsys):
    pytest.importorskip("ray")
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "new" / "out"
    assert main(["sweep", str(spec_file(tmp_path, out)), "--address", f"127.0.0.1:{port}"]) == 2
    one_line_error(capsys, "sweep", f"address: nothing is listening at 127.0.0.1:{port}")
    assert listing(tmp_path) == ["s.yaml"]  # not even the folders it made
    # a folder that was there keeps what it held, and gains no plan or manifest
    out.mkdir(parents=True)
    (out / "notes.txt").write_text("mine")
    assert main(["sweep", str(spec_file(tmp_path, out)), "--address", f"127.0.0.1:{port}"]) == 2
    one_line_error(capsys, "sweep", "address: ")
    assert listing(out) == ["driver.lock", "notes.txt"]
