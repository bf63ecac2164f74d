"""Encoders: every TAE architecture, real TAEF2/TAESana weights, weight lookup and checked downloads."""

from __future__ import annotations

import hashlib
import http.server
import threading
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from fixative.errors import DownloadFailed, MissingWeights
from fixative.models.registry import TAE_MODELS, build_tae, check_model_name, load_encoder
from fixative.models.weights import WeightFile, download_weight, find_weight, verify
from tests.conftest import MODELS


@pytest.mark.parametrize("name", list(TAE_MODELS))
def test_every_tae_architecture_builds_with_random_weights(name):
    spec = TAE_MODELS[name]
    model = build_tae(name, with_decoder=spec.decoder_pin is not None)
    latent = model.encode(torch.rand(1, 3, 64, 96))
    f = 32 if spec.variant == "f32" else 8
    assert latent.shape == (1, spec.latent_channels, 64 // f, 96 // f)
    if model.has_decoder:
        assert model.decode(latent).shape == (1, 3, 64, 96)


def test_state_dict_keys_use_upstream_names():
    keys = set(build_tae("taef2", with_decoder=True).encoder.state_dict())
    upstream = set(torch.load(MODELS / "taef2_encoder.pth", weights_only=True))
    # our module names its global-context branch "context.layers"; upstream calls it "pool"
    renamed = {k.replace("context.layers.", "pool.") for k in keys}
    assert renamed == upstream


def test_real_taef2_reconstructs_a_painting(fixative_home):
    """The GroupNorm context branch matters: without it TAEF2 reconstructs ~11 dB worse."""
    from PIL import Image

    from tests.conftest import ART

    model = load_encoder("taef2")
    assert model.has_decoder and model.latent_channels == 32
    with Image.open(ART / "shipwreck_turner_1805.jpg") as im:
        small = np.asarray(im.convert("RGB").resize((256, 176)))
    image = torch.from_numpy(small.copy()).permute(2, 0, 1)[None].float() / 255

    def psnr() -> float:
        with torch.no_grad():
            return float(10 * torch.log10(1 / ((model.decode(model.encode(image)) - image) ** 2).mean()))

    full = psnr()
    blocks = [b for b in [*model.encoder, *model.decoder] if getattr(b, "context", None) is not None]
    saved = [b.context for b in blocks]
    try:
        for block in blocks:
            block.context = None
        without_context = psnr()
    finally:
        for block, context in zip(blocks, saved, strict=True):
            block.context = context
    assert len(blocks) == 6  # 3 encoder + 3 decoder blocks have the branch
    assert full > 25, f"reconstruction PSNR {full:.1f} dB"  # measured 28.2 dB
    assert full > without_context + 5


def test_real_encoders_run_channels_last_with_the_same_results(fixative_home):
    """The loaded encoders keep their conv weights channels-last (the faster CPU layout, benchmarks.layout),
    and encode, decode and the input gradient match the same weights in the default layout."""
    import copy

    model = load_encoder("taef2")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert convs and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convs if c.kernel_size != (1, 1))
    reference = copy.deepcopy(model).to(memory_format=torch.contiguous_format)
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    grads = []
    for encode in (model.encode, reference.encoder):
        x = image.clone().requires_grad_(True)
        latent = encode(x)
        (latent**2).mean().backward()
        grads.append((latent.detach(), x.grad))
    (fast, fast_grad), (slow, slow_grad) = grads
    assert torch.allclose(fast, slow, atol=1e-4, rtol=1e-4)
    assert float((fast_grad - slow_grad).abs().max() / slow_grad.abs().max()) < 1e-2
    with torch.no_grad():
        assert torch.allclose(model.decode(fast), reference.decoder(slow).clamp(0, 1), atol=1e-3)


def test_real_taesana_encoder_is_f32(fixative_home):
    model = load_encoder("taesana")
    with torch.no_grad():
        latent = model.encode(torch.rand(1, 3, 128, 64))
    assert latent.shape == (1, 32, 4, 2) and not model.has_decoder


def test_unknown_model_names_the_known_ones():
    with pytest.raises(Exception, match="taef2"):
        check_model_name("taef3")
    assert check_model_name("vae:/some/folder") == "vae:/some/folder"


def test_missing_weights_offline_name_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path))
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    with pytest.raises(MissingWeights) as info:
        find_weight(TAE_MODELS["taesdxl"].weight("encoder"))
    message = str(info.value)
    assert "taesdxl_encoder.pth" in message and "FIXATIVE_MODEL_DIR" in message and "OFFLINE" in message


@pytest.fixture
def weight_server(tmp_path):
    """A local HTTP server (127.0.0.1) serving the real TAEF2 encoder and a corrupt copy."""
    root = tmp_path / "served"
    root.mkdir()
    (root / "taef2_encoder.pth").write_bytes((MODELS / "taef2_encoder.pth").read_bytes())
    (root / "corrupt.pth").write_bytes(b"not the weights")
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *a, **k: None  # type: ignore[method-assign]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_download_checks_sha256_and_is_atomic(weight_server, tmp_path):
    real = TAE_MODELS["taef2"].weight("encoder")
    good = WeightFile(real.filename, f"{weight_server}/taef2_encoder.pth", sha256=real.sha256)
    path = download_weight(good, tmp_path / "cache", show_progress=False)
    assert verify(path, good)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == real.sha256
    bad = WeightFile("taef2_encoder.pth", f"{weight_server}/corrupt.pth", sha256=real.sha256)
    with pytest.raises(DownloadFailed, match="checksum"):
        download_weight(bad, tmp_path / "cache2", show_progress=False)
    assert not any((tmp_path / "cache2").iterdir()), "nothing may be kept from a failed download"
    with pytest.raises(DownloadFailed):
        download_weight(WeightFile("x.pth", f"{weight_server}/missing.pth"), tmp_path / "c3", show_progress=False)


def test_git_blob_sha1_pins_are_checked(tmp_path):
    data = b"weights"
    path = tmp_path / "w.pth"
    path.write_bytes(data)
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    assert verify(path, WeightFile("w.pth", "", git_sha1=blob))
    assert not verify(path, WeightFile("w.pth", "", git_sha1="0" * 40))


def test_fetch_from_a_mirror_via_env(weight_server, tmp_path, monkeypatch):
    """FIXATIVE_WEIGHTS_URL points the registry at a mirror; the CLI fetch verifies the pin."""
    from fixative.cli import main

    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(tmp_path / "none"))
    monkeypatch.delenv("FIXATIVE_OFFLINE", raising=False)
    monkeypatch.setenv("FIXATIVE_WEIGHTS_URL", weight_server)
    spec = TAE_MODELS["taesana"]
    monkeypatch.setitem(TAE_MODELS, "taef2", type(spec)(**{**TAE_MODELS["taef2"].__dict__, "decoder_pin": None}))
    assert main(["models", "fetch", "taef2"]) == 0
    cached = Path(tmp_path / "home" / "cache" / "models" / "taef2_encoder.pth")
    assert cached.is_file() and np.frombuffer(cached.read_bytes()[:4], np.uint8).size == 4
