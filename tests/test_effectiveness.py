"""Effectiveness with the real TAEF2 encoder: protection is measured, never assumed.

Thresholds are about 60% of what was measured here (noted beside each), so a regression that
halves the protection fails while run-to-run noise does not.
"""

from __future__ import annotations

import numpy as np
import pytest

import fixative
from fixative.budget import BUDGETS
from fixative.evaluate import PURIFICATIONS, evaluate
from tests.conftest import painting

pytestmark = pytest.mark.slow


def _float(image: np.ndarray) -> np.ndarray:
    return image.astype(np.float32) / 255


def test_real_taef2_protects_a_painting_crop(fixative_home):
    original = painting("starry_night_van_gogh_1889.jpg", size=160)
    result = fixative.protect(original, {"quality": "fast", "models": ["taef2"]})
    assert result.stats.psnr >= 35.0
    assert result.stats.ssim >= BUDGETS["default"].min_ssim  # the floor holds on the rounded file
    chosen = {k: PURIFICATIONS[k] for k in ("clean", "jpeg75", "resize0.5")}
    report = evaluate(_float(original), _float(result.image), result.stats.target, purifications=chosen)
    f = {name: values["taef2"] for name, values in report.closing.items()}
    print("closing fractions:", f, "PSNR", report.psnr)
    assert report.psnr >= 35.0
    # f toward the self-chosen target is secondary (docs/metric.md): the default objective pulls toward
    # a style target at a fifth of a poison anchor's weight, so the style only leans the push away from
    # the artwork. Still a lean toward it, not away (without the pull f falls below 0: −0.05 to −0.13
    # on the 1024² benchmark paintings)
    assert f["clean"] >= 0.005         # measured 0.013 (0.047 at the pull's former half weight)
    assert f["jpeg75"] >= 0.005        # measured 0.011
    assert f["resize0.5"] >= 0.015     # measured 0.035


def test_large_image_keeps_protection_at_training_resolutions(fixative_home):
    """A 1280x854 image (larger than both buckets), measured the way a mimic sees it (the protect
    report's AI's-eye metric, fixative.mimicry): after resizing to 512 and 1024 long side, each
    also followed by a real JPEG 75, against Gaussian noise of the same PSNR."""
    from PIL import Image

    from tests.conftest import ART

    with Image.open(ART / "shipwreck_turner_1805.jpg") as im:
        original = np.asarray(im.convert("RGB").resize((1280, 854), Image.Resampling.LANCZOS)).copy()
    result = fixative.protect(original, {"quality": "fast", "ai_report": "full"})
    rows = {(r["preprocess"], r["model"]): r for r in result.stats.mimicry["rows"]}
    print(result.stats.summary)
    assert result.stats.psnr >= 35.0
    # the SSIM floor is checked on a 1024² centre crop; the whole rounded file must keep it too
    assert result.stats.ssim >= BUDGETS["default"].min_ssim
    gain = {p: rows[(p, "taef2")]["gain_db"] for p in ("resize512", "resize512+jpeg75", "resize1024",
                                                      "resize1024+jpeg75")}
    assert gain["resize512"] >= 7.5           # measured 11.8 dB (default objective 'mimic', fast quality)
    assert gain["resize512+jpeg75"] >= 2.5    # measured 4.1
    assert gain["resize1024"] >= 5.5          # measured 7.9
    assert gain["resize1024+jpeg75"] >= 2.5   # measured 3.5
    assert rows[("resize512+jpeg75", "taesana")]["held_out"]
    assert rows[("resize512+jpeg75", "taesana")]["shift_ratio"] >= 1.4   # measured 2.3x, never optimised for


def test_untargeted_shift_is_reported_without_a_target(fixative_home):
    original = painting(size=64)
    result = fixative.protect(original, {"quality": "fast", "steps": 3})
    report = evaluate(_float(original), _float(result.image), None,
                      purifications={"clean": PURIFICATIONS["clean"]})
    assert report.target.startswith("none") and report.closing["clean"]["taef2"] > 0
