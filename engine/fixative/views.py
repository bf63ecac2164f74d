"""Views: the geometric ways a mimic's pipeline looks at a posted image.

Fine-tuning pipelines resize an image to a training bucket (about 512² for SD 1.x, about 1024²
area for SDXL/FLUX), downscale it further, or take crops. A ``View`` is a source box in the
full-resolution image plus an output size; rendering it crops first and resizes only that
region, so one optimisation step costs what the view costs, whatever the file size.
Views drawn by a ``ViewSampler`` also carry their place on a scale grid, so the clean latent of
the whole scaled image can be computed once and sliced, instead of re-encoding every view.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

TRAINING_AREAS = (512 * 512, 1024 * 1024)


@dataclass(frozen=True)
class View:
    top: int
    left: int
    bottom: int
    right: int
    out_h: int
    out_w: int
    grid: tuple[int, int, int] | None = None
    """(scale index, top, left) of this crop in the sampler's scaled image, when it has one."""

    @property
    def key(self) -> tuple[int, ...]:
        return (self.top, self.left, self.bottom, self.right, self.out_h, self.out_w)

    def render(self, image: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) full-resolution → (B, C, out_h, out_w); differentiable."""
        crop = image[..., self.top:self.bottom, self.left:self.right]
        if crop.shape[-2:] == (self.out_h, self.out_w):
            return crop
        return F.interpolate(crop, size=(self.out_h, self.out_w), mode="bilinear",
                             antialias=True, align_corners=False)


def _round_to(value: float, multiple: int) -> int:
    return max(multiple, int(round(value / multiple)) * multiple)


def whole_view(height: int, width: int, max_area: int, multiple: int) -> View:
    """The whole image, scaled down (never up) to at most ``max_area`` pixels."""
    scale = min(1.0, math.sqrt(max_area / (height * width)))
    return View(0, 0, height, width, _round_to(height * scale, multiple), _round_to(width * scale, multiple))


def candidate_scales(height: int, width: int) -> list[float]:
    """Native resolution, half of it (a common downscale), and every training bucket below native."""
    area = height * width
    scales = [1.0]
    if min(height, width) >= 128:
        scales.append(0.5)
    scales += [math.sqrt(a / area) for a in TRAINING_AREAS if a < area * 0.8]
    return sorted(set(round(s, 4) for s in scales), reverse=True)


class ViewSampler:
    """Draws random training-like views: a scale from a fixed grid, then a crop of ≤ view_px²."""

    def __init__(self, height: int, width: int, view_px: int, multiple: int, jitter: float) -> None:
        self.height, self.width, self.multiple = height, width, multiple
        self.view_px = max(multiple, view_px // multiple * multiple)
        levels = (1 - jitter, 1.0, 1 + jitter) if jitter > 0 else (1.0,)
        scales = {min(1.0, s * j) for s in candidate_scales(height, width) for j in levels}
        self.scales = sorted(scales, reverse=True)
        self.sizes = [self._scaled_size(s) for s in self.scales]

    def _scaled_size(self, scale: float) -> tuple[int, int]:
        return (_round_to(self.height * scale, self.multiple), _round_to(self.width * scale, self.multiple))

    def scaled_view(self, index: int) -> View:
        """The whole image at grid scale ``index`` (for computing its clean latent once)."""
        out_h, out_w = self.sizes[index]
        return View(0, 0, self.height, self.width, out_h, out_w)

    def sample(self, rng: np.random.Generator) -> View:
        index = int(rng.integers(0, len(self.scales)))
        scaled_h, scaled_w = self.sizes[index]
        out_h, out_w = min(self.view_px, scaled_h), min(self.view_px, scaled_w)
        m = self.multiple
        sy = int(rng.integers(0, (scaled_h - out_h) // m + 1)) * m
        sx = int(rng.integers(0, (scaled_w - out_w) // m + 1)) * m
        ry, rx = self.height / scaled_h, self.width / scaled_w
        top, left = int(round(sy * ry)), int(round(sx * rx))
        bottom = min(self.height, max(top + 1, int(round((sy + out_h) * ry))))
        right = min(self.width, max(left + 1, int(round((sx + out_w) * rx))))
        return View(top, left, bottom, right, out_h, out_w, grid=(index, sy, sx))
