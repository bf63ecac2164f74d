"""fixative.service: the one decode → protect → encode path, and the metadata choices it honours."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fixative import service
from fixative.imageio import DMI_PROHIBITED, encode_image, load_image
from tests.conftest import painting

QUICK = {"quality": "fast", "steps": 1, "device": "cpu"}


def _png_with_gps(dtype=np.uint8) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}  # GPS block
    art = painting(size=32)
    if dtype == np.uint16:
        art = art.astype(np.uint16) * 257
    return encode_image(art, "PNG", icc=b"\0" * 128, exif=exif.tobytes())


def _exif_tags(loaded) -> set[int]:
    exif = Image.Exif()
    exif.load(loaded.exif)
    return set(exif)


@pytest.mark.parametrize("strip_location, optout", [(False, True), (True, False)])
def test_metadata_choices(fixative_home, strip_location, optout):
    protected = service.protect_bytes(_png_with_gps(), {**QUICK, "strip_location": strip_location,
                                                        "optout_metadata": optout})
    out = load_image(protected.data)
    assert protected.format == "PNG" and out.icc == b"\0" * 128
    assert (0x8825 in _exif_tags(out)) is not strip_location and 0x010F in _exif_tags(out)
    assert (DMI_PROHIBITED.encode() in protected.data) is optout
    assert out.fixative_info["models"] == protected.result.stats.models


def test_protect_file_keeps_depth_and_writes_the_suffixes_format(fixative_home, tmp_path):
    source = tmp_path / "art.png"
    source.write_bytes(_png_with_gps(np.uint16))
    destination = tmp_path / "art.protected.tif"
    result = service.protect_file(source, destination, QUICK)
    out = load_image(destination.read_bytes())
    assert out.format == "TIFF" and out.array.dtype == np.uint16 and out.array.shape == (32, 32, 3)
    assert not np.array_equal(out.array, load_image(source.read_bytes()).array)
    assert result.stats.steps == 1


def test_warm_up_and_device_pick_agree_with_protect(fixative_home):
    assert service.device_name("cpu") == "cpu"
    assert service.warm_up({"device": "cpu"}) == "cpu"
    with pytest.raises(Exception, match="device"):
        service.pick_device("no-such-device")
