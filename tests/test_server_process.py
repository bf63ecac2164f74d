"""`fixative serve` as a process: discovery file, one engine per user, signals, idle exit, host rules."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fixative.server.config import ServerConfig, is_loopback
from tests.helpers.engine import engine_env, start_engine

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def run_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fixative.cli", *args], env=engine_env(home),
                          capture_output=True, text=True, timeout=timeout)


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def wait_exit(engine, timeout: float) -> int:
    try:
        return engine.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        engine.kill()
        raise AssertionError(f"engine still running after {timeout} s:\n{engine.log()}") from None


def test_discovery_file_is_private_and_describes_the_process(tmp_path):
    engine = start_engine(tmp_path, "--no-preload")
    try:
        path = engine.discovery_path
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        info = json.loads(path.read_text())
        assert set(info) == {"url", "token", "pid", "version"}
        assert info["pid"] == engine.proc.pid
        assert info["url"].startswith("http://127.0.0.1:") and not info["url"].endswith(":0")
        assert len(info["token"]) >= 43  # 32 random bytes, base64url
        from fixative import __version__

        assert info["version"] == __version__
    finally:
        assert engine.stop() == 0
    assert not path.exists()


def test_second_serve_finds_the_live_engine_and_exits_0(tmp_path):
    engine = start_engine(tmp_path, "--no-preload")
    try:
        before = engine.discovery_path.read_text()
        second = run_cli(tmp_path, "serve", "--port", "0", "--no-preload")
        assert second.returncode == 0, second.stderr
        assert "already running" in second.stdout and engine.url in second.stdout
        assert engine.discovery_path.read_text() == before
        assert engine.request("GET", "/v1/health").status_code == 200
    finally:
        engine.stop()


def test_stale_discovery_file_is_replaced(tmp_path):
    state = tmp_path / "state"
    state.mkdir(parents=True)
    stale = {"url": "http://127.0.0.1:9", "token": "old", "pid": dead_pid(), "version": "0.0.1"}
    (state / "engine.json").write_text(json.dumps(stale))
    engine = start_engine(tmp_path, "--no-preload")
    try:
        info = json.loads(engine.discovery_path.read_text())
        assert info["pid"] == engine.proc.pid and info["token"] != "old"
    finally:
        engine.stop()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_exits_0_and_removes_discovery_file(tmp_path, sig):
    engine = start_engine(tmp_path, "--no-preload")
    engine.proc.send_signal(sig)
    assert wait_exit(engine, 20) == 0, engine.log()
    assert not engine.discovery_path.exists()
    assert "Traceback" not in engine.log()


def test_kill_9_leaves_a_stale_file_that_a_restart_replaces(tmp_path):
    engine = start_engine(tmp_path, "--no-preload")
    old = json.loads(engine.discovery_path.read_text())
    engine.kill()
    assert engine.discovery_path.exists()  # nobody cleaned up
    restarted = start_engine(tmp_path, "--no-preload")
    try:
        new = json.loads(restarted.discovery_path.read_text())
        assert new["pid"] == restarted.proc.pid != old["pid"]
        assert restarted.request("GET", "/v1/info").status_code == 200
        assert restarted.request("GET", "/v1/info", token=old["token"]).status_code == 401
    finally:
        restarted.stop()


def test_idle_exit_stops_an_unused_engine(tmp_path):
    engine = start_engine(tmp_path, "--no-preload", "--idle-exit", "0.03")  # 1.8 s
    started = time.monotonic()
    assert wait_exit(engine, 30) == 0, engine.log()
    assert time.monotonic() - started >= 1.0
    assert not engine.discovery_path.exists()
    assert "idle" in engine.log()


def test_requests_keep_an_idle_exit_engine_alive(tmp_path):
    engine = start_engine(tmp_path, "--no-preload", "--idle-exit", "0.05")  # 3 s
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            assert engine.request("GET", "/v1/health").status_code == 200
            time.sleep(0.5)
        assert engine.alive()
    finally:
        engine.stop()


def test_non_loopback_host_needs_allow_remote(tmp_path):
    refused = run_cli(tmp_path, "serve", "--host", "0.0.0.0", "--port", "0", "--no-preload")
    assert refused.returncode == 1
    assert "--allow-remote" in refused.stderr
    assert not (tmp_path / "state" / "engine.json").exists()


def test_bad_flags_are_clear_errors(tmp_path):
    result = run_cli(tmp_path, "serve", "--max-queue", "0")
    assert result.returncode == 1 and "--max-queue" in result.stderr


def test_host_allow_list():
    config = ServerConfig(port=8123)
    assert config.allowed_hosts() == {"127.0.0.1:8123", "localhost:8123", "[::1]:8123"}
    remote = ServerConfig(host="192.168.1.5", port=80, allow_remote=True)
    assert "192.168.1.5:80" in remote.allowed_hosts()
    wildcard = ServerConfig(host="0.0.0.0", port=1, allow_remote=True, extra_hosts=["Art.lan", "art.lan:8443"])
    assert wildcard.allowed_hosts() == {"127.0.0.1:1", "localhost:1", "[::1]:1", "art.lan:1", "art.lan:8443"}
    assert "--allowed-host" in ServerConfig(host="0.0.0.0", allow_remote=True).remote_problem()
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")


def test_engine_env_isolates_home(tmp_path):
    env = engine_env(tmp_path)
    assert env["FIXATIVE_HOME"] == str(tmp_path) and env["FIXATIVE_OFFLINE"] == "1"
    assert os.path.isabs(env["FIXATIVE_MODEL_DIR"])


# -- with the real core: a job is running when the process is stopped or killed ------------------------------
LONG = {"models": ["taef2"], "quality": "fast", "steps": 2000, "robustness": "off", "target_style": "op-art-stripes"}
QUICK = {"models": ["taef2"], "quality": "fast", "steps": 1, "robustness": "off", "target_style": "op-art-stripes"}


def start_running_job(engine) -> str:
    pytest.importorskip("fixative.core")
    from tests.conftest import painting
    from tests.helpers.images import png_bytes

    response = engine.request("POST", "/v1/jobs", files={"image": ("a.png", png_bytes(painting(size=64)))},
                              data={"options": json.dumps(LONG)})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = engine.request("GET", f"/v1/jobs/{job_id}").json()
        if status["state"] == "running" and status["stage"].startswith("optimising"):
            return job_id
        assert status["state"] in ("queued", "running"), status
        time.sleep(0.2)
    raise AssertionError("the job never reached the optimisation")


def test_sigterm_mid_job_cancels_it_and_exits_0(tmp_path):
    engine = start_engine(tmp_path)
    start_running_job(engine)
    started = time.monotonic()
    engine.proc.terminate()
    assert wait_exit(engine, 60) == 0, engine.log()
    assert time.monotonic() - started < 30  # cancelled within a step, not run to the end
    assert not engine.discovery_path.exists()
    assert "Traceback" not in engine.log()


def test_kill_9_mid_job_then_restart_serves_new_jobs(tmp_path):
    from tests.conftest import painting
    from tests.helpers.images import decode, png_bytes

    engine = start_engine(tmp_path)
    old_job = start_running_job(engine)
    engine.kill()
    restarted = start_engine(tmp_path)
    try:
        assert restarted.request("GET", f"/v1/jobs/{old_job}").status_code == 404
        art = painting(size=32, box=(0.6, 0.2))
        response = restarted.request("POST", "/v1/jobs", files={"image": ("a.png", png_bytes(art))},
                                     data={"options": json.dumps(QUICK)})
        assert response.status_code == 202, response.text
        status = restarted.wait_job(response.json()["id"], timeout=180)
        assert status["state"] == "done", status
        result = restarted.request("GET", f"/v1/jobs/{response.json()['id']}/result")
        assert decode(result.content).shape == art.shape
    finally:
        assert restarted.stop() == 0
