"""The narrow interface every attacked encoder offers: images in [0, 1] → latents."""

from __future__ import annotations

import torch
from torch import nn


class ImageEncoder(nn.Module):
    """An image encoder (and optionally its decoder) of a latent diffusion model's latent space.

    ``encode`` takes (B, 3, H, W) RGB in [0, 1] and returns latents (B, C, H/f, W/f); gradients flow.
    ``decode`` (when ``has_decoder``) maps latents back to RGB in [0, 1], for the "AI's-eye view".
    """

    name: str = "encoder"
    latent_channels: int = 4
    downscale: int = 8
    training_area: int = 512 * 512
    """Pixel area of the training resolution of the models that use this latent space."""

    def __init__(self) -> None:
        super().__init__()

    @property
    def has_decoder(self) -> bool:
        return False

    def encode(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{self.name} has no decoder loaded")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encode(images)
