"""The diffusers-based parts of the core: full AutoencoderKL encoders (alone and in ensembles) and
pipeline-rendered targets (img2img style targets, text-to-image poison anchors).

Everything runs offline on tiny random-weight models built by ``tests/helpers/tiny_diffusers.py``:
the numbers they produce mean nothing, but the loading, shapes, labels, seeding and error paths
are the engine's real ones. One test uses the real TAEF2 + TAESana encoders from ../shared.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from tests.conftest import MODELS, painting  # noqa: E402
from tests.helpers import tiny_diffusers  # noqa: E402

FAST = {"quality": "fast", "steps": 2, "robustness": "off", "intensity": "high", "device": "cpu"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models' ops are far too small to split across threads; on a busy 2-core machine the
    thread hand-offs made each tiny conv about 300x slower (measured: 95 ms vs 0.3 ms)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_vae_dir(tmp_path_factory) -> Path:
    """An SD-like tiny VAE folder (4 latent channels, downscale 2)."""
    return tiny_diffusers.save_tiny_vae(tmp_path_factory.mktemp("tiny-vae") / "vae", seed=3)


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Path:
    """A tiny Stable Diffusion pipeline folder (model_index.json, unet, vae, text encoder, tokenizer)."""
    return tiny_diffusers.save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline", seed=5)


def _vae_name(folder: Path, subfolder: str = "") -> str:
    return f"vae:{folder}" + (f"#{subfolder}" if subfolder else "")


# --- the VAE as an encoder ---------------------------------------------------------------------

def test_vae_loads_by_folder_encodes_and_decodes(fixative_home, tiny_vae_dir):
    import torch
    from diffusers import AutoencoderKL

    from fixative.models.diffusers_vae import DiffusersVAE
    from fixative.models.registry import load_encoder

    model = load_encoder(_vae_name(tiny_vae_dir))
    assert isinstance(model, DiffusersVAE)
    assert (model.latent_channels, model.downscale, model.has_decoder) == (4, 2, True)
    assert not any(p.requires_grad for p in model.parameters()), "loaded encoders must be frozen"

    images = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(1), requires_grad=True)
    latent = model.encode(images)
    assert latent.shape == (1, 4, 16, 24)
    # The wrapper maps [0, 1] to the VAE's [-1, 1] and takes the posterior mean (deterministic).
    reference = AutoencoderKL.from_pretrained(tiny_vae_dir).eval()
    with torch.no_grad():
        expected = reference.encode(images.detach() * 2 - 1).latent_dist.mean
    torch.testing.assert_close(latent.detach(), expected)
    torch.testing.assert_close(model.encode(images).detach(), latent.detach())
    latent.square().mean().backward()
    assert images.grad is not None and float(images.grad.abs().sum()) > 0, "the attack needs input gradients"

    decoded = model.decode(latent.detach())
    assert decoded.shape == (1, 3, 32, 48)
    assert float(decoded.min()) >= 0.0 and float(decoded.max()) <= 1.0


def test_vae_subfolder_and_flux_like_latents(fixative_home, tiny_pipeline_dir, tmp_path):
    """``vae:<folder>#vae`` reads a pipeline's VAE; a 16-channel (FLUX-like) VAE keeps 16 channels."""
    import torch

    from fixative.models.registry import load_encoder

    pipeline_vae = load_encoder(_vae_name(tiny_pipeline_dir, "vae"))
    assert pipeline_vae.downscale == 8
    assert load_encoder(_vae_name(tiny_pipeline_dir, "vae")) is pipeline_vae, "loaded once per process"

    flux_like = load_encoder(_vae_name(tiny_diffusers.save_tiny_vae(tmp_path / "flux-vae", latent_channels=16,
                                                                    levels=3)))
    assert (flux_like.latent_channels, flux_like.downscale) == (16, 4)
    with torch.no_grad():
        assert pipeline_vae.encode(torch.rand(1, 3, 64, 32)).shape == (1, 4, 8, 4)
        assert flux_like.encode(torch.rand(1, 3, 64, 32)).shape == (1, 16, 16, 8)


@pytest.mark.parametrize(("alias", "repo_id", "subfolder", "area"), [
    ("vae-sd15", "stable-diffusion-v1-5/stable-diffusion-v1-5", "vae", 512 * 512),
    ("vae-sdxl", "stabilityai/sdxl-vae", "", 1024 * 1024),
])
def test_vae_alias_loads_by_repo_id_from_the_hub_cache(fixative_home, tiny_vae_dir, tmp_path, monkeypatch,
                                                       alias, repo_id, subfolder, area):
    """Aliases resolve to repo ids; offline, a repo id loads from the Hugging Face cache."""
    import huggingface_hub.constants

    from fixative.models.diffusers_vae import DiffusersVAE
    from fixative.models.registry import load_encoder

    cache = tmp_path / "hub"
    tiny_diffusers.save_to_fake_hub_cache(cache, repo_id, tiny_vae_dir, subfolder)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    load_encoder.cache_clear()
    try:
        model = load_encoder(alias)
        assert isinstance(model, DiffusersVAE)
        assert (model.name, model.training_area, model.latent_channels) == (alias, area, 4)
    finally:
        load_encoder.cache_clear()  # the alias must not stay bound to the fake repo


