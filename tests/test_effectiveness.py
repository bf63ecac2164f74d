"""Effectiveness with the real TAEF2 encoder: protection is measured, never assumed.

Thresholds are about 60% of what was measured here (noted beside each), so a regression that
halves the protection fails while run-to-run noise does not.
"""

from __future__ import annotations

import numpy as np
import pytest

import fixative
from fixative.evaluate import PURIFICATIONS, TRAINING_RESIZES, evaluate
from tests.conftest import painting

pytestmark = pytest.mark.slow


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255


def test_real_taef2_protects_a_painting_crop(fixative_home):
    original = painting("starry_night_van_gogh_1889.jpg", size=160)
    result = fixative.protect(original, {"quality": "fast", "models": ["taef2"]})
    assert result.stats.psnr >= 35.0
    chosen = {k: PURIFICATIONS[k] for k in ("clean", "jpeg75", "resize0.5")}
    report = evaluate(_float(original), _float(result.image), result.stats.target, purifications=chosen)
    f = {name: values["taef2"] for name, values in report.closing.items()}
    print("closing fractions:", f, "PSNR", report.psnr)
    assert report.psnr >= 35.0
    assert f["clean"] >= 0.05          # measured 0.084 (smoothed gradient trades clean f for robustness)
    assert f["jpeg75"] >= 0.04         # measured 0.066
    assert f["resize0.5"] >= 0.07      # measured 0.12


def test_large_image_keeps_protection_at_training_resolutions(fixative_home):
    """A 1536x1024 image (larger than both buckets): f measured after resizing to 512² and 1024²
    area, as a fine-tuning pipeline would."""
    from PIL import Image

    from tests.conftest import ART

    with Image.open(ART / "shipwreck_turner_1805.jpg") as im:
        original = np.asarray(im.convert("RGB").resize((1536, 1024), Image.Resampling.LANCZOS)).copy()
    result = fixative.protect(original, {"quality": "fast"})
    report = evaluate(_float(original), _float(result.image), result.stats.target,
                      purifications=dict(TRAINING_RESIZES), max_area=1536 * 1024)
    f = {name: values["taef2"] for name, values in report.closing.items()}
    print("closing fractions at training resolutions:", f, "PSNR", report.psnr)
    assert report.psnr >= 35.0
    assert f["train512"] >= 0.06      # measured 0.10 (fast quality: about one visit per tile)
    # The 1024² bucket of a 1.5 MP image is the hard case on CPU at fast quality: measured
    # 0.026 here (−0.016 before views covered each scale evenly, 0.016 before early stopping
    # stopped cutting the single pass over the tiles short). Guard the regression.
    assert f["train1024"] >= -0.005


def test_untargeted_shift_is_reported_without_a_target(fixative_home):
    original = painting(size=64)
    result = fixative.protect(original, {"quality": "fast", "steps": 3})
    report = evaluate(_float(original), _float(result.image), None,
                      purifications={"clean": PURIFICATIONS["clean"]})
    assert report.target.startswith("none") and report.closing["clean"]["taef2"] > 0
