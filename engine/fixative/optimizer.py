"""One optimiser step on the perturbation δ: lazy Adam, then the projections that keep δ invisible.

Each step the views' gradients have been summed into ``grad`` over the region they touched. Only
that region is updated ("lazy" Adam: pixels no view saw keep their moment estimates), which makes
a step cost the views, not the whole image. After the Adam update δ is projected onto the
perceptual budget: the per-pixel L∞ bound, the valid pixel range, and, over the whole image, the
PSNR floor (a running sum of δ² makes that check cost the region too).
"""

from __future__ import annotations

import math

import torch

from fixative.budget import Budget
from fixative.transforms import gaussian_blur

ADAM_BETA1 = 0.9
"""Decay of the gradient's running mean (Adam's first moment)."""
ADAM_BETA2 = 0.99
"""Decay of the squared gradient's running mean (second moment); below the usual 0.999 because runs
are short (tens of steps)."""
ADAM_EPSILON = 1e-12
LR_PEAK_DIVISOR = 2
"""The learning rate starts at eps / 2 (eps: the budget's largest per-pixel change) ..."""
LR_FLOOR_DIVISOR = 10
"""... and follows a cosine down to eps / 10 at the last step."""
GRADIENT_SMOOTHING = 1.0
"""Gaussian σ (pixels) applied to each step's gradient. Smoothing the gradient (as translation-
invariant attacks do for transfer) steers budget away from pixel-level noise that a 0.5x resize or
added noise erases. Measured on 512² crops with TAEF2 at matched PSNR: robust f (the minimum over
JPEG, resize, noise and blur) 0.075 → 0.084 (Starry Night), 0.094 → 0.111 (The Great Wave);
σ = 1.5 and 2 were worse than none."""

Region = tuple[slice, slice, slice, slice]


class PerturbationOptimizer:
    """Holds δ, the summed gradient and Adam's state for one protect() run of ``steps`` steps."""

    def __init__(self, artwork: torch.Tensor, limit: torch.Tensor, budget: Budget, steps: int) -> None:
        self.artwork, self.limit, self.steps = artwork, limit, steps
        self.delta = torch.zeros_like(artwork)
        self.grad = torch.zeros_like(artwork)
        """Views add their gradients here; step() consumes and clears the region it updates."""
        self.adam_m = torch.zeros_like(artwork)
        self.adam_v = torch.zeros_like(artwork)
        self.lr_peak, self.lr_floor = budget.eps / LR_PEAK_DIVISOR, budget.eps / LR_FLOOR_DIVISOR
        self.max_mse = budget.max_mse
        self.squares = 0.0
        """Running sum of δ² over the whole image."""

    def learning_rate(self, step: int) -> float:
        """Cosine schedule from the peak (step 1) to the floor (last step)."""
        angle = math.pi * (step - 1) / max(1, self.steps - 1)
        return self.lr_floor + 0.5 * (self.lr_peak - self.lr_floor) * (1 + math.cos(angle))

    def step(self, step: int, region: Region) -> None:
        """Adam update of δ on ``region`` (step counts from 1), then the budget projections."""
        g = self.grad[region]
        if GRADIENT_SMOOTHING > 0:
            g.copy_(gaussian_blur(g, GRADIENT_SMOOTHING))
        self.adam_m[region].mul_(ADAM_BETA1).add_(g, alpha=1 - ADAM_BETA1)
        self.adam_v[region].mul_(ADAM_BETA2).addcmul_(g, g, value=1 - ADAM_BETA2)
        m_hat = self.adam_m[region] / (1 - ADAM_BETA1**step)
        v_hat = self.adam_v[region] / (1 - ADAM_BETA2**step)
        d = self.delta[region]
        squares_before = float((d**2).sum(dtype=torch.float64))
        d.sub_(self.learning_rate(step) * m_hat / (v_hat.sqrt() + ADAM_EPSILON))
        bound = self.limit[region]
        torch.maximum(torch.minimum(d, bound), -bound, out=d)  # the texture-masked L∞ budget
        d.copy_((self.artwork[region] + d).clamp(0, 1) - self.artwork[region])  # stay a valid image
        g.zero_()
        self.squares += float((d**2).sum(dtype=torch.float64)) - squares_before  # only the region changed
        self._keep_psnr_floor()

    def _keep_psnr_floor(self) -> None:
        """Scale δ down when its mean square exceeds the PSNR floor's, while optimising, not only at the end."""
        if self.squares / self.delta.numel() > self.max_mse:
            factor = math.sqrt(self.max_mse * self.delta.numel() / self.squares)
            self.delta.mul_(factor)
            self.squares *= factor**2
