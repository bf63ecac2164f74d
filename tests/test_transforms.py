"""Robustness transforms and views: close to the real operations, differentiable, in bounds."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from fixative.transforms import ROBUSTNESS, apply_chain, down_up, gaussian_blur, jpeg
from fixative.views import ViewSampler, candidate_scales
from tests.conftest import painting


@pytest.mark.parametrize("quality", [50, 75, 95])
def test_differentiable_jpeg_tracks_real_jpeg(quality):
    image = painting("great_wave_hokusai_1831.jpg", size=(200, 136))
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    real = torch.from_numpy(np.asarray(Image.open(buffer))).permute(2, 0, 1)[None].float() / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255
    ours_error = float(((jpeg(x, quality) - real) ** 2).mean().sqrt())
    identity_error = float(((x - real) ** 2).mean().sqrt())
    assert ours_error < 0.6 * identity_error, (ours_error, identity_error)


def test_transforms_pass_gradients_and_keep_shape():
    x = torch.rand(1, 3, 37, 53, requires_grad=True)
    for out in (jpeg(x, 70), down_up(x, 0.5), gaussian_blur(x, 1.0)):
        assert out.shape == x.shape
        (grad,) = torch.autograd.grad(out.sum(), x)
        assert grad.abs().sum() > 0


def test_robustness_levels():
    rng = np.random.default_rng(0)
    assert all(ROBUSTNESS["off"].sample(rng) == [] for _ in range(20))
    chains = [ROBUSTNESS["strong"].sample(rng) for _ in range(50)]
    assert all(chains) and {p.kind for c in chains for p in c} == {"jpeg", "resize", "blur", "noise"}
    x = torch.rand(1, 3, 32, 32)
    assert apply_chain(x, chains[0]).shape == x.shape


@pytest.mark.parametrize("size", [(4096, 4096), (1001, 333), (300, 200), (20, 24)])
def test_views_stay_in_bounds_and_on_the_grid(size):
    h, w = size
    sampler = ViewSampler(h, w, 256, 8, jitter=0.15)
    rng = np.random.default_rng(1)
    for _ in range(50):
        view = sampler.sample(rng)
        assert 0 <= view.top < view.bottom <= h and 0 <= view.left < view.right <= w
        assert view.out_h % 8 == 0 and view.out_w % 8 == 0 and view.out_h <= 256 and view.out_w <= 256
        index, sy, sx = view.grid
        assert sy % 8 == 0 and sx % 8 == 0
        assert sy + view.out_h <= sampler.sizes[index][0] and sx + view.out_w <= sampler.sizes[index][1]


def test_tiles_cover_every_scale_before_repeating():
    sampler = ViewSampler(600, 900, 256, 8, jitter=0.0)
    rng = np.random.default_rng(0)
    seen: dict[int, set] = {}
    for _ in range(300):
        view = sampler.sample(rng)
        seen.setdefault(view.grid[0], set()).add(view.grid[1:])
    for index, (h, w) in enumerate(sampler.sizes):
        covered = np.zeros((h, w), bool)
        for sy, sx in seen[index]:
            covered[sy:sy + min(256, h), sx:sx + min(256, w)] = True
        assert covered.all(), f"scale {sampler.scales[index]} not fully covered"


def test_large_images_get_training_bucket_scales():
    scales = [s for s, _, _ in candidate_scales(4096, 4096)]
    assert 1.0 in scales and 0.5 in scales
    assert any(abs(s - 0.125) < 1e-3 for s in scales) and any(abs(s - 0.25) < 1e-3 for s in scales)
