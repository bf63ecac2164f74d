"""Targets: what the encoder should see instead of the artwork.

A ``Target`` answers one question: for encoder ``model`` and view ``view`` of the artwork, which
latent should the protected image encode to? Two kinds:

- ``StyleStatsTarget`` (cheap default for style mode): the artwork's own latent with its channel
  statistics re-normalised to those of a style reference (built-in, user image, or auto-picked).
  It keeps the content, so the perturbation needed stays small.
- ``ImageTarget``: a concrete target image (a diffusers img2img render, or a poison anchor); the
  target latent is the encoding of the same view of that image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from fixative.models.base import ImageEncoder
from fixative.targets.styles import builtin_style_names, render_style
from fixative.views import View

__all__ = ["Target", "StyleStatsTarget", "ImageTarget", "builtin_style_names", "render_style",
           "pick_auto_style", "channel_stats", "LatentCache"]


def to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """(H, W, C) float [0, 1] → (1, 3, H, W)."""
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    if tensor.shape[1] == 1:
        tensor = tensor.expand(-1, 3, -1, -1)
    return tensor.to(device)


def rgb3(images: torch.Tensor) -> torch.Tensor:
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def encode(model: ImageEncoder, images: torch.Tensor) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    return model.encode(rgb3(images).to(dtype)).float()


def channel_stats(latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = latent.mean(dim=(0, 2, 3), keepdim=True)
    std = latent.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-4)
    return mean, std


class LatentCache:
    """A small least-recently-added cache of latents, keyed by (model name, view key)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._latents: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def get(self, key: tuple, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        latent = self._latents.get(key)
        if latent is None:
            latent = compute()
            self._latents[key] = latent
            if len(self._latents) > self.capacity:
                self._latents.popitem(last=False)
        return latent


class Target(ABC):
    description: str

    def __init__(self) -> None:
        self._cache = LatentCache(64)

    @abstractmethod
    def prepare(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View,
                clean_latent: torch.Tensor | None = None) -> None:
        """Precompute what this target needs for ``model`` (called once per model);
        ``clean_latent``, when known, is the encoding of main_view.render(artwork)."""

    @abstractmethod
    def _latent(self, model: ImageEncoder, view: View, clean_view: torch.Tensor,
                clean_latent: torch.Tensor | None) -> torch.Tensor: ...

    @torch.no_grad()
    def latent(self, model: ImageEncoder, view: View, clean_view: torch.Tensor,
               clean_latent: torch.Tensor | None = None) -> torch.Tensor:
        """Target latent for this view; ``clean_view`` is view.render(original artwork) and
        ``clean_latent``, when known, its encoding (saves a pass)."""
        if clean_latent is not None and isinstance(self, StyleStatsTarget):
            return self._latent(model, view, clean_view, clean_latent)
        return self._cache.get((model.name, view.key),
                               lambda: self._latent(model, view, clean_view, clean_latent))

    def render(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View) -> np.ndarray | None:
        """The target as an image (H, W, 3) at the main view's size, if it can be drawn."""
        return None


class StyleStatsTarget(Target):
    """Artwork latent, channel statistics moved to the style reference's (AdaIN in latent space)."""

    def __init__(self, style_image: np.ndarray, description: str, builtin: str | None = None) -> None:
        super().__init__()
        self.style_image = style_image
        self.description = description
        self.builtin = builtin
        self._affine: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    @classmethod
    def builtin_style(cls, name: str) -> StyleStatsTarget:
        return cls(render_style(name), f"style:{name}", builtin=name)

    @torch.no_grad()
    def prepare(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View,
                clean_latent: torch.Tensor | None = None) -> None:
        if clean_latent is None:
            clean_latent = encode(model, main_view.render(artwork))
        art_mean, art_std = channel_stats(clean_latent)
        if self.builtin is not None:
            style_mean, style_std = builtin_style_stats(model, self.builtin, artwork.device)
        else:
            style_mean, style_std = channel_stats(encode(model, to_tensor(self.style_image, artwork.device)))
        scale = style_std / art_std
        self._affine[model.name] = (scale, style_mean - art_mean * scale)

    def _latent(self, model: ImageEncoder, view: View, clean_view: torch.Tensor,
                clean_latent: torch.Tensor | None) -> torch.Tensor:
        scale, shift = self._affine[model.name]
        latent = encode(model, clean_view) if clean_latent is None else clean_latent
        return latent * scale + shift

    @torch.no_grad()
    def render(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View) -> np.ndarray | None:
        if not model.has_decoder:
            return None
        latent = self.latent(model, main_view, main_view.render(artwork))
        dtype = next(model.parameters()).dtype
        image = model.decode(latent.to(dtype)).float()[0].permute(1, 2, 0).cpu().numpy()
        return np.clip(image, 0, 1)


class ImageTarget(Target):
    """A concrete target image, fitted (cover-cropped) to the artwork's aspect ratio."""

    MAX_SIDE = 2048

    def __init__(self, image: np.ndarray, description: str, height: int, width: int) -> None:
        super().__init__()
        self.description = description
        self.height, self.width = height, width
        ratio = min(1.0, self.MAX_SIDE / max(height, width))
        self.ratio = ratio
        size = (max(1, round(height * ratio)), max(1, round(width * ratio)))
        self.image = _cover(to_tensor(image[..., :3] if image.shape[2] >= 3 else image), size)

    def prepare(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View,
                clean_latent: torch.Tensor | None = None) -> None:
        self.image = self.image.to(artwork.device)

    def _scaled(self, view: View) -> View:
        r = self.ratio
        top, left = int(view.top * r), int(view.left * r)
        bottom = max(top + 1, min(self.image.shape[-2], round(view.bottom * r)))
        right = max(left + 1, min(self.image.shape[-1], round(view.right * r)))
        return View(top, left, bottom, right, view.out_h, view.out_w)

    def _latent(self, model: ImageEncoder, view: View, clean_view: torch.Tensor,
                clean_latent: torch.Tensor | None) -> torch.Tensor:
        return encode(model, self._scaled(view).render(self.image))

    def render(self, model: ImageEncoder, artwork: torch.Tensor, main_view: View) -> np.ndarray | None:
        return self._scaled(main_view).render(self.image)[0].permute(1, 2, 0).cpu().numpy()


def _cover(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize to cover ``size`` and centre-crop (keeps the anchor's proportions)."""
    h, w = image.shape[-2:]
    scale = max(size[0] / h, size[1] / w)
    new = (max(size[0], round(h * scale)), max(size[1], round(w * scale)))
    image = F.interpolate(image, size=new, mode="bilinear", antialias=True, align_corners=False)
    top, left = (new[0] - size[0]) // 2, (new[1] - size[1]) // 2
    return image[..., top:top + size[0], left:left + size[1]].contiguous()


_STYLE_STATS: dict[tuple[str, str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}


@torch.no_grad()
def builtin_style_stats(model: ImageEncoder, name: str, device: torch.device | str) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent channel statistics of a built-in style, computed once per process and model."""
    dtype = next(model.parameters()).dtype
    key = (model.name, name, str(device), str(dtype))
    if key not in _STYLE_STATS:
        _STYLE_STATS[key] = channel_stats(encode(model, to_tensor(render_style(name), device)))
    return _STYLE_STATS[key]


@torch.no_grad()
def pick_auto_style(model: ImageEncoder, artwork: torch.Tensor, main_view: View) -> tuple[str, list[tuple[str, float]]]:
    """The built-in style at a medium distance from the artwork in feature space (as Glaze does):
    far enough to matter, close enough that a small perturbation can get there."""
    art = torch.cat(channel_stats(encode(model, main_view.render(artwork)))).flatten()
    distances = []
    for name in builtin_style_names():
        style = torch.cat(builtin_style_stats(model, name, artwork.device)).flatten()
        distances.append((name, float((style - art).norm())))
    ranked = sorted(distances, key=lambda item: item[1])
    return ranked[len(ranked) // 2][0], ranked
