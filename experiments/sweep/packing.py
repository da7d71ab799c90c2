"""``trials_per_gpu: auto``: how many trials share a GPU, chosen from measurements.

The cost step (experiments.sweep.costs) measures, alone on the GPU, every network's peak training
memory and, for the sweep's costliest network (most FLOPs per image: it dominates the sweep's time
and, being the largest, gains least from sharing), the training images/s of 1, 2, 4 and 8 copies
training at once, summed. ``choose_trials_per_gpu`` then takes the most copies that

- fit: copies x (the largest peak memory of the sweep + ``CONTEXT_BYTES``) within ``MEMORY_SHARE``
  of the GPU's memory, and
- pay: each step up (1 -> 2 -> 4 -> 8) trains ``MIN_GAIN`` or more faster in all than the last
  (sharing slows every trial, so it must buy more than the measurements' noise).

Without a GPU there is nothing to share: CPU trials take ``resources.cpus`` each, as many at once
as the CPUs hold (``NO_GPU``). Pure functions: no torch, no Ray.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

__all__ = ["COPIES", "CONTEXT_BYTES", "MEMORY_SHARE", "MIN_GAIN", "NO_GPU", "Packing", "choose_trials_per_gpu"]

#: The copy counts measured and chosen from.
COPIES = (1, 2, 4, 8)
#: Our choice: what a trial process holds on a GPU beyond its tensors (CUDA context, cuDNN and cuBLAS
#: workspaces, the caching allocator's slack): about 0.5 GiB on recent GPUs, rounded up.
CONTEXT_BYTES = 1 << 30
#: Our choice: the share of the GPU's memory the trials may plan to fill (the rest: fragmentation, the data set).
MEMORY_SHARE = 0.9
#: Our choice: the least gain in total training images/s that makes one more step of sharing worth it,
#: twice the 5 % that repeated cost measurements agree within.
MIN_GAIN = 0.10
NO_GPU = ("no GPU in the cluster: trials train on CPUs, resources.cpus each, as many at once as the CPUs hold; "
          "there is no GPU to share")


@dataclass(frozen=True)
class Packing:
    """The choice: trials per GPU, and why, in words."""

    trials_per_gpu: int
    why: str


def _gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB"


def choose_trials_per_gpu(peak_memory_bytes: float | None, device_memory_bytes: float | None,
                          aggregate: Mapping[int, float | None], network: str = "the costliest network") -> Packing:
    """How many trials share one GPU (see the module docstring). ``peak_memory_bytes``: the largest
    peak training memory of the sweep's networks; ``aggregate``: {copies: total training images/s
    of that many copies of ``network`` at once} (None where a count failed, e.g. out of memory)."""
    rates = {k: float(v) for k, v in aggregate.items() if k in COPIES and v is not None and v > 0}
    if 1 not in rates:
        return Packing(1, f"one trial per GPU: no measurement of {network} training alone")
    if peak_memory_bytes is None or not device_memory_bytes:
        return Packing(1, "one trial per GPU: the peak training memory or the GPU's memory is unknown")
    need = peak_memory_bytes + CONTEXT_BYTES
    fits = [k for k in COPIES if k * need <= MEMORY_SHARE * device_memory_bytes]
    best, steps = 1, []
    for k in COPIES[1:]:
        if k not in fits:
            steps.append(f"{k} do not fit ({k} x ({_gib(peak_memory_bytes)} peak + {_gib(CONTEXT_BYTES)} per "
                         f"process) > {MEMORY_SHARE:.0%} of {_gib(device_memory_bytes)})")
            break
        if k not in rates:
            steps.append(f"{k} copies could not be measured")
            break
        gain = rates[k] / rates[best] - 1
        if gain < MIN_GAIN:
            steps.append(f"{k} copies train {gain:+.0%} in all against {best} (under the {MIN_GAIN:.0%} a step "
                         f"must gain)")
            break
        steps.append(f"{k} copies train {gain:+.0%} in all against {best}")
        best = k
    measured = ", ".join(f"{k}: {rates[k]:,.0f}" for k in sorted(rates))
    return Packing(best, f"{best} trial{'s' if best > 1 else ''} per GPU: {'; '.join(steps)}. Training images/s "
                         f"of {network} with 1, 2, 4, 8 copies at once: {measured}")
