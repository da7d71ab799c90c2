"""benchmarks/folder_pipeline.py: the JPEG folder is written in parallel and reused; --train compares the
data paths in one run."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))


def test_jpegs_are_written_in_parallel_in_imagenet_layout_and_reused(tmp_path):
    import folder_pipeline
    from PIL import Image

    files, _, reused = folder_pipeline.write_jpegs(tmp_path, 10, classes=3, size=(40, 30), val=1, processes=2)
    assert not reused and len(files) == 10 and all(f.is_file() for f in files)
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == ["class0", "class1", "class2"]
    assert len(list((tmp_path / "val").rglob("*.jpg"))) == 3
    with Image.open(files[0]) as im:
        assert im.size == (40, 30) and im.format == "JPEG"
    again, _, reused = folder_pipeline.write_jpegs(tmp_path, 10, classes=3, size=(40, 30), val=1)
    assert reused and again == files
    _, _, reused = folder_pipeline.write_jpegs(tmp_path, 12, classes=3, size=(40, 30), val=1, processes=2)
    assert not reused  # another size of folder is written again


@pytest.mark.slow
def test_train_smoke_prints_every_path_with_its_ratio_to_in_memory(tmp_path, capsys):
    import folder_pipeline

    out = folder_pipeline.main(["--train", "--smoke", "--cpus", "1", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert set(out["ratios"]) == {"in memory", "decode: workers", "decode: device", "decode: auto"}
    assert out["ratios"]["in memory"] == 1 and all(r > 0 for r in out["ratios"].values())
    assert out["rates"]["decode: auto"]["decode"] == "workers" and "vs in memory" in text
    assert out["rates"]["decode: workers"]["losses"] == out["rates"]["decode: device"]["losses"]  # same pixels on CPU
