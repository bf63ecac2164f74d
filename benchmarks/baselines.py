"""Baselines implemented here, independent of Fixative's optimiser: plain L∞ sign-step PGD on one
encoder, at full resolution, with no views, no resizing and no purifications during the search
(no expectation over transformation). That is what makes them baselines.

- ``naive``: PhotoGuard-style encoder attack toward the same target latent Fixative aims at.
- ``texture``: Mist-style textural loss toward the latent of one fixed pattern.
- ``untargeted``: push the latent as far as possible from the clean one.

Each is then matched to a given PSNR by scaling its perturbation (``match_psnr``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from fixative.models.base import ImageEncoder
from fixative.targets import encode
from fixative.views import whole_view

BASELINES = ("naive", "texture", "untargeted")


@dataclass
class BaselineRun:
    name: str
    protected: np.ndarray
    """float32 (H, W, 3) in [0, 1] on the uint8 grid (what would be saved)."""
    seconds: float
    """Wall time of the search (encoder passes), not of the PSNR matching."""
    steps: int
    eps: float
    """The L∞ bound searched with (0–1 scale), before the PSNR-matching scale."""
    scale: float
    """Factor applied to the perturbation to match the PSNR."""
    psnr: float


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def texture_pattern(height: int, width: int, tile: int = 32) -> np.ndarray:
    """A fixed high-contrast pattern (rings over diagonal stripes), the same for every image,
    standing in for Mist's target texture."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    ty, tx = (y % tile) / tile - 0.5, (x % tile) / tile - 0.5
    rings = 0.5 + 0.5 * np.cos(2 * math.pi * 3 * np.sqrt(ty**2 + tx**2))
    stripes = 0.5 + 0.5 * np.sign(np.sin(2 * math.pi * (x + y) / (tile / 2)))
    return np.stack([rings, stripes, 0.5 * (rings + 1 - stripes)], axis=2).astype(np.float32)


def sign_pgd(artwork: torch.Tensor, loss_of: Callable[[torch.Tensor], torch.Tensor], eps: float,
             steps: int, seed: int = 0, maximise: bool = False) -> torch.Tensor:
    """L∞ PGD with sign steps: random start in the ε-ball, step 2.5·ε/steps (Madry et al.)."""
    generator = torch.Generator().manual_seed(seed)
    delta = (torch.rand(artwork.shape, generator=generator) * 2 - 1) * eps
    delta = (artwork + delta).clamp(0, 1) - artwork
    alpha = 2.5 * eps / steps
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = loss_of(artwork + delta)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + alpha * grad.sign() if maximise else delta - alpha * grad.sign()
            delta = delta.clamp(-eps, eps)
            delta = (artwork + delta).clamp(0, 1) - artwork
    return delta.detach()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def quantise(image: np.ndarray) -> np.ndarray:
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)


SECANT_TRIES = 24
"""Scale steps before bisecting. Where the change clips at black or white, PSNR falls more slowly than
the scale grows, and the steps converge slowly (8 left a 128² texture baseline 0.4 dB short)."""


def match_psnr(original: np.ndarray, delta: np.ndarray, target_psnr: float,
               tolerance: float = 0.05) -> tuple[np.ndarray, float, float]:
    """Scale ``delta`` so the saved (uint8) image has ``target_psnr``; returns (image, scale, psnr).

    Secant-like steps on the scale (PSNR moves by 20·log10 of it), then bisection between the
    closest scales either side, because uint8 rounding makes PSNR a step function of the scale.
    """
    tries: list[tuple[float, float]] = []

    def attempt(scale: float) -> float:
        achieved = psnr(original, quantise(original + scale * delta))
        tries.append((scale, achieved))
        return achieved

    scale, achieved = 1.0, attempt(1.0)
    for _ in range(SECANT_TRIES):
        if abs(achieved - target_psnr) <= tolerance:
            break
        scale *= 10 ** ((achieved - target_psnr) / 20)
        achieved = attempt(scale)
    above = [t for t in tries if t[1] >= target_psnr]  # small enough scales
    below = [t for t in tries if t[1] < target_psnr]
    if above and below and min(abs(a - target_psnr) for _, a in tries) > tolerance:
        low, high = max(above)[0], min(below)[0]
        for _ in range(16):
            middle = (low + high) / 2
            if attempt(middle) >= target_psnr:
                low = middle
            else:
                high = middle
    scale, achieved = min(tries, key=lambda t: abs(t[1] - target_psnr))
    return quantise(original + scale * delta), scale, achieved


def eps_for_psnr(target_psnr: float) -> float:
    """An L∞ bound a little above the RMS change the PSNR allows, so matching mostly shrinks."""
    return 1.15 * 10 ** (-target_psnr / 20)


def run_baseline(name: str, model: ImageEncoder, original: np.ndarray, target_latent: torch.Tensor | None,
                 target_psnr: float, steps: int, seed: int = 0) -> BaselineRun:
    """Run one baseline on ``original`` (float (H, W, 3) in [0, 1]) at full resolution.

    ``target_latent`` is the shared target for ``naive`` (ignored by the others).
    """
    artwork = to_tensor(original)
    h, w = original.shape[:2]
    view = whole_view(h, w, h * w, model.downscale)
    eps = eps_for_psnr(target_psnr)
    started = time.perf_counter()
    with torch.no_grad():
        clean_latent = encode(model, view.render(artwork))
    if name == "naive":
        if target_latent is None:
            raise ValueError("the naive baseline needs the target latent")
        goal = target_latent

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return ((encode(model, view.render(x)) - goal) ** 2).mean()

        delta = sign_pgd(artwork, loss_of, eps, steps, seed)
    elif name == "texture":
        with torch.no_grad():
            goal = encode(model, view.render(to_tensor(texture_pattern(h, w))))

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return ((encode(model, view.render(x)) - goal) ** 2).mean()

        delta = sign_pgd(artwork, loss_of, eps, steps, seed)
    elif name == "untargeted":

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return ((encode(model, view.render(x)) - clean_latent) ** 2).mean()

        delta = sign_pgd(artwork, loss_of, eps, steps, seed, maximise=True)
    else:
        raise ValueError(f"unknown baseline {name}; known: {', '.join(BASELINES)}")
    seconds = time.perf_counter() - started
    image, scale, achieved = match_psnr(original, delta[0].permute(1, 2, 0).numpy(), target_psnr)
    return BaselineRun(name, image, seconds, steps, eps, scale, achieved)
