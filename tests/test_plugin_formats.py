"""Every pixel layout the editor plug-ins send goes through the real engine and comes back intact.

GIMP 3, GIMP 2.10 and Krita send a layer as grey, grey+alpha, RGB or RGBA at 8 or 16 bits
(GIMP 3's "Y'A u16" layers included), as PNG (TIFF for callers that prefer it). The engine must
answer with the same size, channels and depth, alpha bit-identical and the colour changed
within the budget. One `fixative serve` for the whole module; small images, quality fast.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, painting
from tests.gimp.checks import check_within_budget, engine_in

sys.path.insert(0, str(REPO / "plugins" / "common"))
import fixative_png  # noqa: E402

pytestmark = pytest.mark.slow

CHANNELS = {"Y": 1, "YA": 2, "RGB": 3, "RGBA": 4}
OPTIONS = {"quality": "fast", "intensity": "default", "robustness": "off", "steps": 2}


def layer_pixels(mode: str, depth: int) -> np.ndarray:
    """A 48x40 crop in ``mode`` and ``depth``, with an alpha ramp and 16-bit low bytes in use."""
    rgb = painting(size=(48, 40)).astype(np.int64)
    colour = rgb if mode.startswith("RGB") else rgb.mean(axis=2, keepdims=True).round().astype(np.int64)
    if mode.endswith("A"):
        ramp = np.broadcast_to(np.linspace(64, 255, 48).round().astype(np.int64), (40, 48))[..., None]
        colour = np.concatenate([colour, ramp], axis=2)
    if depth == 8:
        return colour.astype(np.uint8)
    noise = np.random.default_rng(7).integers(-128, 129, colour.shape)
    return (colour * 257 + noise).clip(0, 65535).astype(np.uint16)


def encode(pixels: np.ndarray, fmt: str) -> bytes:
    """The upload as a plug-in makes it: the stdlib PNG encoder, or a TIFF."""
    height, width, channels = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    if fmt == "PNG":
        data = pixels.astype(">u2").tobytes() if depth == 16 else pixels.tobytes()
        return fixative_png.encode_png(width, height, channels, depth, data)
    from fixative.imageio import encode_image

    return encode_image(pixels, "TIFF")


def decode(data: bytes, fmt: str) -> np.ndarray:
    """The engine's answer read back as the plug-ins read it (stdlib PNG decoder) or as TIFF."""
    if fmt == "PNG":
        width, height, channels, depth, samples = fixative_png.decode_png(data)[:5]
        dtype = ">u2" if depth == 16 else np.uint8
        return np.frombuffer(samples, dtype=dtype).reshape(height, width, channels).astype(
            np.uint16 if depth == 16 else np.uint8)
    from fixative.imageio import load_image

    return load_image(data).array


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with engine_in(tmp_path_factory.mktemp("formats-home")) as handle:
        yield handle


LAYOUTS = [(mode, depth, fmt) for fmt in ("PNG", "TIFF") for depth in (8, 16) for mode in CHANNELS]


@pytest.fixture(scope="module")
def results(engine):
    """Each layout as one job, one after the other (a queued job unpolled would lose its lease)."""
    answers = {}
    for mode, depth, fmt in LAYOUTS:
        pixels = layer_pixels(mode, depth)
        response = engine.request("POST", "/v1/jobs", data={"options": json.dumps(OPTIONS)},
                                  files={"image": (f"layer.{fmt.lower()}", encode(pixels, fmt),
                                                   "application/octet-stream")})
        if response.status_code != 202:
            answers[(mode, depth, fmt)] = (pixels, f"refused {response.status_code}: {response.text}",
                                           None)
            continue
        job_id = response.json()["id"]
        status = engine.wait_job(job_id, timeout=300)
        if status.get("state") != "done":
            answers[(mode, depth, fmt)] = (pixels, f"job ended {status}", None)
            continue
        answers[(mode, depth, fmt)] = (pixels, None,
                                       engine.request("GET", f"/v1/jobs/{job_id}/result").content)
    return answers


@pytest.mark.parametrize(("mode", "depth", "fmt"), LAYOUTS,
                         ids=[f"{m}-{d}bit-{f}" for m, d, f in LAYOUTS])
def test_layout_round_trips_through_the_engine(results, mode, depth, fmt):
    pixels, problem, answer = results[(mode, depth, fmt)]
    assert problem is None, problem
    protected = decode(answer, fmt)
    assert protected.shape == pixels.shape and protected.dtype == pixels.dtype, (
        protected.shape, protected.dtype)
    check_within_budget(pixels, protected, mode.endswith("A"), 65535 if depth == 16 else 255,
                        "default")
    if depth == 16:
        assert (protected % 257 != 0).mean() > 0.5, "the answer lost its 16-bit precision"


