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
