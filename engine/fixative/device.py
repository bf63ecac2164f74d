"""Which torch device and dtype protection runs on: the one place that decides it."""

from __future__ import annotations

import torch

from fixative.errors import BadOptions


def pick_device(requested: str = "auto") -> tuple[torch.device, torch.dtype]:
    """auto: CUDA → MPS → CPU; bf16 on CUDA, fp16 on MPS, fp32 on CPU."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    if requested in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps"), torch.float16
    if requested not in ("auto", "cpu"):
        raise BadOptions(f"device '{requested}' is not available on this machine; use auto or cpu")
    return torch.device("cpu"), torch.float32
