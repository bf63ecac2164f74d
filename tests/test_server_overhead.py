"""The engine-overhead benchmark runs at CI size and produces every number (finite, positive)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.conftest import MODELS, REPO

pytestmark = pytest.mark.slow


def test_server_overhead_benchmark_small(tmp_path):
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd is missing")
    out = tmp_path / "overhead.json"
    env = {**os.environ, "FIXATIVE_MODEL_DIR": str(MODELS), "FIXATIVE_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join([str(REPO / "engine"), str(REPO)])}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "server_overhead.py"), "--small",
                           "--json", str(out)], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "per-job overhead" in proc.stdout
    numbers = json.loads(out.read_text())
    for key in ("in_process_s", "served_wall_s", "engine_protect_s", "queued_wall_s",
                "throughput_jobs_per_min", "in_process_jobs_per_min"):
        assert math.isfinite(numbers[key]) and numbers[key] > 0, key
    assert math.isfinite(numbers["overhead_s"]) and math.isfinite(numbers["overhead_pct_of_job"])