def test_grey_alpha_16bit_png_decodes_with_its_alpha(tmp_path: Path):
    """The engine's own reader keeps both channels of a 16-bit grey+alpha PNG."""
    from fixative.imageio import encode_image, load_image

    pixels = layer_pixels("YA", 16)
    loaded = load_image(encode(pixels, "PNG")).array
    np.testing.assert_array_equal(loaded, pixels)
    np.testing.assert_array_equal(decode(encode_image(pixels, "PNG"), "PNG"), pixels)


def test_export_metadata_helpers_move_the_optout_xmp_into_a_jpeg():
    """Export Protected (GIMP 3): the engine's XMP from its PNG becomes the JPEG's only XMP."""
    import io

    import fixative_plugin
    from PIL import Image

    from fixative.imageio import encode_image, xmp_packet

    pixels = painting(size=(32, 24))
    packet = fixative_plugin.png_xmp(encode_image(pixels, "PNG", xmp=xmp_packet()))
    assert packet is not None and b"DMI-PROHIBITED" in packet
    assert fixative_plugin.png_xmp(encode_image(pixels, "PNG")) is None
    jpeg = encode_image(pixels, "JPEG", xmp=b"<x:xmpmeta>editor's own</x:xmpmeta>")
    tagged = fixative_plugin.add_jpeg_xmp(jpeg, packet)
    assert tagged.count(b"http://ns.adobe.com/xap/1.0/\x00") == 1 and b"editor's own" not in tagged
    with Image.open(io.BytesIO(tagged)) as image, Image.open(io.BytesIO(jpeg)) as plain:
        assert b"DMI-PROHIBITED" in image.info["xmp"]
        np.testing.assert_array_equal(np.asarray(image), np.asarray(plain))
    assert fixative_plugin.export_format("a/b.JPG") == "JPEG"
    with pytest.raises(fixative_plugin.PluginError, match=".png, .jpg or .webp"):
        fixative_plugin.export_format("picture.tif")



@pytest.mark.parametrize("layout", ["lossy", "lossy-alpha", "lossless-alpha", "own-xmp"])
def test_webp_xmp_goes_in_whatever_layout_the_exporter_wrote(layout):
    """GIMP writes simple (VP8, VP8L) or extended (VP8X) WebP: each gets the engine's XMP as its
    only XMP chunk, a VP8X header with the right canvas, size and XMP flag, and the same pixels."""
    import io

    import fixative_plugin
    from PIL import Image

    from fixative.imageio import xmp_packet

    rgb = painting(size=(37, 22))  # odd sizes: the canvas fields are width-1/height-1
    pixels = rgb if layout in ("lossy", "own-xmp") else np.concatenate(
        [rgb, np.full(rgb.shape[:2] + (1,), 200, np.uint8)], axis=2)
    buffer = io.BytesIO()
    extra = {"xmp": b"<x:xmpmeta>editor's own</x:xmpmeta>"} if layout == "own-xmp" else {}
    Image.fromarray(pixels).save(buffer, "WEBP", quality=90, lossless=layout == "lossless-alpha",
                                 **extra)
    plain = buffer.getvalue()
    expected_first = {"lossy": b"VP8 ", "lossy-alpha": b"VP8X", "lossless-alpha": b"VP8L",
                      "own-xmp": b"VP8X"}[layout]
    assert plain[12:16] == expected_first, plain[12:16]
    tagged = fixative_plugin.add_webp_xmp(plain, xmp_packet())
    assert tagged[12:16] == b"VP8X" and tagged.count(b"XMP ") == 1
    assert tagged[20] & 0x04 and bool(tagged[20] & 0x10) == (pixels.shape[2] == 4)
    assert int.from_bytes(tagged[24:27], "little") + 1 == 37
    assert int.from_bytes(tagged[27:30], "little") + 1 == 22
    assert int.from_bytes(tagged[4:8], "little") == len(tagged) - 8
    with Image.open(io.BytesIO(tagged)) as image, Image.open(io.BytesIO(plain)) as before:
        assert b"DMI-PROHIBITED" in image.info["xmp"] and b"editor's own" not in image.info["xmp"]
        np.testing.assert_array_equal(np.asarray(image), np.asarray(before))
    with pytest.raises(fixative_plugin.PluginError, match="not a WebP"):
        fixative_plugin.add_webp_xmp(b"\x89PNG\r\n\x1a\n", xmp_packet())
