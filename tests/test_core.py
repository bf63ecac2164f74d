"""protect(): types, shapes, alpha, determinism, progress, cancel, options and modes (real TAEF2)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import fixative
from fixative.budget import BUDGETS
from fixative.errors import BadImage, BadOptions, Cancelled, UnknownModel, UnknownStyle
from tests.conftest import painting

QUICK = {"quality": "fast", "steps": 2}


def _rgba(h: int = 48, w: int = 56, dtype=np.uint8) -> np.ndarray:
    rgb = painting(size=(w, h))
    alpha = np.linspace(0, 255, h * w).reshape(h, w).astype(np.uint8)
    image = np.dstack([rgb, alpha])
    if dtype == np.uint16:
        return image.astype(np.uint16) * 257 + np.random.default_rng(1).integers(0, 200, image.shape).astype(np.uint16)
    if dtype == np.float32:
        return image.astype(np.float32) / 255
    return image


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_rgba_keeps_type_shape_and_alpha_exactly(fixative_home, dtype):
    image = _rgba(dtype=dtype)
    result = fixative.protect(image, QUICK)
    out = result.image
    assert isinstance(out, np.ndarray) and out.dtype == image.dtype and out.shape == image.shape
    assert np.array_equal(out[..., 3], image[..., 3]), "alpha must be copied bit for bit"
    assert not np.array_equal(out[..., :3], image[..., :3]), "colour should have changed"
    scale = {np.uint8: 255, np.uint16: 65535, np.float32: 1}[dtype]
    change = np.abs(out[..., :3].astype(np.float64) - image[..., :3].astype(np.float64)).max() / scale
    assert change <= BUDGETS["default"].eps + 1.5 / 255


def test_pil_in_pil_out_same_mode(fixative_home):
    image = Image.fromarray(_rgba())
    out = fixative.protect(image, QUICK).image
    assert isinstance(out, Image.Image) and out.mode == "RGBA" and out.size == image.size
    assert np.array_equal(np.asarray(out)[..., 3], np.asarray(image)[..., 3])


@pytest.mark.parametrize("shape", [(40, 52), (40, 52, 2)])
def test_grey_and_grey_alpha(fixative_home, shape):
    grey = painting(size=(52, 40)).mean(axis=2).astype(np.uint8)
    image = grey if len(shape) == 2 else np.dstack([grey, np.full_like(grey, 200)])
    out = fixative.protect(image, QUICK).image
    assert out.shape == image.shape and out.dtype == np.uint8
    if len(shape) == 3:
        assert np.array_equal(out[..., 1], image[..., 1])


def test_odd_non_square_size(fixative_home):
    image = painting("great_wave_hokusai_1831.jpg", size=(333, 101))
    result = fixative.protect(image, QUICK)
    assert result.image.shape == (101, 333, 3)
    assert result.stats.width == 333 and result.stats.height == 101


def test_tiny_image(fixative_home):
    """The smallest protectable image works; a smaller one is a clear error, never NaN pixels."""
    out = fixative.protect(painting(size=(17, 16)), QUICK)
    assert out.image.shape == (16, 17, 3) and np.isfinite(out.stats.psnr)
    with pytest.raises(BadImage, match="at least 16 pixels"):
        fixative.protect(painting(size=(9, 7)), QUICK)


def test_deterministic_for_a_seed(fixative_home):
    image = painting(size=64)
    a = fixative.protect(image, {**QUICK, "seed": 3}).image
    b = fixative.protect(image, {**QUICK, "seed": 3}).image
    c = fixative.protect(image, {**QUICK, "seed": 4}).image
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("ai_report", ["summary", "off"])
def test_progress_and_eta_cover_the_ai_eye_report(fixative_home, ai_report):
    """The report after the steps takes about as long as they do at 512²: the ETA during the steps
    counts it, and it moves the bar itself instead of leaving it at the end while it runs."""
    seen: list[fixative.Progress] = []
    fixative.protect(painting(size=64), {**QUICK, "steps": 4, "ai_report": ai_report}, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    last_step = [p for p in seen if p.stage.startswith("optimising (step 4/4")][0]
    measuring = [p for p in seen if p.stage == "measuring what a mimic's model sees"]
    if ai_report == "off":
        assert last_step.eta_s == 0 and last_step.fraction == pytest.approx(0.92) and not measuring
        return
    assert last_step.eta_s > 0 and last_step.fraction < 0.92  # the bar keeps room for the report
    # one update as it starts, then one per preprocessing (resize512, + JPEG 75), with an ETA of its own
    assert len(measuring) == 3 and measuring[0].fraction < measuring[1].fraction < measuring[2].fraction
    assert measuring[2].fraction == pytest.approx(0.99) and measuring[2].eta_s == 0
    assert measuring[1].eta_s > 0


def test_progress_reports_and_cancel(fixative_home):
    seen: list[fixative.Progress] = []
    fixative.protect(painting(size=48), {**QUICK, "steps": 3}, progress=seen.append)
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("optimising" in p.stage for p in seen)
    assert any(p.eta_s is not None for p in seen)

    calls = {"n": 0}

    def cancel_on_second_step() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    with pytest.raises(Cancelled):
        fixative.protect(painting(size=48), {**QUICK, "steps": 50}, cancel=cancel_on_second_step)
    assert calls["n"] == 2, "cancel must be honoured within one step"


def test_stats_are_complete(fixative_home):
    stats = fixative.protect(painting(size=64), QUICK).stats
    assert stats.steps == 2 and stats.seconds > 0 and stats.device == "cpu"
    assert stats.models == ["taef2"] and set(stats.closing) == {"taef2"}
    assert stats.psnr >= BUDGETS["default"].min_psnr - 0.05 and 0 < stats.ssim <= 1
    assert stats.target.startswith("style:")


@pytest.mark.parametrize("options, error", [
    ({"models": ["nope"]}, UnknownModel),
    ({"target_style": "no-such-style"}, UnknownStyle),
    ({"colour": "red"}, BadOptions),
    ({"intensity": "extreme"}, BadOptions),
    ({"mode": "poison"}, BadOptions),  # no anchor and no pipeline
])
def test_bad_options_are_clear(fixative_home, options, error):
    with pytest.raises(error) as info:
        fixative.protect(painting(size=32), {**QUICK, **options})
    assert str(info.value) and "Traceback" not in str(info.value)


def test_bad_images_are_refused_clearly(fixative_home):
    with pytest.raises(BadImage):
        fixative.protect(np.zeros((4, 4, 5), np.uint8), QUICK)
    with pytest.raises(BadImage):
        fixative.protect("not an image", QUICK)
    with pytest.raises(BadImage, match="mode P"):
        fixative.protect(Image.new("P", (8, 8)), QUICK)
    with pytest.raises(BadImage, match="NaN"):
        fixative.protect(np.full((8, 8, 3), np.nan, np.float32), QUICK)


def test_named_style_and_user_style_image(fixative_home):
    image = painting(size=64)
    named = fixative.protect(image, {**QUICK, "target_style": "op-art-stripes"})
    assert named.stats.target == "style:op-art-stripes"
    user = fixative.protect(image, QUICK, style_image=painting("great_wave_hokusai_1831.jpg", size=96))
    assert user.stats.target == "user style image"


def test_poison_with_anchor_moves_toward_the_anchor(fixative_home):
    image = painting(size=96)
    anchor = painting("the_scream_munch_1893.jpg", size=128)
    result = fixative.protect(image, {"mode": "poison", "quality": "fast", "steps": 6, "concept": "night sky",
                                      "target_concept": "screaming figure"}, anchor_images=[anchor])
    assert result.stats.target == "anchor:screaming figure"
    assert result.stats.concept == "night sky"
    assert result.stats.closing["taef2"] > 0.02


def test_both_mode_reports_both_terms(fixative_home):
    result = fixative.protect(painting(size=64), {**QUICK, "mode": "both"},
                              anchor_images=[painting("udnie_picabia_1913.jpg", size=64)])
    assert set(result.stats.closing) == {"taef2:style", "taef2:poison"}


def test_views_for_preview_and_target(fixative_home):
    from fixative.preview import make_preview

    result = fixative.protect(painting(size=64), QUICK)
    ai_view = result.ai_view()
    assert ai_view is not None and ai_view.shape[2] == 3
    target = result.target_image()
    assert target is not None and target.ndim == 3
    strip = make_preview(result, height=64, with_difference=True)
    assert strip.height == 80 and strip.width > 3 * 64


@pytest.mark.parametrize("robustness", ["off", "standard"])
def test_real_jpeg_runs_on_every_view_unless_robustness_is_off(fixative_home, monkeypatch, robustness):
    """The default objective passes every view through Pillow's real JPEG (platforms re-encode what they
    host); robustness 'off' optimises for the image exactly as it is, so never."""
    from fixative import objectives

    encoded = []
    real = objectives._real_jpeg_batch
    monkeypatch.setattr(objectives, "_real_jpeg_batch", lambda images, quality: encoded.append(quality) or real(images, quality))
    fixative.protect(painting(size=(64, 48)), {**QUICK, "robustness": robustness})
    views = QUICK["steps"]  # fast quality: one view per step
    assert len(encoded) == (0 if robustness == "off" else views)
    assert all(60 <= q <= 90 for q in encoded)
