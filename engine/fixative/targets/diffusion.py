"""Targets rendered by a diffusers pipeline, when the user configures one (``options.pipeline``).

- style mode: img2img of the artwork toward the target style (Glaze's target recipe);
- poison mode: text-to-image of the target concept (Nightshade's anchor recipe).
Pipelines are loaded once per process and reused.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np
import torch

from fixative.errors import MissingWeights
from fixative.models.weights import offline

_LOADED: OrderedDict[tuple[str, str], dict[str, object]] = OrderedDict()
"""(source, device) → {kind: pipeline}; the kinds of one source share their weights (``from_pipe``)."""
_MAX_SOURCES = 2
_LOCK = threading.Lock()  # server jobs run in threads: load each pipeline once, not once per job


def _pipeline(source: str, kind: str, device: str):  # noqa: ANN202 - diffusers type
    """The ``kind`` ("img2img" or "text2image") pipeline of ``source``, loaded once per process.
    Mode "both" needs both kinds: the second is built from the first, so an SDXL-sized model is
    held in memory once, not twice."""
    try:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
    except ImportError as exc:
        raise MissingWeights("diffusers is not installed: pip install 'fixative[diffusers]'") from exc
    loader = AutoPipelineForImage2Image if kind == "img2img" else AutoPipelineForText2Image
    with _LOCK:
        return _cached_pipeline(loader, source, kind, device)


def _cached_pipeline(loader, source: str, kind: str, device: str):  # noqa: ANN001, ANN202
    key = (source, device)
    family = _LOADED.get(key)
    if family is not None:
        _LOADED.move_to_end(key)
        if kind not in family:
            derived = loader.from_pipe(next(iter(family.values())))
            derived.set_progress_bar_config(disable=True)
            family[kind] = derived
        return family[kind]
    try:
        pipe = loader.from_pretrained(source, local_files_only=offline(), safety_checker=None)
    except (OSError, ValueError, TypeError) as exc:
        raise MissingWeights(f"could not load the diffusers pipeline '{source}': {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    pipe = pipe.to(device)
    _LOADED[key] = {kind: pipe}
    while len(_LOADED) > _MAX_SOURCES:
        _LOADED.popitem(last=False)
    return pipe


def native_area(pipe) -> int:  # noqa: ANN001 - diffusers type
    """Pixel area the pipeline was trained at (SD 1.x 512², SDXL/FLUX 1024²): rendering far from it
    gives poor targets, so renders follow the pipeline rather than one fixed size."""
    sample = getattr(pipe, "default_sample_size", None)
    if sample is None:
        denoiser = getattr(pipe, "unet", None) or getattr(pipe, "transformer", None)
        sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    factor = getattr(pipe, "vae_scale_factor", None) or 8
    if isinstance(sample, (list, tuple)):
        return int(sample[0]) * int(sample[-1]) * factor * factor
    return int(sample) ** 2 * factor * factor if isinstance(sample, int) and sample > 0 else 512 * 512


def _size(height: int, width: int, area: int = 512 * 512, multiple: int = 64) -> tuple[int, int]:
    scale = (area / (height * width)) ** 0.5
    return (max(multiple, round(height * scale / multiple) * multiple),
            max(multiple, round(width * scale / multiple) * multiple))


def img2img_target(source: str, artwork: np.ndarray, style: str, seed: int, device: str = "cpu",
                   steps: int = 20, strength: float = 0.6, area: int | None = None) -> np.ndarray:
    """The artwork re-rendered in ``style`` (float RGB in [0, 1]); ``area`` defaults to the pipeline's
    native resolution."""
    from PIL import Image

    pipe = _pipeline(source, "img2img", device)
    h, w = _size(artwork.shape[0], artwork.shape[1], area or native_area(pipe))
    init = Image.fromarray((np.clip(artwork[..., :3], 0, 1) * 255).astype(np.uint8)).resize((w, h))
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt=f"an artwork in the style of {style.replace('-', ' ')}", image=init,
               strength=strength, num_inference_steps=steps, generator=generator, output_type="np")
    return np.asarray(out.images[0], dtype=np.float32)


def text2image_anchor(source: str, concept: str, seed: int, height: int, width: int, device: str = "cpu",
                      steps: int = 20, area: int | None = None) -> np.ndarray:
    """An image of ``concept`` (float RGB in [0, 1]) at about the artwork's aspect ratio and the
    pipeline's native resolution unless ``area`` is given."""
    pipe = _pipeline(source, "text2image", device)
    h, w = _size(height, width, area or native_area(pipe))
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt=f"a photo of {concept}", height=h, width=w, num_inference_steps=steps,
               generator=generator, output_type="np")
    return np.asarray(out.images[0], dtype=np.float32)
