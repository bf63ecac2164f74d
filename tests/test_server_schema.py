"""Schemathesis fuzzes every operation in /openapi.json (with the token): no answer may be a 5xx."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers.engine import start_engine

pytest.importorskip("schemathesis")


HOSTILE_OPTIONS = ["[" * 5000, '{"options": ' * 2000 + "1" + "}" * 2000, '{"target_style": "\\ud800"}',
                   '{"models": ["vae:\\ud800"]}', '{"\\udfff": "x"}', '{"concept": "\\ud800\\udc00\\ud800"}',
                   '{"models": ["vae:/etc"]}', '{"target_style": "' + "x" * 5000 + '"}']
"""Explicit examples for the options field: deep nesting and lone surrogates (issue 15, item 2)."""


def with_hostile_examples(schema: dict) -> dict:
    """Add HOSTILE_OPTIONS as examples of the upload form's ``options`` field (schemathesis's
    examples phase sends each one)."""
    form = schema["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in form:
        form = schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[1]]
    options = form["properties"]["options"]
    options["examples"] = HOSTILE_OPTIONS
    form["properties"]["image"]["examples"] = ["\x89PNG\r\n\x1a\n"]
    return schema


def test_schemathesis_finds_no_server_errors(tmp_path):
    engine = start_engine(tmp_path / "home", "--no-preload", "--max-queue", "4", "--lease-seconds", "5",
                          "--max-body-mb", "4")
    try:
        schema = engine.request("GET", "/openapi.json")
        assert schema.status_code == 200
        schema_path = tmp_path / "openapi.json"
        schema_path.write_text(json.dumps(with_hostile_examples(schema.json())))
        command = [sys.executable, "-m", "schemathesis.cli", "run", str(schema_path), "--url", engine.url,
                   "-H", f"Authorization: Bearer {engine.token}", "--checks", "not_a_server_error",
                   "--max-examples", "15", "--max-time", "40", "--seed", "1", "--workers", "1",
                   "--no-color", "--generation-database", "none", "--request-timeout", "20",
                   "--report-dir", str(tmp_path / "report"), "--report", "vcr"]
        run = subprocess.run(command, capture_output=True, text=True, timeout=200, cwd=tmp_path)
        output = run.stdout + run.stderr
        assert run.returncode == 0, output[-6000:] + "\n--- engine log ---\n" + engine.log()[-3000:]
        assert "/v1/jobs" in output  # the upload endpoint was exercised, not skipped
        sent = "".join(path.read_text(errors="replace") for path in (tmp_path / "report").rglob("*") if path.is_file())
        assert "[[[[[[[[" in sent and "ud800" in sent, "the hostile examples were not sent"
        assert engine.alive()
    finally:
        engine.stop()
    assert " 500 " not in engine.log()
