"""A small stand-in for `fixative serve` that speaks docs/engine-api.md, for fast client tests.

It parses multipart with the email package (independently of the client's hand-built bodies),
changes the pixels of the PNG it gets by a known amount, and can be told to fail or to run slow.
Run as a program (``python -m tests.krita.fake_engine --state DIR``) it writes the discovery
file like the real engine, so the client's start path can be tested without torch.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import threading
import time
import uuid
from collections.abc import Callable
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "plugins" / "common"))

import fixative_png  # noqa: E402

STYLES = ["impasto", "woodblock", "cubist"]


def perturb_png(data: bytes, amount: int = 3) -> bytes:
    """The same PNG with every colour sample raised by ``amount`` (alpha untouched), wrapping."""
    width, height, channels, bit_depth, samples = fixative_png.decode_png(data)
    out = bytearray(samples)
    sample_bytes = bit_depth // 8
    colour = channels - 1 if channels in (2, 4) else channels
    stride = channels * sample_bytes
    low = sample_bytes - 1  # the least significant byte of each sample
    for channel in range(colour):
        start = channel * sample_bytes + low
        out[start::stride] = bytes((value + amount) & 0xFF for value in out[start::stride])
    return fixative_png.encode_png(width, height, channels, bit_depth, bytes(out))


class Job:
    def __init__(self, image: bytes, options: dict, parts: dict, duration: float) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.image, self.options, self.parts = image, options, parts
        self.started = time.monotonic()
        self.duration = duration
        self.state = "running"
        self.polls = 0

    def snapshot(self, engine: FakeEngine) -> dict:
        if self.state == "running":
            if engine.fail_with:
                self.state = "failed"
            elif time.monotonic() - self.started >= self.duration:
                self.state = "done"
        fraction = min(1.0, (time.monotonic() - self.started) / max(self.duration, 1e-6))
        error = None
        if self.state == "failed":
            error = {"code": engine.fail_with[0], "message": engine.fail_with[1]}
        return {"id": self.id, "state": self.state,
                "progress": 1.0 if self.state == "done" else round(fraction, 3),
                "eta_s": None if self.state != "running" else max(0.0, self.duration * (1 - fraction)),
                "stage": "optimising" if self.state == "running" else self.state,
                "queue_position": None, "error": error}


class FakeEngine:
    """Start with ``FakeEngine(state_dir).start()``; ``.url``, ``.token``, ``.jobs``, ``.stop()``."""

    def __init__(self, state_dir: str | os.PathLike | None = None, job_seconds: float = 0.3,
                 amount: int = 3, perturb: Callable[[bytes], bytes] | None = None) -> None:
        self.state_dir = Path(state_dir) if state_dir else None
        self.token = secrets.token_hex(16)
        self.job_seconds = job_seconds
        self.amount = amount
        self.perturb = perturb  # PNG in, PNG out; None: perturb_png by ``amount``
        self.fail_with: tuple[str, str] | None = None
        self.reject_submit: tuple[int, str, str] | None = None
        self.jobs: dict[str, Job] = {}
        self.deleted: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.options_schema: dict | None = None  # served in /v1/info when set
        self.report_extra: dict = {}  # more keys for the job report (e.g. "summary")
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self) -> FakeEngine:
        self._thread.start()
        if self.state_dir is not None:
            self.state_dir.mkdir(parents=True, exist_ok=True)
            (self.state_dir / "engine.json").write_text(json.dumps(
                {"url": self.url, "token": self.token, "pid": os.getpid(), "version": "0.1.0"}))
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler_class(self):
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, content_type: str = "application/json"):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _json(self, status: int, value: dict):
                self._send(status, json.dumps(value).encode())

            def _error(self, status: int, code: str, message: str):
                self._json(status, {"error": {"code": code, "message": message}})

            def _authorised(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {engine.token}":
                    self._error(401, "unauthorized", "Missing or wrong token.")
                    return False
                return True

            def _job(self, job_id: str) -> Job | None:
                job = engine.jobs.get(job_id)
                if job is None:
                    self._error(404, "not_found", "No such job.")
                return job

            def do_GET(self):
                engine.requests.append(("GET", self.path))
                if self.path == "/v1/health":
                    return self._json(200, {"status": "ok"})
                if not self._authorised():
                    return None
                parts = self.path.strip("/").split("/")
                if self.path == "/v1/info":
                    extra = {"options_schema": engine.options_schema} if engine.options_schema else {}
                    return self._json(200, {**extra,
                        "version": "0.1.0", "device": "cpu",
                        "models": [{"name": "taef2", "available": True, "kind": "taesd"}],
                        "modes": ["style", "poison", "both"],
                        "intensities": ["low", "default", "high"],
                        "qualities": ["fast", "default", "max"],
                        "robustness": ["off", "standard", "strong"], "styles": STYLES,
                        "limits": {"max_pixels": 10**8, "max_body_bytes": 10**9, "max_queue": 8}})
                if len(parts) >= 3 and parts[:2] == ["v1", "jobs"]:
                    job = self._job(parts[2])
                    if job is None:
                        return None
                    snapshot = job.snapshot(engine)
                    if len(parts) == 3:
                        job.polls += 1
                        return self._json(200, snapshot)
                    if snapshot["state"] != "done":
                        return self._error(409, "not_done", "The job is not done yet.")
                    if parts[3] == "result":
                        result = (engine.perturb(job.image) if engine.perturb
                                  else perturb_png(job.image, engine.amount))
                        return self._send(200, result, "image/png")
                    if parts[3] == "preview":
                        return self._send(200, fixative_png.encode_png(
                            6, 2, 3, 8, bytes(range(36))), "image/png")
                    if parts[3] == "report":
                        return self._json(200, {"steps": 3, "seconds": 0.1, "psnr": 42.0,
                                                **engine.report_extra})
                return self._error(404, "not_found", "No such endpoint.")

            def do_POST(self):
                engine.requests.append(("POST", self.path))
                if not self._authorised():
                    return None
                if self.path == "/v1/credentials":  # no identity here: signing is refused
                    return self._error(422, "credentials_error",
                                       "Signing failed: this engine has no identity.")
                if self.path != "/v1/jobs":
                    return self._error(404, "not_found", "No such endpoint.")
                if engine.reject_submit:
                    return self._error(*engine.reject_submit)
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                head = ("Content-Type: {}\r\n\r\n".format(self.headers.get("Content-Type"))).encode()
                message = BytesParser(policy=HTTP).parsebytes(head + body)
                parts = {}
                for part in message.iter_parts():
                    name = part.get_param("name", header="content-disposition")
                    parts[name] = (part.get_filename(), part.get_content_type(),
                                   part.get_payload(decode=True))
                if "image" not in parts:
                    return self._error(400, "bad_image", "No image was sent.")
                try:
                    fixative_png.decode_png(parts["image"][2])
                except ValueError as exc:
                    return self._error(400, "bad_image", f"The image is not a readable PNG: {exc}")
                options = json.loads(parts["options"][2].decode()) if "options" in parts else {}
                known = ({field["name"] for field in engine.options_schema["fields"]}
                         if engine.options_schema else
                         {"mode", "intensity", "quality", "robustness", "target_style", "concept",
                          "target_concept", "models", "device", "seed", "steps", "pipeline"})
                unknown = set(options) - known
                if unknown:
                    return self._error(422, "bad_options", f"Unknown option {sorted(unknown)[0]}.")
                job = Job(parts["image"][2], options, parts, engine.job_seconds)
                engine.jobs[job.id] = job
                return self._json(202, {"id": job.id, "state": "queued", "queue_position": 0})

            def do_DELETE(self):
                engine.requests.append(("DELETE", self.path))
                if not self._authorised():
                    return None
                parts = self.path.strip("/").split("/")
                job = self._job(parts[2]) if len(parts) == 3 else None
                if job is None:
                    return None
                job.state = "cancelled"
                engine.deleted.append(job.id)
                return self._json(200, {"id": job.id, "state": "cancelled"})

        return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--state", required=True)
    parser.add_argument("--seconds", type=float, default=0.3)
    parser.add_argument("--delay", type=float, default=0.0, help="wait before serving")
    args = parser.parse_args()
    time.sleep(args.delay)
    engine = FakeEngine(args.state, job_seconds=args.seconds).start()
    try:
        while True:
            time.sleep(1)
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
