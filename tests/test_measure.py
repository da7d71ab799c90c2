import pytest
from scaling import ArchSpec, measure


def test_measure_on_cpu_reports_named_device_and_positive_figures():
    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8,
                    num_classes=10, resolution=16)
    m = measure(spec, device="cpu", batch_size=4, warmup=1, iters=2)
    assert m.device.startswith("cpu (") and "threads" in m.device
    assert m.latency_ms > 0 and m.throughput > 0 and m.train_throughput > 0
    assert m.batch_size == 4 and m.resolution == 16
    assert m.peak_memory_bytes is None or m.peak_memory_bytes >= 0


def test_cpu_peak_memory_holds_at_least_weights_grads_and_momentum():
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    from scaling import complexity, get_preset

    if not sys.platform.startswith("linux"):
        pytest.skip("peak RSS is read from /proc")
    # a fresh process: in this one, memory freed by earlier tests could be reused without the RSS growing
    code = ("from scaling import get_preset, measure; "
            "print(measure(get_preset('resnet18').replace(resolution=64), device='cpu', batch_size=2, warmup=1, "
            "iters=1).peak_memory_bytes)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    weights = 4 * complexity(get_preset("resnet18"), counter="analytic").params  # float32
    assert int(out.split()[-1]) >= 3 * weights


def test_measure_rejects_bad_iters_and_a_batch_batch_norm_cannot_train_on():
    import pytest

    from scaling import ArchScaleError, get_preset

    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", resolution=16)
    with pytest.raises(ArchScaleError, match="iters"):
        measure(spec, device="cpu", iters=0)
    with pytest.raises(ArchScaleError, match="batch_size: 1 is too small.*1 value per channel"):
        measure(get_preset("resnet18").replace(resolution=32), device="cpu", batch_size=1, warmup=0, iters=1)


def test_measure_rejects_missing_cuda_and_bad_batch():
    import pytest
    import torch

    from scaling import ArchScaleError

    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", resolution=16)
    with pytest.raises(ArchScaleError, match="batch_size"):
        measure(spec, device="cpu", batch_size=0)
    if not torch.cuda.is_available():
        with pytest.raises(ArchScaleError, match="no GPU"):
            measure(spec, device="cuda")


def test_measure_autocasts_in_the_devices_amp_dtype():
    # one choice of mixed-precision type for the trainer and measure(): bf16 on CPU (never fp16)
    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, resolution=16)
    m = measure(spec, device="cpu", batch_size=4, warmup=1, iters=1, amp=True)
    assert m.dtype == "bfloat16"


def test_timings_are_the_median_of_repeated_blocks_after_warm_up_and_say_their_spread():
    import time

    import pytest

    from scaling.timing import _timed

    # 2 warm-up calls, then 3 blocks of 2 calls; the second block is twice as slow as the others
    sleeps = iter([0.005] * 2 + [0.01] * 2 + [0.02] * 2 + [0.01] * 2)
    calls = []

    def fn():
        calls.append(1)
        time.sleep(next(sleeps))

    median, spread = _timed(fn, warmup=2, iters=6, repeats=3)
    assert len(calls) == 8
    assert median == pytest.approx(0.01, rel=0.3)
    assert spread == pytest.approx(1.0, abs=0.4)


def test_measure_times_inference_at_its_own_batch_and_records_repeats():
    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8, resolution=16)
    m = measure(spec, device="cpu", batch_size=4, infer_batch_size=8, warmup=1, iters=2, repeats=2)
    assert (m.batch_size, m.infer_batch_size, m.repeats) == (4, 8, 2) and m.spread >= 0


def test_peak_memory_counts_what_is_allocated_after_start_only():
    import subprocess
    import sys
    from pathlib import Path

    import pytest

    if not sys.platform.startswith("linux"):
        pytest.skip("peak RSS is read from /proc")
    # a fresh process: in a long-lived one the allocator reuses pages freed by earlier tests, which
    # the resident set does not see grow
    code = """
import torch
from scaling.timing import PeakMemory
mb = 2**20
before = torch.ones(64 * mb, dtype=torch.uint8)  # resident before the meter starts: not counted
meter = PeakMemory(torch.device("cpu"))
meter.start()
assert meter.peak() < 16 * mb, meter.peak()
during = torch.ones(96 * mb, dtype=torch.uint8)  # written, so resident
del during
assert 90 * mb <= meter.peak() < 96 * mb + 16 * mb, meter.peak()  # the high-water mark stays after the free
meter.reset_peak()
assert meter.peak() < 16 * mb, meter.peak()
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow  # two fresh processes import torch
def test_timing_on_a_cpu_build_prints_no_cuda_toolkit_warning(tmp_path):
    """torch's C++ extension tooling, loaded by torch.utils.benchmark, warns "No CUDA runtime is
    found, using CUDA_HOME=..." on a machine with a CUDA toolkit and no CUDA runtime."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import torch

    if torch.cuda.is_available():
        pytest.skip("the warning is about machines without a CUDA runtime")
    code = ("import torch; from scaling.timing import _benchmark_timer; Timer, clock = _benchmark_timer(); "
            "print(Timer(stmt='f()', globals={'f': lambda: None}).timeit(3).mean >= 0)")
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root), "CUDA_HOME": str(tmp_path)}  # a toolkit "found" there
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and run.stdout.strip() == "True", run.stderr[-2000:]
    assert "CUDA" not in run.stderr, run.stderr
    # the warning is real: the same import without the guard prints it
    bare = subprocess.run([sys.executable, "-c", "import torch.utils.benchmark"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert "No CUDA runtime is found" in bare.stderr
