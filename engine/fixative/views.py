"""Views: the geometric ways a mimic's pipeline looks at a posted image.

Fine-tuning pipelines resize an image to a training bucket (about 512² for SD 1.x, about 1024²
area for SDXL/FLUX) or take crops. A ``View`` is a source box in the full-resolution image plus
an output size; rendering it crops first and resizes only that region, so one optimisation step
costs what the view costs, whatever the file size.
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


def candidate_scales(height: int, width: int, jitter: float) -> list[float]:
    """Native resolution plus every training bucket smaller than the image."""
    area = height * width
    scales = [1.0] + [math.sqrt(a / area) for a in TRAINING_AREAS if a < area * 0.9]
    return [min(1.0, s * (1 + jitter)) for s in scales]


def sample_view(height: int, width: int, view_px: int, multiple: int, jitter: float,
                rng: np.random.Generator) -> View:
    """A random training-scale view: pick a scale (native or a bucket), then a crop of ≤ view_px²."""
    scales = candidate_scales(height, width, 0.0)
    scale = scales[int(rng.integers(0, len(scales)))]
    if jitter > 0:
        scale = min(1.0, scale * float(rng.uniform(1 - jitter, 1 + jitter)))
    scaled_h, scaled_w = max(multiple, height * scale), max(multiple, width * scale)
    out_h = min(view_px, _round_to(scaled_h, multiple) if scaled_h >= multiple else multiple)
    out_w = min(view_px, _round_to(scaled_w, multiple) if scaled_w >= multiple else multiple)
    out_h = min(out_h, max(multiple, int(scaled_h) // multiple * multiple))
    out_w = min(out_w, max(multiple, int(scaled_w) // multiple * multiple))
    # source box covering out_h x out_w pixels of the scaled image
    src_h = min(height, max(1, round(out_h / scale)))
    src_w = min(width, max(1, round(out_w / scale)))
    top = int(rng.integers(0, height - src_h + 1))
    left = int(rng.integers(0, width - src_w + 1))
    return View(top, left, top + src_h, left + src_w, out_h, out_w)
