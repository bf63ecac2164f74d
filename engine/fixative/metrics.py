"""Image quality and protection metrics: PSNR, SSIM, optional LPIPS, and the closing fraction."""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import torch
import torch.nn.functional as F


def psnr_torch(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.float() - b.float()) ** 2).mean())
    return float("inf") if mse == 0 else 10 * math.log10(1.0 / mse)


def _box_mean(x: torch.Tensor, window: int) -> torch.Tensor:
    """The mean over each window × window box ("valid" positions), as a row pass then a column pass:
    2·window additions per pixel instead of window²: a 1024² SSIM 0.31 → 0.2 s on 2 threads."""
    return F.avg_pool2d(F.avg_pool2d(x, (1, window), 1), (window, 1), 1)


def ssim_torch(a: torch.Tensor, b: torch.Tensor, window: int = 7, band: int = 512,
               max_pixels: int = 1 << 22) -> float:
    """Mean SSIM over channels with a uniform window (images in [0, 1], (B, C, H, W)).

    Computed in horizontal bands so that very large images need only band-sized temporaries.
    Above ``max_pixels`` (4 MP) only evenly spaced bands are measured (every k-th), an estimate
    that keeps a 16 MP image's SSIM at about a second instead of seven.
    """
    c1, c2 = 0.01**2, 0.03**2
    h, w = a.shape[-2:]
    window = min(window, w, h)
    starts = list(range(0, max(1, h - window + 1), band))
    stride = max(1, math.ceil(h * w / max_pixels))
    total, count = 0.0, 0
    for top in starts[stride // 2::stride] or starts[:1]:
        rows = slice(top, min(h, top + band + window - 1))
        x, y = a[..., rows, :].float(), b[..., rows, :].float()
        mu_x, mu_y = _box_mean(x, window), _box_mean(y, window)
        var_x = _box_mean(x * x, window) - mu_x**2
        var_y = _box_mean(y * y, window) - mu_y**2
        cov = _box_mean(x * y, window) - mu_x * mu_y
        ssim = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
        total += float(ssim.sum())
        count += ssim.numel()
    return total / max(count, 1)


def closing_fraction(adv_latent: torch.Tensor, clean_latent: torch.Tensor, target_latent: torch.Tensor) -> float:
    """f = 1 − ‖E(x′) − t‖ / ‖E(x) − t‖: 0 = encoder still sees the original, 1 = it sees the target."""
    gap = float((clean_latent.float() - target_latent.float()).norm())
    if gap == 0:
        return 0.0
    return 1.0 - float((adv_latent.float() - target_latent.float()).norm()) / gap


def _lpips_backbone_present() -> bool:
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints"
    return any(hub.glob("alexnet-owt-*.pth"))


@functools.lru_cache(maxsize=1)
def lpips_model():
    """The LPIPS (AlexNet) metric when the package and its backbone weights are present, else None."""
    if os.environ.get("FIXATIVE_NO_LPIPS") or not _lpips_backbone_present():
        return None
    try:
        import lpips
    except ImportError:
        return None
    try:
        return lpips.LPIPS(net="alex", verbose=False).eval()
    except Exception:  # weights missing or corrupt: LPIPS is optional
        return None


def lpips_distance(a: torch.Tensor, b: torch.Tensor, max_side: int = 512) -> float | None:
    model = lpips_model()
    if model is None:
        return None
    h, w = a.shape[-2:]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1:
        size = (max(16, int(h * scale)), max(16, int(w * scale)))
        a = F.interpolate(a.float(), size=size, mode="bilinear", antialias=True)
        b = F.interpolate(b.float(), size=size, mode="bilinear", antialias=True)
    with torch.no_grad():
        return float(model(a.float().cpu() * 2 - 1, b.float().cpu() * 2 - 1).mean())
