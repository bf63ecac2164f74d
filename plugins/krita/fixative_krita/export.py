"""Export Protected: protect the flattened image and save it for posting, with the opt-out tag.

The document is not changed: the merged pixels go to the engine and the answer goes to a file.
"""

from __future__ import annotations

import os
from typing import Any

from . import optout, pixels
from ._common import fixative_png
from .job import LayerError, LayerSnapshot, ProtectJob
from .qt import QImage

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def read_flattened(document: Any) -> LayerSnapshot:
    """The document's merged image as RGBA pixels (GUI thread)."""
    if document is None:
        raise LayerError("Open a document first: Export Protected saves the open image.")
    model, depth = document.colorModel(), document.colorDepth()
    if model != "RGBA":
        raise LayerError(f"Export Protected works on RGB images; this one is {model}. Convert it "
                         "(Image › Convert Image Color Space) or export a copy.")
    try:
        pixels.check_depth(depth)
    except pixels.PixelError as exc:
        raise LayerError(str(exc)) from None
    width, height = document.width(), document.height()
    raw = bytes(document.pixelData(0, 0, width, height))
    profile = document.colorProfile()
    return LayerSnapshot(0, 0, width, height, depth, model, profile, raw,
                         depth in ("F16", "F32") and pixels.is_linear_profile(profile))


def write_protected(path: str, samples: bytes, bit_depth: int, width: int, height: int,
                    quality: int = 92) -> str:
    """Write RGBA PNG samples as PNG (8/16-bit), JPEG or WebP with the opt-out XMP; returns path."""
    kind = FORMATS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise LayerError(f"Export Protected saves .png, .jpg or .webp files, not '{os.path.basename(path)}'.")
    if kind == "PNG":
        data = fixative_png.encode_png(width, height, 4, bit_depth, samples,
                                       extra_chunks=optout.png_chunks())
    else:
        if bit_depth == 16:  # JPEG and WebP are 8-bit: keep the high byte of each sample
            samples = bytes(samples[0::2])
        image = QImage(samples, width, height, width * 4, QImage.Format.Format_RGBA8888)
        if kind == "JPEG":  # no alpha in JPEG: flatten onto white
            from .qt import QtGui

            flat = QImage(width, height, QImage.Format.Format_RGB888)
            flat.fill(QtGui.QColor(255, 255, 255))
            painter = QtGui.QPainter(flat)
            painter.drawImage(0, 0, image)
            painter.end()
            image = flat
        from .qt import QtCore

        buffer = QtCore.QBuffer()
        buffer.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
        if not image.save(buffer, kind, quality):
            raise LayerError(f"Qt could not encode {kind} here; save as PNG instead.")
        encoded = bytes(buffer.data())
        data = (optout.add_to_jpeg(encoded) if kind == "JPEG"
                else optout.add_to_webp(encoded, width, height))
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise LayerError(f"Could not write {path}: {exc.strerror or exc}") from None
    return path


def export_protected(document: Any, path: str, options: dict, wait: bool = True,
                     quality: int = 92, **kwargs: Any) -> Any:
    """Protect the flattened ``document`` and save it to ``path``; returns the path (or the job)."""
    if os.path.splitext(path)[1].lower() not in FORMATS:
        raise LayerError(f"Export Protected saves .png, .jpg or .webp files, not '{os.path.basename(path)}'.")

    def save(job: ProtectJob, _raw: bytes) -> str:
        return write_protected(path, job.result_samples, job.result_bit_depth,
                               job.snapshot.width, job.snapshot.height, quality)

    job = ProtectJob(document, None, options, apply_result=save, **kwargs)
    job.start(read_flattened(document))
    if not wait:
        return job
    job.wait()
    if job.state != "done":
        raise job.error or LayerError("Export cancelled.")
    return job.result_node
