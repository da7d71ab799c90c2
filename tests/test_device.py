"""scaling/device.py: the mixed-precision type per device, cuDNN autotuning, GPU peaks."""
import pytest
import torch

from scaling.device import amp_dtype, cudnn_autotune, native_bf16, peak_bf16_flops

CUDA = torch.device("cuda:0")


@pytest.fixture
def gpu(monkeypatch):
    """A pretend NVIDIA GPU whose compute capability and name the test sets; bf16 'supported'
    (torch.cuda.is_bf16_supported counts emulation, so it says True on a V100 too)."""
    state = {"capability": (9, 0), "name": "NVIDIA H100 80GB HBM3"}
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: state["capability"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: state["name"])
    return state


@pytest.mark.parametrize("capability,dtype", [((7, 0), torch.float16), ((7, 5), torch.float16),
                                              ((8, 0), torch.bfloat16), ((8, 9), torch.bfloat16),
                                              ((9, 0), torch.bfloat16)],
                         ids=["V100", "T4", "A100", "L40S", "H100"])
def test_bf16_only_where_the_gpu_has_it_natively(gpu, capability, dtype):
    gpu["capability"] = capability
    assert amp_dtype(CUDA) == dtype
    assert native_bf16(CUDA) is (dtype == torch.bfloat16)


def test_cpu_autocasts_in_bf16():
    assert amp_dtype(torch.device("cpu")) == torch.bfloat16


def test_cudnn_autotune_is_restored_even_after_an_error(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    with cudnn_autotune():
        assert torch.backends.cudnn.benchmark is True
    assert torch.backends.cudnn.benchmark is False
    with pytest.raises(KeyError), cudnn_autotune():
        raise KeyError("x")
    assert torch.backends.cudnn.benchmark is False


@pytest.mark.parametrize("name,peak", [("NVIDIA H100 80GB HBM3", 989e12), ("NVIDIA H100 PCIe", 756e12),
                                       ("NVIDIA H200", 989e12), ("NVIDIA A100-SXM4-80GB", 312e12),
                                       ("Tesla T4", None)])
def test_peak_bf16_flops_by_gpu_name(gpu, name, peak):
    gpu["name"] = name
    assert peak_bf16_flops(CUDA) == peak
    assert peak_bf16_flops(torch.device("cpu")) is None
