"""The AI's-eye metric (fixative.mimicry): numbers that would be wrong if computed wrongly."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from fixative import mimicry
from fixative.models.base import ImageEncoder
from tests.conftest import MODELS, painting


class Identity(ImageEncoder):
    """E = D = identity: the AI's-eye view is the preprocessed image itself."""

    name = "identity"
    downscale = 1

    def __init__(self) -> None:
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    @property
    def has_decoder(self) -> bool:
        return True

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images + 0 * self.anchor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return latents


class Blind(Identity):
    """An encoder without a decoder that only sees each 8x8 block's mean."""

    name = "blind"

    @property
    def has_decoder(self) -> bool:
        return False

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(images, 8)


def _image(seed: int = 0, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0.05, 0.95, (size, size, 3)).astype(np.float32)


def test_identical_images_change_nothing_and_stay_json_safe():
    image = _image()
    report = mimicry.measure(image, image.copy(), [Identity(), Blind()], {"blind"}, ["resize512"])
    assert math.isinf(report.file_psnr) and report.noise_sigma == 0
    seeing, blind = report.rows
    assert math.isinf(seeing.ai_psnr) and math.isinf(seeing.noise_psnr) and seeing.gain_db == 0.0
    assert seeing.ai_ssim == pytest.approx(1.0) and seeing.shift_ratio == 0.0
    assert blind.held_out and blind.gain_db is None and blind.shift_ratio == 0.0
    assert seeing.cloak_shift == seeing.noise_shift == blind.cloak_shift == blind.noise_shift == 0.0
    data = json.loads(json.dumps(report.as_dict(), allow_nan=False))  # inf must not leak into JSON
    assert data["file_psnr"] is None and data["rows"][0]["ai_psnr"] is None
    assert "∞ dB" in report.table()


def test_equal_psnr_noise_hits_the_cloaks_psnr_even_where_it_clips():
    image = _image()
    image[:16] = 1.0  # saturated rows: clipping shrinks the noise there
    image[16:32] = 0.0
    for sigma in (0.01, 0.05):
        cloak = np.clip(image + np.random.default_rng(7).normal(0, sigma, image.shape), 0, 1).astype(np.float32)
        noisy, found = mimicry.equal_psnr_noise(image, cloak)
        assert abs(mimicry.psnr(image, noisy) - mimicry.psnr(image, cloak)) < 0.01
        rms = float(np.sqrt(np.mean((cloak - image) ** 2)))
        # half the pixels sit at 0 or 1 and keep only half of the noise energy: rms² = 0.75 σ²
        assert found == pytest.approx(rms / math.sqrt(0.75), rel=0.05)
        again, _ = mimicry.equal_psnr_noise(image, cloak)
        assert np.array_equal(noisy, again)  # fixed seed


def test_identity_model_reports_the_file_psnr_and_no_gain():
    """With E = D = identity and P = identity (a 64² image), every AI's-eye number equals the file's."""
    image = _image(1)
    cloak = np.clip(image + 0.02 * np.sign(np.random.default_rng(3).normal(size=image.shape)), 0, 1).astype(np.float32)
    report = mimicry.measure(image, cloak, [Identity()], preprocess=["resize512"])
    (row,) = report.rows
    assert row.ai_psnr == pytest.approx(report.file_psnr, abs=1e-3)
    assert row.noise_psnr == pytest.approx(report.file_psnr, abs=0.01)
    assert abs(row.gain_db) < 0.02 and row.shift_ratio == pytest.approx(1.0, abs=0.01)
    # E = identity: the cloak's shift is its own size relative to the image, and so is equal noise's
    relative = float(np.linalg.norm(cloak - image) / np.linalg.norm(image))
    assert row.cloak_shift == pytest.approx(relative, rel=1e-3)
    assert row.noise_shift == pytest.approx(relative, rel=0.01)
    assert f"({relative * 100:.1f} % / " in report.table()


def test_a_change_the_encoder_sees_is_louder_than_noise():
    """Blind sees only 8x8 means: a smooth shift of the same PSNR moves it far more than white noise."""
    image = _image(2)
    y = np.linspace(0, 2 * np.pi, image.shape[0], dtype=np.float32)
    smooth = np.clip(image + 0.02 * np.sin(y)[:, None, None], 0, 1).astype(np.float32)
    report = mimicry.measure(image, smooth, [Blind()], preprocess=["resize512"])
    assert report.rows[0].shift_ratio > 4


