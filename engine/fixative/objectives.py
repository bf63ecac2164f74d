"""What the optimiser maximises: what the mimic's model sees, not only the distance to a target.

The style/poison targets (``fixative.targets``) pull each view's latent toward a target latent; a
latent-statistics target sits so close to the artwork that the optimiser reaches it by moving the
latent a little, and the AI's-eye view barely changes (issue 13). The *mimic push* adds a term
that moves the latent away from the clean view's latent, ‖E(v(x′)) − E(v(x))‖², normalised per
model by the target term's starting distance so ensembles weigh models equally. With the target
term at the same weight ('directed') the sum is a steady push past the target, in its direction;
at half the weight the latent is pushed away from the mirror image of the target about the clean
latent: away from the artwork, leaning toward the target. The default ('mimic') keeps that half weight
for a poison anchor, the concept the model should learn instead, and pulls toward a style target at
a fifth of it: a style target only leans the direction, since every bit of pull toward a target this
near the artwork is taken from the push (``style_target_weight``). The default takes half of the push's
gradient from the decoded view (``decoded_push_loss``): what the mimic's model draws, which is what the
AI's-eye metric measures.

A mimic's JPEG re-encode is where cloaks die. ``real_jpeg_straight_through`` runs Pillow's real
JPEG in the forward pass (what the mimic's pipeline does) and lets the gradient through the
differentiable stand-in (``fixative.transforms.jpeg``), so the optimiser learns against the true
codec's quantisation and 4:2:0 chroma loss.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from fixative.transforms import jpeg as differentiable_jpeg


@dataclass(frozen=True)
class Objective:
    """Weights of the loss terms and the real-JPEG EOT policy."""

    target_weight: float
    """Weight of the (normalised) pull toward the target latent: a poison anchor, and a style target
    unless ``style_target_weight`` is set."""
    push_weight: float
    """Weight of the (normalised) push away from the clean view's latent; 0 = target only."""
    real_jpeg_probability: float
    """Share of views passed through a real JPEG round trip (straight-through gradient)."""
    real_jpeg_quality: tuple[int, int]
    decoded_push_share: float = 0.0
    """Share of the push whose gradient comes from the decoded view D(E(·)) rather than the latent
    (models with a decoder; ``decoded_push_loss``); 0 = the latent only."""
    style_target_weight: float | None = None
    """Weight of the pull toward a style target; None = ``target_weight``."""

    def pull_weight(self, label: str) -> float:
        """The pull's weight for a target labelled ``label`` ('style' or 'poison', ``core.build_targets``)."""
        if label == "style" and self.style_target_weight is not None:
            return self.style_target_weight
        return self.target_weight


OBJECTIVES: dict[str, Objective] = {
    "target": Objective(1.0, 0.0, 0.0, (75, 75)),
    "directed": Objective(1.0, 1.0, 0.5, (60, 90)),
    "mimic": Objective(0.5, 1.0, 1.0, (60, 90), decoded_push_share=0.5, style_target_weight=0.1),
    "untargeted": Objective(0.0, 1.0, 0.5, (60, 90)),
}
"""Measured on Starry Night (centred 512², default intensity, PSNR 35.9, TAEF2; docs/metric.md), gain
over noise after resize 512 / + JPEG 75: target 6.7 / 4.9 dB, directed 7.6 / 5.8, mimic 8.2 / 6.3,
untargeted 9.2 / 7.2. 'mimic' keeps half of the target's pull so style and poison targets still steer
the direction; 'untargeted' ignores the target (the strongest, for users who only want disruption).

'mimic' passes every view through the real JPEG (the others half of them). Measured on 1024² squares
(default intensity, TAEF2), gain after resize 512 + JPEG 75 / at 1024 without JPEG, half → all:
Starry Night 4.34 / 7.14 → 4.50 / 6.49, The Great Wave 4.64 / 3.70 → 5.01 / 3.08, The Scream
4.76 / 4.04 → 5.19 / 3.71. Platforms re-encode what they host, so the JPEG-surviving gain is the one
traded for; views at the native size without JPEG (a mimic training on untouched originals) lose.

'mimic' pulls toward a style target at a tenth of the push, a poison anchor at half. With the decoded
push, the style pull's drift toward a target next to the artwork costs what the model sees: 1024²
squares, default plan, seed 0, gain after resize 512 / + JPEG 75, pull 0.5 → 0.1: Starry Night
13.90 / 5.00 → 15.47 / 5.72, The Great Wave 12.65 / 6.14 → 14.83 / 7.28, The Scream 15.78 / 9.47 →
16.90 / 10.50 dB (no pull at all: within 0.3 dB of a tenth; docs/metric.md)."""
DEFAULT_OBJECTIVE = "mimic"


