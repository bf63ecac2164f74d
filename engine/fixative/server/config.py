"""Settings of one engine process; the ``fixative serve`` flags map one to one onto these fields."""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass, field

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """32 random bytes, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0
    """0 = pick a free port; the real one is filled in once the socket is bound."""
    token: str = field(default_factory=new_token)
    allow_remote: bool = False
    extra_hosts: list[str] = field(default_factory=list)
    """--allowed-host names (host or host:port) accepted in the Host header besides loopback."""
    insecure_remote: bool = False
    """--insecure-remote: serve a non-loopback address without TLS (the token then travels in clear)."""
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None
    allowed_origins: list[str] = field(default_factory=list)
    max_queue: int = 16
    max_pixels: int = 100_000_000
    max_body_bytes: int = 0
    """0 = derived from max_pixels: the largest 16-bit RGBA image it allows, plus form overhead."""
    lease_seconds: float = 30.0
    result_ttl: float = 600.0
    fetched_grace: float = 60.0
    """How long report and preview stay after the result was fetched."""
    idle_exit_s: float | None = None
    preload: bool = True
    pipeline: str | None = None
    max_connections: int = 100
    header_timeout: float = 10.0
    """Seconds a client has to send a complete request head."""
    min_upload_rate: float = 8 * 1024
    """Bytes/s a request body must average once it has taken longer than ``header_timeout``."""
    max_jobs: int = 256
    """Job records kept (queued, running and finished); the oldest finished one makes room."""
    allowed_models: list[str] = field(default_factory=list)
    """--allow-model names jobs may use besides the registry's (e.g. vae:/path): set here, never per job."""
    """diffusers pipeline for all jobs: set here, never per request (no paths over HTTP)."""

    def __post_init__(self) -> None:
        if self.max_body_bytes <= 0:
            from fixative.server.limits import default_body_limit

            self.max_body_bytes = default_body_limit(self.max_pixels)

    def allowed_hosts(self) -> set[str]:
        """Values of the Host header this engine answers (DNS-rebinding guard).

        There is no wildcard: even with --allow-remote every accepted name is listed (--allowed-host).
        """
        names = set(LOOPBACK_NAMES)
        if self.host not in ("0.0.0.0", "::"):
            names.add(f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host)
        hosts = {f"{name}:{self.port}".lower() for name in names}
        for extra in self.extra_hosts:
            extra = extra.strip().lower()
            has_port = extra.rsplit("]", 1)[-1].count(":") == 1 if extra.startswith("[") else extra.count(":") == 1
            hosts.add(extra if has_port else f"{extra}:{self.port}")
        return hosts

    @property
    def tls(self) -> bool:
        return bool(self.ssl_certfile)

    def remote_problem(self) -> str | None:
        """Why this configuration must not start (a non-loopback bind needs consent, names and TLS)."""
        if is_loopback(self.host):
            return None
        if not self.allow_remote:
            return (f"Refusing to listen on {self.host}: the engine is local-only. "
                    "Add --allow-remote if you really want other machines to reach it.")
        if not self.extra_hosts:
            return ("--allow-remote needs --allowed-host NAME (repeatable): the host names clients use "
                    "to reach this engine; any other Host header is refused.")
        if not self.tls and not self.insecure_remote:
            return ("--allow-remote needs TLS (--ssl-certfile and --ssl-keyfile) so the token is not sent "
                    "in clear; add --insecure-remote to serve plain HTTP anyway.")
        return None
