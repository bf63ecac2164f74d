"""Issue 15: the engine against hostile input, each check run against a real `fixative serve` process.

Everything here talks to 127.0.0.1 only and is bounded in time and in the number of requests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.engine import engine_env

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes, /proc and signals")


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
