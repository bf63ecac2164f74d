"""Finding weight files: FIXATIVE_MODEL_DIR → user cache → download (checked, with a progress bar).

``FIXATIVE_OFFLINE=1`` forbids downloads; a missing file then names itself and where to put it.
Downloads are verified against a pinned sha256 (or, where only that is published, the git blob
SHA-1 of the upstream repository) and written atomically.
"""

from __future__ import annotations

import hashlib
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
