"""Conversion between what callers hand us (PIL images, numpy arrays of any depth) and float tensors.

The optimiser works on float32 in [0, 1] with 1 (grey) or 3 (RGB) channels. ``Pixels.restore``
turns the protected float image back into exactly the caller's type, dtype, shape and mode, with
the alpha channel copied bit for bit from the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fixative.errors import BadImage

MIN_SIDE = 16
"""Below this many pixels on a side the encoders' latents are too small for their statistics (the
result would be NaN), so protect() refuses such images with a clear error."""

_PIL_MODES = {"RGB": 3, "RGBA": 3, "L": 1, "LA": 1, "I;16": 1, "I;16B": 1, "I;16L": 1, "I": 1, "F": 1}


@dataclass
class Pixels:
    colour: np.ndarray
    """float32 (H, W, C) in [0, 1], C = 1 or 3 (values outside [0, 1] clipped)."""
    original: np.ndarray
    """The input as a numpy array, untouched."""
    alpha_index: int | None
    pil_mode: str | None
    scale: float
    """Integer full scale (255, 65535) or 1.0 for floats."""

    @property
    def height(self) -> int:
        return self.colour.shape[0]

    @property
    def width(self) -> int:
        return self.colour.shape[1]

    @property
    def channels(self) -> int:
        return self.colour.shape[2]

    @classmethod
    def from_input(cls, image: Any) -> Pixels:
        pil_mode = None
        if hasattr(image, "mode") and hasattr(image, "getbands"):  # a PIL image
            pil_mode = image.mode
            if pil_mode not in _PIL_MODES:
                raise BadImage(f"image mode {pil_mode} is not supported by protect(); convert it to RGB, "
                               "RGBA, L or LA first (fixative.imageio does this for files)")
            array = np.asarray(image)
            if pil_mode == "I":
                array = array.astype(np.uint16) if array.max(initial=0) <= 65535 else array
        elif isinstance(image, np.ndarray):
            array = image
        else:
            raise BadImage(f"protect() takes a PIL image or a numpy array, not {type(image).__name__}")
        if array.ndim == 2:
            array3 = array[..., None]
        elif array.ndim == 3 and array.shape[2] in (1, 2, 3, 4):
            array3 = array
        else:
            raise BadImage(f"expected an (H, W), (H, W, 1–4) image array, got shape {array.shape}")
        if array3.shape[0] < 1 or array3.shape[1] < 1:
            raise BadImage("the image is empty")
        if array.dtype == np.uint8:
            scale = 255.0
        elif array.dtype == np.uint16:
            scale = 65535.0
        elif array.dtype in (np.int32, np.int64) and pil_mode == "I":
            scale = 65535.0
        elif np.issubdtype(array.dtype, np.floating):
            scale = 1.0
        else:
            raise BadImage(f"unsupported pixel type {array.dtype}; use uint8, uint16 or float")
        n = array3.shape[2]
        colour_channels = 3 if n >= 3 else 1
        alpha_index = n - 1 if n in (2, 4) else None
        colour = array3[..., :colour_channels].astype(np.float32) / scale
        if not np.isfinite(colour).all():
            raise BadImage("the image contains NaN or infinite values")
        return cls(np.clip(colour, 0, 1), array, alpha_index, pil_mode, scale)

    def restore(self, protected: np.ndarray) -> Any:
        """Protected float colour (H, W, C) → the caller's type, alpha copied from the input."""
        original = self.original
        shaped = original if original.ndim == 3 else original[..., None]
        out = shaped.copy()
        c = self.channels
        if self.scale == 1.0:
            # floats: add the change to the original values so HDR highlights survive
            delta = protected - self.colour
            out[..., :c] = (shaped[..., :c].astype(np.float32) + delta).astype(original.dtype)
        else:
            values = np.clip(np.round(protected * self.scale), 0, self.scale)
            out[..., :c] = values.astype(original.dtype)
        if self.alpha_index is not None:
            out[..., self.alpha_index] = shaped[..., self.alpha_index]
        if original.ndim == 2:
            out = out[..., 0]
        if self.pil_mode is not None:
            from PIL import Image

            if self.pil_mode.startswith("I;16"):
                return Image.fromarray(out.astype(np.uint16), mode=self.pil_mode)
            return Image.fromarray(out, mode=self.pil_mode)
        return out

    def restored_float(self, protected: np.ndarray) -> np.ndarray:
        """What the saved pixels will read back as, in [0, 1] float (after integer rounding)."""
        if self.scale == 1.0:
            return protected.astype(np.float32)
        return (np.clip(np.round(protected * self.scale), 0, self.scale) / self.scale).astype(np.float32)
