# -*- coding: utf-8 -*-
"""What every Fixative plug-in does besides talking to its editor.

The PNG round trip with its size checks, the progress line a person reads ("step 16 of 30,
about 40 s left"), the one-line result, and the error texts. GIMP 3, GIMP 2.10 and Krita keep
only their editor glue. Standard library only and Python 2.7 compatible (GIMP 2.10).
"""

from __future__ import absolute_import, division, print_function, unicode_literals

import re
import struct

from fixative_client import FixativeClientError, PluginError
from fixative_png import PngError, decode_png, encode_png

__all__ = [
    "PluginError", "message_of", "check_layer_size", "encode_layer", "decode_result",
    "check_result_size", "decode_png_samples", "export_format", "png_xmp", "add_jpeg_xmp",
    "add_webp_xmp",
    "format_eta", "progress_text", "done_text", "error_text",
]

_STEP = re.compile(r"step\s+(\d+)\s*(?:/|of)\s*(\d+)")
_LOSS = re.compile(r",?\s*loss\s*[-+0-9.e]*")


def message_of(exc):
    """The exception's sentence; avoids str(), which fails on non-ASCII text in Python 2."""
    message = getattr(exc, "message", None)
    if message:
        return message
    return exc.args[0] if exc.args else repr(exc)


# -- the pixels' round trip ---------------------------------------------------------------------

def check_layer_size(info, width, height):
    """PluginError before any work when the engine (``/v1/info`` limits) refuses this size."""
    max_pixels = ((info or {}).get("limits") or {}).get("max_pixels")
    if max_pixels and width * height > max_pixels:
        raise PluginError("This layer has %d pixels; the Fixative engine accepts at most %d. "
                          "Scale the image down first." % (width * height, max_pixels))


def encode_layer(width, height, channels, bit_depth, samples, compress_level=1):
    """The layer as PNG bytes for the engine (samples as fixative_png.encode_png takes them)."""
    try:
        return encode_png(width, height, channels, bit_depth, samples,
                          compress_level=compress_level)
    except PngError as exc:
        raise PluginError("Could not encode the layer (%s)." % message_of(exc))


def _describe(width, height, channels, bit_depth):
    return "%dx%d %d-channel %d-bit" % (width, height, channels, bit_depth)


def decode_result(data, width, height, channels, bit_depth):
    """The protected samples, after checking they have exactly the layer's shape and depth."""
    try:
        got = decode_png(data)
    except PngError as exc:
        raise PluginError("The Fixative engine sent an image this plug-in cannot read (%s); "
                          "the image was not changed." % message_of(exc))
    if got[:4] != (width, height, channels, bit_depth):
        raise PluginError("The Fixative engine sent back a %s image for a %s layer; the image "
                          "was not changed." % (_describe(*got[:4]),
                                                _describe(width, height, channels, bit_depth)))
    return got[4]


def decode_png_samples(data):
    """(width, height, channels, bit_depth, samples) of a PNG the editor wrote for a layer."""
    try:
        return decode_png(data)[:5]
    except PngError as exc:
        raise PluginError("Could not read the layer back from the editor (%s); the image was not "
                          "changed." % message_of(exc))


def check_result_size(data, width, height):
    """Like ``decode_result`` for callers that let the editor decode: checks only the size."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise PluginError("The Fixative engine sent an image that is not a PNG; the image was "
                          "not changed.")
    got_width, got_height = struct.unpack(">II", data[16:24])
    if (got_width, got_height) != (width, height):
        raise PluginError("The Fixative engine sent back a %dx%d image for a %dx%d layer; the "
                          "image was not changed." % (got_width, got_height, width, height))


# -- export files ----------------------------------------------------------------------------------

EXPORT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_XMP_KEYWORD = b"XML:com.adobe.xmp"
_JPEG_XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"


def export_format(path):
    """'PNG', 'JPEG' or 'WEBP' from the file name, or PluginError naming what is accepted."""
    if isinstance(path, bytes):  # GIMP 2.10 (Python 2) passes file names as byte strings
        path = path.decode("utf-8", "replace")
    extension = ("." + path.rsplit(".", 1)[-1].lower()) if "." in path else ""
    if extension not in EXPORT_FORMATS:
        raise PluginError("Export protected writes PNG, JPEG or WebP files: end the file name "
                          "with .png, .jpg or .webp.")
    return EXPORT_FORMATS[extension]


def png_xmp(png):
    """The XMP packet (bytes) the engine put in a PNG's iTXt chunk, or None."""
    position = 8
    while position + 8 <= len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        payload = png[position + 8:position + 8 + length]
        if kind == b"iTXt" and payload.startswith(_XMP_KEYWORD + b"\x00"):
            # keyword \0, compression flag, method, language \0, translated keyword \0, text
            rest = payload[len(_XMP_KEYWORD) + 3:]
            rest = rest[rest.index(b"\x00") + 1:]
            return rest[rest.index(b"\x00") + 1:]
        if kind == b"IEND":
            break
        position += 12 + length
    return None


