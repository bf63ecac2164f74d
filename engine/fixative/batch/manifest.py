"""The batch manifest: one JSON object per line in the output folder, appended and fsynced per record.

Why JSON Lines: a crash or Ctrl-C can at worst lose the line being written, never the lines before
it, and a re-run reads the file back to know what is done. A torn last line (power loss, kill -9) is
cut off when the manifest is reopened. The newest record for a file says where it stands.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fixative.errors import OutputError

MANIFEST_NAME = "fixative-batch.jsonl"
LOCK_NAME = ".fixative-batch.lock"
RECORD_VERSION = 1

DONE = "done"
FAILED = "failed"
RETRIED = "retried"
INTERRUPTED = "interrupted"
STATUSES = (DONE, FAILED, RETRIED, INTERRUPTED)


def fingerprint(options: dict[str, Any], extras: dict[str, Any] | None = None) -> str:
    """A short digest of everything that changes the output pixels or metadata.

    A file counts as done only for the same fingerprint, so re-running with other options redoes it."""
    payload = json.dumps({"options": options, "extras": extras or {}}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def array_digest(array: Any) -> str:
    """Digest of an image array (style or anchor images are part of the fingerprint)."""
    import numpy as np

    data = np.ascontiguousarray(array)
    digest = hashlib.sha256(str((data.shape, data.dtype.str)).encode())
    digest.update(data.tobytes())
    return digest.hexdigest()[:16]


@dataclass
class FileState:
    """What the manifest says about one input under one fingerprint."""

    status: str | None = None
    failures: int = 0
    last_error: dict[str, Any] | None = None
    output: str | None = None
    records: int = 0


@dataclass
class Manifest:
    """Append-only JSONL manifest plus an exclusive lock on its folder while a batch runs."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    repaired_bytes: int = 0
    unreadable_lines: int = 0
    _states: dict[tuple[Any, Any], FileState] = field(default_factory=dict)
    _fd: int | None = None
    _lock_fd: int | None = None

    @classmethod
    def open(cls, out_dir: str | os.PathLike, *, lock: bool = True) -> Manifest:
        """Read what an earlier run wrote, cut off a torn last line, and open for appending."""
        folder = Path(out_dir)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the output folder {folder}: {exc.strerror or exc}") from exc
        manifest = cls(folder / MANIFEST_NAME)
        if lock:
            manifest._lock_fd = _lock_folder(folder)
        try:
            manifest._load_and_repair()
            manifest._fd = os.open(manifest.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            manifest.close()
            raise OutputError(f"cannot write the manifest {manifest.path}: {exc.strerror or exc}") from exc
        except BaseException:
            manifest.close()
            raise
        return manifest

    def _load_and_repair(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a torn last line: the record was never complete, so it never happened
            self.repaired_bytes = len(data) - end
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
            data = data[:end]
        self.records = list(_parse_lines(data, self))
        for record in self.records:
            self._fold(record)

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Write one complete line with a single write() and fsync it before returning.

        A signal handler that only sets a flag can never split a line, because the line goes out in
        one system call."""
        if self._fd is None:
            raise OutputError(f"the manifest {self.path} is closed")
        full = {"v": RECORD_VERSION, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **record}
        line = (json.dumps(full, sort_keys=False, default=str) + "\n").encode()
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
            os.fsync(self._fd)
        except OSError as exc:
            raise OutputError(f"cannot append to the manifest {self.path}: {exc}") from exc
        self.records.append(full)
        self._fold(full)
        return full

    def state(self, input_key: str, print_: str) -> FileState:
        """Where one input stands under one fingerprint (an index, so thousands of files stay fast)."""
        return self._states.get((input_key, print_), FileState())

    def _fold(self, record: dict[str, Any]) -> None:
        key = (record.get("input"), record.get("fingerprint"))
        state = self._states.setdefault(key, FileState())
        state.records += 1
        status = record.get("status")
        if status == FAILED:
            state.failures += 1
            state.last_error = record.get("error")
        if status in (DONE, FAILED):
            state.status = status
            state.output = record.get("output")
        if status == DONE:
            state.failures = 0

    def close(self) -> None:
        for name in ("_fd", "_lock_fd"):
            fd = getattr(self, name)
            if fd is not None:
                try:
                    os.close(fd)
                finally:
                    setattr(self, name, None)

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse_lines(data: bytes, manifest: Manifest) -> Iterator[dict[str, Any]]:
    for raw in data.splitlines():
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            manifest.unreadable_lines += 1
            continue
        if isinstance(record, dict):
            yield record
        else:
            manifest.unreadable_lines += 1


def read_records(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Every complete record of a manifest file (for reports and tests); no lock, no repair."""
    data = Path(path).read_bytes()
    end = data.rfind(b"\n") + 1
    return list(_parse_lines(data[:end], Manifest(Path(path))))


def _lock_folder(folder: Path) -> int | None:
    """Two batches writing one folder would interleave their manifests: refuse the second."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here; document "one batch per folder"
        return None
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        raise OutputError(f"another `fixative batch` is writing to {folder}; wait for it or choose "
                          "another --out-dir") from exc
    return fd
