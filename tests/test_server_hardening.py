"""Issue 15: the engine against hostile input, each check run against a real `fixative serve` process.

Everything here talks to 127.0.0.1 only and is bounded in time and in the number of requests.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.helpers.engine import EngineHandle, engine_env, start_engine
from tests.helpers.images import png_bytes

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes, /proc and signals")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> EngineHandle:
    """One engine for the input checks; a fake ``gs`` on its PATH records any Ghostscript attempt."""
    home = tmp_path_factory.mktemp("hardening-home")
    fake_bin = home / "bin"
    fake_bin.mkdir()
    marker = home / "ghostscript-was-run"
    (fake_bin / "gs").write_text(f"#!/bin/sh\ntouch '{marker}'\nexit 1\n")
    (fake_bin / "gs").chmod(0o755)
    handle = start_engine(home, "--no-preload", "--max-queue", "2", "--lease-seconds", "5",
                          env={"PATH": f"{fake_bin}{os.pathsep}{os.environ.get('PATH', '')}"})
    handle.ghostscript_marker = marker  # type: ignore[attr-defined]
    yield handle
    assert handle.stop() == 0, handle.log()
    assert "Traceback" not in handle.log(), handle.log()


def submit(engine: EngineHandle, image: bytes, options: dict | str | None = None, filename: str = "art.png",
           **files: tuple[str, bytes]) -> httpx.Response:
    data = {}
    if options is not None:
        data["options"] = options if isinstance(options, str) else json.dumps(options)
    parts = {"image": (filename, image, "image/png"), **{name: (*value, "image/png") for name, value in files.items()}}
    response = engine.request("POST", "/v1/jobs", files=parts, data=data)
    if response.status_code == 202:
        engine.request("DELETE", f"/v1/jobs/{response.json()['id']}")
    return response


def assert_error(response: httpx.Response, status: int | tuple[int, ...], code: str | None = None) -> dict:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def tiff_bytes(array: np.ndarray, **kwargs) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **kwargs)
    return buffer.getvalue()


def proc_status(pid: int, key: str) -> int:
    """A /proc/PID/status memory field in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"{key} not in /proc/{pid}/status")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# -- 1. decompression bombs ------------------------------------------------------------------------------
def test_tiff_sample_bomb_is_refused_from_the_header_with_little_memory(engine):
    bomb = tiff_bytes(np.zeros((64, 64, 60_000), np.uint8), compression="zlib", photometric="minisblack",
                      planarconfig="contig")
    assert len(bomb) < 1_000_000  # small on disk, 245 MB once decoded
    # Warm up the upload path (imports, thread pool) with a small refused TIFF, then measure from idle.
    assert_error(submit(engine, tiff_bytes(np.zeros((8, 8), np.int8))), 400, "bad_image")
    idle = proc_status(engine.pid, "VmRSS")
    Path(f"/proc/{engine.pid}/clear_refs").write_text("5")  # reset VmHWM (the peak) to the current RSS
    started = time.monotonic()
    error = assert_error(submit(engine, bomb, filename="bomb.tif"), (400, 413))
    seconds = time.monotonic() - started
    peak = proc_status(engine.pid, "VmHWM")
    print(f"\nTIFF bomb (64x64x60000 zlib, {len(bomb):,} bytes): idle RSS {idle / 2**20:.1f} MiB, "
          f"peak {peak / 2**20:.1f} MiB, +{(peak - idle) / 2**20:.1f} MiB, answered in {seconds:.2f} s")
    assert "60000 samples per pixel" in error["message"]
    assert peak - idle <= 100 * 2**20


@pytest.mark.parametrize(("array", "kwargs", "expected"), [
    (np.zeros((6, 16, 16), np.uint8), {"volumetric": True, "tile": (16, 16)}, "volume"),
    (np.zeros((300, 4, 4), np.uint8), {}, "pages"),
    (np.zeros((64, 64, 4), np.float64), {"photometric": "rgb"}, "64-bit floating-point"),
    (np.zeros((64, 64), np.int8), {}, "signed 8-bit integer"),
    (np.zeros((64, 64), np.int16), {}, "signed 16-bit integer"),
    (np.zeros((64, 64), bool), {}, "1-bit (black and white)"),
])
def test_tiff_layouts_are_refused_from_the_header_with_a_true_message(engine, array, kwargs, expected):
    data = tiff_bytes(array, **kwargs) if expected != "pages" else _multipage(array)
    error = assert_error(submit(engine, data, filename="x.tif"), 400, "bad_image")
    assert expected in error["message"]


