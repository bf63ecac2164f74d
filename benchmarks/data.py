"""Inputs shared by every benchmark: where ../shared is, the paintings, and the purifications."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FIXATIVE_SHARED", REPO.parent / "shared"))
ART = SHARED / "art"
MODELS = SHARED / "models" / "taesd"

Purify = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def configure_environment() -> None:
    """Load models offline from ../shared so a benchmark never downloads anything."""
    os.environ.setdefault("FIXATIVE_MODEL_DIR", str(MODELS))
    os.environ.setdefault("FIXATIVE_OFFLINE", "1")
    # the repo root on sys.path lets ``python benchmarks/gpu.py`` import the package too
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    weights = Path(os.environ["FIXATIVE_MODEL_DIR"].split(os.pathsep)[0]) / "taef2_encoder.pth"
    if not weights.is_file():
        raise SystemExit(f"benchmarks need the TAEF2 encoder at {weights}; set FIXATIVE_MODEL_DIR "
                         "or FIXATIVE_SHARED to the folder that holds models/taesd")


def load_painting(name: str, side: int) -> np.ndarray:
    """A centred square of the painting, scaled so its short side is ``side``: uint8 (side, side, 3)."""
    from PIL import Image

    path = ART / name
    if not path.is_file():
        raise SystemExit(f"painting {path} is missing; benchmarks need ../shared/art beside the checkout")
    with Image.open(path) as im:
        im = im.convert("RGB")
        scale = side / min(im.size)
        size = (max(side, round(im.width * scale)), max(side, round(im.height * scale)))
        im = im.resize(size, Image.Resampling.LANCZOS)
        left, top = (im.width - side) // 2, (im.height - side) // 2
        return np.asarray(im.crop((left, top, left + side, top + side))).copy()


def _resize_float(image: np.ndarray, height: int, width: int, mode: str) -> np.ndarray:
    import torch
    import torch.nn.functional as F

    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=(height, width), mode=mode, antialias=mode != "nearest",
                        align_corners=False if mode != "nearest" else None)
    return np.clip(out[0].permute(1, 2, 0).numpy(), 0, 1)


def down_up(factor: float) -> Purify:
    """Downscale by ``factor`` (antialiased) and back up (bicubic): the "downscaling" bypass."""

    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = image.shape[:2]
        small = _resize_float(image, max(8, round(h * factor)), max(8, round(w * factor)), "bilinear")
        return _resize_float(small, h, w, "bicubic")

    return run


def noise_resample(sigma: float, factor: float = 0.5) -> Purify:
    """Gaussian noise, then down- and up-sampling: a cheap stand-in for "noisy upscaling"."""
    resample = down_up(factor)

    def run(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        noisy = np.clip(image + rng.normal(0, sigma, image.shape).astype(np.float32), 0, 1)
        return resample(noisy, rng)

    return run


def purifications(names: list[str]) -> dict[str, Purify]:
    """The named purifications (real codecs and resamplers, not the optimiser's stand-ins), plus 'clean'."""
    from fixative.evaluate import PURIFICATIONS

    known: dict[str, Purify] = {
        "clean": PURIFICATIONS["clean"],
        "jpeg75": PURIFICATIONS["jpeg75"],
        "jpeg90": PURIFICATIONS["jpeg90"],
        "resize0.5": down_up(0.5),
        "noise0.05+resample": noise_resample(0.05),
        "blur1": PURIFICATIONS["blur1"],
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown purification(s) {unknown}; known: {', '.join(known)}")
    return {"clean": known["clean"], **{n: known[n] for n in names if n != "clean"}}


ALL_PURIFICATIONS = ["jpeg75", "jpeg90", "resize0.5", "noise0.05+resample", "blur1"]
