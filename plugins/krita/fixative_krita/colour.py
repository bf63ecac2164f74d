"""Colour-space conversions done by Krita itself, in a scratch document.

The engine works on sRGB. A layer in another model (grey, CMYK, Lab), a wide-gamut profile
(Rec. 2020, ACEScg, Adobe-like) or a linear 16-bit integer profile is converted by Krita's own
colour engine (lcms, in C++: whole buffers, no per-sample Python) inside a temporary document
that is closed afterwards. So the artist's document never gets a "Convert Layer Color Space"
undo entry, and the source layer is never touched.
"""

from __future__ import annotations

from typing import Any

from .qt import QByteArray

SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"


def _krita() -> Any:
    from krita import Krita

    return Krita.instance()


def engine_space(depth: str) -> tuple[str, str, str]:
    """What a converted layer is sent as: RGBA sRGB, 8-bit for 8-bit layers, 16-bit otherwise."""
    return ("RGBA", "U8" if depth == "U8" else "U16", SRGB_PROFILE)


def needs_conversion(model: str, depth: str, profile: str) -> bool:
    """True unless the pixels are RGBA in sRGB primaries that pixels.py handles directly.

    Direct: sRGB-curve profiles at any depth, and linear sRGB (g10, scRGB) for float layers
    (pixels.py applies the sRGB curve to floats itself). Everything else goes through Krita."""
    if model != "RGBA":
        return True
    name = (profile or "").lower()
    if "srgb" not in name:  # Rec2020, ACEScg, AdobeRGB-like, ProPhoto, ...: other primaries
        return True
    linear = "g10" in name or "linear" in name or "scrgb" in name
    return linear and depth not in ("F16", "F32")


def convert_pixels(buffers: list[bytes], width: int, height: int, source: tuple[str, str, str],
                   target: tuple[str, str, str]) -> list[bytes]:
    """Each buffer (``width`` x ``height`` pixels in colour space ``source`` = (model, depth,
    profile)) converted to ``target`` by Krita, in a scratch document closed afterwards."""
    app = _krita()
    scratch = app.createDocument(width, height, "fixative-colour", source[0], source[1], source[2], 72.0)
    if scratch is None:
        raise ValueError(f"Krita cannot make a {source[0]} {source[1]} image with profile {source[2]}.")
    try:
        nodes = []
        for data in buffers:
            node = scratch.createNode("pixels", "paintlayer")
            scratch.rootNode().addChildNode(node, None)
            node.setPixelData(QByteArray(bytes(data)), 0, 0, width, height)
            nodes.append(node)
        if not scratch.setColorSpace(*target):
            raise ValueError(f"Krita could not convert {'/'.join(source)} pixels to {'/'.join(target)}.")
        scratch.waitForDone()
        return [bytes(node.pixelData(0, 0, width, height)) for node in nodes]
    finally:
        scratch.close()