def _multipage(pages: np.ndarray) -> bytes:
    import tifffile

    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as writer:
        for page in pages:
            writer.write(page)
    return buffer.getvalue()


def test_pixel_limit_counts_every_format_from_the_header(tmp_path):
    engine = start_engine(tmp_path / "home", "--no-preload", "--max-pixels", "4096")
    try:
        big_tiff = tiff_bytes(np.zeros((65, 64, 3), np.uint8), compression="zlib")
        assert_error(submit(engine, big_tiff, filename="a.tif"), 413, "too_many_pixels")
        from PIL import Image

        jpeg = io.BytesIO()
        Image.new("RGB", (65, 64)).save(jpeg, "JPEG")
        small = png_bytes(np.full((64, 64, 3), 128, np.uint8))
        error = assert_error(submit(engine, small, anchor=("a.jpg", jpeg.getvalue())), 413, "too_many_pixels")
        assert "anchor" in error["message"]
    finally:
        assert engine.stop() == 0


# -- 4. magic bytes before any decoder ---------------------------------------------------------------------
def test_eps_named_png_is_400_and_ghostscript_never_runs(engine):
    from PIL import Image

    eps = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(eps, "EPS")
    gif = io.BytesIO()
    Image.new("P", (32, 32)).save(gif, "GIF")
    small = png_bytes(np.full((32, 32, 3), 128, np.uint8))
    for response in (submit(engine, eps.getvalue(), filename="x.png"),
                     submit(engine, gif.getvalue(), filename="x.png"),
                     submit(engine, small, style_image=("s.png", eps.getvalue())),
                     submit(engine, small, anchor=("a.png", eps.getvalue()))):
        error = assert_error(response, 400, "bad_image")
        assert "first bytes" in error["message"]
    time.sleep(0.5)
    assert not engine.ghostscript_marker.exists()


def run_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fixative.cli", *args], env=engine_env(home),
                          capture_output=True, text=True, timeout=timeout)


# -- 9. engine.lock ---------------------------------------------------------------------------------------
def test_planted_lock_symlink_is_refused_and_nothing_is_created_outside(tmp_path):
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    outside = tmp_path / "outside" / "victim"
    outside.parent.mkdir()
    os.symlink(outside, home / "state" / "engine.lock")
    result = run_cli(home, "serve", "--port", "0", "--no-preload", timeout=60)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "symbolic link" in result.stderr
    assert not outside.exists()
    assert not (home / "state" / "engine.json").exists()


def test_lock_file_is_private(tmp_path):
    from tests.helpers.engine import start_engine

    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    (home / "state" / "engine.lock").write_bytes(b"")
    os.chmod(home / "state" / "engine.lock", 0o666)
    engine = start_engine(home, "--no-preload")
    try:
        assert (os.stat(home / "state" / "engine.lock").st_mode & 0o777) == 0o600
    finally:
        assert engine.stop() == 0


# -- 10. --allow-remote ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "needed"), [
    ((), "--allow-remote"),
    (("--allow-remote",), "--allowed-host"),
    (("--allow-remote", "--allowed-host", "art.lan"), "--insecure-remote"),
    (("--allow-remote", "--allowed-host", "art.lan", "--insecure-remote", "--ssl-keyfile", "k.pem"), "go together"),
])
def test_remote_bind_needs_host_list_and_tls(tmp_path, extra, needed):
    result = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", "--no-preload", *extra)
    assert result.returncode == 1, result.stdout + result.stderr
    assert needed in result.stderr
    assert not (tmp_path / "state" / "engine.json").exists()


def test_allowed_host_names_are_the_only_extra_hosts(tmp_path):
    from tests.helpers.engine import start_engine

    engine = start_engine(tmp_path / "home", "--no-preload", "--allowed-host", "art.test")
    try:
        port = engine.url.rsplit(":", 1)[1]
        for host, expected in ((f"art.test:{port}", 200), (f"ART.test:{port}", 200), (f"other.test:{port}", 403),
                               (f"art.test:{int(port) + 1}", 403)):
            response = engine.request("GET", "/v1/info", headers={"Host": host})
            assert response.status_code == expected, (host, response.text)
    finally:
        assert engine.stop() == 0


# -- 2. no 5xx: nesting, surrogates, every record serialises ------------------------------------------------
SMALL_PNG = png_bytes(np.full((32, 32, 3), 128, np.uint8))


