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
    allowed_origins: list[str] = field(default_factory=list)
    max_queue: int = 16
    max_pixels: int = 100_000_000
    max_body_bytes: int = 1024 * 1024 * 1024
    lease_seconds: float = 30.0
    result_ttl: float = 600.0
    fetched_grace: float = 60.0
    """How long report and preview stay after the result was fetched."""
    idle_exit_s: float | None = None
    preload: bool = True
    pipeline: str | None = None
    """diffusers pipeline for all jobs: set here, never per request (no paths over HTTP)."""

    def allowed_hosts(self) -> set[str]:
        """Values of the Host header this engine answers (DNS-rebinding guard)."""
        names = set(LOOPBACK_NAMES)
        if self.host not in ("0.0.0.0", "::"):
            names.add(f"[{self.host}]" if ":" in self.host else self.host)
        return {f"{name}:{self.port}".lower() for name in names}

    def any_host(self) -> bool:
        """A wildcard bind with --allow-remote cannot know its public names: accept any Host."""
        return self.allow_remote and self.host in ("0.0.0.0", "::")
