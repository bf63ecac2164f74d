"""Robustness: differentiable stand-ins for what a mimic's pipeline does to a posted image.

Each purification maps (B, C, H, W) in [0, 1] to the same shape and lets gradients through, so the
optimiser can make the protection survive it (expectation over transformation). A ``Robustness``
policy samples one (or a chain) per view. Geometric changes (resize to training buckets, crops)
live in ``fixative.views``; these are the lossy ones: JPEG, down/up-scaling, blur, noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

from fixative.options import Robustness as RobustnessLevel

# Standard JPEG quantisation tables (ITU-T T.81 Annex K), scaled by quality as libjpeg does.
_LUMA_Q = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99,
]
_CHROMA_Q = [17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99,
             24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99, 99, 99, 99] + [99] * 32


def _quality_scale(quality: float) -> float:
    quality = min(max(quality, 1.0), 100.0)
    return 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality


@lru_cache(maxsize=4)
def _dct_matrix(device: str, dtype: torch.dtype) -> torch.Tensor:
    n = 8
    k = np.arange(n)
    matrix = np.cos((2 * k[None, :] + 1) * k[:, None] * math.pi / (2 * n)) * math.sqrt(2 / n)
    matrix[0] /= math.sqrt(2)
    return torch.tensor(matrix, device=device, dtype=dtype)


def _soft_round(x: torch.Tensor) -> torch.Tensor:
    """Rounding whose gradient is not zero: round(x) + (x − round(x))³."""
    rounded = torch.round(x)
    return rounded + (x - rounded) ** 3


def _jpeg_channel(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """8x8 DCT → quantise (soft) → dequantise → inverse DCT, for (B, 1, H, W) with H, W % 8 == 0."""
    b, _, h, w = plane.shape
    d = _dct_matrix(str(plane.device), plane.dtype)
    blocks = plane.reshape(b, h // 8, 8, w // 8, 8).permute(0, 1, 3, 2, 4)
    coeffs = d @ blocks @ d.T
    coeffs = _soft_round(coeffs / table) * table
    blocks = d.T @ coeffs @ d
    return blocks.permute(0, 1, 3, 2, 4).reshape(b, 1, h, w)


def jpeg(images: torch.Tensor, quality: float) -> torch.Tensor:
    """Differentiable JPEG approximation: YCbCr, 4:2:0 chroma, 8x8 DCT quantisation at ``quality``."""
    b, c, h, w = images.shape
    pad_h, pad_w = (-h) % 16, (-w) % 16
    x = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") * 255.0
    if c == 1:
        x = x.expand(-1, 3, -1, -1)
    r, g, bl = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * bl - 128
    cb = -0.168736 * r - 0.331264 * g + 0.5 * bl
    cr = 0.5 * r - 0.418688 * g - 0.081312 * bl
    scale = _quality_scale(quality) / 100.0
    luma_t = torch.tensor(_LUMA_Q, dtype=x.dtype, device=x.device).reshape(8, 8)
    chroma_t = torch.tensor(_CHROMA_Q, dtype=x.dtype, device=x.device).reshape(8, 8)
    luma_t = torch.clamp(torch.floor(luma_t * scale + 0.5), min=1)
    chroma_t = torch.clamp(torch.floor(chroma_t * scale + 0.5), min=1)
    y = _jpeg_channel(y, luma_t)
    hh, ww = y.shape[-2:]
    chroma = []
    for plane in (cb, cr):
        small = F.avg_pool2d(plane, 2)
        small = F.pad(small, (0, (-small.shape[-1]) % 8, 0, (-small.shape[-2]) % 8), mode="replicate")
        small = _jpeg_channel(small, chroma_t)[..., : hh // 2, : ww // 2]
        chroma.append(F.interpolate(small, size=(hh, ww), mode="bilinear", align_corners=False))
    cb, cr = chroma
    y = y + 128
    out = torch.cat([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb], dim=1) / 255.0
    out = out[..., :h, :w]
    if c == 1:
        out = out.mean(dim=1, keepdim=True)
    return out.clamp(0, 1)


def down_up(images: torch.Tensor, factor: float) -> torch.Tensor:
    """Downscale by ``factor`` (antialiased) and back: the "downscaling" bypass."""
    h, w = images.shape[-2:]
    small = (max(1, round(h * factor)), max(1, round(w * factor)))
    x = F.interpolate(images, size=small, mode="bilinear", antialias=True, align_corners=False)
    return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(2.5 * sigma)))
    k = torch.arange(-radius, radius + 1, dtype=images.dtype, device=images.device)
    kernel = torch.exp(-(k**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.shape[1]
    x = F.pad(images, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)


def gaussian_noise(images: torch.Tensor, sigma: float, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(images.shape, generator=generator, dtype=torch.float32).to(images)
    return (images + sigma * noise).clamp(0, 1)


@dataclass(frozen=True)
class Purification:
    """One sampled lossy transform; ``name`` says what and how strong (for logs and reports)."""

    kind: str
    strength: float

    @property
    def name(self) -> str:
        return f"{self.kind}({self.strength:.3g})"

    def __call__(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.kind == "jpeg":
            return jpeg(images, self.strength)
        if self.kind == "resize":
            return down_up(images, self.strength)
        if self.kind == "blur":
            return gaussian_blur(images, self.strength)
        if self.kind == "noise":
            return gaussian_noise(images, self.strength, generator)
        raise ValueError(f"unknown purification {self.kind}")


@dataclass(frozen=True)
class Robustness:
    """How often and how hard to purify each view during optimisation."""

    probability: float
    max_chain: int
    jpeg_quality: tuple[float, float]
    resize_factor: tuple[float, float]
    blur_sigma: tuple[float, float]
    noise_sigma: tuple[float, float]

    def sample(self, rng: np.random.Generator) -> list[Purification]:
        if self.probability <= 0 or rng.random() >= self.probability:
            return []
        chain = []
        for _ in range(int(rng.integers(1, self.max_chain + 1))):
            kind = ["jpeg", "resize", "blur", "noise"][int(rng.integers(0, 4))]
            low, high = {"jpeg": self.jpeg_quality, "resize": self.resize_factor,
                         "blur": self.blur_sigma, "noise": self.noise_sigma}[kind]
            chain.append(Purification(kind, float(rng.uniform(low, high))))
        return chain


ROBUSTNESS: dict[RobustnessLevel, Robustness] = {
    "off": Robustness(0.0, 0, (90, 90), (1, 1), (0.5, 0.5), (0, 0)),
    # Noise up to σ 0.05, the strength of the benchmark's "noise + resample" purifier. Chains of
    # two transforms were measured too: +12% robust f on 512² crops, but on a 2048² image robust f
    # after resizing to 512² fell from 0.104 to 0.055 (few visits per tile make heavy EOT too noisy).
    "standard": Robustness(0.75, 1, (50, 95), (0.5, 1.0), (0.4, 1.2), (0.005, 0.05)),
    "strong": Robustness(1.0, 2, (30, 95), (0.35, 1.0), (0.4, 1.6), (0.005, 0.05)),
}


def apply_chain(images: torch.Tensor, chain: list[Purification],
                generator: torch.Generator | None = None) -> torch.Tensor:
    for purification in chain:
        images = purification(images, generator)
    return images
