"""Perceptual budgets: how much each pixel may change, so the cloak hides where the eye won't see it.

The weight-free budget (always available) allows up to ``eps`` in busy, textured areas and only a
fraction of it in flat colour and along clean line art (``allowed_change``), then enforces SSIM and
PSNR floors on the final result by shrinking the perturbation (``enforce_floors``, and
``round_within_floor`` after rounding to the output's depth). The optimiser keeps the PSNR floor
during the run too (``fixative.optimizer``). LPIPS is only reported (``fixative.metrics``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fixative.metrics import ssim_torch
from fixative.options import Intensity


@dataclass(frozen=True)
class Budget:
    name: str
    eps: float
    """Largest per-pixel change (0–1 scale) in busy areas."""
    flat_fraction: float
    """Share of eps allowed in perfectly flat areas."""
    min_ssim: float
    min_psnr: float

    @property
    def max_mse(self) -> float:
        """The mean squared change (0–1 scale) at which PSNR reaches the floor."""
        return 10 ** (-self.min_psnr / 10)

    def describe(self) -> str:
        return (f"{self.name}: ≤{self.eps * 255:.0f}/255 in textured areas, ≤{self.eps * self.flat_fraction * 255:.1f}/255 "
                f"in flat ones, SSIM ≥ {self.min_ssim}, PSNR ≥ {self.min_psnr} dB")


BUDGETS: dict[Intensity, Budget] = {
    # name, eps, flat_fraction, min_ssim, min_psnr
    "low": Budget("low", 4 / 255, 0.25, 0.98, 40.0),
    "default": Budget("default", 8 / 255, 0.25, 0.95, 35.5),
    "high": Budget("high", 12 / 255, 0.3, 0.90, 32.0),
}


def texture_map(image: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Local contrast of luminance in [0, 1], shape (1, 1, H, W): high where noise hides well.

    Computed at full resolution in horizontal bands so that an 8192² image needs no large temporaries.
    """
    _, c, h, w = image.shape
    out = torch.empty((1, 1, h, w), dtype=torch.float32, device=image.device)
    pad = window // 2
    band = max(64, (1 << 22) // max(w, 1))
    for top in range(0, h, band):
        lo, hi = max(0, top - pad), min(h, top + band + pad)
        rows = image[:, :, lo:hi].float()
        luma = rows.mean(dim=1, keepdim=True) if c == 3 else rows[:, :1]
        mean = F.avg_pool2d(F.pad(luma, (pad, pad, pad, pad), mode="replicate"), window, stride=1)
        sq = F.avg_pool2d(F.pad(luma**2, (pad, pad, pad, pad), mode="replicate"), window, stride=1)
        std = (sq - mean**2).clamp_min(0).sqrt()
        out[:, :, top:min(h, top + band)] = std[:, :, top - lo: top - lo + min(band, h - top)]
    return out


def allowed_change(image: torch.Tensor, budget: Budget) -> torch.Tensor:
    """Per-pixel L∞ bound (1, 1, H, W): eps·flat_fraction in flat areas, rising to eps when busy."""
    texture = texture_map(image)
    busy = (texture / 0.06).clamp(0, 1)  # local std ≥ 0.06 (≈15/255) counts as fully busy
    return budget.eps * (budget.flat_fraction + (1 - budget.flat_fraction) * busy)


SSIM_MARGIN = 0.002
"""The shrink aims this far above the SSIM floor: the check sees a ≤ 1024² centre crop before rounding
to the output's depth, the report the whole rounded image."""
SSIM_BISECTIONS = 10
"""Halvings of the search for the largest factor that keeps SSIM (the factor within 0.1 % of it)."""


def enforce_floors(original: torch.Tensor, delta: torch.Tensor, budget: Budget,
                   max_side: int = 1024) -> tuple[torch.Tensor, float]:
    """Shrink ``delta`` as little as the SSIM and PSNR floors allow; returns (delta, factor applied).

    PSNR scales exactly with the factor. SSIM falls as the factor grows, so the largest factor that
    keeps it is found by bisection on a ≤ max_side² crop. (Shrinking in fixed 15 % steps threw away up
    to 15 % of the cloak: measured on The Great Wave at 1024², SSIM 0.960 where the floor is 0.95.)
    """
    mse = float((delta.float() ** 2).mean())
    factor = 1.0
    if mse > 0:
        current = 10 * math.log10(1.0 / mse)
        if current < budget.min_psnr:
            factor = 10 ** ((current - budget.min_psnr) / 20)
    sample_o, sample_d = _ssim_sample(original, delta, max_side)

    def keeps_ssim(f: float) -> bool:
        return float(ssim_torch(sample_o, (sample_o + f * sample_d).clamp(0, 1))) >= budget.min_ssim + SSIM_MARGIN

    if not keeps_ssim(factor):
        low, high = 0.0, factor
        for _ in range(SSIM_BISECTIONS):
            middle = (low + high) / 2
            low, high = (middle, high) if keeps_ssim(middle) else (low, middle)
        factor = low
    return delta * factor if factor < 1.0 else delta, factor


def _ssim_sample(original: torch.Tensor, delta: torch.Tensor, max_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A centre crop of at most max_side² at full resolution (SSIM must see the real pixels)."""
    h, w = original.shape[-2:]
    top, left = max(0, (h - max_side) // 2), max(0, (w - max_side) // 2)
    box = (slice(None), slice(None), slice(top, top + max_side), slice(left, left + max_side))
    return original[box].float(), delta[box].float()



ROUNDING_RETRIES = 8
ROUNDING_SHRINK = 0.95


def round_within_floor(original: np.ndarray, delta: torch.Tensor, budget: Budget,
                       to_output: Callable[[torch.Tensor], np.ndarray]) -> np.ndarray:
    """The protected image as the output will store it, still above the PSNR floor.

    ``to_output(delta)`` returns the protected colour as float, rounded to the output's integer
    depth; rounding adds error, so ``delta`` shrinks by ROUNDING_SHRINK until the floor holds
    (at most ROUNDING_RETRIES tries)."""
    for _ in range(ROUNDING_RETRIES):
        protected = to_output(delta)
        mse = float(np.mean((protected - original) ** 2, dtype=np.float64))
        if mse == 0 or 10 * math.log10(1.0 / mse) >= budget.min_psnr:
            break
        delta = delta * ROUNDING_SHRINK
    return protected
