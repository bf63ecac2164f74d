"""Running the engine as a process: one per user, on a free loopback port, advertised in engine.json.

Order matters: take the lock (or find the live engine and say so), bind the socket (so the port is
known before the Host allow-list is built), start serving, and only then write the discovery file,
so a client that reads the file always finds a server that answers. SIGTERM/SIGINT cancel the
running job, remove the file and exit 0.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, TextIO

import uvicorn

from fixative import __version__
from fixative.errors import FixativeError
from fixative.server import discovery
from fixative.server.app import Activity, asgi_app, create_app
from fixative.server.config import ServerConfig, is_loopback
from fixative.server.jobs import JobManager
from fixative.server.protocol import ConnectionLimits, protocol_class

log = logging.getLogger("fixative.server")

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGBREAK")
                     if hasattr(signal, name))


class EngineServer(uvicorn.Server):
    """uvicorn.Server that exits 0 on signals, cancels jobs at once and knows when it is idle."""

    def __init__(self, config: uvicorn.Config, *, manager: JobManager, activity: Activity,
                 engine: discovery.EngineInfo, idle_exit_s: float | None, out: TextIO) -> None:
        super().__init__(config)
        self.manager = manager
        self.activity = activity
        self.engine = engine
        self.idle_exit_s = idle_exit_s
        self.out = out
        self.idle_exited = False

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after shutdown (exit code 130/-15); we want a clean exit 0.
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self._on_signal) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, sig: int, _frame: Any) -> None:
        # Only flags here: the handler may interrupt code holding the job manager's lock.
        if self.should_exit and sig == signal.SIGINT:
            self.force_exit = True
        self.should_exit = True

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if not self.should_exit:
            path = discovery.write_discovery(self.engine)
            print(f"Fixative engine {__version__} listening on {self.engine.url} (pid {self.engine.pid}); "
                  f"discovery file {path}", file=self.out, flush=True)

    async def on_tick(self, counter: int) -> bool:
        if await super().on_tick(counter):
            return True
        if self.idle_exit_s is not None and counter % 10 == 0 and self._idle_for() > self.idle_exit_s:
            print(f"Fixative engine idle for {self.idle_exit_s / 60:g} min; exiting.", file=self.out, flush=True)
            self.idle_exited = True
            return True
        return False

    def _idle_for(self) -> float:
        if self.manager.active_count() or self.activity.in_flight:
            return 0.0
        return time.monotonic() - max(self.activity.last, self.manager.last_activity)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Stop advertising first, then cancel the running job before waiting for connections.
        discovery.remove_discovery(self.engine)
        self.manager.begin_shutdown()
        await super().shutdown(sockets=sockets)


def bind_socket(host: str, port: int) -> socket.socket:
    """Bind now (port 0 = a free one) so the real port is known before serving."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if sys.platform != "win32":
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise FixativeError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from exc
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int, scheme: str = "http") -> str:
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1" if host == "0.0.0.0" else "::1"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def serve(config: ServerConfig, *, out: TextIO | None = None, log_level: str = "warning",
          wait_for_other_s: float = 60.0) -> int:
    """Run the engine until a signal or --idle-exit; returns the exit code."""
    out = out or sys.stdout
    problem = config.remote_problem()
    if problem is not None:
        raise FixativeError(problem)
    if bool(config.ssl_certfile) != bool(config.ssl_keyfile):
        raise FixativeError("--ssl-certfile and --ssl-keyfile go together.")
    if not is_loopback(config.host):
        print(f"WARNING: listening on {config.host}"
              f"{'' if config.tls else ' WITHOUT TLS (the token travels in clear)'}: other machines can "
              "reach this engine; anyone with the token can use it. Use a firewall.", file=sys.stderr, flush=True)

    lock = discovery.EngineLock()
    if not lock.acquire():
        # Another engine is running or starting right now: wait for it to answer.
        live = discovery.wait_for_live_engine(wait_for_other_s)
        if live is not None:
            print(f"A Fixative engine is already running at {live.url} (pid {live.pid}).", file=out, flush=True)
            return 0
        raise FixativeError(f"Another engine holds {discovery.lock_file()} but does not answer; "
                            "stop it or remove the lock file.")
    try:
        live = discovery.live_engine()
        if live is not None and live.pid != os.getpid():  # e.g. an engine from a version without the lock
            print(f"A Fixative engine is already running at {live.url} (pid {live.pid}).", file=out, flush=True)
            return 0
        return _run(config, out=out, log_level=log_level)
    finally:
        lock.release()


def _run(config: ServerConfig, *, out: TextIO, log_level: str) -> int:
    from fixative.imageio import restrict_pillow

    restrict_pillow()  # this process reads untrusted uploads: PNG, TIFF, JPEG (and WebP headers) only
    # Before the app exists, so its idle clock does not count the style and model look-ups (they import
    # torch), and before engine.json: whoever finds the engine finds the schema beside it.
    discovery.write_options_schema()
    sock = bind_socket(config.host, config.port)
    config.port = sock.getsockname()[1]
    app = create_app(config)
    engine = discovery.EngineInfo(url=url_for(config.host, config.port, "https" if config.tls else "http"),
                                  token=config.token,
                                  pid=os.getpid(), version=__version__)
    limits = ConnectionLimits(max_connections=config.max_connections, header_timeout=config.header_timeout,
                              body_grace=config.header_timeout, min_body_rate=config.min_upload_rate)
    uv_config = uvicorn.Config(asgi_app(app), lifespan="on", log_level=log_level, access_log=False,
                               http=protocol_class(limits), ws="none", timeout_keep_alive=5,
                               timeout_graceful_shutdown=5, server_header=False, proxy_headers=False,
                               ssl_certfile=config.ssl_certfile, ssl_keyfile=config.ssl_keyfile)
    server = EngineServer(uv_config, manager=app.state.manager, activity=app.state.activity,
                          engine=engine, idle_exit_s=config.idle_exit_s, out=out)
    try:
        server.run(sockets=[sock])
    finally:
        discovery.remove_discovery(engine)
        sock.close()
    if server.started or server.idle_exited:
        print("Fixative engine stopped.", file=out, flush=True)
        return 0
    return 1
