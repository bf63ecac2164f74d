"""PNG encode/decode with the standard library only (8 and 16 bit, gray/GA/RGB/RGBA).

Editors' Python has no Pillow or numpy (GIMP 2.10 is Python 2.7), yet the plugins must send the
engine lossless 16-bit pixels and read its answer back, so this does just that much of PNG.
"""

from __future__ import absolute_import, division, print_function, unicode_literals

import struct
import zlib

__all__ = ["PngError", "encode_png", "decode_png", "SIGNATURE"]

SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = dict((value, key) for key, value in _COLOR_TYPES.items())


class PngError(ValueError):
    """The data is not a PNG this module can read (the message says why)."""


def _chunk(kind, payload):
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def itxt_chunk(keyword, text):
    """An uncompressed iTXt chunk (UTF-8 text), e.g. XMP under keyword 'XML:com.adobe.xmp'."""
    payload = (keyword.encode("latin-1") + b"\x00\x00\x00" + b"\x00" + b"\x00"
               + text.encode("utf-8"))
    return _chunk(b"iTXt", payload)


def srgb_chunk(intent=0):
    """The sRGB chunk: the samples are sRGB (``intent`` 0: perceptual), so viewers need not guess."""
    return _chunk(b"sRGB", struct.pack(">B", intent))


def encode_png(width, height, channels, bit_depth, data, compress_level=6, extra_chunks=None):
    """PNG bytes from raw samples.

    ``data`` is row-major, interleaved, ``channels`` 1..4 (G, GA, RGB, RGBA), 16-bit samples
    big-endian as PNG stores them. ``extra_chunks`` are ready-made chunks (see ``itxt_chunk``)
    written before the image data.
    """
    if channels not in _COLOR_TYPES:
        raise PngError("PNG needs 1 to 4 channels, not %r." % (channels,))
    if bit_depth not in (8, 16):
        raise PngError("Only 8- and 16-bit PNG is supported, not %r-bit." % (bit_depth,))
    if width <= 0 or height <= 0:
        raise PngError("Image size must be positive, not %dx%d." % (width, height))
    data = bytes(data)
    stride = width * channels * bit_depth // 8
    if len(data) != stride * height:
        raise PngError("Expected %d bytes for %dx%d with %d channels at %d bits, got %d."
                       % (stride * height, width, height, channels, bit_depth, len(data)))
    # Filter type 0 on every row: plain and quick in pure Python; zlib does the rest.
    raw = b"".join(b"\x00" + data[row * stride:(row + 1) * stride] for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, bit_depth, _COLOR_TYPES[channels], 0, 0, 0)
    return b"".join([SIGNATURE, _chunk(b"IHDR", header)] + list(extra_chunks or [])
                    + [_chunk(b"IDAT", zlib.compress(raw, compress_level)), _chunk(b"IEND", b"")])


def _paeth_row(line, previous, bpp):
    for i in range(len(line)):
        a = line[i - bpp] if i >= bpp else 0
        b = previous[i]
        c = previous[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        if pa <= pb and pa <= pc:
            predictor = a
        elif pb <= pc:
            predictor = b
        else:
            predictor = c
        line[i] = (line[i] + predictor) & 0xFF


def _unfilter(raw, height, stride, bpp):
    out = bytearray(stride * height)
    previous = bytearray(stride)
    position = 0
    for row in range(height):
        if position + 1 + stride > len(raw):
            raise PngError("PNG image data is truncated.")
        kind = bytearray(raw[position:position + 1])[0]
        line = bytearray(raw[position + 1:position + 1 + stride])
        position += 1 + stride
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif kind == 2:
            line = bytearray([(x + y) & 0xFF for x, y in zip(line, previous)])
        elif kind == 3:
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + previous[i]) >> 1)) & 0xFF
        elif kind == 4:
            _paeth_row(line, previous, bpp)
        elif kind != 0:
            raise PngError("PNG row %d has unknown filter type %d." % (row, kind))
        out[row * stride:(row + 1) * stride] = line
        previous = line
    return bytes(out)


def decode_png(data):
    """``(width, height, channels, bit_depth, samples)`` from PNG bytes.

    Reads non-interlaced 8/16-bit gray, gray+alpha, RGB and RGBA; samples as in ``encode_png``.
    Anything else raises PngError with a sentence saying what is unsupported.
    """
    data = bytes(data)
    if data[:8] != SIGNATURE:
        raise PngError("Not a PNG file.")
    position = 8
    header = None
    compressed = []
    ended = False
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        payload = data[position + 8:position + 8 + length]
        if len(payload) != length or position + 12 + length > len(data):
            raise PngError("PNG chunk %r is truncated." % (kind,))
        crc = struct.unpack(">I", data[position + 8 + length:position + 12 + length])[0]
        if zlib.crc32(kind + payload) & 0xFFFFFFFF != crc:
            raise PngError("PNG chunk %r is corrupt (bad checksum)." % (kind,))
        position += 12 + length
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", payload)
        elif kind == b"IDAT":
            compressed.append(payload)
        elif kind == b"IEND":
            ended = True
            break
    if not ended:
        raise PngError("PNG data is truncated (it has no end chunk).")
    if header is None or not compressed:
        raise PngError("PNG has no image header or no image data.")
    width, height, bit_depth, color_type, _compression, _filter, interlace = header
    if color_type not in _CHANNELS:
        raise PngError("PNG colour type %d (palette) is not supported; use RGB or RGBA." % color_type)
    if bit_depth not in (8, 16):
        raise PngError("Only 8- and 16-bit PNG is supported, not %d-bit." % bit_depth)
    if interlace:
        raise PngError("Interlaced PNG is not supported.")
    channels = _CHANNELS[color_type]
    bpp = channels * bit_depth // 8
    try:
        raw = zlib.decompress(b"".join(compressed))
    except zlib.error as exc:
        raise PngError("PNG image data is corrupt (%s)." % exc)
    return width, height, channels, bit_depth, _unfilter(raw, height, width * bpp, bpp)