@pytest.mark.parametrize("options", [
    "[" * 5000, '{"models": ' + "[" * 5000 + "]" * 5000 + "}", '{"a": ' * 3000 + "1" + "}" * 3000,
    '{"target_style": "\\ud800"}', '{"models": ["vae:\\ud800"]}', '{"concept": "x\\udfff"}',
    '{"\\ud800": 1}', '{"mode": "\\ud800"}', '{"models": "taef2,\\udc00"}', '"' + "a" * 70_000 + '"',
])
def test_malformed_options_are_422_json_never_500(engine, options):
    error = assert_error(submit(engine, SMALL_PNG, options), 422)
    assert error["code"] in ("bad_options", "unknown_model", "unknown_style")
    assert engine.request("GET", "/v1/health").status_code == 200


def test_every_job_record_serialises(engine):
    created = submit_kept(engine, SMALL_PNG, {"models": ["taef2"], "concept": "a cat " * 30, "mode": "style",
                                              "target_style": "auto", "steps": 1})
    job_id = created.json()["id"]
    try:
        for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/report"):
            response = engine.request("GET", path)
            assert response.status_code in (200, 409), response.text
            response.json()
    finally:
        assert engine.request("DELETE", f"/v1/jobs/{job_id}").status_code == 200
    final = engine.wait_job(job_id, timeout=120)
    assert final["state"] == "cancelled" and final["error"]["code"] == "cancelled", final


def submit_kept(engine: EngineHandle, image: bytes, options: dict) -> httpx.Response:
    """Submit and keep the job (the caller deletes it)."""
    response = engine.request("POST", "/v1/jobs", files={"image": ("a.png", image, "image/png")},
                              data={"options": json.dumps(options)})
    assert response.status_code == 202, response.text
    return response


# -- 3. no paths or downloads through a job -----------------------------------------------------------------
@pytest.mark.parametrize("models", [["vae:/etc"], ["vae:/nonexistent/dir"], ["vae:/etc/passwd"],
                                    ["vae:stabilityai/sd-vae-ft-mse"], "taef2,vae:/tmp", ["someone/some-repo"]])
def test_paths_and_hub_ids_are_422_and_reveal_nothing(engine, models):
    error = assert_error(submit(engine, SMALL_PNG, {"models": models}), 422, "unknown_model")
    for leak in ("/etc", "/tmp", "/nonexistent", "passwd", "exist", "directory", "JSON", "repo id or folder"):
        assert leak not in error["message"], error
    assert "taef2" in error["message"]


def test_allow_model_lets_the_user_configure_extra_models(tmp_path):
    folder = tmp_path / "my-vae"
    engine = start_engine(tmp_path / "home", "--no-preload", "--allow-model", f"vae:{folder}")
    try:
        created = submit_kept(engine, SMALL_PNG, {"models": [f"vae:{folder}"], "steps": 1})
        job_id = created.json()["id"]
        final = engine.wait_job(job_id, timeout=120)
        assert final["state"] == "failed", final  # accepted; the empty folder then fails inside the job
        assert_error(submit(engine, SMALL_PNG, {"models": [f"vae:{folder}x"]}), 422, "unknown_model")
    finally:
        assert engine.stop() == 0


def test_cli_still_accepts_vae_paths():
    from fixative.options import ProtectOptions

    assert ProtectOptions(models=["vae:/some/folder"]).models == ["vae:/some/folder"]


# -- 8. documented behaviour ----------------------------------------------------------------------------
def test_unknown_target_style_is_422_at_submit_and_long_text_is_not_echoed(engine):
    error = assert_error(submit(engine, SMALL_PNG, {"target_style": "no-such-style"}), 422, "unknown_style")
    assert "no-such-style" in error["message"] and "op-art-stripes" in error["message"]
    error = assert_error(submit(engine, SMALL_PNG, {"target_style": "y" * 900}), 422, "unknown_style")
    assert len(error["message"]) < 400
    error = assert_error(submit(engine, SMALL_PNG, {"target_style": "z" * 50_000}), 422, "bad_options")
    assert len(error["message"]) < 400
    # a style image makes target_style irrelevant; poison mode does not use it either
    assert submit(engine, SMALL_PNG, {"target_style": "whatever"}, style_image=("s.png", SMALL_PNG)).status_code == 202
    assert submit(engine, SMALL_PNG, {"target_style": "whatever", "mode": "poison", "concept": "a cat",
                                      "target_concept": "a dog"}).status_code == 202


def test_too_small_image_is_a_clear_400(engine):
    error = assert_error(submit(engine, png_bytes(np.full((8, 40, 3), 90, np.uint8))), 400, "bad_image")
    assert "40×8" in error["message"] and "16" in error["message"]


