"""README.md: its Python examples run as written, so the documentation cannot drift from the code.

The fast test runs every ```python block up to the sweep (build, count, price, train, your own
data set); the slow test runs them all, in order, in one namespace, in a fresh folder.
"""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.S | re.M)


def python_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def run_blocks(blocks: list[str], folder: Path, monkeypatch) -> dict:
    monkeypatch.chdir(folder)
    namespace: dict = {"__name__": "readme"}
    for i, code in enumerate(blocks):
        exec(compile(code, f"README.md python block {i + 1}", "exec"), namespace)
    return namespace


def test_the_readme_documents_the_python_api():
    text = "\n".join(python_blocks())
    for name in ("build_model", "complexity", "get_preset", "price", "train_trial", "run_sweep", "load_results",
                 "write_report"):
        assert f"{name}(" in text, name


def test_the_examples_before_the_sweep_run(tmp_path, monkeypatch):
    blocks = python_blocks()
    first_sweep = next(i for i, b in enumerate(blocks) if "run_sweep(" in b)
    ns = run_blocks(blocks[:first_sweep], tmp_path, monkeypatch)
    assert ns["result"]["status"] == "done" and len(ns["table"]) == len(ns["configs"]) > 0
    data = ns["load"](n=50)
    assert data["x_train"].dtype.name == "uint8" and len(data["y_train"]) == 40


@pytest.mark.slow
def test_every_python_example_runs(tmp_path, monkeypatch):
    import ray

    if ray.is_initialized():
        ray.shutdown()
    try:
        ns = run_blocks(python_blocks(), tmp_path, monkeypatch)
    finally:
        ray.shutdown()
    assert ns["summary"].counts == {"done": 2} and len(ns["trials"]) == 2
    assert (tmp_path / "runs" / "api_demo" / "report" / "report.md").is_file()