def test_missing_vae_is_missing_weights(fixative_home, tmp_path):
    from fixative.errors import MissingWeights
    from fixative.models.registry import load_encoder

    missing = tmp_path / "no-such-vae"
    with pytest.raises(MissingWeights, match="could not load the diffusers VAE") as caught:
        load_encoder(_vae_name(missing))
    assert str(missing) in str(caught.value)


# --- protect() with a diffusers VAE -----------------------------------------------------------

@pytest.mark.parametrize("with_taef2", [False, True], ids=["vae-alone", "ensemble-taef2+vae"])
def test_protect_with_diffusers_vae(fixative_home, tiny_vae_dir, with_taef2):
    import fixative

    vae = _vae_name(tiny_vae_dir)
    models = ["taef2", vae] if with_taef2 else [vae]
    image = painting(size=(64, 48))
    result = fixative.protect(image, {**FAST, "models": models, "target_style": "cubist-shards"})

    assert isinstance(result.image, np.ndarray)
    assert (result.image.shape, result.image.dtype) == (image.shape, image.dtype)
    assert not np.array_equal(result.image, image), "two steps must change some pixels"
    stats = result.stats
    assert stats.models == models
    assert set(stats.closing) == set(models), "one closing fraction per model of the ensemble"
    assert all(math.isfinite(value) and value <= 1 for value in stats.closing.values())
    assert stats.target == "style:cubist-shards"


def test_real_taef2_taesana_ensemble(fixative_home, monkeypatch):
    if not (MODELS / "taesana_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taesana_encoder.pth is missing")
    import fixative

    image = painting("the_scream_munch_1893.jpg", size=64)
    options = {**FAST, "steps": 4, "models": ["taef2", "taesana"], "target_style": "cubist-shards"}
    result = fixative.protect(image, options)
    assert (result.image.shape, result.image.dtype) == (image.shape, image.dtype)
    assert result.stats.models == ["taef2", "taesana"]
    assert set(result.stats.closing) == {"taef2", "taesana"}
    # Normalised per-model losses: neither encoder is left behind by the other. The default objective
    # pushes each latent away from the artwork's (measured 2.2x / 2.1x equal-PSNR noise after resize).
    shift = {row["model"]: row["shift_ratio"] for row in result.stats.mimicry["rows"]
             if row["preprocess"] == "resize512"}
    assert set(shift) == {"taef2", "taesana"} and all(value > 1.5 for value in shift.values()), shift
    # The pull toward the target alone closes on it in both (measured f 0.10 / 0.18).
    monkeypatch.setenv("FIXATIVE_OBJECTIVE", "target")
    pulled = fixative.protect(image, options)
    assert all(value > 0.03 for value in pulled.stats.closing.values()), pulled.stats.closing


# --- pipeline-rendered targets ------------------------------------------------------------------

@pytest.mark.parametrize(("parts", "area"), [
    ({"unet": {"sample_size": 64}, "vae_scale_factor": 8}, 512 * 512),          # SD 1.x
    ({"unet": {"sample_size": 96}, "vae_scale_factor": 8}, 768 * 768),          # SD 2.x
    ({"default_sample_size": 128, "vae_scale_factor": 8}, 1024 * 1024),         # SDXL, FLUX.1
    ({"transformer": {"sample_size": [64, 32]}, "vae_scale_factor": 16}, 1024 * 512),
    ({}, 512 * 512),                                                             # unknown: SD default
])
def test_renders_follow_the_pipelines_native_resolution(parts, area):
    from types import SimpleNamespace

    from fixative.targets.diffusion import native_area

    fields = {key: SimpleNamespace(config=SimpleNamespace(**value)) if isinstance(value, dict) else value
              for key, value in parts.items()}
    assert native_area(SimpleNamespace(**fields)) == area


def test_img2img_target_follows_the_seed(fixative_home, tiny_pipeline_dir):
    from fixative.targets.diffusion import img2img_target

    artwork = painting(size=64).astype(np.float32) / 255
    first = img2img_target(str(tiny_pipeline_dir), artwork, "cubist-shards", seed=1)
    again = img2img_target(str(tiny_pipeline_dir), artwork, "cubist-shards", seed=1)
    other = img2img_target(str(tiny_pipeline_dir), artwork, "cubist-shards", seed=2)
    assert first.dtype == np.float32 and first.ndim == 3 and first.shape[2] == 3
    assert first.shape[:2] == (64, 64), "renders at the pipeline's native size (tiny: 64 px)"
    assert float(first.min()) >= 0 and float(first.max()) <= 1
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other), "the seed must reach the pipeline's generator"


