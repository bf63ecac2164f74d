"""The engine's HTTP/1.1 connection handler: uvicorn's h11 protocol with JSON errors and slow-client limits.

uvicorn answers a request h11 cannot parse (missing Host, conflicting Content-Length, odd
Transfer-Encoding...) with a text/plain 400, and keeps a connection open for as long as a client
trickles its headers or body. This subclass answers JSON instead and closes connections that are too
many, too slow to send their headers, or too slow to send their body.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol


@dataclass(frozen=True)
class ConnectionLimits:
    max_connections: int = 100
    """Open connections at once; one more gets a JSON 503 and is closed."""
    header_timeout: float = 10.0
    """Seconds from connecting (or from the previous answer) to a complete request head."""
    body_grace: float = 10.0
    """Seconds a request body may take before its average rate is checked."""
    min_body_rate: float = 8 * 1024
    """Bytes per second a body must average after the grace period."""


def raw_json_response(status: int, reason: str, code: str, message: str) -> bytes:
    """A complete HTTP/1.1 answer in the API's error shape, for moments when h11 cannot build one
    (nothing parsed yet) — always followed by closing the connection."""
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
            "connection: close\r\n\r\n").encode()
    return head + body


def protocol_class(limits: ConnectionLimits) -> type[H11Protocol]:
    """The protocol class for uvicorn.Config(http=...), bound to these limits."""
    return type("EngineH11Protocol", (EngineH11Protocol,), {"limits": limits})


class EngineH11Protocol(H11Protocol):
    limits = ConnectionLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: Any = None
        self._body_timer: Any = None
        self._body_started = 0.0
        self._body_bytes = 0
        self._watched_cycle: Any = None

    # -- connections ---------------------------------------------------------------------------------
    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "Service Unavailable", "too_many_connections",
                         f"The engine already has {self.limits.max_connections} open connections; retry later.")
            return
        self._arm_head_timer(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def _refuse(self, status: int, reason: str, code: str, message: str) -> None:
        if not self.transport.is_closing():
            self.transport.write(raw_json_response(status, reason, code, message))
            self.transport.close()
        self._cancel_timers()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    # -- request heads -----------------------------------------------------------------------------------
    def _arm_head_timer(self, current_cycle: Any) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_deadline, current_cycle)

    def _head_deadline(self, cycle_then: Any) -> None:
        self._head_timer = None
        if self.cycle is cycle_then and not self.transport.is_closing():  # no new request head since
            self._refuse(408, "Request Timeout", "request_timeout",
                         f"The request headers did not arrive within {self.limits.header_timeout:g} s.")

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer(self.cycle)  # the next request's head has the same deadline

    # -- request bodies ------------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        cycle_before = self.cycle
        super().data_received(data)
        cycle = self.cycle
        if cycle is None or self.transport.is_closing():
            return
        if cycle is not cycle_before and cycle is not self._watched_cycle:  # a new request head arrived
            self._watched_cycle = cycle
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            self._body_started = time.monotonic()
            self._body_bytes = 0
            if cycle.more_body and self._body_timer is None:
                self._body_timer = self.loop.call_later(1.0, self._check_body_rate)
        elif cycle.more_body:
            self._body_bytes += len(data)

    def _check_body_rate(self) -> None:
        self._body_timer = None
        cycle = self.cycle
        if cycle is None or not cycle.more_body or cycle is not self._watched_cycle or self.transport.is_closing():
            return
        elapsed = time.monotonic() - self._body_started
        if elapsed > self.limits.body_grace and self._body_bytes < self.limits.min_body_rate * elapsed:
            self.logger.info("closing a connection whose request body arrives at %.0f B/s",
                             self._body_bytes / elapsed)
            self.transport.close()  # the app sees a disconnect; no answer can be sent mid-body
            return
        self._body_timer = self.loop.call_later(1.0, self._check_body_rate)

    # -- malformed requests ----------------------------------------------------------------------------------
    def send_400_response(self, msg: str) -> None:
        """JSON instead of uvicorn's text/plain answer to a request h11 cannot parse."""
        self.logger.debug("malformed request: %s", msg)
        body = json.dumps({"error": {"code": "bad_request",
                                     "message": "Malformed HTTP request (e.g. missing or conflicting Host, "
                                                "Content-Length or Transfer-Encoding)."}}).encode()
        try:
            for event in (h11.Response(status_code=400, reason=b"Bad Request",
                                       headers=[(b"content-type", b"application/json"), (b"connection", b"close"),
                                                (b"content-length", str(len(body)).encode())]),
                          h11.Data(data=body), h11.EndOfMessage()):
                self.transport.write(self.conn.send(event))
        except h11.LocalProtocolError:  # an answer was already under way: all we can do is close
            pass
        self._cancel_timers()
        self.transport.close()
