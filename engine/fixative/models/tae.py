"""Tiny AutoEncoders (TAESD family): a compact re-implementation of the published architecture.

The layer order matches the upstream ``nn.Sequential`` index keys (``0.weight``, ``1.conv.0.weight``,
...) so the raw upstream ``.pth`` state dicts load directly. Variants:
- ``f8``: 8x downscaling (taesd, taesdxl, taesd3, taef1).
- ``f8_gn``: as f8, with a GroupNorm "pool" branch in the deepest blocks (taef2, FLUX.2 latents).
- ``f32``: 32x downscaling (taesana, Sana DC-AE latents).
Encoders take images in [0, 1]; decoders return images in [0, 1] (after clamping).
"""

from __future__ import annotations

import torch
from torch import nn

from fixative.models.base import ImageEncoder

WIDTH = 64


def _conv3(n_in: int, n_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(n_in, n_out, 3, stride=stride, padding=1, bias=bias)


class GlobalContext(nn.Module):
    """1x1 expand → GroupNorm → ReLU → 1x1 project; GroupNorm's statistics give the block global context."""

    def __init__(self, channels: int, groups: int = 4, expand: int = 4) -> None:
        super().__init__()
        hidden = channels * expand
        self.layers = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.GroupNorm(groups, hidden),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class ResBlock(nn.Module):
    """Three 3x3 convs with ReLUs, a skip, a ReLU after the sum; optional global-context pre-branch."""

    def __init__(self, channels: int, global_context: bool = False) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            _conv3(channels, channels), nn.ReLU(),
            _conv3(channels, channels), nn.ReLU(),
            _conv3(channels, channels),
        )
        self.skip = nn.Identity()
        self.fuse = nn.ReLU()
        self.context = GlobalContext(channels) if global_context else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.context is not None:
            x = x + self.context(x)
        return self.fuse(self.conv(x) + self.skip(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # upstream calls the context branch "pool" (pool.0, pool.1, pool.3)
        for key in [k for k in state_dict if k.startswith(prefix + "pool.")]:
            state_dict[prefix + "context.layers." + key[len(prefix + "pool."):]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def _stage(blocks: int, global_context: bool = False) -> list[nn.Module]:
    return [ResBlock(WIDTH, global_context) for _ in range(blocks)]


def build_encoder(latent_channels: int, variant: str = "f8") -> nn.Sequential:
    if variant == "f32":
        stem: list[nn.Module] = [
            _conv3(3, 32, stride=2), nn.ReLU(), _conv3(32, WIDTH, stride=2), nn.ReLU(), *_stage(1),
        ]
    else:
        stem = [_conv3(3, WIDTH), *_stage(1)]
    deep_gn = variant == "f8_gn"
    layers = [
        *stem,
        _conv3(WIDTH, WIDTH, stride=2, bias=False), *_stage(3),
        _conv3(WIDTH, WIDTH, stride=2, bias=False), *_stage(3),
        _conv3(WIDTH, WIDTH, stride=2, bias=False), *_stage(3, global_context=deep_gn),
        _conv3(WIDTH, latent_channels),
    ]
    return nn.Sequential(*layers)


class SoftClamp(nn.Module):
    """Squash latents smoothly into (-3, 3) before decoding, as the TAESD decoders expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(x / 3) * 3


def build_decoder(latent_channels: int, variant: str = "f8") -> nn.Sequential:
    if variant == "f32":
        raise NotImplementedError("the f32 (taesana) decoder is not supported; use the encoder only")
    gn = variant == "f8_gn"

    def up() -> list[nn.Module]:
        return [nn.Upsample(scale_factor=2), _conv3(WIDTH, WIDTH, bias=False)]

    return nn.Sequential(
        SoftClamp(), _conv3(latent_channels, WIDTH), nn.ReLU(),
        *_stage(3, global_context=gn), *up(),
        *_stage(3), *up(),
        *_stage(3), *up(),
        *_stage(1), _conv3(WIDTH, 3),
    )


class TinyAutoEncoder(ImageEncoder):
    """A TAESD-family encoder (plus decoder when its weights are given)."""

    def __init__(self, name: str, latent_channels: int, variant: str, training_area: int,
                 with_decoder: bool = False) -> None:
        super().__init__()
        self.name = name
        self.latent_channels = latent_channels
        self.variant = variant
        self.downscale = 32 if variant == "f32" else 8
        self.training_area = training_area
        self.encoder = build_encoder(latent_channels, variant)
        self.decoder = build_decoder(latent_channels, variant) if with_decoder else None
        # Channels-last (NHWC) convolutions: a TAEF2 forward + backward at 256² takes 20 % less time on
        # a 2-core CPU in fp32 (`python -m benchmarks.layout`); loading a state dict keeps the layout.
        self.to(memory_format=torch.channels_last)

    @property
    def has_decoder(self) -> bool:
        return self.decoder is not None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images.contiguous(memory_format=torch.channels_last))

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        if self.decoder is None:
            return super().decode(latents)
        return self.decoder(latents.contiguous(memory_format=torch.channels_last)).clamp(0, 1)