def _without_jpeg_xmp(jpeg):
    """The JPEG minus its APP1 XMP segments (the header segments before the scan are walked)."""
    out, position = [jpeg[:2]], 2
    while position + 4 <= len(jpeg) and jpeg[position:position + 1] == b"\xff":
        marker = jpeg[position + 1:position + 2]
        if marker == b"\xda":  # start of scan: the rest is image data
            break
        length = struct.unpack(">H", jpeg[position + 2:position + 4])[0]
        segment = jpeg[position:position + 2 + length]
        if not (marker == b"\xe1" and segment[4:].startswith(_JPEG_XMP_HEADER)):
            out.append(segment)
        position += 2 + length
    out.append(jpeg[position:])
    return b"".join(out)


def add_jpeg_xmp(jpeg, xmp):
    """The JPEG with ``xmp`` as its only APP1 XMP segment (right after the start marker)."""
    if jpeg[:2] != b"\xff\xd8":
        raise PluginError("The exported file is not a JPEG; nothing was written.")
    body = _JPEG_XMP_HEADER + xmp
    if len(body) + 2 > 0xFFFF:
        raise PluginError("The opt-out metadata is too large for a JPEG segment.")
    jpeg = _without_jpeg_xmp(jpeg)
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def _webp_chunks(webp):
    """[(fourcc, payload)] of a RIFF WebP file, or PluginError when it is not one."""
    if webp[:4] != b"RIFF" or webp[8:12] != b"WEBP":
        raise PluginError("The exported file is not a WebP; nothing was written.")
    chunks, position = [], 12
    while position + 8 <= len(webp):
        kind = webp[position:position + 4]
        size = struct.unpack("<I", webp[position + 4:position + 8])[0]
        chunks.append((kind, webp[position + 8:position + 8 + size]))
        position += 8 + size + (size & 1)  # chunks are padded to an even length
    if not chunks:
        raise PluginError("The exported WebP has no image data; nothing was written.")
    return chunks


def _webp_canvas(kind, payload):
    """(width, height, has_alpha) from a simple WebP's VP8 or VP8L bitstream header."""
    if kind == b"VP8 " and payload[3:6] == b"\x9d\x01\x2a":
        width, height = struct.unpack("<HH", payload[6:10])
        return width & 0x3FFF, height & 0x3FFF, False
    if kind == b"VP8L" and payload[:1] == b"\x2f":
        bits = struct.unpack("<I", payload[1:5])[0]
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1, bool((bits >> 28) & 1)
    raise PluginError("The exported WebP has an image chunk this plug-in cannot read; nothing "
                      "was written.")


def add_webp_xmp(webp, xmp):
    """The WebP with ``xmp`` as its only ``XMP `` chunk. Metadata needs the extended layout, so a
    simple (VP8/VP8L) file gets the VP8X header its canvas size calls for; pixels are untouched."""
    chunks = [chunk for chunk in _webp_chunks(webp) if chunk[0] != b"XMP "]
    if chunks[0][0] == b"VP8X":
        header = bytearray(chunks[0][1])
    else:
        width, height, alpha = _webp_canvas(*chunks[0])
        header = bytearray(struct.pack("<I", 0x10 if alpha else 0)
                           + struct.pack("<I", width - 1)[:3] + struct.pack("<I", height - 1)[:3])
    header[0] |= 0x04  # "this file has XMP metadata"
    chunks = [(b"VP8X", bytes(header))] + [chunk for chunk in chunks if chunk[0] != b"VP8X"]
    chunks.append((b"XMP ", xmp))
    body = b"".join(kind + struct.pack("<I", len(payload)) + payload
                    + (b"\x00" if len(payload) & 1 else b"") for kind, payload in chunks)
    return b"RIFF" + struct.pack("<I", 4 + len(body)) + b"WEBP" + body


# -- words for the artist -----------------------------------------------------------------------

def format_eta(seconds):
    """'about 40 s left', 'about 2 min 05 s left', or '' when the engine has no estimate."""
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return "about %d s left" % seconds
    return "about %d min %02d s left" % (seconds // 60, seconds % 60)


def progress_text(stage, eta_s=None):
    """The engine's stage in plain words: 'step 16 of 30, about 40 s left' (never the loss)."""
    stage = stage or ""
    step = _STEP.search(stage)
    if step:
        words = "step %s of %s" % step.groups()
    else:
        words = _LOSS.sub("", stage).replace("()", "").strip() or "protecting"
    eta = format_eta(eta_s) if eta_s is not None and eta_s >= 1 else ""
    return ", ".join(part for part in (words, eta) if part)


def done_text(layer_name, report=None):
    """One line when finished: what was added and, when the report says it, how protected."""
    report = report or {}
    summary = report.get("summary")
    text = "Added '%s'" % layer_name
    if isinstance(summary, type("")) and summary.strip():
        return "%s. %s" % (text, summary.strip())
    details = []
    if isinstance(report.get("psnr"), (int, float)):
        details.append("PSNR %.1f dB" % report["psnr"])
    if isinstance(report.get("seconds"), (int, float)):
        details.append("%.0f s" % report["seconds"])
    return "%s (%s)." % (text, ", ".join(details)) if details else text + "."


def error_text(exc):
    """The message a plug-in shows for any failure: one sentence, never a traceback."""
    if isinstance(exc, PluginError):
        return "Fixative: %s" % message_of(exc)
    if isinstance(exc, FixativeClientError):
        return "Fixative: %s The image was not changed." % message_of(exc)
    return ("Fixative: unexpected error (%s: %s). The image was not changed."
            % (type(exc).__name__, message_of(exc)))
