import os
import stat

import pytest

from scaling.files import atomic_dir, atomic_write, atomic_write_text


def test_atomic_write_text_replaces_whole_file_readable_by_others(tmp_path):
    p = tmp_path / "sub" / "a.json"
    atomic_write_text(p, "one")
    atomic_write_text(p, "two")
    assert p.read_text() == "two"
    assert os.listdir(p.parent) == ["a.json"]
    old = os.umask(0o022)
    os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~old


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "t.csv"
    atomic_write_text(p, "old")

    def half(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise KeyboardInterrupt  # a kill mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(p, half)
    assert p.read_text() == "old"
    assert os.listdir(tmp_path) == ["t.csv"]


def test_atomic_dir_swaps_in_a_whole_directory(tmp_path):
    out = tmp_path / "report"
    with atomic_dir(out) as d:
        (d / "a.md").write_text("first")
    with pytest.raises(RuntimeError):
        with atomic_dir(out) as d:
            (d / "a.md").write_text("second, half done")
            raise RuntimeError("crash mid-report")
    assert (out / "a.md").read_text() == "first"
    assert sorted(os.listdir(tmp_path)) == ["report"]
    with atomic_dir(out) as d:
        (d / "b.md").write_text("second")
    assert sorted(os.listdir(out)) == ["b.md"]
    assert sorted(os.listdir(tmp_path)) == ["report"]


def test_atomic_dir_removes_what_a_killed_writer_left(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "report"
    code = ("import os, sys\nfrom scaling.files import atomic_dir\n"
            "with atomic_dir(sys.argv[1]) as d:\n"
            "    (d / 'half.md').write_text('half')\n"
            "    os._exit(9)  # killed mid-write: no cleanup runs\n")
    subprocess.run([sys.executable, "-c", code, str(out)], check=False, timeout=60)
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".report.") and left[0].endswith(".tmp")
    with atomic_dir(out) as d:
        (d / "a.md").write_text("whole")
    assert sorted(os.listdir(tmp_path)) == ["report"]
