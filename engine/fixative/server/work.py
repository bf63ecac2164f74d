"""What one engine job does with the core: check uploads, run protect(), encode result and preview.

Uploads are checked twice on purpose: the header (size) before anything is decoded, so a file that
claims a billion pixels costs nothing, then a full decode at submit time so a corrupt file is a 400
now rather than a failed job later. The worker decodes again instead of keeping arrays in the queue:
queued jobs then hold only their compressed bytes.
"""

from __future__ import annotations

import io
from typing import Any

from fixative.errors import BadImage, FixativeError
from fixative.server.jobs import CancelFn, JobOutput, ProgressFn
from fixative.server.limits import check_changed
from fixative.server.uploads import JobPayload

MEDIA_TYPES = {"PNG": "image/png", "TIFF": "image/tiff", "JPEG": "image/jpeg"}
EXTENSIONS = {"PNG": "png", "TIFF": "tif", "JPEG": "jpg"}
IMAGE_FORMATS = frozenset({"PNG", "TIFF"})
"""Formats accepted for the artwork: lossless, so the perturbation survives the round trip."""
REFERENCE_FORMATS = frozenset({"PNG", "TIFF", "JPEG"})
"""Formats accepted for style references and poison anchors (only their content matters)."""


def check_upload(data: bytes, *, field: str, max_pixels: int, formats: frozenset[str]) -> tuple[int, int]:
    """Magic bytes and header first (400/413 before any decoder runs), then a full decode (400 if corrupt)."""
    from fixative.imageio import inspect_header

    if not data:
        raise BadImage(f"The {field} upload is empty.")
    header = inspect_header(data, max_pixels=max_pixels, formats=formats, what=field)
    loaded = _load(data, field=field, max_pixels=max_pixels)
    image_format = str(loaded.format).upper()
    if image_format not in formats:
        raise BadImage(f"The {field} is {image_format}; send one of {', '.join(sorted(formats))}.")
    if field == "image" and int(loaded.bit_depth) not in (8, 16):
        raise BadImage(f"The image has {loaded.bit_depth}-bit channels; send 8- or 16-bit PNG or TIFF.")
    return header.width, header.height


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
    """The worker's job: decode, protect and encode through fixative.service (the sender's format,
    bit depth, ICC/EXIF and the job's metadata options, as the CLI writes them), then the preview."""
    from fixative import service

    loaded = _load(payload.image, field="image", max_pixels=payload.max_pixels)
    style = None
    if payload.style_image is not None:
        style = _load(payload.style_image, field="style_image", max_pixels=payload.max_pixels).array
    anchors = None
    if payload.anchor is not None:
        anchors = [_load(payload.anchor, field="anchor", max_pixels=payload.max_pixels).array]
    protected = service.protect_image(loaded, payload.options, style_image=style, anchor_images=anchors,
                                      progress=progress, cancel=cancel,
                                      credentials=payload.credentials)
    result = protected.result
    check_changed(result.stats.psnr, result.stats.linf)
    return JobOutput(result=protected.data, media_type=MEDIA_TYPES.get(protected.format, "application/octet-stream"),
                     filename=f"protected.{EXTENSIONS.get(protected.format, 'bin')}",
                     report=result.stats.model_dump(mode="json"),
                     preview_factory=lambda: preview_png(result))


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
