"""Image bytes for engine tests: real PNGs, and crafted ones (lying headers, truncated data)."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np


def png_bytes(array: np.ndarray) -> bytes:
    """8-bit RGB/RGBA/L array → PNG bytes (PIL)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def decode(data: bytes) -> np.ndarray:
    """PNG/TIFF bytes → array as stored (uint16 stays uint16), via the engine's own reader."""
    from fixative.imageio import load_image

    return np.asarray(load_image(data).array)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_claiming(width: int, height: int) -> bytes:
    """A valid PNG header claiming width×height RGB pixels, followed by far too little data.

    Decoding it fails, so a 413 (not a 400) proves the size was judged from the header alone.
    """
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def truncated_png(array: np.ndarray) -> bytes:
    """A real PNG cut in the middle of its pixel data: the header reads fine, decoding fails."""
    data = png_bytes(array)
    return data[: len(data) // 2]


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)
