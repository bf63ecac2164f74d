"""Start a real `fixative serve` process for tests (server, Krita and GIMP plug-in tests share it).

    from tests.helpers.engine import start_engine
    engine = start_engine(tmp_home, "--lease-seconds", "5")
    try:
        r = engine.request("GET", "/v1/info")          # token added for you
        r = engine.request("GET", "/v1/info", token=None)  # no Authorization header
    finally:
        engine.stop()                                    # SIGTERM; returns the exit code

The process runs ``python -m fixative.cli serve --port 0 <extra args>`` with ``FIXATIVE_HOME=home``,
``FIXATIVE_MODEL_DIR=../shared/models/taesd`` and ``FIXATIVE_OFFLINE=1``; ``start_engine`` returns
once the discovery file names this process and ``/v1/health`` answers. Its output goes to
``home/engine-<n>.log`` (shown in the error if it fails to start).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
MODELS = Path(os.environ.get("FIXATIVE_SHARED", REPO.parent / "shared")) / "models" / "taesd"
_UNSET: Any = object()
_counter = itertools.count(1)


@dataclass
class EngineHandle:
    """A running engine process and what a client needs to reach it."""

    url: str
    token: str
    pid: int
    proc: subprocess.Popen
    home: Path
    log_path: Path
    discovery: dict[str, Any] = field(default_factory=dict)

    @property
    def discovery_path(self) -> Path:
        return self.home / "state" / "engine.json"

    def request(self, method: str, path: str, *, token: Any = _UNSET, timeout: float = 30.0,
                **kwargs: Any) -> httpx.Response:
        """One HTTP request with the bearer token (``token=None``: none; a string: that one).

        Other keyword arguments go to ``httpx.request`` (headers, files, data, json, params...).
        """
        headers = dict(kwargs.pop("headers", None) or {})
        token = self.token if token is _UNSET else token
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return httpx.request(method, self.url + path, headers=headers, timeout=timeout, **kwargs)

    def wait_job(self, job_id: str, timeout: float = 120.0, poll: float = 0.2) -> dict[str, Any]:
        """Poll a job (renewing its lease) until it is done, failed or cancelled."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.request("GET", f"/v1/jobs/{job_id}").json()
            if status.get("state") in ("done", "failed", "cancelled") or time.monotonic() > deadline:
                return status
            time.sleep(poll)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (the engine's clean shutdown); SIGKILL if it has not exited after ``timeout``."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.terminate()  # SIGTERM on POSIX
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL: no cleanup at all (the discovery file stays behind)."""
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(10)


def engine_env(home: Path, extra_env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for an engine (or a CLI call) isolated in ``home`` with the shared test weights."""
    env = dict(os.environ)
    env.update({
        "FIXATIVE_HOME": str(home),
        "FIXATIVE_MODEL_DIR": str(MODELS),
        "FIXATIVE_OFFLINE": "1",
        "PYTHONUNBUFFERED": "1",
        "NO_PROXY": "127.0.0.1,localhost,::1",
    })
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "engine"), env.get("PYTHONPATH")]))
    env.update(extra_env or {})
    return env


def start_engine(home: Path, *extra_args: str, timeout: float = 60.0,
                 env: dict[str, str] | None = None) -> EngineHandle:
    """Start ``fixative serve --port 0 *extra_args`` in ``home`` and wait until it answers."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / f"engine-{os.getpid()}-{next(_counter)}.log"
    discovery_path = home / "state" / "engine.json"
    command = [sys.executable, "-m", "fixative.cli", "serve", "--port", "0", *extra_args]
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=engine_env(home, env), cwd=str(home))
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"fixative serve exited with {proc.returncode} before answering:\n"
                               f"{log_path.read_text(errors='replace')}")
        info = _read_json(discovery_path)
        if info.get("pid") == proc.pid and _healthy(info.get("url", "")):
            return EngineHandle(url=info["url"], token=info["token"], pid=proc.pid, proc=proc, home=home,
                                log_path=log_path, discovery=info)
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait(10)
            raise RuntimeError(f"fixative serve did not answer within {timeout:.0f} s:\n"
                               f"{log_path.read_text(errors='replace')}")
        time.sleep(0.1)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _healthy(url: str) -> bool:
    if not url:
        return False
    try:
        return httpx.get(url + "/v1/health", timeout=2.0).json() == {"status": "ok"}
    except (httpx.HTTPError, ValueError):
        return False
