"""Checks shared by the GIMP 3 and GIMP 2.10 plug-in tests."""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest


def check_within_budget(original: np.ndarray, protected: np.ndarray, has_alpha: bool,
                        full_scale: int, intensity: str) -> None:
    """Colour changed in enough pixels but never beyond the engine's budget; alpha exact."""
    from fixative.budget import BUDGETS

    original, protected = original.astype(np.int64), protected.astype(np.int64)
    assert original.shape == protected.shape, (original.shape, protected.shape)
    colour = original.shape[2] - (1 if has_alpha else 0)
    if has_alpha:
        np.testing.assert_array_equal(protected[..., colour:], original[..., colour:],
                                      err_msg="alpha must be copied bit for bit")
    delta = np.abs(protected[..., :colour] - original[..., :colour])
    allowed = BUDGETS[intensity].eps * full_scale + full_scale / 255  # + one 8-bit rounding step
    assert delta.max() <= allowed, f"max change {delta.max()} > budget {allowed:.1f} of {full_scale}"
    assert (delta > 0).mean() > 0.05, "the protection changed almost no pixels"


@contextlib.contextmanager
def engine_in(home: Path):
    """A real `fixative serve` in ``home`` for a whole test module, with FIXATIVE_HOME set to it."""
    from tests.conftest import MODELS
    from tests.helpers.engine import start_engine

    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")
    home.mkdir(parents=True, exist_ok=True)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("FIXATIVE_HOME", str(home))
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(MODELS))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    engine = start_engine(home)
    try:
        yield engine
    finally:
        engine.stop()
        monkeypatch.undo()


def check_exported_optout(data: bytes, media_type: str, signed: bool) -> None:
    """An exported file says "not for AI training": the XMP field always; when ``signed``, C2PA
    credentials that c2pa.Reader validates (self-signed engine identity) with every AI use
    ``notAllowed``, and none at all when not."""
    import io

    from fixative import provenance

    assert provenance.xmp_opts_out(provenance.read_xmp_optout(data)), "no opt-out XMP in the file"
    if not signed:
        assert not provenance.read_credentials(data).present, "credentials that were not asked for"
        return
    import c2pa

    with c2pa.Reader(media_type, io.BytesIO(data)) as reader:
        assert reader.get_validation_state() == "Valid"
        failures = [item["code"] for item in
                    reader.get_validation_results()["activeManifest"]["failure"]]
        assert failures == ["signingCredential.untrusted"], failures
        manifest = reader.get_active_manifest()
    entries = next(item["data"]["entries"] for item in manifest["assertions"]
                   if item["label"] == "cawg.training-mining")
    assert {use: entry["use"] for use, entry in entries.items()} == dict.fromkeys(
        provenance.USES, "notAllowed")
