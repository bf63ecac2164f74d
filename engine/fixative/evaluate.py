"""Measure protection the way a mimic would undo it: closing fraction f before and after purifications.

f = 1 − ‖E(x′) − t‖ / ‖E(x) − t‖ with E the encoder, x the original, x′ the protected image and t the
target latent, all under the same purification (JPEG, resizing, noise, blur; real codecs, not the
differentiable stand-ins used for optimisation). f = 0: the encoder still sees the artwork;
f = 1: it sees the target. Used by `fixative evaluate` and the benchmarks.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from fixative.core import MAIN_VIEW_AREA
from fixative.metrics import closing_fraction, lpips_distance, psnr_torch, ssim_torch
from fixative.models.registry import load_encoder
from fixative.options import DEFAULT_MODELS
from fixative.targets import ImageTarget, StyleStatsTarget, Target, encode, render_style
from fixative.views import View, whole_view

Purify = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _jpeg(quality: int) -> Purify:
    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buffer = io.BytesIO()
        Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
        return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255
    return run


def _resize(factor: float) -> Purify:
    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return _resize_array(image, max(8, round(image.shape[0] * factor)), max(8, round(image.shape[1] * factor)))
    return run


def _resize_to_area(area: int) -> Purify:
    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        scale = math.sqrt(area / (image.shape[0] * image.shape[1]))
        return _resize_array(image, max(8, round(image.shape[0] * scale)), max(8, round(image.shape[1] * scale)))
    return run


def _noise(sigma: float) -> Purify:
    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.clip(image + rng.normal(0, sigma, image.shape).astype(np.float32), 0, 1)
    return run


def _blur(sigma: float) -> Purify:
    from PIL import ImageFilter

    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        im = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
        return np.asarray(im.filter(ImageFilter.GaussianBlur(sigma)), dtype=np.float32) / 255
    return run


def _resize_array(image: np.ndarray, h: int, w: int) -> np.ndarray:
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).numpy()


PURIFICATIONS: dict[str, Purify] = {
    "clean": lambda image, rng: image,
    "jpeg75": _jpeg(75),
    "jpeg90": _jpeg(90),
    "resize0.5": _resize(0.5),
    "noise0.05": _noise(0.05),
    "blur1": _blur(1.0),
}
TRAINING_RESIZES: dict[str, Purify] = {"train512": _resize_to_area(512 * 512), "train1024": _resize_to_area(1024 * 1024)}


@dataclass
class Evaluation:
    models: list[str]
    target: str
    closing: dict[str, dict[str, float]]
    """closing[purification][model] = f."""
    psnr: float
    ssim: float
    lpips: float | None
    robust: dict[str, float] = field(default_factory=dict)
    """robust[model] = min over purifications except clean (the number that matters)."""

    def table(self) -> str:
        header = "| purification | " + " | ".join(f"f ({m})" for m in self.models) + " |"
        rows = [header, "|---|" + "---|" * len(self.models)]
        for name, per_model in self.closing.items():
            rows.append(f"| {name} | " + " | ".join(f"{per_model[m]:.3f}" for m in self.models) + " |")
        rows.append("| **robust (min)** | " + " | ".join(f"**{self.robust[m]:.3f}**" for m in self.models) + " |")
        lp = f", LPIPS {self.lpips:.4f}" if self.lpips is not None else ""
        return "\n".join(rows) + f"\n\nPSNR {self.psnr:.2f} dB, SSIM {self.ssim:.4f}{lp}; target: {self.target}"

    def as_dict(self) -> dict:
        return {"models": self.models, "target": self.target, "closing": self.closing, "robust": self.robust,
                "psnr": self.psnr, "ssim": self.ssim, "lpips": self.lpips}


def make_target(spec: str | np.ndarray | None, height: int, width: int) -> Target | None:
    """A style name ('style:NAME' or 'NAME') or a target image (array) → Target; None = untargeted."""
    if spec is None:
        return None
    if isinstance(spec, np.ndarray):
        return ImageTarget(spec, "target image", height, width)
    name = spec.split(":", 1)[1] if spec.startswith("style:") else spec
    render_style(name)  # unknown names fail here, clearly
    return StyleStatsTarget.builtin_style(name)


@torch.no_grad()
def evaluate(original: np.ndarray, protected: np.ndarray, target: str | np.ndarray | None = None,
             models: list[str] | None = None, purifications: dict[str, Purify] | None = None,
             max_area: int = 1024 * 1024, seed: int = 0, device: str = "cpu") -> Evaluation:
    """Closing fractions of ``protected`` vs ``original`` (float RGB (H, W, 3) in [0, 1]).

    Without a target, reports the relative latent shift ‖E(x′) − E(x)‖ / ‖E(x)‖ instead of f.
    Purifications run at full resolution; images larger than ``max_area`` are then resized to it
    (as a training pipeline would) before encoding.
    """
    models = models or list(DEFAULT_MODELS)
    original = _rgb(original)
    protected = _rgb(protected)
    h, w = original.shape[:2]
    if purifications is None:
        purifications = dict(PURIFICATIONS)
        if h * w > 512 * 512 * 1.2:
            purifications.update(TRAINING_RESIZES if h * w > 1024 * 1024 * 1.2 else {"train512": TRAINING_RESIZES["train512"]})
    goal = make_target(target, h, w)
    artwork = _tensor(original)
    closing: dict[str, dict[str, float]] = {}
    for model_name in models:
        model = load_encoder(model_name, device)
        if goal is not None:  # the same target definition protect() uses (stats at the main view)
            goal.prepare(model, artwork, whole_view(h, w, MAIN_VIEW_AREA, model.downscale))
        for name, purify in purifications.items():
            rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
            clean_p = _cap(purify(original, rng_a), max_area)
            adv_p = _cap(purify(protected, rng_b), max_area)
            ph, pw = clean_p.shape[:2]
            view = whole_view(ph, pw, ph * pw, model.downscale)
            clean_t = view.render(_tensor(clean_p))
            adv_t = view.render(_tensor(adv_p))
            clean_latent, adv_latent = encode(model, clean_t), encode(model, adv_t)
            if goal is None:
                value = float((adv_latent - clean_latent).norm() / clean_latent.norm().clamp_min(1e-8))
            else:
                # the target seen through the same geometry: the full original at the encoded size
                geo_view = View(0, 0, h, w, view.out_h, view.out_w)
                value = closing_fraction(adv_latent, clean_latent,
                                         goal.latent(model, geo_view, geo_view.render(artwork)))
            closing.setdefault(name, {})[model_name] = round(value, 4)
    robust = {m: min(v[m] for k, v in closing.items() if k != "clean") if len(closing) > 1 else closing["clean"][m]
              for m in models}
    o, p = _tensor(original), _tensor(protected)
    return Evaluation(models, goal.description if goal else "none (latent shift reported)", closing,
                      round(psnr_torch(o, p), 3), round(ssim_torch(o, p), 5), lpips_distance(o, p), robust)


def _cap(image: np.ndarray, max_area: int) -> np.ndarray:
    h, w = image.shape[:2]
    if h * w <= max_area:
        return image
    scale = math.sqrt(max_area / (h * w))
    return _resize_array(image, round(h * scale), round(w * scale))


def _rgb(image: np.ndarray) -> np.ndarray:
    image = image.astype(np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] in (1, 2):
        return np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
