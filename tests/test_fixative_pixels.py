"""plugins/common/fixative_pixels.py: the engine's change added to a layer's own samples.

GIMP 3 and Krita use it for layers that travel through sRGB (linear, float, wide-gamut): pixels
the engine left alone must stay bit-identical and float values outside 0..1 must survive.
"""

from __future__ import annotations

import math
import struct
import sys

import numpy as np
import pytest

from tests.conftest import REPO

sys.path.insert(0, str(REPO / "plugins" / "common"))
import fixative_pixels  # noqa: E402
from fixative_pixels import add_difference  # noqa: E402


def pack(code: str, values: list) -> bytes:
    return struct.pack(f"={len(values)}{code}", *values)


def unpack(code: str, data: bytes) -> tuple:
    return struct.unpack(f"={len(data) // struct.calcsize(code)}{code}", data)


def test_integers_add_the_change_clamp_and_keep_alpha():
    original = pack("B", [10, 250, 3, 77, 0, 0, 0, 9])
    before = pack("B", [20, 20, 20, 200, 5, 5, 5, 5])
    after = pack("B", [25, 30, 10, 1, 5, 5, 5, 250])
    # +5, +10 (clamped at 255), -10 (clamped at 0), alpha kept; second pixel unchanged.
    assert unpack("B", add_difference(original, before, after, "U8", 4)) == (
        15, 255, 0, 77, 0, 0, 0, 9)


def test_without_alpha_the_last_channel_is_colour():
    original = pack("H", [1000, 2000, 3000])
    before = pack("H", [500, 500, 500])
    after = pack("H", [600, 400, 1500])
    assert unpack("H", add_difference(original, before, after, "U16", 3, alpha=False)) == (
        1100, 1900, 4000)


def test_float_hdr_values_keep_their_value_plus_the_change():
    """The engine saw 1.0 (clipped) and made it 0.9: 3.0 becomes 2.9, -0.2 stays below zero."""
    original = pack("f", [3.0, -0.2, 0.5, 0.25])
    before = pack("f", [1.0, 0.0, 0.5, 0.0])
    after = pack("f", [0.9, 0.1, 0.5, 0.75])
    red, green, blue, alpha = unpack("f", add_difference(original, before, after, "F32", 4))
    assert red == pytest.approx(2.9, abs=1e-6) and green == pytest.approx(-0.1, abs=1e-6)
    assert blue == 0.5 and alpha == 0.25


def test_unchanged_samples_are_bit_identical_even_special_floats():
    """Whole slices the engine left alone are copied byte for byte (-0.0, NaN payloads, inf)."""
    special = [-0.0, float("nan"), float("inf"), 7.5] * (fixative_pixels.CHUNK_SAMPLES // 4)
    original = pack("f", special)
    rng = np.random.default_rng(3)
    sent = rng.random(len(special), dtype=np.float32).tobytes()
    assert add_difference(original, sent, sent, "F32", 4) == original


def test_a_changed_slice_does_not_disturb_an_unchanged_one():
    count = fixative_pixels.CHUNK_SAMPLES * 2 + 8  # three slices, the last one short
    rng = np.random.default_rng(4)
    original = rng.integers(0, 65536, count, dtype=np.uint16)
    before = rng.integers(1000, 60000, count, dtype=np.uint16)
    after = before.copy()
    after[-8:] += 7  # only the last slice changes (the last pixel's alpha included)
    out = np.frombuffer(add_difference(original.tobytes(), before.tobytes(), after.tobytes(),
                                       "U16", 4), np.uint16)
    np.testing.assert_array_equal(out[:-8], original[:-8])
    expected = np.clip(original[-8:].astype(np.int64) + 7, 0, 65535)
    expected[3::4] = original[-8:][3::4]  # alpha from the original
    np.testing.assert_array_equal(out[-8:], expected)


@pytest.mark.parametrize(("depth", "code", "dtype"), [
    ("U32", "I", np.uint32), ("F16", "e", np.float16), ("F64", "d", np.float64)])
def test_every_sample_type(depth, code, dtype):
    original = np.array([5, 6, 7, 1], dtype)
    before, after = np.array([1, 1, 1, 1], dtype), np.array([2, 0, 1, 0], dtype)
    out = np.frombuffer(add_difference(original.tobytes(), before.tobytes(), after.tobytes(),
                                       depth, 4), dtype)
    np.testing.assert_array_equal(out, np.array([6, 5, 7, 1], dtype))
    assert fixative_pixels.sample_bytes(depth) == struct.calcsize(code)


def test_half_float_overflow_is_held_at_the_largest_half():
    original = pack("e", [65000.0, float("inf"), 1.0])
    before = pack("e", [0.0, 0.0, 0.0])
    after = pack("e", [1000.0, 1.0, 0.0])
    out = unpack("e", add_difference(original, before, after, "F16", 3, alpha=False))
    assert out[0] == 65504.0 and math.isinf(out[1]) and out[2] == 1.0


def test_mismatched_buffers_are_refused():
    with pytest.raises(fixative_pixels.PixelError, match="whole 4-channel U8"):
        add_difference(b"\0" * 8, b"\0" * 8, b"\0" * 4, "U8", 4)
    with pytest.raises(fixative_pixels.PixelError, match="whole 4-channel U16"):
        add_difference(b"\0" * 6, b"\0" * 6, b"\0" * 6, "U16", 4)
    with pytest.raises(fixative_pixels.PixelError, match="Unknown sample type"):
        add_difference(b"", b"", b"", "S8", 1)
