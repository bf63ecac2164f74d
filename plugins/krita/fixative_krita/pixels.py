"""Krita pixelData <-> PNG samples, pure Python (Krita's interpreter has no numpy).

Krita stores integer RGBA as B,G,R,A in native (little-endian) order and float RGBA as R,G,B,A;
PNG wants R,G,B,A with big-endian 16-bit samples. Float layers travel as 16-bit PNG and come
back as a *difference* added to the original floats, so HDR values above 1.0 and the precision
of the original survive; alpha always comes from the original bytes, bit for bit. Layers Krita
converts to sRGB first (colour.py) come back through plugins/common/fixative_pixels.py instead.
"""

from __future__ import annotations

import struct
from bisect import bisect_left
from dataclasses import dataclass
from functools import partial
from operator import add, sub

DEPTHS = ("U8", "U16", "F16", "F32")
_FLOAT_FORMAT = {"F16": "e", "F32": "f"}
_SAMPLE_BYTES = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}


class PixelError(ValueError):
    """A layer this plugin cannot convert; the message says what the artist can do."""


@dataclass
class Encoded:
    """What goes to the engine: PNG samples (R,G,B,A; 16-bit big-endian)."""

    samples: bytes
    bit_depth: int


def bytes_per_pixel(depth: str) -> int:
    return 4 * _SAMPLE_BYTES[depth]


def sample_bytes(depth: str) -> int:
    return _SAMPLE_BYTES[depth]


def check_depth(depth: str) -> None:
    if depth not in DEPTHS:
        raise PixelError(f"Fixative cannot read {depth} layers; use 8- or 16-bit integer or 16/32-bit "
                         "float RGBA.")


def is_linear_profile(profile: str) -> bool:
    """Krita's linear-light profiles (e.g. 'sRGB-elle-V2-g10.icc') need the sRGB curve applied."""
    name = (profile or "").lower()
    return "g10" in name or "linear" in name or "scrgb" in name


def _srgb_encode(value: float) -> float:
    if value <= 0.0031308:
        return 12.92 * value
    return 1.055 * value ** (1 / 2.4) - 0.055


def _srgb_decode(value: float) -> float:
    if value <= 0.04045:
        return value / 12.92
    return ((value + 0.055) / 1.055) ** 2.4


def _swap_bgr(raw: bytes, sample_bytes: int) -> bytearray:
    """B,G,R,A <-> R,G,B,A for any sample width (byte order within a sample kept)."""
    out = bytearray(raw)
    stride = 4 * sample_bytes
    for offset in range(sample_bytes):
        out[offset::stride] = raw[2 * sample_bytes + offset::stride]
        out[2 * sample_bytes + offset::stride] = raw[offset::stride]
    return out


def _swap_sample_endianness16(raw: bytes | bytearray) -> bytearray:
    out = bytearray(raw)
    out[0::2] = raw[1::2]
    out[1::2] = raw[0::2]
    return out


CHUNK_SAMPLES = 1 << 16  # floats are converted a slice at a time: memory stays flat
_TABLES: dict = {}


def _tables(linear: bool) -> tuple[list, list]:
    """(bounds, values) for 16-bit samples: ``bounds[i]`` is the float halfway between sample i and
    i+1 (so ``bisect_left(bounds, v)`` rounds v to its nearest sample, clamping to 0..65535, NaN to 0),
    ``values[i]`` is the float that sample i stands for (sRGB-decoded for linear layers)."""
    if linear not in _TABLES:
        values = [_srgb_decode(i / 65535.0) if linear else i / 65535.0 for i in range(65536)]
        bounds = [_srgb_decode((i + 0.5) / 65535.0) if linear else (i + 0.5) / 65535.0
                  for i in range(65535)]
        _TABLES[linear] = (bounds, values)
    return _TABLES[linear]


