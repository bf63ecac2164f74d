"""Schemathesis fuzzes every operation in /openapi.json (with the token): no answer may be a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.engine import start_engine

pytest.importorskip("schemathesis")


def test_schemathesis_finds_no_server_errors(tmp_path):
    engine = start_engine(tmp_path / "home", "--no-preload", "--max-queue", "4", "--lease-seconds", "5",
                          "--max-body-mb", "4")
    try:
        schema = engine.request("GET", "/openapi.json")
        assert schema.status_code == 200
        schema_path = tmp_path / "openapi.json"
        schema_path.write_text(json.dumps(schema.json()))
        command = [sys.executable, "-m", "schemathesis.cli", "run", str(schema_path), "--url", engine.url,
                   "-H", f"Authorization: Bearer {engine.token}", "--checks", "not_a_server_error",
                   "--max-examples", "25", "--max-time", "60", "--seed", "1", "--workers", "1",
                   "--no-color", "--generation-database", "none", "--request-timeout", "20",
                   "--report-dir", str(tmp_path / "report")]
        run = subprocess.run(command, capture_output=True, text=True, timeout=200, cwd=tmp_path)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:] + "\n--- engine log ---\n" + engine.log()[-3000:]
        assert "/v1/jobs" in output  # the upload endpoint was exercised, not skipped
        assert engine.alive()
    finally:
        engine.stop()
    assert " 500 " not in engine.log()
