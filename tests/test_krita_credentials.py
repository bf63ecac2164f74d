"""Krita's Export Protected with content credentials: fake Krita, the real engine process signs."""

from __future__ import annotations

import io
import os
import shutil

import c2pa
import pytest
from PIL import Image

from fixative import provenance
from tests.conftest import MODELS
from tests.krita.fake_engine import FakeEngine
from tests.test_krita_plugin import fixative_krita, krita, make_document

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
from fixative_krita import export_dialog  # noqa: E402

FAST = {"quality": "fast", "steps": 1}


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory):
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")
    from tests.helpers.engine import start_engine

    engine = start_engine(tmp_path_factory.mktemp("engine-home"), "--no-preload")
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture
def app(monkeypatch, real_engine):
    monkeypatch.setenv("FIXATIVE_HOME", str(real_engine.home))  # the plug-in finds this engine
    krita.Krita._instance = None
    yield krita.Krita.instance()
    krita.Krita._instance = None


@pytest.mark.slow
@pytest.mark.parametrize("extension,media_type", [(".png", "image/png"), (".jpg", "image/jpeg"),
                                                  (".webp", "image/webp")])
def test_export_protected_carries_engine_signed_credentials(app, tmp_path, extension, media_type):
    document, node = make_document(app, layer_box=(0, 0, 40, 30))
    path = str(tmp_path / ("out" + extension))
    job = fixative_krita.export_protected(document, path, FAST, wait=False)
    job.wait(timeout=240)
    assert job.state == "done", job.error
    assert job.notes == []
    data = open(path, "rb").read()
    with c2pa.Reader(media_type, io.BytesIO(data)) as reader:
        assert reader.get_validation_state() == "Valid"
        failures = [item["code"] for item in reader.get_validation_results()["activeManifest"]["failure"]]
        assert failures == ["signingCredential.untrusted"]  # the engine user's self-signed identity
        manifest = reader.get_active_manifest()
    entries = next(item["data"]["entries"] for item in manifest["assertions"]
                   if item["label"] == "cawg.training-mining")
    assert {use: entry["use"] for use, entry in entries.items()} == dict.fromkeys(provenance.USES, "notAllowed")
    assert provenance.xmp_opts_out(provenance.read_xmp_optout(data))  # Krita's XMP is still there
    with Image.open(path) as image:
        assert image.size == (40, 30)


@pytest.mark.slow
def test_export_without_credentials_writes_neither_signal(app, tmp_path):
    document, _ = make_document(app, layer_box=(0, 0, 40, 30))
    path = str(tmp_path / "bare.png")
    assert fixative_krita.export_protected(document, path, FAST, credentials=False) == path
    data = open(path, "rb").read()
    assert not provenance.read_credentials(data).present
    assert provenance.read_xmp_optout(data) == {}


def test_export_dialog_has_the_credentials_checkbox_on_by_default():
    dialog, checkbox = export_dialog.make_export_dialog()
    assert checkbox.text() == "Add 'not for AI training' credentials"
    assert checkbox.isChecked() and checkbox.parent() is dialog
    assert dialog.findChild(type(checkbox), "fixative_credentials") is checkbox
    note = dialog.findChild(export_dialog.QtWidgets.QLabel, "fixative_srgb_note")
    assert note is not None and "saved in sRGB" in note.text() and "converted" in note.text()
    dialog.deleteLater()


def test_an_engine_that_cannot_sign_still_saves_with_the_xmp(tmp_path, monkeypatch):
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    krita.Krita._instance = None
    app = krita.Krita.instance()
    fake = FakeEngine(tmp_path / "home" / "state", job_seconds=0.1).start()  # refuses to sign
    try:
        document, _ = make_document(app, layer_box=(0, 0, 40, 30))
        path = str(tmp_path / "out.jpg")
        job = fixative_krita.export_protected(document, path, {}, wait=False)
        job.wait(timeout=30)
    finally:
        fake.stop()
        krita.Krita._instance = None
    assert job.state == "done" and len(job.notes) == 1 and "without signed content credentials" in job.notes[0]
    data = open(path, "rb").read()
    assert provenance.xmp_opts_out(provenance.read_xmp_optout(data))
    assert not provenance.read_credentials(data).present


@pytest.mark.krita
@pytest.mark.skipif(shutil.which("kritarunner") is None, reason="needs real Krita")
def test_real_krita_export_protected_is_signed_by_the_real_engine(tmp_path, running_engine, fixative_home):
    """Real Krita (kritarunner) with the installed plug-in, real `fixative serve` signing."""
    from tests.test_krita_real import run_driver

    # PNG and JPEG: the system Qt here has no WebP writer (the fake-Krita tests cover WebP)
    verdict = run_driver(tmp_path, fixative_home, [], exports=["export.jpg", "export.png"])
    for name, media_type in (("export.jpg", "image/jpeg"), ("export.png", "image/png")):
        record = verdict["exports"][name]
        assert record["state"] == "done" and record["notes"] == [], record
        data = (verdict["out"] / name).read_bytes()
        found = provenance.read_credentials(data)
        assert found.opts_out and found.validation_state == "Valid", found.as_dict()
        assert found.failures == ["signingCredential.untrusted"] and found.signer == "Fixative user (self-signed)"
        assert provenance.xmp_opts_out(provenance.read_xmp_optout(data))
        with c2pa.Reader(media_type, io.BytesIO(data)) as reader:
            assert reader.get_validation_state() == "Valid"
