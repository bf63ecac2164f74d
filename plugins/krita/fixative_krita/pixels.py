"""Krita pixelData <-> PNG samples, pure Python (Krita's interpreter has no numpy).

Krita stores integer RGBA as B,G,R,A in native (little-endian) order and float RGBA as R,G,B,A;
PNG wants R,G,B,A with big-endian 16-bit samples. Float layers travel as 16-bit PNG and come
back as a *difference* added to the original floats, so HDR values above 1.0 and the precision
of the original survive; alpha always comes from the original bytes, bit for bit.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

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


def _unpack_floats(raw: bytes, depth: str) -> tuple[float, ...]:
    count = len(raw) // _SAMPLE_BYTES[depth]
    return struct.unpack(f"<{count}{_FLOAT_FORMAT[depth]}", raw)


def _to_u16(value: float) -> int:
    if value != value:  # NaN
        return 0
    return 0 if value <= 0.0 else 65535 if value >= 1.0 else int(value * 65535.0 + 0.5)


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
    values = _unpack_floats(raw, depth)
    samples = []
    for index, value in enumerate(values):
        if linear and index % 4 != 3:
            value = _srgb_encode(min(max(value, 0.0), 1.0))
        samples.append(_to_u16(value))
    return Encoded(struct.pack(f">{len(samples)}H", *samples), 16)


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
    count = len(sent.samples) // 2
    before = struct.unpack(f">{count}H", sent.samples)
    after = struct.unpack(f">{count}H", bytes(result))
    values = list(_unpack_floats(original, depth))
    for index in range(count):
        if index % 4 == 3 or before[index] == after[index]:
            continue
        delta = (after[index] - before[index]) / 65535.0
        if linear:  # the engine worked on sRGB-encoded values: apply its change there
            encoded_before = _srgb_encode(min(max(values[index], 0.0), 1.0))
            encoded_after = min(max(encoded_before + delta, 0.0), 1.0)
            values[index] += _srgb_decode(encoded_after) - _srgb_decode(encoded_before)
        else:
            values[index] += delta
    packed = struct.pack(f"<{len(values)}{_FLOAT_FORMAT[depth]}", *values)
    out = bytearray(packed)
    sample_bytes = _SAMPLE_BYTES[depth]
    stride = 4 * sample_bytes
    for offset in range(sample_bytes):
        out[3 * sample_bytes + offset::stride] = original[3 * sample_bytes + offset::stride]
    return bytes(out)