def decoded_push_loss(latent_push: torch.Tensor, decoded: torch.Tensor, clean_decoded: torch.Tensor) -> torch.Tensor:
    """The latent push's value, with the gradient of the decoded view's distance from the clean one.

    D(E(x′)) is what a model trained on the latents draws, and the latent distance weighs alike the
    directions the decoder renders and those it ignores. Rescaled to the latent push's size at this
    point, so the balance with the target's pull stays as it was. Measured on 1024² squares (default
    plan, seed 0, TAEF2), gain after resize 512 / + JPEG 75 / 1024 / 1024 + JPEG 75, The Great Wave:
    latent push 11.37 / 5.51 / 3.34 / 4.76 dB, half decoded 12.67 / 6.17 / 6.28 / 7.16, all decoded
    13.31 / 6.64 / 6.65 / 7.44. The decoded push moves the latent less (held-out TAESana after JPEG at
    512: 2.79x noise → 2.22x half, 1.8x all), so the default takes half from each (docs/metric.md)."""
    distance = ((decoded - clean_decoded) ** 2).mean()
    return latent_push.detach() * distance / distance.detach().clamp_min(1e-12)


def push_loss(latent: torch.Tensor, clean_latent: torch.Tensor, scale: float) -> torch.Tensor:
    """−mean((z − z_clean)²) / scale: lower = the mimic's latent moved more.

    protect() passes the target term's normaliser (the clean latent's starting distance to the
    target) as ``scale``: with equal weights the two gradients add to 2(z_clean − goal)/scale, a
    constant push along the direction from the artwork toward the target that never stops at it."""
    return -((latent - clean_latent) ** 2).mean() / max(scale, 1e-8)


def _real_jpeg_batch(images: torch.Tensor, quality: int) -> torch.Tensor:
    out = []
    for image in images.detach().float().clamp(0, 1).cpu():
        array = (image.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
        if array.shape[2] == 1:
            array = array[..., 0]
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        decoded = np.asarray(Image.open(buffer), dtype=np.float32) / 255
        if decoded.ndim == 2:
            decoded = decoded[..., None]
        out.append(torch.from_numpy(decoded).permute(2, 0, 1))
    return torch.stack(out).to(device=images.device, dtype=images.dtype)


def real_jpeg_straight_through(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Forward: Pillow's real JPEG; backward: the differentiable JPEG's gradient."""
    approx = differentiable_jpeg(images, quality).to(images.dtype)  # autocast may return bf16
    return approx + (_real_jpeg_batch(images, quality) - approx).detach()


def maybe_real_jpeg(images: torch.Tensor, objective: Objective, rng: np.random.Generator) -> torch.Tensor:
    """Apply the real-JPEG round trip to a share of views (drawn from ``rng``, so runs repeat)."""
    if objective.real_jpeg_probability <= 0 or rng.random() >= objective.real_jpeg_probability:
        return images
    low, high = objective.real_jpeg_quality
    return real_jpeg_straight_through(images, int(rng.integers(low, high + 1)))


OBJECTIVE_ENV = "FIXATIVE_OBJECTIVE"


def current_objective() -> Objective:
    """The objective protect() optimises: ``FIXATIVE_OBJECTIVE`` (research and comparisons) or the default."""
    import os

    name = os.environ.get(OBJECTIVE_ENV, "").strip() or DEFAULT_OBJECTIVE
    if name not in OBJECTIVES:
        raise ValueError(f"{OBJECTIVE_ENV}={name!r}: use one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[name]
