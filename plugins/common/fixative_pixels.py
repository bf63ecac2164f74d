"""The engine's change put back into a layer's own pixels, for the GIMP 3 plug-in and Krita.

The engine works on sRGB samples (8- or 16-bit). A layer in another encoding (linear light, a
wide-gamut profile, float HDR, 32-bit integer) is converted to sRGB by the editor for the engine,
and what comes back is converted into the layer's own encoding by the editor too. Rather than
keeping the converted result, the plug-ins keep the *difference* the engine made, each side
converted back the same way: ``original + (after - before)``. So a pixel the engine left alone
is bit-identical, however lossy the round trip through sRGB would be, and float values outside
0..1 (HDR highlights, colours outside the sRGB gamut, which the 16-bit exchange clips) survive
with the engine's change added.

Standard library only, no per-sample Python objects kept (a slice at a time). Written in the
Python 2.7-compatible style of the rest of plugins/common, but only Python 3 editors use it
(half floats need Python 3.6's struct).
"""

import struct
from operator import add, sub

# Sample types by the names the plug-ins use (Krita's colour depths; GIMP's babl types map onto
# them), as struct codes in the machine's own byte order, which is how both editors hand out pixels.
SAMPLE_CODES = {"U8": "B", "U16": "H", "U32": "I", "F16": "e", "F32": "f", "F64": "d"}
CHUNK_SAMPLES = 1 << 16
_FLOAT_LIMITS = {"F16": 65504.0, "F32": 3.4028234663852886e38}
_INFINITY = float("inf")


class PixelError(ValueError):
    """Pixels this module cannot combine; the message says what is wrong."""


def sample_bytes(depth):
    """Bytes in one sample of ``depth`` (one of SAMPLE_CODES)."""
    if depth not in SAMPLE_CODES:
        raise PixelError("Unknown sample type %r; expected one of %s."
                         % (depth, ", ".join(sorted(SAMPLE_CODES))))
    return struct.calcsize("=" + SAMPLE_CODES[depth])


def _fit_float(value, limit):
    """A finite float too large for the sample type becomes the largest one; inf/NaN stay."""
    if value != value or value in (_INFINITY, -_INFINITY) or -limit <= value <= limit:
        return value
    return limit if value > 0 else -limit


def add_difference(original, before, after, depth, channels, alpha=True):
    """``original`` + (``after`` - ``before``), sample by sample (any colour model, the editor's
    native byte order); integer samples are clamped to their range. With ``alpha`` the last of the
    ``channels`` is alpha and is copied from ``original`` bit for bit.

    ``before`` and ``after`` are what was sent to the engine and what came back, both converted
    into ``original``'s encoding by the editor: the conversion is deterministic, so wherever the
    engine changed nothing they are equal and the original sample is kept exactly."""
    size = sample_bytes(depth)
    code = SAMPLE_CODES[depth]
    pixel = size * channels
    if len(original) % pixel or not len(before) == len(after) == len(original):
        raise PixelError("Cannot combine %d, %d and %d bytes as whole %d-channel %s pixels."
                         % (len(original), len(before), len(after), channels, depth))
    integer = depth.startswith("U")
    top = (1 << (8 * size)) - 1
    out = bytearray(original)
    view_before, view_after = memoryview(before), memoryview(after)
    count = len(original) // size
    for first in range(0, count, CHUNK_SAMPLES):
        n = min(CHUNK_SAMPLES, count - first)
        start, end = first * size, (first + n) * size
        if view_before[start:end] == view_after[start:end]:
            continue  # nothing changed here: the original's bytes as they are
        layout = "=%d%s" % (n, code)
        old, was, now = (struct.unpack_from(layout, data, start)
                         for data in (original, before, after))
        changed = list(map(add, old, map(sub, now, was)))
        if integer and (min(changed) < 0 or max(changed) > top):
            changed = [0 if value < 0 else top if value > top else value for value in changed]
        try:
            struct.pack_into(layout, out, start, *changed)
        except (OverflowError, struct.error):  # a float beyond the type's range (half: 65504)
            limit = _FLOAT_LIMITS.get(depth, _INFINITY)
            struct.pack_into(layout, out, start, *[_fit_float(value, limit) for value in changed])
    if alpha:
        stride, first_alpha = pixel, (channels - 1) * size
        for offset in range(size):
            out[first_alpha + offset::stride] = original[first_alpha + offset::stride]
    return bytes(out)
