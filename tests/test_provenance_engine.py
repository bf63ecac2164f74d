"""Content credentials through the real engine process and the CLI's protect step."""

from __future__ import annotations

import io
import json

import c2pa
import numpy as np
import pytest
from PIL import Image

from fixative import provenance
from fixative.cli import main
from fixative.imageio import encode_image, xmp_packet
from tests.conftest import painting

FAST = {"quality": "fast", "steps": 1}


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """One real `fixative serve` process for this module (models load on the first job)."""
    from tests.conftest import MODELS
    from tests.helpers.engine import start_engine

    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")
    handle = start_engine(tmp_path_factory.mktemp("engine-home"), "--no-preload")
    try:
        yield handle
    finally:
        handle.stop()


def valid_optout(data: bytes, media_type: str) -> dict:
    """The active manifest, after checking with c2pa.Reader that it validates and opts out."""
    with c2pa.Reader(media_type, io.BytesIO(data)) as reader:
        assert reader.get_validation_state() == "Valid"
        failures = [item["code"] for item in reader.get_validation_results()["activeManifest"]["failure"]]
        assert failures == ["signingCredential.untrusted"]  # self-signed engine identity
        manifest = reader.get_active_manifest()
    entries = next(item["data"]["entries"] for item in manifest["assertions"]
                   if item["label"] == "cawg.training-mining")
    assert {use: entry["use"] for use, entry in entries.items()} == dict.fromkeys(provenance.USES, "notAllowed")
    return manifest


@pytest.mark.parametrize("fmt,media_type", [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")])
def test_engine_signs_uploaded_files(engine, fmt, media_type):
    unsigned = encode_image(painting(size=(40, 30)), fmt, xmp=xmp_packet())
    answer = engine.request("POST", "/v1/credentials", files={"image": ("export", unsigned, media_type)})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == media_type
    manifest = valid_optout(answer.content, media_type)
    assert manifest["signature_info"]["common_name"] == "Fixative user (self-signed)"
    # the identity is the engine user's own, made on first use, 0600 in its config folder
    key = engine.home / "config" / "identity" / "key.pem"
    assert key.stat().st_mode & 0o777 == 0o600


def test_engine_refuses_what_it_cannot_sign(engine):
    tiff = encode_image(painting(size=(20, 20)), "TIFF")
    answer = engine.request("POST", "/v1/credentials", files={"image": ("a.tif", tiff, "image/tiff")})
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_image"
    answer = engine.request("POST", "/v1/credentials", files={"image": ("a.png", b"not an image", "image/png")})
    assert answer.status_code == 400
    answer = engine.request("POST", "/v1/credentials", token=None,
                                    files={"image": ("a.png", b"x", "image/png")})
    assert answer.status_code == 401


@pytest.mark.slow
def test_engine_job_result_carries_credentials_only_when_asked(engine):
    png = encode_image(painting(size=(40, 32)), "PNG")
    results = {}
    for asked in (True, False):
        data = {"options": json.dumps(FAST)}
        if asked:
            data["credentials"] = "true"
        job = engine.request("POST", "/v1/jobs", files={"image": ("a.png", png, "image/png")}, data=data)
        assert job.status_code == 202, job.text
        status = engine.wait_job(job.json()["id"], timeout=180)
        assert status["state"] == "done", status
        results[asked] = engine.request("GET", f"/v1/jobs/{job.json()['id']}/result").content
    valid_optout(results[True], "image/png")
    assert not provenance.read_credentials(results[False]).present  # layer round trips: pixels only
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(results[True]))),
                          np.asarray(Image.open(io.BytesIO(results[False]))))


@pytest.mark.slow
def test_cli_protect_signs_after_the_cloak_and_can_leave_both_out(fixative_home, tmp_path, capsys):
    source = tmp_path / "art.png"
    source.write_bytes(encode_image(painting(size=(48, 40)), "PNG"))
    signed, bare = tmp_path / "signed.jpg", tmp_path / "bare.jpg"
    args = ["protect", str(source), "--quality", "fast", "--steps", "1"]
    assert main([*args, "-o", str(signed)]) == 0
    assert main([*args, "-o", str(bare), "--no-optout-metadata"]) == 0
    valid_optout(signed.read_bytes(), "image/jpeg")
    assert provenance.xmp_opts_out(provenance.read_xmp_optout(signed.read_bytes()))
    assert not provenance.read_credentials(bare.read_bytes()).present
    assert provenance.read_xmp_optout(bare.read_bytes()) == {}
    # the signed hash covers the protected pixels: they decode as the unsigned run's (same seed)
    assert np.array_equal(np.asarray(Image.open(signed)), np.asarray(Image.open(bare)))


@pytest.mark.slow
def test_inspect_with_the_original_measures_the_cloak(fixative_home, tmp_path, capsys):
    source = tmp_path / "art.png"
    source.write_bytes(encode_image(painting(size=128), "PNG"))
    protected, copy = tmp_path / "art.protected.png", tmp_path / "copy.png"
    assert main(["protect", str(source), "-o", str(protected), "--quality", "fast",
                 "--target-style", "op-art-stripes"]) == 0
    # an unprotected re-save that records the same target: the measurement, not the record, decides
    copy.write_bytes(encode_image(painting(size=128), "PNG", info={"target": "style:op-art-stripes"}))
    capsys.readouterr()
    verdicts = {}
    for name, path in (("cloaked", protected), ("copy", copy)):
        assert main(["inspect", str(path), "--original", str(source), "--json"]) == 0
        verdicts[name] = json.loads(capsys.readouterr().out)["protection"]
        assert verdicts[name]["measured"] and verdicts[name]["metric"].startswith("AI's-eye gain over noise")
    print("AI's-eye gain:", {name: verdict["robust"] for name, verdict in verdicts.items()})
    assert verdicts["cloaked"]["looks_protected"] is True and verdicts["cloaked"]["robust"] >= 4.0
    assert verdicts["copy"]["looks_protected"] is False


def test_inspect_tells_a_cloak_from_a_jpeg_resave_and_from_noise(fixative_home, tmp_path, capsys):
    """The verdict is the AI's-eye gain over equal-PSNR noise: a re-save as JPEG 90 and added Gaussian
    noise change the pixels as much as a cloak does, and neither looks protected; no recorded target is
    needed."""
    original = painting("udnie_picabia_1913.jpg", size=128)
    source = tmp_path / "art.png"
    source.write_bytes(encode_image(original, "PNG"))
    noisy = np.clip(original + np.random.default_rng(0).normal(0, 3, original.shape), 0, 255).astype(np.uint8)
    files = {"jpeg90": tmp_path / "resaved.jpg", "noise": tmp_path / "noisy.png"}
    files["jpeg90"].write_bytes(encode_image(original, "JPEG", jpeg_quality=90))
    files["noise"].write_bytes(encode_image(noisy, "PNG"))
    assert main(["protect", str(source), "-o", str(tmp_path / "cloaked.png"), "--quality", "fast"]) == 0
    files["cloak"] = tmp_path / "cloaked.png"
    capsys.readouterr()
    verdicts = {}
    for name, path in files.items():
        assert main(["inspect", str(path), "--original", str(source), "--json"]) == 0
        verdicts[name] = json.loads(capsys.readouterr().out)["protection"]
    print({name: round(v["robust"], 2) for name, v in verdicts.items()})
    assert verdicts["cloak"]["looks_protected"] is True
    assert verdicts["jpeg90"]["looks_protected"] is False and verdicts["noise"]["looks_protected"] is False
