"""Views: the geometric ways a mimic's pipeline looks at a posted image.

Fine-tuning pipelines resize an image to a training bucket (about 512² for SD 1.x, about 1024²
area for SDXL/FLUX), downscale it further, or take crops. A ``View`` is a source box in the
full-resolution image plus an output size; rendering it crops first and resizes only that
region, so one optimisation step costs what the view costs, whatever the file size.
Views drawn by a ``ViewSampler`` also carry their place on its scale grid (which tile of which
scale), so a tiling's coverage can be checked.
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


def candidate_scales(height: int, width: int) -> list[tuple[float, float, bool]]:
    """(scale, weight, is_training_bucket): native resolution (small images are trained on at about
    native size, large ones cropped) and the training buckets below it weigh most; half size
    (a common downscale bypass) less."""
    area = height * width
    scales = [(1.0, 2.0, False)]
    if min(height, width) >= 128:
        scales.append((0.5, 0.5, False))
    scales += [(math.sqrt(a / area), 2.0, True) for a in TRAINING_AREAS if a < area * 0.8]
    return scales


class ViewSampler:
    """Draws training-like views: a scale from a fixed grid (weighted), then a crop of ≤ view_px².

    Crops at each scale walk a shuffled tiling of the scaled image, so a few steps cover the whole
    image instead of revisiting the same places. Scales are drawn in proportion to their weight
    times their number of tiles, so every scale's pixels are visited about equally often; native
    and half size count at most as many tiles as the largest training bucket (at least a 1024²
    image's worth): on a huge file the buckets are where mimics look, and the cost stays bounded.
    """

    def __init__(self, height: int, width: int, view_px: int, multiple: int, jitter: float,
                 seed: int = 0) -> None:
        self.height, self.width, self.multiple = height, width, multiple
        self.view_px = max(multiple, view_px // multiple * multiple)
        levels = (1 - jitter, 1 + jitter) if jitter > 0 else (1.0,)
        weights: dict[float, float] = {}
        buckets: set[float] = set()
        for scale, weight, is_bucket in candidate_scales(height, width):
            for level in levels:
                key = round(min(1.0, scale * level), 4)
                weights[key] = weights.get(key, 0.0) + weight / len(levels)
                if is_bucket:
                    buckets.add(key)
        self.scales = sorted(weights, reverse=True)
        self.sizes = [self._scaled_size(s) for s in self.scales]
        tiles = [math.ceil(h / self.view_px) * math.ceil(w / self.view_px) for h, w in self.sizes]
        floor = math.ceil(1024 / self.view_px) ** 2  # a 1024² training bucket's worth
        cap = max([floor] + [n for s, n in zip(self.scales, tiles, strict=True) if s in buckets])
        self.tiles = [n if s in buckets else min(n, cap) for s, n in zip(self.scales, tiles, strict=True)]
        share = np.array([weights[s] * n for s, n in zip(self.scales, self.tiles, strict=True)])
        self.weights = share / share.sum()
        self._tiles: dict[int, list[tuple[int, int]]] = {}
        self._tile_rng = np.random.default_rng(seed)

    def views_for_one_pass(self) -> int:
        """How many views visit every (capped) tile of every scale about once."""
        return sum(self.tiles)

    def _scaled_size(self, scale: float) -> tuple[int, int]:
        return (_round_to(self.height * scale, self.multiple), _round_to(self.width * scale, self.multiple))

    def _next_tile(self, index: int, out_h: int, out_w: int) -> tuple[int, int]:
        if not self._tiles.get(index):
            scaled_h, scaled_w = self.sizes[index]
            m = self.multiple

            def starts(total: int, size: int) -> list[int]:
                last = (total - size) // m * m
                return sorted({min(last, k * size) for k in range(-(-total // size))})

            tiles = [(y, x) for y in starts(scaled_h, out_h) for x in starts(scaled_w, out_w)]
            self._tile_rng.shuffle(tiles)
            self._tiles[index] = tiles
        return self._tiles[index].pop()

    def sample(self, rng: np.random.Generator) -> View:
        index = int(rng.choice(len(self.scales), p=self.weights))
        scaled_h, scaled_w = self.sizes[index]
        out_h, out_w = min(self.view_px, scaled_h), min(self.view_px, scaled_w)
        sy, sx = self._next_tile(index, out_h, out_w)
        ry, rx = self.height / scaled_h, self.width / scaled_w
        top, left = int(round(sy * ry)), int(round(sx * rx))
        bottom = min(self.height, max(top + 1, int(round((sy + out_h) * ry))))
        right = min(self.width, max(left + 1, int(round((sx + out_w) * rx))))
        return View(top, left, bottom, right, out_h, out_w, grid=(index, sy, sx))
