"""Shared test fixtures: where ../shared is, an isolated FIXATIVE_HOME, small real paintings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FIXATIVE_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models" / "taesd"
ART = SHARED / "art"

os.environ.setdefault("FIXATIVE_OFFLINE", "1")


def painting(name: str = "starry_night_van_gogh_1889.jpg", size: int | tuple[int, int] = 128,
             box: tuple[float, float] = (0.3, 0.3)) -> np.ndarray:
    """A crop of a real public-domain painting from ../shared/art as uint8 RGB (H, W, 3)."""
    from PIL import Image

    path = ART / name
    if not path.exists():
        pytest.skip(f"{path} is missing: ../shared/art must sit beside the checkout")
    w, h = (size, size) if isinstance(size, int) else size
    with Image.open(path) as im:
        im = im.convert("RGB")
        left = int((im.width - w) * box[0]) if im.width > w else 0
        top = int((im.height - h) * box[1]) if im.height > h else 0
        crop = im.crop((left, top, left + w, top + h))
        if crop.size != (w, h):
            crop = crop.resize((w, h))
        return np.asarray(crop).copy()


@pytest.fixture
def fixative_home(tmp_path, monkeypatch) -> Path:
    """An isolated FIXATIVE_HOME whose models come from ../shared/models/taesd."""
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")
    home = tmp_path / "fixative-home"
    home.mkdir()
    monkeypatch.setenv("FIXATIVE_HOME", str(home))
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(MODELS))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    return home


@pytest.fixture
def running_engine(fixative_home):
    """A real `fixative serve` process on a free loopback port (see tests/helpers/engine.py)."""
    from tests.helpers.engine import start_engine

    engine = start_engine(fixative_home)
    try:
        yield engine
    finally:
        engine.stop()


@pytest.fixture(autouse=True)
def _no_leaked_report_switch():
    """The benchmarks' main() turns protect()'s AI's-eye report off for its whole process; a test that
    calls it must not leave it off for the tests after it (they check that report)."""
    before = os.environ.get("FIXATIVE_MIMIC_REPORT")
    yield
    after = os.environ.get("FIXATIVE_MIMIC_REPORT")
    if after != before:
        if before is None:
            os.environ.pop("FIXATIVE_MIMIC_REPORT", None)
        else:
            os.environ["FIXATIVE_MIMIC_REPORT"] = before
        pytest.fail(f"FIXATIVE_MIMIC_REPORT leaked from this test: {before!r} -> {after!r}")
