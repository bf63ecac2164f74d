"""Image files in and out: PNG/JPEG/WebP/TIFF with alpha, 16-bit, ICC and EXIF kept.

Reading checks the pixel count from the header before decoding anything. Writing is atomic (a
temporary file renamed into place), never touches the input, and embeds the opt-out metadata:
XMP ``plus:DataMining = DMI-PROHIBITED`` (PLUS/IPTC "Data Mining: prohibited").
16-bit PNG goes through OpenCV (Pillow reads 16-bit RGB as 8-bit), TIFF through tifffile.
"""

from __future__ import annotations

import io
import json
import os
import struct
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fixative.errors import BadImage, OutputError, TooManyPixels

Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit from the header, before decoding
DEFAULT_MAX_PIXELS = 100_000_000
FORMATS = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "TIFF": ".tif"}
_SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".tif": "TIFF", ".tiff": "TIFF"}
DMI_PROHIBITED = "http://ns.useplus.org/ldf/vocab/DMI-PROHIBITED"


@dataclass
class LoadedImage:
    array: np.ndarray
    """(H, W, C) RGB(A) or grey(+alpha); uint8, uint16 or float32."""
    format: str
    icc: bytes | None = None
    exif: bytes | None = None
    notes: list[str] = field(default_factory=list)
    """What was converted on the way in (CMYK → RGB, palette → RGBA, ...)."""
    fixative_info: dict | None = None
    """Fixative's own record in a protected PNG (mode, target), for `evaluate`."""

    @property
    def bit_depth(self) -> int:
        return {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(self.array.dtype, 32)

    @property
    def height(self) -> int:
        return self.array.shape[0]

    @property
    def width(self) -> int:
        return self.array.shape[1]


def _read_source(source: bytes | str | os.PathLike) -> bytes:
    if isinstance(source, bytes | bytearray | memoryview):
        return bytes(source)
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise BadImage(f"cannot read {source}: {exc.strerror or exc}") from exc


def probe(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) from the header only; nothing is decoded."""
    if data[:4] in (b"II*\0", b"MM\0*"):  # TIFF: tifffile reads layouts Pillow cannot (16-bit grey+alpha)
        import tifffile

        try:
            with tifffile.TiffFile(io.BytesIO(data)) as tif:
                page = tif.pages[0]
                return "TIFF", int(page.imagewidth), int(page.imagelength)
        except Exception as exc:
            raise BadImage("not a readable TIFF file") from exc
    try:
        with Image.open(io.BytesIO(data)) as im:
            return (im.format or "?").upper(), im.width, im.height
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage("not a readable image (PNG, JPEG, WebP or TIFF expected)") from exc


def probe_size(data: bytes) -> tuple[int, int]:
    _, width, height = probe(data)
    return width, height


def check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise TooManyPixels(f"the image is {width}x{height} = {width * height / 1e6:.0f} MP, over the limit "
                            f"of {max_pixels / 1e6:.0f} MP")


def load_image(source: bytes | str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    data = _read_source(source)
    fmt, width, height = probe(data)
    check_pixels(width, height, max_pixels)
    try:
        if fmt == "TIFF":
            return _load_tiff(data)
        if fmt == "PNG":
            return _load_png(data)
        return _load_with_pillow(data)
    except (BadImage, TooManyPixels):
        raise
    except Exception as exc:  # truncated or corrupt data surfaces as many exception types
        raise BadImage(f"the {fmt} file is damaged or truncated ({type(exc).__name__}: {exc})") from exc


def _pillow_meta(data: bytes) -> tuple[bytes | None, bytes | None, dict | None]:
    with Image.open(io.BytesIO(data)) as im:
        icc = im.info.get("icc_profile")
        exif = im.info.get("exif")
        if isinstance(exif, str):
            exif = exif.encode("latin-1")
        info = im.info.get("fixative")
        return icc, exif, json.loads(info) if isinstance(info, str) else None


_PNG_GREY_ALPHA = 4


def _png_colour_type(data: bytes) -> int | None:
    """The IHDR colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA)."""
    return data[25] if len(data) > 25 and data[12:16] == b"IHDR" else None


def _load_png(data: bytes) -> LoadedImage:
    import cv2

    with Image.open(io.BytesIO(data)) as im:
        mode = im.mode
    if mode in ("P", "PA", "1"):
        return _load_with_pillow(data)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise BadImage("the PNG file is damaged or truncated")
    if array.ndim == 3 and array.shape[2] >= 3:
        array = array[..., [2, 1, 0, 3][: array.shape[2]]]  # BGR(A) → RGB(A)
    if array.ndim == 2:
        array = array[..., None]
    if _png_colour_type(data) == _PNG_GREY_ALPHA and array.shape[2] == 4:
        array = array[..., [0, 3]]  # OpenCV expands grey+alpha (8 or 16 bit) to grey-valued BGRA
    icc, exif, info = _pillow_meta(data)
    return LoadedImage(np.ascontiguousarray(array), "PNG", icc, exif, fixative_info=info)


def _load_with_pillow(data: bytes) -> LoadedImage:
    notes: list[str] = []
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        fmt = (im.format or "PNG").upper()
        icc, exif = im.info.get("icc_profile"), im.info.get("exif")
        info = im.info.get("fixative")
        if im.mode == "CMYK":
            notes.append("converted CMYK to RGB")
            im = im.convert("RGB")
            icc = None  # the profile described CMYK
        elif im.mode in ("P", "PA"):
            has_alpha = "transparency" in im.info or im.mode == "PA"
            notes.append("converted palette colours to " + ("RGBA" if has_alpha else "RGB"))
            im = im.convert("RGBA" if has_alpha else "RGB")
        elif im.mode == "1":
            notes.append("converted 1-bit to greyscale")
            im = im.convert("L")
        elif im.mode in ("I;16", "I;16B", "I;16L"):
            im = Image.fromarray(np.asarray(im).astype(np.uint16))
        elif im.mode not in ("RGB", "RGBA", "L", "LA", "I;16", "F"):
            notes.append(f"converted {im.mode} to RGB")
            im = im.convert("RGB")
        array = np.asarray(im)
        if im.mode == "F":
            array = array.astype(np.float32)
    if array.ndim == 2:
        array = array[..., None]
    if isinstance(exif, str):
        exif = exif.encode("latin-1")
    return LoadedImage(np.ascontiguousarray(array), fmt, icc, exif, notes,
                       json.loads(info) if isinstance(info, str) else None)


def _load_tiff(data: bytes) -> LoadedImage:
    import tifffile

    notes: list[str] = []
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        page = tif.pages[0]
        array = page.asarray()
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        photometric = page.photometric
    if photometric == tifffile.PHOTOMETRIC.SEPARATED:
        raise BadImage("CMYK TIFF files are not supported; save the image as RGB first")
    if array.ndim == 3 and array.shape[0] in (1, 2, 3, 4) and array.shape[2] not in (1, 2, 3, 4):
        array = np.moveaxis(array, 0, -1)  # planar → interleaved
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] > 4:
        raise BadImage(f"unsupported TIFF layout {array.shape}")
    if array.dtype not in (np.uint8, np.uint16, np.float32):
        notes.append(f"converted {array.dtype} samples to float32")
        array = array.astype(np.float32)
    return LoadedImage(np.ascontiguousarray(array), "TIFF", icc, None, notes)


# ---------------------------------------------------------------- writing

def xmp_packet(concept: str | None = None, optout: bool = True) -> bytes:
    """XMP with PLUS 'Data Mining: prohibited' and, for poison, the caption naming the concept."""
    fields = []
    if optout:
        fields.append(f'<plus:DataMining rdf:resource="{DMI_PROHIBITED}"/>')
    if concept:
        safe = concept.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        fields.append(f'<dc:description><rdf:Alt><rdf:li xml:lang="x-default">{safe}</rdf:li></rdf:Alt>'
                      "</dc:description>")
    body = "".join(fields)
    return ('<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
            '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:plus="http://ns.useplus.org/ldf/xmp/1.0/" '
            f'xmlns:dc="http://purl.org/dc/elements/1.1/">{body}</rdf:Description></rdf:RDF></x:xmpmeta>'
            '<?xpacket end="w"?>').encode()


def strip_gps(exif: bytes | None) -> bytes | None:
    """EXIF without the GPS block (``--strip-location``)."""
    if not exif:
        return exif
    data = Image.Exif()
    data.load(exif)
    data.pop(0x8825, None)  # GPSInfo IFD pointer
    return data.tobytes()


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def add_png_chunks(png: bytes, chunks: list[bytes]) -> bytes:
    """Insert ready-made chunks right after IHDR (metadata must precede IDAT)."""
    ihdr_end = 8 + 8 + struct.unpack(">I", png[8:12])[0] + 4
    return png[:ihdr_end] + b"".join(chunks) + png[ihdr_end:]


def encode_image(array: np.ndarray, fmt: str = "PNG", *, icc: bytes | None = None, exif: bytes | None = None,
                 xmp: bytes | None = None, info: dict | None = None, jpeg_quality: int = 95) -> bytes:
    """Encode (H, W, C) uint8/uint16/float32 to bytes in ``fmt``, embedding the metadata given."""
    fmt = fmt.upper()
    if array.ndim == 2:
        array = array[..., None]
    if fmt == "PNG":
        return _encode_png(array, icc, exif, xmp, info)
    if fmt == "TIFF":
        return _encode_tiff(array, icc, xmp)
    if fmt in ("JPEG", "WEBP"):
        if array.dtype != np.uint8:
            array = _to_uint8(array)
        channels = array.shape[2]
        if fmt == "JPEG" and channels in (2, 4):
            array = array[..., :channels - 1]  # JPEG has no alpha
        image = Image.fromarray(array[..., 0] if array.shape[2] == 1 else array)
        kwargs: dict = {"quality": jpeg_quality}
        if icc:
            kwargs["icc_profile"] = icc
        if exif:
            kwargs["exif"] = exif
        if xmp:
            kwargs["xmp"] = xmp
        buffer = io.BytesIO()
        image.save(buffer, fmt, **kwargs)
        return buffer.getvalue()
    raise OutputError(f"unsupported output format {fmt}; use PNG, JPEG, WebP or TIFF")


def _to_uint8(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.uint16:
        return ((array.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
    return np.clip(np.round(array * 255), 0, 255).astype(np.uint8)


def _encode_png(array: np.ndarray, icc: bytes | None, exif: bytes | None, xmp: bytes | None,
                info: dict | None) -> bytes:
    import cv2

    if array.dtype not in (np.uint8, np.uint16):
        array = np.clip(np.round(array * 65535), 0, 65535).astype(np.uint16)
    channels = array.shape[2]
    if channels == 2 and array.dtype == np.uint16:  # neither OpenCV nor Pillow writes this one
        png = _encode_grey_alpha16_png(array)
    elif channels == 2:  # OpenCV cannot write grey+alpha; Pillow can (8-bit)
        buffer = io.BytesIO()
        Image.fromarray(array, "LA").save(buffer, "PNG")
        png = buffer.getvalue()
    else:
        bgr = array[..., [2, 1, 0, 3][:channels]] if channels >= 3 else array[..., 0]
        ok, encoded = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if not ok:
            raise OutputError("PNG encoding failed")
        png = encoded.tobytes()
    chunks = []
    if icc:
        chunks.append(_png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc)))
    if exif:
        chunks.append(_png_chunk(b"eXIf", exif[6:] if exif.startswith(b"Exif\0\0") else exif))
    if xmp:
        chunks.append(_png_chunk(b"iTXt", b"XML:com.adobe.xmp\0\0\0\0\0" + xmp))
    if info:
        chunks.append(_png_chunk(b"tEXt", b"fixative\0" + json.dumps(info).encode("latin-1", "replace")))
    return add_png_chunks(png, chunks) if chunks else png


def _encode_grey_alpha16_png(array: np.ndarray) -> bytes:
    """A 16-bit grey+alpha PNG (GIMP's "Y'A u16" layers): rows with filter 0, zlib level 6."""
    height, width = array.shape[:2]
    raw = np.zeros((height, 1 + width * 4), np.uint8)
    raw[:, 1:] = np.ascontiguousarray(array, dtype=">u2").view(np.uint8).reshape(height, width * 4)
    header = struct.pack(">IIBBBBB", width, height, 16, _PNG_GREY_ALPHA, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
            + _png_chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + _png_chunk(b"IEND", b""))


def _encode_tiff(array: np.ndarray, icc: bytes | None, xmp: bytes | None) -> bytes:
    import tifffile

    channels = array.shape[2]
    extratags = []
    if icc:
        extratags.append((34675, "B", len(icc), icc, True))
    if xmp:
        extratags.append((700, "B", len(xmp), xmp, True))
    buffer = io.BytesIO()
    data = array[..., 0] if channels == 1 else array
    photometric = "rgb" if channels >= 3 else "minisblack"
    extrasamples = ("unassalpha",) if channels in (2, 4) else None
    tifffile.imwrite(buffer, data, photometric=photometric, extrasamples=extrasamples,
                     compression="zlib", extratags=extratags, metadata=None)
    return buffer.getvalue()


def format_for_path(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in _SUFFIX_FORMAT:
        raise OutputError(f"cannot tell the format of {path}: use .png, .jpg, .webp or .tif")
    return _SUFFIX_FORMAT[suffix]


def default_output_path(input_path: str | os.PathLike, out_dir: str | os.PathLike | None = None) -> Path:
    """NAME.protected.png next to the input (or in out_dir). PNG keeps the cloak intact."""
    source = Path(input_path)
    folder = Path(out_dir) if out_dir else source.parent
    return folder / f"{source.stem}.protected.png"


def write_atomic(path: str | os.PathLike, data: bytes, protect_inputs: tuple[Path, ...] = ()) -> Path:
    """Write via a temporary file in the same folder, then rename: a crash or full disk never leaves
    a half-written file, and an existing file is replaced only once the new one is complete."""
    target = Path(path)
    for source in protect_inputs:
        if source.exists() and target.exists() and target.resolve() == source.resolve():
            raise OutputError(f"refusing to overwrite the input file {source}; choose another output")
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise OutputError(f"could not write {target}: {exc.strerror or exc}") from exc
    return target


# ---------------------------------------------------------------- header inspection (untrusted uploads)

MAGIC = {"PNG": (b"\x89PNG\r\n\x1a\n",), "TIFF": (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"),
         "JPEG": (b"\xff\xd8\xff",), "WEBP": ()}
MAX_TIFF_PAGES = 256
"""More pages than this is not a picture an editor sends (only the first page is ever decoded)."""
MAX_CHANNELS = 4
BYTES_PER_PIXEL_LIMIT = 8
"""Decoded size allowed per pixel of the limit: 16-bit RGBA, the largest layout an image may have."""
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 2, 6: 4}  # colour type → channels once decoded (palette → RGBA)
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


@dataclass(frozen=True)
class ImageHeader:
    """What the header promises, read before a single pixel is decoded."""

    format: str
    width: int
    height: int
    channels: int
    bits: int

    @property
    def decoded_bytes(self) -> int:
        return self.width * self.height * self.channels * max(1, self.bits // 8)


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's first bytes (its name and the sender's claim mean nothing)."""
    for fmt, signatures in MAGIC.items():
        if any(data.startswith(signature) for signature in signatures):
            return fmt
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def inspect_header(data: bytes, *, max_pixels: int, formats: frozenset[str] | set[str],
                   what: str = "image") -> ImageHeader:
    """Refuse, from the header alone, anything whose decoding could cost more than the limit allows.

    Magic bytes first (a file claiming .png but holding EPS never reaches a decoder), then per format:
    dimensions, samples per pixel, bits, depth (3-D TIFF), page count and the decoded size against
    ``max_pixels`` × 16-bit RGBA. Raises BadImage (400) or TooManyPixels (413).
    """
    fmt = sniff_format(data)
    if fmt is None or fmt not in formats:
        kind = f"a {fmt} file" if fmt else "not an image this engine reads (judged by its first bytes)"
        raise BadImage(f"The {what} is {kind}; send {' or '.join(sorted(formats))}.")
    if fmt == "PNG":
        header = _png_header(data, what)
    elif fmt == "TIFF":
        header = _tiff_header(data, what)
    else:
        header = _pillow_header(data, fmt, what)
    if header.width < 1 or header.height < 1:
        raise BadImage(f"The {what} header says {header.width}×{header.height} pixels.")
    pixels = header.width * header.height
    if pixels > max_pixels:
        raise TooManyPixels(f"The {what} has {header.width}×{header.height} = {pixels:,} pixels; "
                            f"this engine accepts at most {max_pixels:,}.")
    if header.decoded_bytes > max_pixels * BYTES_PER_PIXEL_LIMIT:
        raise TooManyPixels(f"The {what} would decode to {header.decoded_bytes:,} bytes, more than this engine's "
                            f"limit of {max_pixels * BYTES_PER_PIXEL_LIMIT:,}.")
    return header


def _png_header(data: bytes, what: str) -> ImageHeader:
    if len(data) < 33 or data[12:16] != b"IHDR" or struct.unpack(">I", data[8:12])[0] != 13:
        raise BadImage(f"The {what} is not a valid PNG (no IHDR header).")
    width, height, depth, colour, _compression, _filter, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[colour] or interlace > 1:
        raise BadImage(f"The {what} has an invalid PNG header (bit depth {depth}, colour type {colour}).")
    return ImageHeader("PNG", width, height, _PNG_CHANNELS[colour], 16 if depth == 16 else 8)


def _tiff_header(data: bytes, what: str) -> ImageHeader:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages[0]
            pages = 1
            offset = page.offset
            while pages <= MAX_TIFF_PAGES:  # count IFD offsets only; no page is parsed or decoded
                offset = _next_ifd(tif, offset)
                if not offset:
                    break
                pages += 1
            width, height, depth = int(page.imagewidth), int(page.imagelength), int(page.imagedepth)
            samples, bits = int(page.samplesperpixel), int(page.bitspersample)
            sample_format, photometric = int(page.sampleformat), page.photometric
    except (BadImage, TooManyPixels):
        raise
    except Exception as exc:
        raise BadImage(f"The {what} is not a readable TIFF file.") from exc
    if pages > MAX_TIFF_PAGES:
        raise BadImage(f"The {what} has more than {MAX_TIFF_PAGES} pages; send a single flattened image.")
    if depth != 1:
        raise BadImage(f"The {what} is a {depth}-slice volume TIFF; send a flat image.")
    if samples > MAX_CHANNELS:
        raise BadImage(f"The {what} has {samples} samples per pixel; at most {MAX_CHANNELS} (RGBA) are supported.")
    if photometric == tifffile.PHOTOMETRIC.SEPARATED:
        raise BadImage("CMYK TIFF files are not supported; save the image as RGB first.")
    if bits == 1:
        raise BadImage(f"The {what} is a 1-bit (black and white) TIFF; save it as 8-bit greyscale or RGB.")
    if sample_format == tifffile.SAMPLEFORMAT.INT:
        raise BadImage(f"The {what} has signed {bits}-bit integer samples; save it as unsigned 8- or 16-bit.")
    if sample_format == tifffile.SAMPLEFORMAT.IEEEFP and bits not in (16, 32):
        raise BadImage(f"The {what} has {bits}-bit floating-point samples; 16/32-bit float or 8/16-bit integer.")
    if sample_format not in (tifffile.SAMPLEFORMAT.UINT, tifffile.SAMPLEFORMAT.IEEEFP) or bits not in (8, 16, 32):
        raise BadImage(f"The {what} has {bits}-bit samples (format {sample_format}); send 8- or 16-bit.")
    return ImageHeader("TIFF", width, height, samples, bits)


def _next_ifd(tif: object, offset: int) -> int:
    """Offset of the IFD after the one at ``offset`` (0 at the end), read from the file directly."""
    fh = tif.filehandle  # type: ignore[attr-defined]
    tiff = tif.tiff  # type: ignore[attr-defined]
    fh.seek(offset)
    (count,) = struct.unpack(tiff.tagnoformat, fh.read(tiff.tagnosize))
    fh.seek(offset + tiff.tagnosize + count * tiff.tagsize)
    raw = fh.read(tiff.offsetsize)
    if len(raw) < tiff.offsetsize:
        return 0
    (following,) = struct.unpack(tiff.offsetformat, raw)
    return int(following) if 0 < following < fh.size and following != offset else 0


def _pillow_header(data: bytes, fmt: str, what: str) -> ImageHeader:
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            channels, bits = len(im.getbands()), 16 if im.mode.startswith("I;16") else 8
            return ImageHeader(fmt, im.width, im.height, channels, bits)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"The {what} is not a readable {fmt} file.") from exc


def restrict_pillow(formats: tuple[str, ...] = ("PNG", "TIFF", "JPEG", "WEBP")) -> None:
    """Let Pillow open only these formats in this process (the engine): every other plug-in, such as
    EPS (which runs Ghostscript), is unreachable even if a check upstream were missed. WebP is only
    ever opened for its header, by ``POST /v1/credentials`` (jobs refuse it by its magic bytes)."""
    Image.init()
    for name in list(Image.OPEN):
        if name not in formats:
            del Image.OPEN[name]
    Image.ID[:] = [name for name in Image.ID if name in formats]
