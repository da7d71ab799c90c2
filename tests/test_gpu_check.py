"""benchmarks/gpu_check.py: every section runs (smoke sizes, on CPU), without Ray or fvcore."""
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))


def _smoke(tmp_path, sections: str) -> dict:
    # Ray and fvcore blocked, as on the GPU machine, whose Python has neither
    code = ("import sys, runpy; sys.modules['ray'] = None; sys.modules['fvcore'] = None; "
            f"sys.argv = ['gpu_check.py', '--smoke', '--device', 'cpu', '--only', '{sections}', "
            f"'--json', {str(tmp_path / 'out.json')!r}]; "
            "runpy.run_path('benchmarks/gpu_check.py', run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=1200,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "."})
    assert run.returncode == 0, run.stderr[-3000:]
    assert "== summary" in run.stdout
    return json.loads((tmp_path / "out.json").read_text())


def test_smoke_runs_without_ray_or_fvcore(tmp_path):
    out = _smoke(tmp_path, "forms")  # the quickest section: the script imports and runs on the GPU's Python
    assert out["device"].startswith("cpu") and out["forms"]["ratio"] > 0


@pytest.mark.slow
def test_smoke_trainer_and_cifar_sections(tmp_path):
    out = _smoke(tmp_path, "trainer,cifar")
    assert out["trainer"]["ratio"] > 0 and out["trainer"]["trainer"]["compile_time_s"] > 0
    assert out["trainer"]["mfu_trainer"] is None  # no peak for a CPU
    assert out["cifar"]["ratio"] > 0 and out["cifar"]["gpu_wait_share"] is None


@pytest.mark.slow
def test_smoke_packing_runs_trials_in_processes(tmp_path):
    out = _smoke(tmp_path, "packing")
    assert out["packing"]["wall_apart_s"] > 0 and out["packing"]["wall_together_s"] > 0


def test_gpu_busy_time_merges_overlapping_kernels():
    import gpu_check

    def event(device, start, end):
        return SimpleNamespace(device_type=device, time_range=SimpleNamespace(start=start, end=end))

    cuda, cpu = torch.autograd.DeviceType.CUDA, torch.autograd.DeviceType.CPU
    prof = SimpleNamespace(events=lambda: [event(cuda, 0, 10), event(cpu, 0, 100), event(cuda, 5, 20),
                                           event(cuda, 30, 40), event(cuda, 32, 35)])
    assert gpu_check.gpu_busy_s(prof) == pytest.approx(30e-6)  # [0, 20] and [30, 40], in microseconds
    assert gpu_check.gpu_busy_s(SimpleNamespace(events=lambda: [event(cpu, 0, 1)])) is None


@pytest.mark.slow
def test_smoke_folder_section_checks_agreement_and_trains_every_path(tmp_path):
    out = _smoke(tmp_path, "folder")["folder"]
    assert out["agreement"]["agree"] and out["agreement"]["batch_max_levels"] == 0  # one decoder on a CPU
    assert out["finite"] and out["same_curve"] and out["hazard"] is None and out["auto_chose"] == "workers"
    assert set(out["ratios"]) == {"in memory", "decode: workers", "decode: device", "decode: auto"}
