"""enforce_floors(): the cloak is shrunk exactly as far as the SSIM and PSNR floors demand, no further."""

from __future__ import annotations

import math

import pytest
import torch

from fixative.budget import BUDGETS, SSIM_MARGIN, enforce_floors
from fixative.metrics import psnr_torch, ssim_torch


def _flat_with_texture(side: int = 96) -> torch.Tensor:
    """Half flat grey (where SSIM punishes any change), half busy stripes."""
    image = torch.full((1, 3, side, side), 0.5)
    stripes = (torch.arange(side // 2) % 4 < 2).float() * 0.6 + 0.2
    image[..., :, side // 2:] = stripes.view(1, 1, 1, -1)
    return image


def _ssim_at(image: torch.Tensor, delta: torch.Tensor, factor: float) -> float:
    return ssim_torch(image, (image + factor * delta).clamp(0, 1))


def test_ssim_bound_cloak_is_shrunk_to_the_largest_factor_that_keeps_the_floor():
    budget = BUDGETS["default"]
    image = _flat_with_texture()
    delta = 0.02 * torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    assert _ssim_at(image, delta, 1.0) < budget.min_ssim, "the test needs a cloak that breaks the SSIM floor"
    shrunk, factor = enforce_floors(image, delta, budget)
    assert 0 < factor < 1
    assert torch.allclose(shrunk, delta * factor)
    assert _ssim_at(image, delta, factor) >= budget.min_ssim + SSIM_MARGIN
    # The largest such factor: 1 % more would break it (fixed 15 % shrink steps stopped far above the floor).
    assert _ssim_at(image, delta, factor * 1.01) < budget.min_ssim + SSIM_MARGIN


def test_psnr_bound_cloak_is_scaled_exactly_to_the_psnr_floor():
    budget = BUDGETS["default"]
    image = _flat_with_texture()
    image[..., :, : image.shape[-1] // 2] = torch.rand(image[..., :, : image.shape[-1] // 2].shape,
                                                      generator=torch.Generator().manual_seed(1))
    delta = torch.sign(torch.randn(image.shape, generator=torch.Generator().manual_seed(2))) * 0.02  # PSNR 34 dB
    delta = delta * ((image + delta >= 0) & (image + delta <= 1))  # no clamping: PSNR is then exact
    assert psnr_torch(image, image + delta) < budget.min_psnr
    shrunk, factor = enforce_floors(image, delta, budget)
    assert ssim_torch(image, (image + shrunk).clamp(0, 1)) >= budget.min_ssim
    assert math.isclose(psnr_torch(image, image + shrunk), budget.min_psnr, abs_tol=0.01)


def test_a_cloak_within_both_floors_is_left_alone():
    budget = BUDGETS["default"]
    image = _flat_with_texture()
    delta = 0.001 * torch.randn(image.shape, generator=torch.Generator().manual_seed(3))
    shrunk, factor = enforce_floors(image, delta, budget)
    assert factor == 1.0 and shrunk is delta


def test_ssim_matches_a_float64_reference_with_the_two_dimensional_window():
    """ssim_torch's separable box mean (row pass, then column pass) against the textbook formula with a
    7×7 window in float64: a wrong window size or a missed pass would be far off."""
    import torch.nn.functional as F

    generator = torch.Generator().manual_seed(3)
    a = torch.rand(1, 3, 40, 56, generator=generator)
    b = (a + 0.3 * torch.randn(1, 3, 40, 56, generator=generator)).clamp(0, 1)
    x, y = a.double(), b.double()

    def box(t: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(t, 7, 1)

    mu_x, mu_y = box(x), box(y)
    var_x, var_y, cov = box(x * x) - mu_x**2, box(y * y) - mu_y**2, box(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    reference = float((((2 * mu_x * mu_y + c1) * (2 * cov + c2))
                       / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))).mean())
    assert ssim_torch(a, b) == pytest.approx(reference, abs=1e-5)
    assert reference < 0.9 and ssim_torch(a, a) == pytest.approx(1.0, abs=1e-6)
    assert abs(ssim_torch(a, b, window=5) - reference) > 1e-3  # the window size shows in the number
