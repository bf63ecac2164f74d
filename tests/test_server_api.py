"""The engine's HTTP API against a real `fixative serve` process: security, limits, jobs end to end."""

from __future__ import annotations

import json
import time

import httpx
import numpy as np
import pytest

from tests.conftest import MODELS, painting
from tests.helpers.engine import EngineHandle, start_engine
from tests.helpers.images import decode, png_bytes, png_claiming, psnr, truncated_png

FAST = {"models": ["taef2"], "quality": "fast", "steps": 4}
QUICK = {"models": ["taef2"], "quality": "fast", "steps": 1, "robustness": "off", "target_style": "op-art-stripes"}
"""The cheapest real job: one step, a fixed built-in style (no automatic style search)."""
LONG = {"models": ["taef2"], "quality": "fast", "steps": 2000, "robustness": "off"}
"""A job that runs for minutes on a 64 px image unless cancelled (plateau stop comes after 1200 steps)."""
JOB_TIMEOUT = 600
"""Generous: tiny jobs take seconds, but CI machines can be slow and shared."""
ALLOWED_ORIGIN = "http://allowed.example"
LEASE_S = 3


def needs_core():
    pytest.importorskip("fixative.core")
    pytest.importorskip("fixative.imageio")
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd/taef2_encoder.pth is missing")


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> EngineHandle:
    home = tmp_path_factory.mktemp("engine-home")
    handle = start_engine(home, "--max-queue", "2", "--lease-seconds", str(LEASE_S), "--max-body-mb", "2",
                          "--allow-origin", ALLOWED_ORIGIN)
    yield handle
    assert handle.stop() == 0, handle.log()
    assert "Traceback" not in handle.log(), handle.log()


SUBMITTED: list[tuple[EngineHandle, str]] = []


@pytest.fixture(autouse=True)
def _cancel_leftover_jobs():
    """A failed test must not leave a long job running in front of the next test's jobs."""
    yield
    while SUBMITTED:
        handle, job_id = SUBMITTED.pop()
        if handle.alive():
            handle.request("DELETE", f"/v1/jobs/{job_id}")


def submit(engine: EngineHandle, image: bytes, options: dict | None = None, filename: str = "art.png",
           **kwargs) -> httpx.Response:
    data = {"options": json.dumps(options)} if options is not None else {}
    response = engine.request("POST", "/v1/jobs", files={"image": (filename, image, "application/octet-stream")},
                              data=data, **kwargs)
    if response.status_code == 202:
        SUBMITTED.append((engine, response.json()["id"]))
    return response


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"] and "Traceback" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]


def wait_running(engine: EngineHandle, job_id: str, timeout: float = 600) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = engine.request("GET", f"/v1/jobs/{job_id}").json()
        if status["state"] == "running" and status["stage"].startswith("optimising"):
            return status  # past target selection: cancel now takes effect within one step
        assert status["state"] in ("queued", "running"), status
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never started")


# -- security --------------------------------------------------------------------------------------------
def test_health_needs_no_token_and_says_only_ok(engine):
    response = engine.request("GET", "/v1/health", token=None)
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/v1/info"), ("GET", "/openapi.json"), ("GET", "/v1/jobs/abc"), ("POST", "/v1/jobs"),
    ("GET", "/v1/jobs/abc/result"), ("DELETE", "/v1/jobs/abc"), ("GET", "/no/such/path")])
def test_everything_but_health_needs_the_token(engine, method, path):
    wrong = engine.token[:-4] + ("aaaa" if not engine.token.endswith("aaaa") else "bbbb")
    for token in (None, wrong, engine.token.upper()):
        response = engine.request(method, path, token=token)
        assert_error(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"
    for header in (f"Basic {engine.token}", "Bearer", engine.token):
        response = engine.request(method, path, token=None, headers={"Authorization": header})
        assert_error(response, 401, "unauthorized")


@pytest.mark.parametrize("host", ["evil.example", "evil.example:{port}", "127.0.0.1:1", "localhost.evil.example:{port}",
                                  "127.0.0.1"])
def test_foreign_host_is_403_even_with_token(engine, host):
    port = engine.url.rsplit(":", 1)[1]
    for path in ("/v1/info", "/v1/health"):
        assert_error(engine.request("GET", path, headers={"Host": host.format(port=port)}), 403, "forbidden_host")


def test_loopback_host_names_are_accepted(engine):
    port = engine.url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"LOCALHOST:{port}"):
        assert engine.request("GET", "/v1/info", headers={"Host": host}).status_code == 200