def test_resize_long_side_downscales_only_and_rounds_to_32():
    big = np.zeros((600, 900, 3), np.float32)
    assert mimicry.resize_long_side(big, 512).shape == (352, 512, 3)
    assert mimicry.resize_long_side(big, 1024).shape == (608, 896, 3)  # no upscale, rounded to 32
    small = np.zeros((64, 96, 3), np.float32)
    assert mimicry.resize_long_side(small, 512) is small
    assert mimicry.preprocessing_for(400, 300) == [n for n in mimicry.PREPROCESSING if "1024" not in n]
    with pytest.raises(ValueError, match="unknown preprocessing"):
        mimicry.preprocessing_for(64, 64, ["resize300"])


def test_real_jpeg_round_trip_changes_pixels_but_keeps_shape():
    image = _image(4)
    out = mimicry.real_jpeg(image, 75)
    assert out.shape == image.shape and 0.005 < float(np.abs(out - image).mean()) < 0.2


# ---- the real TAEF2 encoder and decoder ------------------------------------------------------------


@pytest.fixture(scope="module")
def taef2():
    if not (MODELS / "taef2_decoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_decoder.pth is missing")
    import os

    os.environ.setdefault("FIXATIVE_MODEL_DIR", str(MODELS))
    from fixative.models.registry import load_encoder

    return load_encoder("taef2", "cpu")


def test_noise_control_gives_no_gain_on_the_real_model(taef2):
    """Noise of another seed at the control's PSNR: gain ≈ 0 dB and shift ratio ≈ 1."""
    image = painting(size=128).astype(np.float32) / 255
    other = np.clip(image + np.random.default_rng(99).normal(0, 4 / 255, image.shape), 0, 1).astype(np.float32)
    report = mimicry.measure(image, other, [taef2], preprocess=["resize512", "resize512+jpeg75"])
    for row in report.rows:
        assert abs(row.gain_db) < 1.0, row
        assert 0.85 < row.shift_ratio < 1.15, row
        assert row.shift_ratio == pytest.approx(row.cloak_shift / row.noise_shift, rel=1e-3)


def test_jpeg_turns_a_small_change_into_a_larger_latent_shift(taef2):
    """The yardstick after JPEG: re-quantising rounds small changes into blockwise flips, so equal noise
    moves TAEF2's latent several times further after JPEG 75 than without it (docs/metric.md)."""
    image = painting(size=128).astype(np.float32) / 255
    cloak = np.clip(image + np.random.default_rng(5).normal(0, 2 / 255, image.shape), 0, 1).astype(np.float32)
    plain, jpeg = mimicry.measure(image, cloak, [taef2], preprocess=["resize512", "resize512+jpeg75"]).rows
    assert jpeg.noise_shift > 1.5 * plain.noise_shift, (plain, jpeg)


def test_an_attack_on_the_encoder_is_louder_than_noise_and_a_smooth_shift_is_not_hidden(taef2):
    """A 10-step white-box push on E: positive gain. A smooth colour wave of the same size is drawn
    back faithfully by the VAE (which drops noise), so it also scores above noise, but less."""
    image = painting(size=64).astype(np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        clean = taef2.encode(x)
    # a random start (as PGD takes): at δ = 0 the push's gradient is exactly zero
    delta = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) / 255
    for _ in range(10):
        delta.requires_grad_(True)
        loss = ((taef2.encode((x + delta).clamp(0, 1)) - clean) ** 2).mean()
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + 1 / 255 * grad.sign()).clamp(-4 / 255, 4 / 255)
    attacked = (x + delta).clamp(0, 1)[0].permute(1, 2, 0).numpy()
    report = mimicry.measure(image, attacked, [taef2], preprocess=["resize512"])
    assert report.rows[0].gain_db > 4 and report.rows[0].shift_ratio > 2, report.rows[0]
    yy = np.linspace(0, 6, 64, dtype=np.float32)[:, None, None]
    smooth = np.clip(image + 0.04 * np.sin(yy), 0, 1).astype(np.float32)
    wave = mimicry.measure(image, smooth, [taef2], preprocess=["resize512"]).rows[0]
    assert 0 < wave.gain_db < report.rows[0].gain_db, wave
    assert "louder than equal noise" in mimicry.measure(image, attacked, [taef2], preprocess=["resize512"]).summary()


def test_protect_reports_what_a_person_and_the_model_see(fixative_home):
    from fixative import protect

    result = protect(painting(size=64), {"steps": 2, "quality": "fast", "device": "cpu"})
    stats = result.stats
    assert stats.summary.startswith(f"A person sees: file PSNR {stats.psnr:.2f} dB")
    assert "after resize + JPEG 75" in stats.summary and "taesana (held out)" in stats.summary
    rows = stats.mimicry["rows"]
    assert {(r["preprocess"], r["model"]) for r in rows} == {
        (p, m) for p in ("resize512", "resize512+jpeg75") for m in ("taef2", "taesana")}
    assert json.loads(stats.model_dump_json())["mimicry"]["file_psnr"] == pytest.approx(stats.psnr, abs=0.01)
    before, after = result.ai_view("original"), result.ai_view("protected")
    assert before.shape == after.shape == (64, 64, 3) and not np.array_equal(before, after)


