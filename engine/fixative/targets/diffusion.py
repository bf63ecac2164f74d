"""Targets rendered by a diffusers pipeline, when the user configures one (``options.pipeline``).

- style mode: img2img of the artwork toward the target style (Glaze's target recipe);
- poison mode: text-to-image of the target concept (Nightshade's anchor recipe).
Pipelines are loaded once per process and reused.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from fixative.errors import MissingWeights
from fixative.models.weights import offline


@functools.lru_cache(maxsize=2)
def _pipeline(source: str, kind: str, device: str):
    try:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image
    except ImportError as exc:
        raise MissingWeights("diffusers is not installed: pip install 'fixative[diffusers]'") from exc
    loader = AutoPipelineForImage2Image if kind == "img2img" else AutoPipelineForText2Image
    try:
        pipe = loader.from_pretrained(source, local_files_only=offline(), safety_checker=None)
    except (OSError, ValueError, TypeError) as exc:
        raise MissingWeights(f"could not load the diffusers pipeline '{source}': {exc}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe.to(device)


def _size(height: int, width: int, area: int = 512 * 512, multiple: int = 64) -> tuple[int, int]:
    scale = (area / (height * width)) ** 0.5
    return (max(multiple, round(height * scale / multiple) * multiple),
            max(multiple, round(width * scale / multiple) * multiple))


def img2img_target(source: str, artwork: np.ndarray, style: str, seed: int, device: str = "cpu",
                   steps: int = 20, strength: float = 0.6, area: int = 512 * 512) -> np.ndarray:
    """The artwork re-rendered in ``style`` (float RGB in [0, 1])."""
    from PIL import Image

    pipe = _pipeline(source, "img2img", device)
    h, w = _size(artwork.shape[0], artwork.shape[1], area)
    init = Image.fromarray((np.clip(artwork[..., :3], 0, 1) * 255).astype(np.uint8)).resize((w, h))
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt=f"an artwork in the style of {style.replace('-', ' ')}", image=init,
               strength=strength, num_inference_steps=steps, generator=generator, output_type="np")
    return np.asarray(out.images[0], dtype=np.float32)


def text2image_anchor(source: str, concept: str, seed: int, height: int, width: int, device: str = "cpu",
                      steps: int = 20, area: int = 512 * 512) -> np.ndarray:
    """An image of ``concept`` (float RGB in [0, 1]) at about the artwork's aspect ratio."""
    pipe = _pipeline(source, "text2image", device)
    h, w = _size(height, width, area)
    generator = torch.Generator("cpu").manual_seed(seed)
    out = pipe(prompt=f"a photo of {concept}", height=h, width=w, num_inference_steps=steps,
               generator=generator, output_type="np")
    return np.asarray(out.images[0], dtype=np.float32)
