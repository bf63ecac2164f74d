"""Image files: depths, alpha, metadata, opt-out XMP, limits checked before decoding, atomic writes."""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fixative.errors import BadImage, OutputError, TooManyPixels
from fixative.imageio import (
    DMI_PROHIBITED,
    default_output_path,
    encode_image,
    load_image,
    probe_size,
    strip_gps,
    write_atomic,
    xmp_packet,
)


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height but carries almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("fmt", ["PNG", "TIFF"])
def test_lossless_round_trip(fmt, dtype, channels):
    if fmt == "PNG" and dtype == np.uint16 and channels == 2:
        pytest.skip("16-bit grey+alpha PNG is refused by design (see test below)")
    rng = np.random.default_rng(0)
    array = rng.integers(0, np.iinfo(dtype).max, (13, 17, channels), dtype=dtype)
    loaded = load_image(encode_image(array, fmt))
    assert loaded.format == fmt and loaded.array.dtype == dtype
    assert np.array_equal(loaded.array.reshape(array.shape), array)


def test_metadata_survives_and_optout_is_written():
    icc = Image.core.__dict__.get("dummy", None) or b"\0" * 128  # opaque bytes are enough for a round trip
    exif = Image.Exif()
    exif[0x010F] = "Camera maker"
    exif[0x8825] = {1: "N", 2: (1.0, 2.0, 3.0)}  # GPS block
    exif_bytes = exif.tobytes()
    data = encode_image(np.zeros((8, 8, 3), np.uint8), "PNG", icc=icc, exif=exif_bytes,
                        xmp=xmp_packet("a cat"), info={"target": "style:op-art-stripes"})
    loaded = load_image(data)
    assert loaded.icc == icc
    assert loaded.fixative_info == {"target": "style:op-art-stripes"}
    assert DMI_PROHIBITED.encode() in data and b"a cat" in data
    read = Image.Exif()
    read.load(loaded.exif)
    assert read[0x010F] == "Camera maker"
    stripped = Image.Exif()
    stripped.load(strip_gps(loaded.exif))
    assert 0x8825 not in stripped and stripped[0x010F] == "Camera maker"


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats_carry_the_optout(fmt):
    data = encode_image(np.full((16, 16, 3), 128, np.uint8), fmt, xmp=xmp_packet())
    assert DMI_PROHIBITED.encode() in data
    assert load_image(data).format == fmt


def test_header_limit_is_checked_before_decoding():
    data = png_claiming(40000, 25000)  # 1e9 pixels claimed, a few bytes of data
    assert probe_size(data) == (40000, 25000)
    with pytest.raises(TooManyPixels, match="1000 MP"):
        load_image(data, max_pixels=100_000_000)


def test_corrupt_and_truncated_files_are_clear(tmp_path):
    with pytest.raises(BadImage, match="not a readable image"):
        load_image(b"this is not an image")
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(buffer, "PNG")
    with pytest.raises(BadImage):
        load_image(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(BadImage, match="cannot read"):
        load_image(tmp_path / "missing.png")


def test_cmyk_and_palette_inputs_are_converted_with_a_note():
    buffer = io.BytesIO()
    Image.new("CMYK", (8, 8), (0, 50, 100, 0)).save(buffer, "JPEG")
    cmyk = load_image(buffer.getvalue())
    assert cmyk.array.shape == (8, 8, 3) and "CMYK" in cmyk.notes[0]
    buffer = io.BytesIO()
    palette = Image.new("P", (8, 8))
    palette.info["transparency"] = 0
    palette.save(buffer, "PNG", transparency=0)
    loaded = load_image(buffer.getvalue())
    assert loaded.array.shape == (8, 8, 4) and "palette" in loaded.notes[0]


def test_atomic_write_never_overwrites_the_input_and_leaves_no_partial_file(tmp_path):
    source = tmp_path / "art.png"
    source.write_bytes(b"original")
    with pytest.raises(OutputError, match="overwrite the input"):
        write_atomic(source, b"new", protect_inputs=(source,))
    assert source.read_bytes() == b"original"
    target = write_atomic(tmp_path / "out" / "x.png", b"data")
    assert target.read_bytes() == b"data"
    assert [p.name for p in target.parent.iterdir()] == ["x.png"]
    assert default_output_path(source) == tmp_path / "art.protected.png"


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder_is_clear(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    with pytest.raises(OutputError):
        write_atomic(folder / "x.png", b"data")


def test_full_disk_leaves_the_old_file_intact(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    target.write_bytes(b"old")
    real_fsync = os.fsync

    def no_space(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", no_space)
    with pytest.raises(OutputError, match="No space"):
        write_atomic(target, b"new data")
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
