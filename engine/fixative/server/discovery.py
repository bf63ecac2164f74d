"""The discovery file ``<state dir>/engine.json`` (beside it ``options-schema.json``) and the lock that keeps one engine per user.

Plug-ins find the engine by reading the discovery file and checking ``/v1/health``. The lock file
(``engine.lock``, held for the engine's whole life) settles races between two plug-ins that start
the engine at the same moment; the OS drops it when the process dies, even on ``kill -9``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from fixative import paths
from fixative.errors import FixativeError

OPTIONS_SCHEMA_FILE = "options-schema.json"


@dataclass(frozen=True)
class EngineInfo:
    """What a client needs to talk to a running engine."""

    url: str
    token: str
    pid: int
    version: str


def lock_file() -> Path:
    return paths.state_dir() / "engine.lock"


def write_discovery(info: EngineInfo, path: Path | None = None) -> Path:
    """Write atomically with mode 0600 so no other user can read the token, and no reader sees half a file."""
    return _write_private_json(path or paths.discovery_file(), asdict(info))


def write_options_schema(path: Path | None = None) -> Path:
    """Write SCHEMA to ``options-schema.json`` beside engine.json. It stays after the engine exits:
    plug-ins build their dialogs from it while no engine is running."""
    from fixative.options import options_schema

    return _write_private_json(path or paths.state_dir() / OPTIONS_SCHEMA_FILE, options_schema())


def _write_private_json(path: Path, value: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        os.chmod(path.parent, 0o700)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".json", dir=path.parent)
    try:
        with contextlib.suppress(OSError):
            os.fchmod(fd, 0o600)  # mkstemp already uses 0600; be explicit (absent on Windows)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(value, handle, ensure_ascii=False)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    return path


def read_discovery(path: Path | None = None) -> EngineInfo | None:
    """The recorded engine, or None when the file is absent or unreadable (treated as stale)."""
    path = path or paths.discovery_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return EngineInfo(url=str(data["url"]), token=str(data["token"]), pid=int(data["pid"]),
                          version=str(data.get("version", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_discovery(owner: EngineInfo, path: Path | None = None) -> bool:
    """Remove the file only if it still describes ``owner``: never delete a newer engine's file."""
    path = path or paths.discovery_file()
    current = read_discovery(path)
    if current is None or current.pid != owner.pid or current.token != owner.token:
        return False
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    return True


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as dead)."""
    if pid <= 0:
        return False
    if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI only
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        if stat.rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    """GET /v1/health answers {"status": "ok"}."""
    host = url.split("://", 1)[-1].split("/", 1)[0]
    request = urllib.request.Request(url.rstrip("/") + "/v1/health", headers={"Host": host})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            return response.status == 200 and json.load(response).get("status") == "ok"
    except (OSError, ValueError, urllib.error.URLError):
        return False


def live_engine(path: Path | None = None) -> EngineInfo | None:
    """The engine in the discovery file if its process lives and answers health, else None (stale)."""
    info = read_discovery(path)
    if info is None or not pid_alive(info.pid):
        return None
    return info if healthy(info.url) else None


def wait_for_live_engine(timeout: float, path: Path | None = None) -> EngineInfo | None:
    """Poll until an engine is live or ``timeout`` seconds pass (another process is starting one)."""
    deadline = time.monotonic() + timeout
    while True:
        info = live_engine(path)
        if info is not None or time.monotonic() >= deadline:
            return info
        time.sleep(0.2)


def _open_private(path: Path) -> IO[bytes]:
    """Open (or create) a state file for read/write, mode 0600, refusing a symlink in its place:
    a planted link must not make the engine create or truncate a file elsewhere."""
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    if path.is_symlink():  # also catches the case O_NOFOLLOW cannot (Windows)
        raise FixativeError(f"{path} is a symbolic link; remove it (the engine never follows links there).")
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        raise FixativeError(f"Cannot open {path}: {exc.strerror or exc}.") from exc
    with contextlib.suppress(OSError, AttributeError):  # no fchmod on Windows
        os.fchmod(fd, 0o600)  # an older engine may have created it with the umask's mode
    return os.fdopen(fd, "r+b")


class EngineLock:
    """An exclusive, non-blocking lock on ``engine.lock``, held while the engine runs."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or lock_file()
        self._handle: IO[bytes] | None = None

    def acquire(self) -> bool:
        """True when this process now owns the lock; False when another process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = _open_private(self.path)
        try:
            if sys.platform == "win32":  # pragma: no cover
                import msvcrt

                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
            else:
                import fcntl

                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            return False
        self._handle = handle
        return True

    def release(self) -> None:
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.close()  # closing drops flock/msvcrt locks
            self._handle = None