def test_style_mode_with_pipeline_uses_img2img_target(fixative_home, tiny_pipeline_dir):
    import fixative

    image = painting("great_wave_hokusai_1831.jpg", size=(48, 64))
    options = {**FAST, "models": ["taef2"], "pipeline": str(tiny_pipeline_dir), "target_style": "cubism", "seed": 7}
    first = fixative.protect(image, options)
    assert first.stats.target == "img2img:cubism"
    assert (first.image.shape, first.image.dtype) == (image.shape, image.dtype)
    assert set(first.stats.closing) == {"taef2"}
    target = first.target_image()
    assert target is not None and target.shape[2] == 3
    assert not np.allclose(target, first.original_rgb[: target.shape[0], : target.shape[1]], atol=0.05), \
        "the target must be the pipeline's render, not the artwork"

    second = fixative.protect(image, options)
    np.testing.assert_array_equal(first.image, second.image)
    np.testing.assert_array_equal(first.target_image(), second.target_image())

    auto = fixative.protect(image, {**options, "target_style": "auto"})
    assert auto.stats.target.startswith("img2img:")


def test_poison_mode_with_pipeline_uses_text2image_anchor(fixative_home, tiny_pipeline_dir):
    import fixative
    from fixative.targets.diffusion import text2image_anchor

    image = painting(size=64)
    options = {**FAST, "mode": "poison", "models": ["taef2"], "pipeline": str(tiny_pipeline_dir),
               "concept": "a landscape", "target_concept": "a cat"}
    result = fixative.protect(image, options)
    assert result.stats.target == "text2image:a cat"
    assert result.stats.target_concept == "a cat"
    assert (result.image.shape, result.image.dtype) == (image.shape, image.dtype)
    assert set(result.stats.closing) == {"taef2"}

    anchor = text2image_anchor(str(tiny_pipeline_dir), "a cat", 0, 64, 64)
    dog = text2image_anchor(str(tiny_pipeline_dir), "a dog", 0, 64, 64)
    assert anchor.shape == (64, 64, 3)
    assert not np.array_equal(anchor, dog), "the prompt must reach the text encoder"
    rendered = result.target_image()
    assert rendered is not None
    np.testing.assert_allclose(rendered, anchor, atol=0.02,
                               err_msg="the poison target is the seed-0 text-to-image render")


def test_both_modes_share_one_loaded_pipeline(fixative_home, tiny_pipeline_dir):
    """Mode "both" renders an img2img target and a text-to-image anchor from one set of weights."""
    import fixative
    from fixative.targets.diffusion import _pipeline

    image = painting("udnie_picabia_1913.jpg", size=48)
    result = fixative.protect(image, {**FAST, "mode": "both", "models": ["taef2"], "target_style": "neon-lines",
                                      "pipeline": str(tiny_pipeline_dir), "target_concept": "a dog"})
    assert result.stats.target == "img2img:neon-lines + text2image:a dog"
    assert set(result.stats.closing) == {"taef2:style", "taef2:poison"}
    img2img = _pipeline(str(tiny_pipeline_dir), "img2img", "cpu")
    text2image = _pipeline(str(tiny_pipeline_dir), "text2image", "cpu")
    assert type(img2img).__name__ == "StableDiffusionImg2ImgPipeline"
    assert type(text2image).__name__ == "StableDiffusionPipeline"
    assert img2img.unet is text2image.unet and img2img.vae is text2image.vae, "weights are held once"


@pytest.mark.parametrize("extra", [{}, {"target_concept": "a cat"}, {"pipeline": "PIPELINE"}],
                         ids=["nothing", "concept-without-pipeline", "pipeline-without-concept"])
def test_poison_without_anchor_or_pipeline_is_bad_options(fixative_home, tiny_pipeline_dir, extra):
    import fixative
    from fixative.errors import BadOptions

    if extra.get("pipeline") == "PIPELINE":
        extra = {"pipeline": str(tiny_pipeline_dir)}
    image = painting(size=48)
    with pytest.raises(BadOptions) as caught:
        fixative.protect(image, {**FAST, "mode": "poison", "models": ["taef2"], **extra})
    message = str(caught.value)
    assert "anchor" in message and "pipeline" in message and "target-concept" in message
    assert caught.value.code == "bad_options"


@pytest.mark.parametrize("mode", ["style", "poison"])
def test_missing_pipeline_is_missing_weights(fixative_home, tmp_path, mode):
    import fixative
    from fixative.errors import MissingWeights

    missing = tmp_path / "no-such-pipeline"
    image = painting(size=48)
    with pytest.raises(MissingWeights, match="could not load the diffusers pipeline") as caught:
        fixative.protect(image, {**FAST, "mode": mode, "models": ["taef2"], "pipeline": str(missing),
                                 "target_concept": "a cat"})
    assert str(missing) in str(caught.value)
    assert caught.value.http_status == 503


def test_folder_that_is_not_a_pipeline_is_missing_weights(fixative_home, tiny_vae_dir):
    import fixative
    from fixative.errors import MissingWeights

    with pytest.raises(MissingWeights, match=str(tiny_vae_dir)):
        fixative.protect(painting(size=48), {**FAST, "models": ["taef2"], "pipeline": str(tiny_vae_dir)})