def test_origin_not_on_allow_list_is_403(engine):
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{engine.url.rsplit(':', 1)[1]}"):
        assert_error(engine.request("GET", "/v1/info", headers={"Origin": origin}), 403, "forbidden_origin")
    allowed = engine.request("GET", "/v1/info", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200
    assert allowed.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN


def test_info_lists_models_modes_styles_and_limits(engine):
    info = engine.request("GET", "/v1/info").json()
    from fixative import __version__

    assert info["version"] == __version__
    assert {"style", "poison", "both"} <= set(info["modes"])
    names = {model["name"]: model for model in info["models"]}
    assert names["taef2"]["available"] is (MODELS / "taef2_encoder.pth").exists()
    assert info["limits"]["max_queue"] == 2 and info["limits"]["max_body_bytes"] == 2 * 1024 * 1024
    assert info["device"] in ("cpu", "cuda", "mps")
    assert isinstance(info["styles"], list)


def test_unknown_paths_methods_and_jobs_are_json_errors(engine):
    assert_error(engine.request("GET", "/v2/nothing"), 404, "not_found")
    assert_error(engine.request("PUT", "/v1/jobs"), 405, "method_not_allowed")
    assert_error(engine.request("GET", "/v1/jobs/does-not-exist"), 404, "not_found")
    assert_error(engine.request("DELETE", "/v1/jobs/does-not-exist"), 404, "not_found")


# -- input limits -----------------------------------------------------------------------------------------
def test_corrupt_images_are_400(engine):
    needs_core()
    art = painting(size=64)
    for broken in (b"not an image at all", truncated_png(art), b"\x89PNG\r\n\x1a\n"):
        assert_error(submit(engine, broken, FAST), 400, "bad_image")
    assert_error(engine.request("POST", "/v1/jobs", files={"image": ("e.png", b"", "image/png")}), 400, "bad_image")


def test_lossy_or_missing_image_is_refused(engine):
    needs_core()
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(painting(size=64)).save(buffer, format="JPEG")
    assert_error(submit(engine, buffer.getvalue(), FAST, filename="a.jpg"), 400, "bad_image")
    assert_error(engine.request("POST", "/v1/jobs", data={"options": "{}"}), 422)


def test_header_claiming_too_many_pixels_is_413_without_decoding(engine):
    needs_core()
    started = time.monotonic()
    error = assert_error(submit(engine, png_claiming(60_000, 60_000), FAST), 413, "too_many_pixels")
    assert time.monotonic() - started < 5
    assert "3,600,000,000" in error["message"]


def test_body_over_the_limit_is_413(engine):
    big = b"\0" * (3 * 1024 * 1024)
    assert_error(submit(engine, big, FAST), 413, "body_too_large")  # refused from Content-Length

    def chunks():  # no Content-Length: refused while streaming
        yield b"--xyz\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
        for _ in range(30):
            yield b"\0" * (128 * 1024)
        yield b"\r\n--xyz--\r\n"

    response = engine.request("POST", "/v1/jobs", content=chunks(),
                              headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(response, 413, "body_too_large")
    assert engine.request("GET", "/v1/health").status_code == 200


@pytest.mark.parametrize(("options", "code"), [
    ({"quality": "ultra"}, "bad_options"), ({"colour": "red"}, "bad_options"),
    ({"models": ["no-such-model"]}, None), ({"pipeline": "/etc"}, "bad_options"), ([1, 2], "bad_options")])
def test_bad_options_are_422(engine, options, code):
    needs_core()
    assert_error(submit(engine, png_bytes(painting(size=32)), options), 422, code)
    response = engine.request("POST", "/v1/jobs", files={"image": ("a.png", png_bytes(painting(size=32)))},
                              data={"options": "{not json"})
    assert_error(response, 422, "bad_options")


# -- jobs -------------------------------------------------------------------------------------------------
def test_round_trip_png_8bit(engine):
    needs_core()
    art = painting(size=64)
    created = submit(engine, png_bytes(art), FAST)
    assert created.status_code == 202, created.text
    job = created.json()
    assert job["state"] == "queued" and isinstance(job["id"], str)
    status = engine.wait_job(job["id"], timeout=JOB_TIMEOUT)
    assert status["state"] == "done", status
    assert status["progress"] == 1.0 and status["error"] is None and status["queue_position"] is None

    result = engine.request("GET", f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert result.content.startswith(b"\x89PNG")
    protected = decode(result.content)
    assert protected.shape == art.shape and protected.dtype == np.uint8
    assert not np.array_equal(protected, art)  # something was done
    assert psnr(protected, art) > 28  # ... and it is imperceptible

    report = engine.request("GET", f"/v1/jobs/{job['id']}/report").json()
    assert report["steps"] >= 1 and report["models"] == ["taef2"]
    assert report["width"] == 64 and report["height"] == 64 and "taef2" in report["closing"]

    preview = engine.request("GET", f"/v1/jobs/{job['id']}/preview")
    assert preview.status_code == 200 and preview.headers["content-type"] == "image/png"
    strip = decode(preview.content)
    assert strip.shape[0] <= 256 + 32 and strip.shape[1] >= 2 * strip.shape[0]  # + a label band


def test_round_trip_tiff_16bit_rgba_keeps_depth_and_alpha(engine):
    needs_core()
    from fixative.imageio import encode_image

    rgb = painting(size=48).astype(np.uint16) * 257
    alpha = np.linspace(0, 65535, 48 * 48, dtype=np.uint16).reshape(48, 48, 1)
    art = np.concatenate([rgb, alpha], axis=2)
    created = submit(engine, encode_image(art, "TIFF"), {**QUICK, "steps": 3}, filename="art.tif")
    assert created.status_code == 202, created.text
    assert engine.wait_job(created.json()["id"], timeout=JOB_TIMEOUT)["state"] == "done"
    result = engine.request("GET", f"/v1/jobs/{created.json()['id']}/result")
    assert result.headers["content-type"] == "image/tiff"
    protected = decode(result.content)
    assert protected.dtype == np.uint16 and protected.shape == art.shape
    assert np.array_equal(protected[..., 3], art[..., 3])  # alpha bit for bit
    assert not np.array_equal(protected[..., :3], art[..., :3])
    assert psnr(protected[..., :3], art[..., :3], peak=65535) > 28


def test_result_before_done_is_409_and_cancel_stops_a_running_job(engine):
    needs_core()
    job = submit(engine, png_bytes(painting(size=64)), LONG).json()
    wait_running(engine, job["id"])
    assert_error(engine.request("GET", f"/v1/jobs/{job['id']}/result"), 409, "not_done")
    started = time.monotonic()
    answer = engine.request("DELETE", f"/v1/jobs/{job['id']}")
    assert answer.status_code == 200
    status = engine.wait_job(job["id"], timeout=60)
    assert status["state"] == "cancelled" and status["error"]["code"] == "cancelled"
    assert time.monotonic() - started < 30  # one step, not the remaining ~2000
    assert_error(engine.request("GET", f"/v1/jobs/{job['id']}/result"), 409, "not_done")


def test_queue_full_is_429_with_retry_after(engine):
    needs_core()
    image = png_bytes(painting(size=64))
    jobs = [submit(engine, image, LONG) for _ in range(2)]
    try:
        assert [job.status_code for job in jobs] == [202, 202]
        refused = submit(engine, image, FAST)
        assert_error(refused, 429, "queue_full")
        assert int(refused.headers["retry-after"]) >= 1
    finally:
        for job in jobs:
            engine.request("DELETE", f"/v1/jobs/{job.json()['id']}")
    for job in jobs:
        assert engine.wait_job(job.json()["id"], timeout=10)["state"] == "cancelled"
    accepted = submit(engine, image, QUICK)
    assert accepted.status_code == 202  # room again once cancelled
    assert engine.wait_job(accepted.json()["id"], timeout=JOB_TIMEOUT)["state"] == "done"


def test_lease_expiry_cancels_a_job_nobody_polls(engine):
    needs_core()
    job = submit(engine, png_bytes(painting(size=64)), LONG).json()
    time.sleep(LEASE_S + 2.5)  # the client "was killed": no polls at all
    # The lease is gone now; the worker stops at its next cancellation check (a later poll
    # cannot revive the job).
    status = engine.wait_job(job["id"], timeout=120)
    assert status["state"] == "cancelled", status
    assert status["error"]["code"] == "lease_expired"
    follow_up = submit(engine, png_bytes(painting(size=32)), QUICK).json()
    assert engine.wait_job(follow_up["id"], timeout=JOB_TIMEOUT)["state"] == "done"  # the worker is free again