def test_image_too_flat_to_protect_fails_with_a_clear_message(engine):
    created = submit_kept(engine, png_bytes(np.zeros((64, 64, 3), np.uint8)),
                          {"models": ["taef2"], "steps": 1, "quality": "fast", "robustness": "off",
                           "target_style": "op-art-stripes"})
    final = engine.wait_job(created.json()["id"], timeout=300)
    assert final["state"] == "failed", final
    assert final["error"]["code"] == "nothing_to_protect" and "too flat" in final["error"]["message"]


# -- 7. JSON errors wherever the server controls the answer -----------------------------------------------
ORIGIN = "http://allowed.example"


@pytest.fixture(scope="module")
def cors_engine(tmp_path_factory) -> EngineHandle:
    handle = start_engine(tmp_path_factory.mktemp("cors-home"), "--no-preload", "--allow-origin", ORIGIN)
    yield handle
    assert handle.stop() == 0, handle.log()
    assert "Traceback" not in handle.log(), handle.log()


def raw_exchange(engine: EngineHandle, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (no client library fixes them up); read the answer until the server closes."""
    import socket

    host, port = engine.url.rsplit("/", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(request)
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError):
                break
            if not chunk:
                break
            received += chunk
            if b"\r\n\r\n" in received:
                head, _, body = received.partition(b"\r\n\r\n")
                length = [line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
                if length and len(body) >= int(length[0].split(b":")[1]):
                    break
    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize("request_head", [
    b"GET /v1/health HTTP/1.1\r\n\r\n",                                                  # no Host
    b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nHost: 127.0.0.1:{port}\r\n\r\n",  # two Hosts
    b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
    b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: -1\r\n\r\n",
    b"POST /v1/jobs HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nBad Header Line\r\n\r\n",
])
def test_malformed_http_gets_a_json_400(cors_engine, request_head):
    port = cors_engine.url.rsplit(":", 1)[1].encode()
    status, headers, body = raw_exchange(cors_engine, request_head.replace(b"{port}", port))
    assert status == 400, body
    assert headers["content-type"].startswith("application/json"), headers
    assert json.loads(body)["error"]["code"] == "bad_request"


def test_trailing_slash_cors_401_and_preflight_are_json(cors_engine):
    token = {"Authorization": f"Bearer {cors_engine.token}"}
    tiny = png_bytes(np.full((4, 4, 3), 9, np.uint8))  # checked and refused by the upload route itself
    response = httpx.post(cors_engine.url + "/v1/jobs/", headers=token, timeout=10,
                          files={"image": ("a.png", tiny, "image/png")}, data={"options": '{"steps": 1}'})
    assert "4×4" in assert_error(response, 400, "bad_image")["message"]  # the same route, not a 307
    assert_error(cors_engine.request("GET", "/v1/info/"), 404, "not_found")

    refused = cors_engine.request("GET", "/v1/info", token=None, headers={"Origin": ORIGIN})
    assert_error(refused, 401, "unauthorized")
    assert refused.headers["access-control-allow-origin"] == ORIGIN

    for method, asked_headers in (("PUT", "authorization"), ("GET", "x-evil")):
        preflight = cors_engine.request("OPTIONS", "/v1/info", token=None, headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": asked_headers})
        assert_error(preflight, 400, "cors_refused")
    allowed = cors_engine.request("OPTIONS", "/v1/info", token=None, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    assert_error(cors_engine.request("PATCH", "/v1/jobs/x", headers={"Origin": ORIGIN}), 405, "method_not_allowed")


# -- 5. slow clients ---------------------------------------------------------------------------------------
def test_slowloris_connections_are_closed_and_fds_return_to_baseline(tmp_path):
    import select
    import socket

    engine = start_engine(tmp_path / "home", "--no-preload", "--max-connections", "20", "--header-timeout", "3")
    try:
        host, port = engine.url.rsplit("/", 1)[1].rsplit(":", 1)
        assert engine.request("GET", "/v1/health").status_code == 200
        time.sleep(0.5)
        baseline = open_fds(engine.pid)
        sockets = []
        for _ in range(30):  # 30 clients, each sending one header line per second for up to 10 s
            sock = socket.create_connection((host, int(port)), timeout=5)
            sock.sendall(f"GET /v1/info HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
            sockets.append(sock)
        answers: dict[socket.socket, bytes] = {sock: b"" for sock in sockets}
        open_socks = set(sockets)
        closed_after: list[float] = []
        started = time.monotonic()
        while open_socks and time.monotonic() - started < 10:
            for sock in list(open_socks):
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
            readable, _, _ = select.select(list(open_socks), [], [], 1.0)
            for sock in readable:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    chunk = b""
                answers[sock] += chunk
                if not chunk:
                    open_socks.discard(sock)
                    closed_after.append(time.monotonic() - started)
        still_open = len(open_socks)
        statuses = sorted(answer.split(b" ", 2)[1].decode() for answer in answers.values() if answer)
        for sock in sockets:
            sock.close()
        print(f"\nslowloris: 30 connections, closed by the server {len(closed_after)}, statuses {statuses}, "
              f"last closed after {max(closed_after, default=0):.1f} s")
        assert still_open == 0
        assert statuses.count("503") >= 10 and set(statuses) <= {"408", "503"}
        assert max(closed_after) < 8
        assert all(json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] in (
            "request_timeout", "too_many_connections") for answer in answers.values() if answer)

        # an upload at 20 B/s is cut off once it has taken longer than the header timeout
        sock = socket.create_connection((host, int(port)), timeout=5)
        sock.sendall(f"POST /v1/jobs HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {engine.token}\r\n"
                     "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n\r\n".encode())
        started = time.monotonic()
        cut = None
        while time.monotonic() - started < 12:
            try:
                sock.sendall(b"x" * 20)
            except OSError:
                cut = time.monotonic() - started
                break
            readable, _, _ = select.select([sock], [], [], 1.0)
            if readable:
                try:
                    if not sock.recv(65536):
                        cut = time.monotonic() - started
                        break
                except OSError:
                    cut = time.monotonic() - started
                    break
        sock.close()
        print(f"slow upload (20 B/s) cut after {cut} s")
        assert cut is not None and cut < 8

        deadline = time.monotonic() + 10
        while open_fds(engine.pid) > baseline and time.monotonic() < deadline:
            time.sleep(0.2)
        print(f"engine fds: baseline {baseline}, after {open_fds(engine.pid)}")
        assert open_fds(engine.pid) <= baseline
        assert engine.request("GET", "/v1/health").status_code == 200
    finally:
        assert engine.stop() == 0
    assert "Traceback" not in engine.log(), engine.log()


# -- 6. bounded state ----------------------------------------------------------------------------------------
LONG_JOB = {"models": ["taef2"], "quality": "fast", "steps": 2000, "robustness": "off",
            "target_style": "op-art-stripes"}


def spool_files(tmp: Path) -> list[Path]:
    return [path for folder in tmp.glob("fixative-uploads-*") for path in folder.iterdir()]


def test_job_records_are_capped_and_queued_uploads_live_in_private_files(tmp_path):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    engine = start_engine(tmp_path / "home", "--no-preload", "--max-queue", "2", "--max-jobs", "4",
                          "--lease-seconds", "60", env={"TMPDIR": str(tmp)})
    art = png_bytes(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    try:
        info = engine.request("GET", "/v1/info").json()["limits"]
        assert info["max_jobs"] == 4
        # a refused upload leaves no file behind
        assert_error(submit(engine, b"\x89PNG\r\n\x1a\n" + b"\0" * 100), 400, "bad_image")
        assert spool_files(tmp) == []

        running = submit_kept(engine, art, LONG_JOB).json()["id"]
        cancelled = []
        for _ in range(12):  # submit + cancel, as an attacker would: old records make room
            queued = submit_kept(engine, art, LONG_JOB).json()["id"]
            files = spool_files(tmp)
            assert files and all((path.stat().st_mode & 0o777) == 0o600 for path in files)
            assert all((path.parent.stat().st_mode & 0o777) == 0o700 for path in files)
            assert engine.request("DELETE", f"/v1/jobs/{queued}").json()["state"] == "cancelled"
            cancelled.append(queued)
        kept = [job_id for job_id in cancelled if engine.request("GET", f"/v1/jobs/{job_id}").status_code == 200]
        assert kept == cancelled[-3:]  # 4 records: the running job and the 3 newest cancelled ones
        assert engine.request("GET", f"/v1/jobs/{running}").json()["state"] in ("queued", "running")
        # only the running job's upload is still on disk
        assert len(spool_files(tmp)) == 1

        # a queued job's file goes when the engine shuts down
        submit_kept(engine, art, LONG_JOB)
        assert len(spool_files(tmp)) == 2
    finally:
        assert engine.stop() == 0
    assert spool_files(tmp) == [] and list(tmp.glob("fixative-uploads-*")) == []


def test_default_body_limit_follows_the_pixel_limit(tmp_path):
    engine = start_engine(tmp_path / "home", "--no-preload", "--max-pixels", "10000")
    try:
        limit = engine.request("GET", "/v1/info").json()["limits"]["max_body_bytes"]
        assert limit == 10_000 * 8 + 800 + 16 * 2**20
        body = b"\0" * (limit + 1)
        assert_error(submit(engine, body), 413, "body_too_large")
    finally:
        assert engine.stop() == 0
