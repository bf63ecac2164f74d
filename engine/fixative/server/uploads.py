"""Queued jobs keep their uploads in private temporary files, not in memory.

A full queue of large uploads would otherwise hold (queue length × body limit) bytes of RAM. Once
an upload has passed its checks it is written to a 0600 file in a 0700 folder created for this
engine process; the file is deleted when the job ends in any way (done, failed, cancelled, lease
expired, refused at submit, shutdown) and the folder when the engine stops.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

from fixative.options import ProtectOptions

UPLOAD_FIELDS = ("image", "style_image", "anchor")


class UploadSpool:
    """The engine's private folder for queued uploads (made on first use, removed by ``close``)."""

    def __init__(self, parent: str | None = None) -> None:
        self.parent = parent
        self.folder: Path | None = None
        self._lock = threading.Lock()

    def write(self, data: bytes) -> Path:
        with self._lock:
            if self.folder is None:
                self.folder = Path(tempfile.mkdtemp(prefix="fixative-uploads-", dir=self.parent))  # 0700
        fd, name = tempfile.mkstemp(prefix="upload-", dir=self.folder)  # 0600, O_EXCL
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def close(self) -> None:
        with self._lock:
            folder, self.folder = self.folder, None
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)


class JobPayload:
    """The checked input of one job. Bytes until ``spill``; then files read back on demand by the
    worker, so a queued job costs a few hundred bytes of memory."""

    def __init__(self, image: bytes, options: ProtectOptions, max_pixels: int,
                 style_image: bytes | None = None, anchor: bytes | None = None,
                 credentials: bool = False) -> None:
        self.options = options
        self.max_pixels = max_pixels
        self.credentials = credentials
        """Sign C2PA 'not for AI training' credentials into the result (off for layer round trips)."""
        self._data: dict[str, bytes | None] = {"image": image, "style_image": style_image, "anchor": anchor}
        self._files: dict[str, Path] = {}
        self._lock = threading.Lock()

    def _get(self, name: str) -> bytes | None:
        with self._lock:
            path = self._files.get(name)
            data = self._data.get(name)
        if path is None:
            return data
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:  # discarded while queued: the job was cancelled
            from fixative.errors import Cancelled

            raise Cancelled("the job's upload was discarded") from exc

    @property
    def image(self) -> bytes:
        data = self._get("image")
        assert data is not None
        return data

    @property
    def style_image(self) -> bytes | None:
        return self._get("style_image")

    @property
    def anchor(self) -> bytes | None:
        return self._get("anchor")

    def spill(self, spool: UploadSpool) -> None:
        """Move the uploads to private files and drop them from memory."""
        written: dict[str, Path] = {}
        try:
            for name in UPLOAD_FIELDS:
                data = self._data.get(name)
                if data is not None:
                    written[name] = spool.write(data)
        except BaseException:
            for path in written.values():
                path.unlink(missing_ok=True)
            raise
        with self._lock:
            self._files.update(written)
            self._data = {name: None for name in UPLOAD_FIELDS}

    def files(self) -> list[Path]:
        with self._lock:
            return list(self._files.values())

    def discard(self) -> None:
        """Delete the files (idempotent; called on every way a job can end)."""
        with self._lock:
            files, self._files = list(self._files.values()), {}
            self._data = {name: None for name in UPLOAD_FIELDS}
        for path in files:
            with contextlib.suppress(OSError):
                path.unlink()


def discard_payload(payload: Any) -> None:
    """Discard a job's payload if it is one of ours (job-manager tests use plain objects)."""
    discard = getattr(payload, "discard", None)
    if callable(discard):
        discard()