def test_report_levels_measure_the_1024_pair_only_when_asked(fixative_home):
    """summary: the two 512 rows the plug-ins show; full: the same rows, same numbers, plus the 1024 pair
    (a 640 px long side is over 512); off: nothing; an unknown level is an error, not a silent summary."""
    image = painting(size=(640, 64)).astype(np.float32) / 255  # 640 wide, 64 high
    cloaked = np.clip(image + np.random.default_rng(1).normal(0, 0.02, image.shape), 0, 1).astype(np.float32)
    summary, line = mimicry.report_for(image, cloaked, ["taef2"], "summary")
    full, full_line = mimicry.report_for(image, cloaked, ["taef2"])  # the default level is the summary
    assert full == summary and full_line == line
    full, full_line = mimicry.report_for(image, cloaked, ["taef2"], "full")
    rows = {(r["preprocess"], r["model"]): r for r in summary["rows"]}
    full_rows = {(r["preprocess"], r["model"]): r for r in full["rows"]}
    assert {p for p, _ in rows} == set(mimicry.HEADLINE)
    assert {p for p, _ in full_rows} == {*mimicry.HEADLINE, "resize1024", "resize1024+jpeg75"}
    assert all(full_rows[key] == row for key, row in rows.items()) and full_line == line
    assert mimicry.report_for(image, cloaked, ["taef2"], "off") == (None, None)
    with pytest.raises(ValueError, match="unknown report level"):
        mimicry.report_for(image, cloaked, ["taef2"], "everything")


def test_protect_without_the_ai_report(fixative_home):
    from fixative import protect

    stats = protect(painting(size=48), {"steps": 1, "quality": "fast", "ai_report": "off"}).stats
    assert stats.mimicry is None and stats.summary is None and stats.options["ai_report"] == "off"


def test_preview_strip_shows_original_both_ai_views_and_target(fixative_home):
    from fixative import protect
    from fixative.preview import make_preview

    result = protect(painting(size=48), {"steps": 1, "quality": "fast", "device": "cpu"})
    strip = make_preview(result, height=48)
    assert strip.height == 64 and strip.width == 4 * 48 + 3 * 4  # original | before | after | target


def test_bf16_autocast_follows_the_cpu_and_the_override(monkeypatch):
    from fixative import autocast

    cpu = torch.device("cpu")
    monkeypatch.setenv(autocast.PRECISION_ENV, "fp32")
    assert not autocast.use_cpu_autocast(cpu, torch.float32)
    monkeypatch.setenv(autocast.PRECISION_ENV, "bf16")
    assert autocast.use_cpu_autocast(cpu, torch.float32)
    assert not autocast.use_cpu_autocast(torch.device("cuda"), torch.bfloat16)  # GPUs pick their own dtype
    monkeypatch.setenv(autocast.PRECISION_ENV, "auto")
    assert autocast.use_cpu_autocast(cpu, torch.float32) == autocast.cpu_has_native_bf16()
    monkeypatch.setenv(autocast.PRECISION_ENV, "fp16")
    with pytest.raises(ValueError, match="FIXATIVE_PRECISION"):
        autocast.use_cpu_autocast(cpu, torch.float32)
    with autocast.autocast_context(True):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16


