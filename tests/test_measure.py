from scaling import ArchSpec, measure


def test_measure_on_cpu_reports_named_device_and_positive_figures():
    spec = ArchSpec(block="basic", depth=8, widths=(8, 16, 32), stem="cifar", stem_width=8,
                    num_classes=10, resolution=16)
    m = measure(spec, device="cpu", batch_size=4, warmup=1, iters=2)
    assert m.device.startswith("cpu (") and "threads" in m.device
    assert m.latency_ms > 0 and m.throughput > 0 and m.train_throughput > 0
    assert m.batch_size == 4 and m.resolution == 16
    assert m.peak_memory_bytes is None or m.peak_memory_bytes >= 0


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
