"""`fixative batch` on a real local Ray cluster (2 CPU workers), inside a network namespace.

Ray binds to every address it finds, so it never runs in pytest's own namespace: pytest starts
tests/helpers/ray_batch_driver.py with ``ip netns exec`` in a fresh namespace that has only
loopback, and checks the files and the JSON report it leaves. One driver run serves every test
here: an interrupted batch, then its resume during which one busy actor is ``ray.kill``-ed.

Skipped (with the reason) without root, ``ip netns`` or Ray, unless FIXATIVE_REQUIRE_RAY=1 (CI).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from fixative.batch.manifest import DONE, FAILED, INTERRUPTED, RETRIED, read_records
from tests.conftest import MODELS, REPO
from tests.helpers import netns
from tests.test_batch import FAST, write_corrupt, write_paintings

pytestmark = [pytest.mark.ray, pytest.mark.slow]

GOOD_FILES = 11
STOP_AFTER = 3


def _unavailable() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'ray[default]')"
    if not (MODELS / "taef2_encoder.pth").exists():
        return "../shared/models/taesd/taef2_encoder.pth is missing"
    return netns.unavailable_reason()


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory):
    reason = _unavailable()
    if reason:
        if os.environ.get("FIXATIVE_REQUIRE_RAY") == "1":
            pytest.fail(f"FIXATIVE_REQUIRE_RAY=1 but the Ray tests cannot run: {reason}")
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("ray-batch")
    inputs = root / "in"
    write_paintings(inputs, GOOD_FILES)
    corrupt = write_corrupt(inputs)
    out = root / "out"
    results_path = root / "results.json"
    env = {"FIXATIVE_MODEL_DIR": str(MODELS), "FIXATIVE_OFFLINE": "1", "FIXATIVE_HOME": str(root / "home"),
           "PYTHONPATH": os.pathsep.join([str(REPO / "engine"), str(REPO)]), "RAY_USAGE_STATS_ENABLED": "0"}
    argv = [sys.executable, str(REPO / "tests" / "helpers" / "ray_batch_driver.py"), "--inputs", str(inputs),
            "--out-dir", str(out), "--options", json.dumps(FAST), "--results", str(results_path),
            "--workers", "2", "--stop-after", str(STOP_AFTER)]
    with netns.network_namespace("fxray") as name:
        done = netns.run_in(name, argv, env=env, timeout=900, cwd=str(root))
    assert results_path.exists(), f"the driver wrote no report:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    results = json.loads(results_path.read_text())
    assert results["ok"], results.get("traceback", "") + done.stderr[-4000:]
    records = read_records(out / "fixative-batch.jsonl")
    return {"inputs": inputs, "corrupt": corrupt, "out": out, "results": results, "records": records,
            "first": [r for r in records if r["run"] == results["interrupt"]["run_id"]],
            "second": [r for r in records if r["run"] == results["resume"]["run_id"]]}


def _name(record: dict) -> str:
    return Path(record["input"]).name


def test_ray_ran_on_loopback_with_two_workers(ray_run):
    results = ray_run["results"]
    assert results["node_ip"] == "127.0.0.1"
    assert results["interrupt"]["workers"] == results["resume"]["workers"] == 2
    done = [r for r in ray_run["records"] if r["status"] == DONE]
    assert len({r["worker"] for r in done}) >= 2  # files really were spread over more than one actor process
    assert {r["node"] for r in done} == {"127.0.0.1"} and len({r["node_id"] for r in done}) == 1
    assert len({r["actor"] for r in done}) >= 2
    per_node = results["resume"]["summary"]["done_per_node"]
    assert per_node == {"127.0.0.1": results["resume"]["summary"]["done"]}


def test_outputs_equal_in_process_protect(ray_run, monkeypatch):
    monkeypatch.setenv("FIXATIVE_MODEL_DIR", str(MODELS))
    monkeypatch.setenv("FIXATIVE_OFFLINE", "1")
    import torch

    from fixative.core import protect
    from fixative.imageio import load_image

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the actors run; also many times faster than 2 on a busy machine
    try:
        compared = _compare_all(ray_run, protect, load_image)
    finally:
        torch.set_num_threads(threads)
    assert compared == GOOD_FILES


def _compare_all(ray_run, protect, load_image) -> int:
    compared = 0
    for source in sorted(ray_run["inputs"].glob("p*.png")):
        original = load_image(source).array
        expected = np.asarray(protect(original, FAST).image)
        produced = load_image(ray_run["out"] / f"{source.stem}.protected.png").array
        assert produced.dtype == expected.dtype and produced.shape == expected.shape
        assert np.array_equal(produced, expected), f"{source.name}: Ray output differs from protect()"
        assert not np.array_equal(produced, original)
        compared += 1
    return compared


def test_corrupt_file_failed_while_the_others_finished(ray_run):
    final = {}
    for record in ray_run["records"]:
        if record["status"] in (DONE, FAILED):
            final[_name(record)] = record
    assert final[ray_run["corrupt"].name]["status"] == FAILED
    assert final[ray_run["corrupt"].name]["error"]["code"] == "bad_image"
    assert sorted(n for n, r in final.items() if r["status"] == DONE) == [f"p{i:02d}.png" for i in range(GOOD_FILES)]
    assert ray_run["results"]["resume"]["summary"]["failed"] == 1
    assert not (ray_run["out"] / f"{ray_run['corrupt'].stem}.protected.png").exists()


def test_killed_worker_file_is_retried_and_batch_completes(ray_run):
    results, second = ray_run["results"], ray_run["second"]
    assert results["killed"], "the driver found no busy worker to kill"
    retried = [r for r in second if r["status"] == RETRIED]
    # Usually the file the actor was holding; if that file's result was already on its way, the
    # next file sent to the dead actor is the one that comes back lost. Either way: one retry.
    assert len(retried) == 1 and retried[0]["error"]["code"] == "worker_lost"
    mine = [r for r in second if r["input"] == retried[0]["input"]]
    assert [r["status"] for r in mine] == [RETRIED, DONE]
    assert mine[1]["worker"].split(":")[-1] != str(results["killed"]["pid"])  # a fresh actor did it
    summary = results["resume"]["summary"]
    assert summary["retried"] == 1 and summary["failed"] == 1 and not summary["interrupted"]
    assert results["resume"]["replacements"] == 1
    assert summary["done"] + summary["skipped_done"] == GOOD_FILES


def test_interrupted_batch_resumed_redoes_nothing_done(ray_run):
    first, second = ray_run["first"], ray_run["second"]
    results = ray_run["results"]
    assert results["interrupt"]["summary"]["interrupted"]
    done_first = {r["input"] for r in first if r["status"] == DONE}
    assert STOP_AFTER <= len(done_first) < GOOD_FILES
    assert {r["status"] for r in first} <= {DONE, FAILED, INTERRUPTED}
    assert not done_first & {r["input"] for r in second}  # resumed: nothing already done is touched
    assert results["resume"]["summary"]["skipped_done"] == len(done_first)


def test_weights_missing_on_the_driver_stop_the_batch_before_any_actor(ray_run):
    missing = ray_run["results"]["missing_on_driver"]
    assert missing["raised"] == "MissingWeights" and missing["code"] == "missing_weights"
    assert "taesd_encoder.pth not found" in missing["message"]
    assert missing["outputs"] == []


def test_a_worker_that_cannot_load_a_model_names_its_node(ray_run):
    missing = ray_run["results"]["missing_on_worker"]
    assert missing["raised"] == "RayUnavailable" and missing["code"] == "ray_unavailable"
    assert "could not start" in missing["message"] and "MissingWeights" in missing["message"]
    assert "on Ray node 127.0.0.1 (node id " in missing["message"]
    assert "fixative-test-vae" in missing["message"]
    assert missing["outputs"] == []
