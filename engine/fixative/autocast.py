"""bf16 autocast on CPUs that run bf16 natively (AVX512-BF16 or AMX), fp32 everywhere else.

Measured on 2-core machines: a TAEF2 forward + backward at 256² takes 0.10 s under bf16 autocast
against 0.39 s in fp32 where the CPU has AMX (issue 13). On an AMD EPYC with AVX512-BF16 a 256² view
costs a step about 0.21 s against 0.38 s, and a default protect of a 1024² painting takes 36–42 s
against 63–65 s, every gain over noise within 0.05 dB of the fp32 run's (docs/benchmarks.md,
"bf16 autocast against float32").
On a CPU without native bf16, autocast emulates it and is slower than fp32, so it stays off there.
``FIXATIVE_PRECISION=fp32`` forces fp32 (``bf16`` forces autocast on, ``auto`` is the default).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import torch

PRECISION_ENV = "FIXATIVE_PRECISION"
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True when /proc/cpuinfo lists AVX512-BF16 or AMX-BF16 (Linux); False elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            flags = set(line.split(":", 1)[1].split())
            return any(flag in flags for flag in BF16_FLAGS)
    return False


def precision_setting() -> str:
    value = os.environ.get(PRECISION_ENV, "auto").strip().lower() or "auto"
    if value not in ("auto", "fp32", "bf16"):
        raise ValueError(f"{PRECISION_ENV}={value!r}: use auto, fp32 or bf16")
    return value


def use_cpu_autocast(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether the optimisation's forward passes run under bf16 autocast on this CPU."""
    if device.type != "cpu" or dtype != torch.float32:
        return False
    setting = precision_setting()
    return setting == "bf16" or (setting == "auto" and cpu_has_native_bf16())


def autocast_context(enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on the CPU when ``enabled``; a no-op context otherwise."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast("cpu", dtype=torch.bfloat16)
