"""Export Protected: protect the flattened image and save it for posting, with the opt-out tags.

The document is not changed: the merged pixels go to the engine and the answer goes to a file.
The file carries the XMP "no AI training" fields and, signed by the engine (the plug-in has no
C2PA library), C2PA "not for AI training" content credentials: the plug-in encodes the final
PNG/JPEG/WebP, sends it to ``POST /v1/credentials`` and writes what comes back.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from . import optout
from ._common import fixative_png
from .job import FixativeClientError, LayerError, LayerSnapshot, ProtectJob, read_visible_image
from .qt import QImage

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def read_flattened(document: Any) -> LayerSnapshot:
    """The document's merged image as sRGB RGBA pixels (GUI thread): images in other colour
    spaces (grey, CMYK, wide-gamut or linear profiles) are converted to sRGB by Krita."""
    if document is None:
        raise LayerError("Open a document first: Export Protected saves the open image.")
    return read_visible_image(document, use_selection=False)


def srgb_note(snapshot: LayerSnapshot) -> str | None:
    """What the artist should know when the exported file is not in the document's colour space."""
    if snapshot.converted_from is None:
        return None
    return (f"The image ({snapshot.converted_from}) was converted to sRGB for the export: the file is "
            "sRGB, as web browsers and social sites expect.")


def encode_protected(path: str, samples: bytes, bit_depth: int, width: int, height: int,
                     quality: int = 92, optout_metadata: bool = True) -> bytes:
    """RGBA PNG samples as the PNG (8/16-bit, marked sRGB), JPEG or WebP file ``path`` names,
    with the opt-out XMP. (JPEG and WebP carry no profile: viewers take untagged files as sRGB.)"""
    kind = FORMATS.get(os.path.splitext(path)[1].lower())
    if kind is None:
        raise LayerError(f"Export Protected saves .png, .jpg or .webp files, not '{os.path.basename(path)}'.")
    if kind == "PNG":  # the engine's pixels are sRGB: the file says so (an sRGB chunk)
        chunks = [fixative_png.srgb_chunk()] + (optout.png_chunks() if optout_metadata else [])
        return fixative_png.encode_png(width, height, 4, bit_depth, samples, extra_chunks=chunks)
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
    if not optout_metadata:
        return encoded
    return optout.add_to_jpeg(encoded) if kind == "JPEG" else optout.add_to_webp(encoded, width, height)


def write_protected(path: str, samples: bytes, bit_depth: int, width: int, height: int,
                    quality: int = 92, optout_metadata: bool = True,
                    sign: Callable[[bytes], bytes] | None = None) -> str:
    """Encode (see ``encode_protected``), let ``sign`` add content credentials, write; returns path."""
    data = encode_protected(path, samples, bit_depth, width, height, quality, optout_metadata)
    if optout_metadata and sign is not None:
        data = sign(data)
    try:
        with open(path, "wb") as handle:
            handle.write(data)
    except OSError as exc:
        raise LayerError(f"Could not write {path}: {exc.strerror or exc}") from None
    return path


def export_protected(document: Any, path: str, options: dict, wait: bool = True,
                     quality: int = 92, credentials: bool = True, **kwargs: Any) -> Any:
    """Protect the flattened ``document`` and save it to ``path``; returns the path (or the job).

    ``credentials`` (the dialog's "Add 'not for AI training' credentials"): XMP opt-out fields and
    engine-signed C2PA credentials. If the engine cannot sign, the file is saved with the XMP
    fields only and ``job.notes`` says why: the protection itself is never thrown away.
    """
    if os.path.splitext(path)[1].lower() not in FORMATS:
        raise LayerError(f"Export Protected saves .png, .jpg or .webp files, not '{os.path.basename(path)}'.")

    def save(job: ProtectJob, _raw: bytes) -> str:
        def sign(data: bytes) -> bytes:  # a local request of a few milliseconds, on the GUI thread
            try:
                return job.client.add_credentials(data)
            except FixativeClientError as exc:
                job.notes.append(f"Saved without signed content credentials (the XMP opt-out is in "
                                 f"the file): {exc}")
                return data

        return write_protected(path, job.result_samples, job.result_bit_depth, job.snapshot.width,
                               job.snapshot.height, quality, optout_metadata=credentials, sign=sign)

    job = ProtectJob(document, None, options, apply_result=save, **kwargs)
    snapshot = read_flattened(document)
    note = srgb_note(snapshot)
    if note:
        job.notes.append(note)
    job.start(snapshot)
    if not wait:
        return job
    job.wait()
    if job.state != "done":
        raise job.error or LayerError("Export cancelled.")
    return job.result_node