def floats_to_u16(raw: bytes, depth: str, linear: bool = False) -> bytes:
    """Float RGBA samples (little-endian) -> big-endian 16-bit, colour sRGB-encoded when ``linear``.

    One C-level bisect per sample over a 64k table, a slice at a time: no per-sample Python
    code and no list of every sample (a 4096² F32 layer is 67 million samples)."""
    colour_bounds, _values = _tables(linear)
    alpha_bounds, _values = _tables(False)  # alpha is not colour: never sRGB-encoded
    size = _SAMPLE_BYTES[depth]
    count = len(raw) // size
    find_colour, find_alpha = partial(bisect_left, colour_bounds), partial(bisect_left, alpha_bounds)
    out = bytearray(count * 2)
    view = memoryview(raw)
    for first in range(0, count, CHUNK_SAMPLES):  # CHUNK_SAMPLES is whole pixels
        n = min(CHUNK_SAMPLES, count - first)
        values = struct.unpack_from(f"<{n}{_FLOAT_FORMAT[depth]}", view, first * size)
        struct.pack_into(f">{n}H", out, first * 2, *map(find_colour, values))
        alpha = struct.pack(f">{n // 4}H", *map(find_alpha, values[3::4]))
        start, end = first * 2, (first + n) * 2
        out[start + 6:end:8], out[start + 7:end:8] = alpha[0::2], alpha[1::2]
    return bytes(out)


def add_float_difference(original: bytes, before: bytes, after: bytes, depth: str,
                         linear: bool = False) -> bytes:
    """``original`` floats plus what the engine changed (``after`` - ``before``, big-endian 16-bit,
    sRGB-decoded when ``linear``); alpha bytes stay those of ``original``. A slice at a time."""
    _bounds, values = _tables(linear)
    size = _SAMPLE_BYTES[depth]
    count = len(original) // size
    code = _FLOAT_FORMAT[depth]
    out = bytearray(len(original))
    view = memoryview(original)
    value_of = values.__getitem__
    for first in range(0, count, CHUNK_SAMPLES):
        n = min(CHUNK_SAMPLES, count - first)
        old = struct.unpack_from(f"<{n}{code}", view, first * size)
        was = struct.unpack_from(f">{n}H", before, first * 2)
        now = struct.unpack_from(f">{n}H", after, first * 2)
        changed = map(sub, map(value_of, now), map(value_of, was))
        struct.pack_into(f"<{n}{code}", out, first * size, *map(add, old, changed))
    stride = 4 * size
    for offset in range(size):
        out[3 * size + offset::stride] = original[3 * size + offset::stride]
    return bytes(out)


def krita_to_png(raw: bytes, depth: str, linear: bool = False) -> Encoded:
    """Krita RGBA pixelData -> PNG samples (8-bit for U8, 16-bit otherwise)."""
    check_depth(depth)
    raw = bytes(raw)
    if len(raw) % bytes_per_pixel(depth):
        raise PixelError(f"Layer data has {len(raw)} bytes, not whole {depth} RGBA pixels.")
    if depth == "U8":
        return Encoded(bytes(_swap_bgr(raw, 1)), 8)
    if depth == "U16":
        return Encoded(bytes(_swap_sample_endianness16(_swap_bgr(raw, 2))), 16)
    return Encoded(floats_to_u16(raw, depth, linear), 16)


def png_to_krita(result: bytes, sent: Encoded, original: bytes, depth: str,
                 linear: bool = False) -> bytes:
    """The engine's PNG samples -> Krita pixelData in the original layout, alpha from ``original``."""
    check_depth(depth)
    original = bytes(original)
    if len(result) != len(sent.samples):
        raise PixelError(f"The engine returned {len(result)} bytes of pixels, expected "
                         f"{len(sent.samples)}.")
    if depth in ("U8", "U16"):
        sample_bytes = _SAMPLE_BYTES[depth]
        native = result if depth == "U8" else bytes(_swap_sample_endianness16(result))
        out = _swap_bgr(native, sample_bytes)
        stride = 4 * sample_bytes
        for offset in range(sample_bytes):  # alpha bit for bit from the source layer
            out[3 * sample_bytes + offset::stride] = original[3 * sample_bytes + offset::stride]
        return bytes(out)
    return add_float_difference(original, sent.samples, bytes(result), depth, linear)
