"""What one engine job does with the core: check uploads, run protect(), encode result and preview.

Uploads are checked twice on purpose: the header (size) before anything is decoded, so a file that
claims a billion pixels costs nothing, then a full decode at submit time so a corrupt file is a 400
now rather than a failed job later. The worker decodes again instead of keeping arrays in the queue:
queued jobs then hold only their compressed bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from fixative.errors import BadImage, FixativeError, TooManyPixels
from fixative.options import ProtectOptions
from fixative.server.jobs import CancelFn, JobOutput, ProgressFn

MEDIA_TYPES = {"PNG": "image/png", "TIFF": "image/tiff", "JPEG": "image/jpeg"}
EXTENSIONS = {"PNG": "png", "TIFF": "tif", "JPEG": "jpg"}
IMAGE_FORMATS = frozenset({"PNG", "TIFF"})
"""Formats accepted for the artwork: lossless, so the perturbation survives the round trip."""
REFERENCE_FORMATS = frozenset({"PNG", "TIFF", "JPEG"})
"""Formats accepted for style references and poison anchors (only their content matters)."""


@dataclass
class JobPayload:
    """The checked input of one job; only compressed bytes, so a queued job stays small."""

    image: bytes
    options: ProtectOptions
    max_pixels: int
    style_image: bytes | None = None
    anchor: bytes | None = None
    credentials: bool = False
    """Sign C2PA 'not for AI training' credentials into the result (off for layer round trips)."""


def check_upload(data: bytes, *, field: str, max_pixels: int, formats: frozenset[str]) -> tuple[int, int]:
    """Size from the header first (413 without decoding), then a full decode (400 if corrupt)."""
    from fixative.imageio import probe_size

    if not data:
        raise BadImage(f"The {field} upload is empty.")
    try:
        width, height = probe_size(data)
    except FixativeError:
        raise
    except Exception as exc:
        raise BadImage(f"The {field} upload is not a readable image: {exc}") from exc
    if width * height > max_pixels:
        raise TooManyPixels(f"The {field} has {width}×{height} = {width * height:,} pixels; "
                            f"this engine accepts at most {max_pixels:,}.")
    loaded = _load(data, field=field, max_pixels=max_pixels)
    image_format = str(loaded.format).upper()
    if image_format not in formats:
        raise BadImage(f"The {field} is {image_format}; send one of {', '.join(sorted(formats))}.")
    if field == "image" and int(loaded.bit_depth) not in (8, 16):
        raise BadImage(f"The image has {loaded.bit_depth}-bit channels; send 8- or 16-bit PNG or TIFF.")
    return width, height


def _load(data: bytes, *, field: str, max_pixels: int) -> Any:
    from fixative.imageio import load_image

    try:
        return load_image(data, max_pixels=max_pixels)
    except FixativeError:
        raise
    except MemoryError:
        raise
    except Exception as exc:
        raise BadImage(f"The {field} upload could not be decoded: {exc}") from exc


def run_protect_job(payload: JobPayload, progress: ProgressFn, cancel: CancelFn) -> JobOutput:
    """The worker's job: decode, protect, encode in the sender's format and bit depth, preview."""
    from fixative import protect

    loaded = _load(payload.image, field="image", max_pixels=payload.max_pixels)
    style = None
    if payload.style_image is not None:
        style = _load(payload.style_image, field="style_image", max_pixels=payload.max_pixels).array
    anchors = None
    if payload.anchor is not None:
        anchors = [_load(payload.anchor, field="anchor", max_pixels=payload.max_pixels).array]
    result = protect(loaded.array, payload.options, style_image=style, anchor_images=anchors,
                     progress=progress, cancel=cancel)
    image_format = str(loaded.format).upper()
    encoded = encode_like(result, loaded, credentials=payload.credentials)
    return JobOutput(result=encoded, media_type=MEDIA_TYPES.get(image_format, "application/octet-stream"),
                     filename=f"protected.{EXTENSIONS.get(image_format, 'bin')}",
                     report=result.stats.model_dump(mode="json"),
                     preview_factory=lambda: preview_png(result))


def encode_like(result: Any, loaded: Any, credentials: bool = False) -> bytes:
    """Encode like the CLI does: the sender's format, bit depth and ICC/EXIF, plus opt-out metadata
    (XMP always; signed C2PA credentials when asked, with the engine user's own identity)."""
    import numpy as np

    from fixative import __version__
    from fixative.imageio import encode_image, xmp_packet

    stats = result.stats
    caption = stats.concept if stats.mode in ("poison", "both") else None
    info = {"version": __version__, "mode": stats.mode, "target": stats.target, "models": stats.models,
            "concept": stats.concept}
    from fixative.provenance import add_optout_credentials

    data = encode_image(np.asarray(result.image), loaded.format, icc=loaded.icc, exif=loaded.exif,
                        xmp=xmp_packet(caption, True), info=info)
    return add_optout_credentials(data, loaded.format, enabled=credentials)


def preview_png(result: Any) -> bytes | None:
    """The before | after | AI's-eye strip as PNG; a failed preview never fails the job."""
    import logging

    try:
        from fixative.preview import make_preview

        image = make_preview(result, height=256)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception:
        logging.getLogger("fixative.server").warning("preview failed", exc_info=True)
        return None


def warm_up(models: list[str]) -> None:
    """Load the default encoders into the core's cache so the first job does not pay for it.

    Called exactly as protect() calls it (same positional arguments), so the lru_cache entry is shared.
    """
    from fixative.core import pick_device
    from fixative.models.registry import load_encoder

    device, dtype = pick_device("auto")
    for name in models:
        load_encoder(name, str(device), dtype)


def detect_device() -> str:
    """The device jobs with device='auto' will use."""
    try:
        from fixative.core import pick_device

        return pick_device("auto")[0].type
    except Exception:
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
    except Exception:
        return "unknown"
    return "cpu"
