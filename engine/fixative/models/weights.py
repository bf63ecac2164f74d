"""Finding weight files: memory → FIXATIVE_MODEL_DIR → user cache → download (checked, with a progress bar).

``FIXATIVE_OFFLINE=1`` forbids downloads; a missing file then names itself and where to put it.
Downloads are verified against a pinned sha256 (or, where only that is published, the git blob
SHA-1 of the upstream repository) and written atomically.

"Memory" is for Ray batch workers: the driver reads each weight file once and ships its bytes
(:class:`WeightBytes`); a worker hands them to :func:`hold_in_memory` and then loads models without
touching its own disk or network.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fixative import paths
from fixative.errors import DownloadFailed, MissingWeights


@dataclass(frozen=True)
class WeightFile:
    filename: str
    url: str
    sha256: str | None = None
    git_sha1: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class WeightBytes:
    """A weight file's content on its way to another machine, with the sha256 it must still have."""

    filename: str
    sha256: str
    data: bytes

    @classmethod
    def read(cls, path: Path, weight: WeightFile) -> WeightBytes:
        """Read a found weight file, refusing one that does not match its pin."""
        data = path.read_bytes()
        if not verify_bytes(data, weight):
            raise MissingWeights(f"{path} does not match the published {weight.filename}; delete it and "
                                 f"download it again from {weight.url}")
        return cls(weight.filename, hashlib.sha256(data).hexdigest(), data)

    def checked(self) -> bytes:
        if hashlib.sha256(self.data).hexdigest() != self.sha256:
            raise MissingWeights(f"{self.filename} arrived damaged (sha256 mismatch)")
        return self.data


_IN_MEMORY: dict[str, bytes] = {}
_MEMORY_ONLY = False


def hold_in_memory(files: list[WeightBytes], *, only: bool = True) -> None:
    """Serve these weight files from memory in this process (each checked against its sha256).

    With ``only``, weight files that were not handed over are missing: nothing is looked up on
    disk or downloaded, so a worker never depends on its own machine's files or network."""
    global _MEMORY_ONLY
    for file in files:
        _IN_MEMORY[file.filename] = file.checked()
    _MEMORY_ONLY = _MEMORY_ONLY or only


def weight_source(weight: WeightFile, download: bool = True) -> Path | io.BytesIO:
    """Where to load a weight file from (``torch.load`` takes either): memory first, then disks."""
    if weight.filename in _IN_MEMORY:
        return io.BytesIO(_IN_MEMORY[weight.filename])
    if _MEMORY_ONLY:
        raise MissingWeights(f"model file {weight.filename} was not shipped to this worker by the batch driver")
    return find_weight(weight, download=download)


def offline() -> bool:
    return os.environ.get("FIXATIVE_OFFLINE", "").strip().lower() in {"1", "true", "yes"}


def search_dirs() -> list[Path]:
    """Folders searched for weight files, in order."""
    dirs = [Path(p).expanduser() for p in os.environ.get("FIXATIVE_MODEL_DIR", "").split(os.pathsep) if p]
    dirs.append(paths.model_cache_dir())
    return dirs


def verify(path: Path, weight: WeightFile) -> bool:
    """True when the file matches its pin (files without a pin are accepted)."""
    if weight.sha256:
        return _file_digest(path, hashlib.sha256()) == weight.sha256
    if weight.git_sha1:
        blob = hashlib.sha1(f"blob {path.stat().st_size}\0".encode())
        return _file_digest(path, blob) == weight.git_sha1
    return True


def verify_bytes(data: bytes, weight: WeightFile) -> bool:
    """As :func:`verify`, for content already in memory."""
    if weight.sha256:
        return hashlib.sha256(data).hexdigest() == weight.sha256
    if weight.git_sha1:
        return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest() == weight.git_sha1
    return True


def _file_digest(path: Path, digest: hashlib._Hash) -> str:  # type: ignore[name-defined]
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find_weight(weight: WeightFile, download: bool = True, show_progress: bool = True) -> Path:
    for folder in search_dirs():
        candidate = folder / weight.filename
        if candidate.is_file():
            return candidate
    if not download or offline():
        where = ", ".join(str(d) for d in search_dirs())
        raise MissingWeights(
            f"model file {weight.filename} not found (looked in {where}); download it from {weight.url} "
            f"and put it in one of those folders, or set FIXATIVE_MODEL_DIR to the folder holding it"
            + (" (downloads are off: FIXATIVE_OFFLINE=1)" if offline() else "")
        )
    return download_weight(weight, paths.model_cache_dir(), show_progress=show_progress)


def download_weight(weight: WeightFile, folder: Path, show_progress: bool = True,
                    timeout: float = 60.0) -> Path:
    """Download into ``folder`` via a temporary file; verify; rename into place."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / weight.filename
    fd, tmp_name = tempfile.mkstemp(prefix=weight.filename + ".", suffix=".part", dir=folder)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(weight.url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or weight.size
            with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                          TransferSpeedColumn(), TimeRemainingColumn(), disable=not show_progress) as bar:
                task = bar.add_task(f"downloading {weight.filename}", total=total)
                for chunk in iter(lambda: response.read(1 << 16), b""):
                    out.write(chunk)
                    bar.advance(task, len(chunk))
        if not verify(tmp, weight):
            raise DownloadFailed(f"{weight.filename} from {weight.url} failed its checksum; nothing was kept")
        os.replace(tmp, target)
        return target
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DownloadFailed(f"could not download {weight.filename} from {weight.url}: {exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