def test_real_jpeg_straight_through_has_the_codecs_values_and_a_gradient():
    from fixative.objectives import real_jpeg_straight_through

    image = torch.from_numpy(_image(5, 32)).permute(2, 0, 1)[None].requires_grad_(True)
    out = real_jpeg_straight_through(image, 75)
    expected = mimicry.real_jpeg(image.detach()[0].permute(1, 2, 0).numpy(), 75)
    assert np.allclose(out.detach()[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    out.sum().backward()
    assert image.grad is not None and float(image.grad.abs().sum()) > 0


def test_decoded_push_keeps_the_latent_push_value_and_pushes_the_decoded_view_apart():
    """decoded_push_loss: the value is the latent push's (so the loss the progress shows keeps its
    meaning), the gradient is the decoded distance's, scaled so its size matches the latent push."""
    from fixative.objectives import decoded_push_loss

    weight = torch.randn(3, 2, generator=torch.Generator().manual_seed(0))
    latent = torch.randn(4, 2, generator=torch.Generator().manual_seed(1)).requires_grad_(True)
    clean_latent, clean_decoded = torch.zeros(4, 2), torch.zeros(4, 3)
    latent_push = -((latent - clean_latent) ** 2).mean()
    loss = decoded_push_loss(latent_push, latent @ weight.T, clean_decoded)
    assert torch.isclose(loss, latent_push)
    (grad,) = torch.autograd.grad(loss, latent)
    distance = ((latent @ weight.T - clean_decoded) ** 2).mean()
    (distance_grad,) = torch.autograd.grad(distance, latent)
    expected = latent_push.item() / distance.item() * distance_grad
    assert torch.allclose(grad, expected, atol=1e-6)
    assert float((grad * distance_grad).sum()) < 0  # a descent step on the loss moves the decoded view away


def test_the_default_push_moves_what_the_decoder_draws_more_than_a_latent_push(fixative_home, monkeypatch):
    """The default objective takes half of its push from the decoded view: against the latent push alone,
    the same steps change D(E(x′)) more for each unit of latent change (real TAEF2, 96² crop)."""
    from dataclasses import replace

    import fixative
    from fixative import objectives
    from fixative.models.registry import load_encoder

    model = load_encoder("taef2", "cpu")
    image = painting(size=96)
    options = {"quality": "fast", "steps": 6, "robustness": "off", "ai_report": "off"}

    def decoded_per_latent(protected: np.ndarray) -> float:
        clean, cloaked = (mimicry.encode_image(model, a.astype(np.float32) / 255) for a in (image, protected))
        decoded = [mimicry.decode_latent(model, z) for z in (clean, cloaked)]
        return float(((decoded[1] - decoded[0]) ** 2).mean() / ((cloaked - clean) ** 2).mean())

    assert objectives.OBJECTIVES[objectives.DEFAULT_OBJECTIVE].decoded_push_share == 0.5
    calls = []
    real_decode = type(model).decode
    monkeypatch.setattr(type(model), "decode", lambda self, z: calls.append(z.requires_grad) or real_decode(self, z))
    decoded_default = decoded_per_latent(fixative.protect(image, options).image)
    assert any(calls), "the default objective never decoded a view with a gradient"
    latent_only = replace(objectives.OBJECTIVES["mimic"], decoded_push_share=0.0)
    monkeypatch.setitem(objectives.OBJECTIVES, "mimic", latent_only)
    calls.clear()
    decoded_latent_only = decoded_per_latent(fixative.protect(image, options).image)
    assert not any(calls)
    assert decoded_default > 1.1 * decoded_latent_only, (decoded_default, decoded_latent_only)


def test_a_style_target_only_leans_the_push_and_a_poison_anchor_still_pulls(fixative_home, monkeypatch):
    """The default objective pulls toward a style target at a fifth of a poison anchor's weight. Against
    the former half weight, the same steps close less on the style target and move the latent further
    from the artwork's (real TAEF2, 96² crop); poison keeps the half weight (test_core checks it closes)."""
    from dataclasses import replace

    import fixative
    from fixative import objectives
    from fixative.models.registry import load_encoder

    mimic = objectives.OBJECTIVES[objectives.DEFAULT_OBJECTIVE]
    assert (mimic.pull_weight("style"), mimic.pull_weight("poison")) == (0.1, 0.5)
    assert objectives.OBJECTIVES["directed"].pull_weight("style") == 1.0  # unset: the target weight
    model = load_encoder("taef2", "cpu")
    image = painting(size=96)
    options = {"quality": "fast", "steps": 8, "robustness": "off", "ai_report": "off"}

    def moved(protected: np.ndarray) -> float:
        clean, cloaked = (mimicry.encode_image(model, a.astype(np.float32) / 255) for a in (image, protected))
        return float(((cloaked - clean) ** 2).mean())

    leaning = fixative.protect(image, options)
    monkeypatch.setitem(objectives.OBJECTIVES, "mimic", replace(mimic, style_target_weight=None))
    pulled = fixative.protect(image, options)
    assert leaning.stats.closing["taef2"] < pulled.stats.closing["taef2"]
    assert moved(leaning.image) > moved(pulled.image)


def test_the_decoded_push_decodes_float_latents_on_a_half_precision_model():
    """On a GPU the models run in bf16 / fp16 while latents are kept in float32: the decode casts them
    (and keeps the gradient), instead of failing on the dtype."""
    from fixative.core import _decode
    from fixative.models.registry import load_encoder

    model = load_encoder("taef2", "cpu", torch.bfloat16, with_decoder=True)
    latent = torch.randn(1, 32, 4, 4, generator=torch.Generator().manual_seed(0)).requires_grad_(True)
    decoded = _decode(model, latent)
    assert decoded.dtype == torch.float32 and decoded.shape[-2:] == (4 * model.downscale, 4 * model.downscale)
    decoded.mean().backward()
    assert latent.grad is not None and latent.grad.dtype == torch.float32 and float(latent.grad.abs().sum()) > 0
