"""What protect() returns: the protected image plus the numbers that say what was done."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel


class Progress(BaseModel):
    """One progress report: fraction done (0–1), what is happening, seconds left (None = unknown)."""

    fraction: float
    stage: str
    eta_s: float | None = None


class ProtectStats(BaseModel):
    """Everything a report, the API and the plug-ins show about a run."""

    mode: str
    steps: int
    seconds: float
    device: str
    dtype: str
    models: list[str]
    width: int
    height: int
    psnr: float
    ssim: float
    lpips: float | None = None
    linf: float
    budget: str
    closing: dict[str, float]
    """Closing fraction f = 1 − ‖E(x′)−t‖/‖E(x)−t‖ per model, at the optimisation's main view."""
    target: str
    concept: str | None = None
    target_concept: str | None = None
    options: dict[str, Any]
    mimicry: dict[str, Any] | None = None
    """The AI's-eye metric (fixative.mimicry.MimicReport.as_dict()): what a mimic's model sees."""
    summary: str | None = None
    """One line for people: what a person sees (file PSNR/SSIM), what the model sees (gain over noise)."""


@dataclass
class ProtectResult:
    """``image`` has the input's type, size, mode and dtype; alpha is copied bit for bit."""

    image: Any
    stats: ProtectStats
    original_rgb: np.ndarray = field(repr=False)
    """The input as float32 RGB in [0, 1] (H, W, 3), kept for previews."""
    protected_rgb: np.ndarray = field(repr=False)
    renderer: Any = field(default=None, repr=False)

    def ai_view(self, which: str = "protected", preprocess: str = "resize512") -> np.ndarray | None:
        """D(E(P(x))): what a model fine-tuned on the file would draw ("AI's-eye view"), at training
        size after the mimic preprocessing ``preprocess`` (fixative.mimicry.PREPROCESSING), or None."""
        return None if self.renderer is None else self.renderer.ai_view(which, preprocess)

    def target_image(self) -> np.ndarray | None:
        """The target image aimed at (for --save-target), or None when it cannot be drawn."""
        return None if self.renderer is None else self.renderer.target_image()
