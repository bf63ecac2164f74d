"""`fixative batch --ray HEAD:6379` on a real two-node Ray cluster, started the way a platform does.

Two network namespaces joined by a veth pair stand for two machines on a private network
(10.213.7.1 and 10.213.7.2, only inside the namespaces). ``ray start --head`` runs in one,
``ray start --address HEAD:6379`` in the other; both with a clean environment and an empty HOME,
so neither node has model weights or FIXATIVE_* settings: only the driver (the `fixative batch`
CLI, in the head namespace) has FIXATIVE_MODEL_DIR / FIXATIVE_OFFLINE, and no runtime_env is
given. Then:

1. the batch is started and the driver is SIGKILLed once a few files are done;
2. the same command resumes it; once the worker node has finished a file, every process of the
   worker node is SIGKILLed (the machine dies holding a file); the batch must finish on the head.

Checked: every file done, both nodes did work (manifest), the file held by the dead node was
retried and done on the head node, and the resume redid nothing. Bounded in time; everything
started is ended by PID and the namespaces (with the veth pair) are removed, also on failure.
Skipped without root, ``ip netns`` or Ray, unless FIXATIVE_REQUIRE_RAY=1 (CI).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from fixative.batch.manifest import DONE, RETRIED, read_records
from tests.conftest import MODELS
from tests.helpers import netns, ray_cluster
from tests.test_batch import CLI_FAST, write_paintings

pytestmark = [pytest.mark.ray, pytest.mark.slow]

HEAD_IP, WORKER_IP = "10.213.7.1", "10.213.7.2"
ADDRESS = f"{HEAD_IP}:6379"
FILES = 12
KILL_DRIVER_AFTER = 2
"""Files done before the first driver is SIGKILLed."""
STEP_TIMEOUT_S = 150
"""No single step (starting a node, one batch run) may take longer than this."""


def _unavailable() -> str | None:
    if not (MODELS / "taef2_encoder.pth").exists():
        return "../shared/models/taesd/taef2_encoder.pth is missing"
    return ray_cluster.unavailable_reason()


class Driver:
    """`fixative batch ... --ray HEAD:6379` in the head namespace, with the driver's own settings."""

    def __init__(self, namespace: str, root: Path) -> None:
        self.argv = netns.exec_argv(namespace, [
            sys.executable, "-m", "fixative.cli", "batch", str(root / "in"), "--out-dir", str(root / "out"),
            "--ray", ADDRESS, "--workers", "2", "--json", *CLI_FAST])
        self.env = {**ray_cluster.node_env(root / "driver-home"), "FIXATIVE_MODEL_DIR": str(MODELS), "FIXATIVE_OFFLINE": "1",
                    "HF_HUB_OFFLINE": "1"}
        self.root = root
        self.manifest = root / "out" / "fixative-batch.jsonl"

    def start(self, name: str) -> subprocess.Popen:
        self.log = open(self.root / f"{name}.err", "w")  # noqa: SIM115 - closed in finish()
        return subprocess.Popen(self.argv, env=self.env, stdout=subprocess.PIPE, stderr=self.log, text=True)

    def records(self, skip: int = 0) -> list[dict]:
        return read_records(self.manifest)[skip:] if self.manifest.exists() else []

    def wait_for(self, process: subprocess.Popen, condition, what: str, skip: int = 0) -> list[dict]:
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while time.monotonic() < deadline:
            records = self.records(skip)
            if condition(records):
                return records
            assert process.poll() is None, f"the driver exited ({process.returncode}) before {what}: {self.stderr()}"
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}: {self.stderr()}")

    def finish(self, process: subprocess.Popen) -> tuple[int, str]:
        try:
            stdout, _ = process.communicate(timeout=STEP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, _ = process.communicate()
        self.log.close()
        return process.returncode, stdout

    def stderr(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-4000:]


@pytest.fixture(scope="module")
def cluster_run():
    reason = _unavailable()
    if reason:
        if os.environ.get("FIXATIVE_REQUIRE_RAY") == "1":
            pytest.fail(f"FIXATIVE_REQUIRE_RAY=1 but the two-node Ray test cannot run: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="fxrc-"))  # short: Ray's socket paths must stay < 108 bytes
    started = time.monotonic()
    processes: list[subprocess.Popen] = []
    try:
        write_paintings(root / "in", FILES, size=32)
        with netns.linked_namespaces("fxrc", (HEAD_IP, WORKER_IP)) as (head_ns, worker_ns):
            assert ray_cluster.start_head(head_ns, HEAD_IP, root, cpus=2, timeout=STEP_TIMEOUT_S) == ADDRESS
            ray_cluster.start_worker(worker_ns, WORKER_IP, ADDRESS, root, cpus=2, timeout=STEP_TIMEOUT_S)
            nodes = ray_cluster.wait_for_nodes(head_ns, ADDRESS, 2, root, timeout=STEP_TIMEOUT_S)
            driver = Driver(head_ns, root)

            first = driver.start("first")
            processes.append(first)
            driver.wait_for(first, lambda rs: sum(r["status"] == DONE for r in rs) >= KILL_DRIVER_AFTER,
                            f"{KILL_DRIVER_AFTER} files done")
            first.send_signal(signal.SIGKILL)  # the driver dies without a word: no summary, maybe a torn line
            first_rc, _ = driver.finish(first)
            first_records = driver.records()

            second = driver.start("second")
            processes.append(second)
            worker_done = driver.wait_for(
                second, lambda rs: any(r["status"] == DONE and r.get("node") == WORKER_IP for r in rs),
                "the worker node to finish a file in the resumed run", skip=len(first_records))
            killed_at = len(first_records) + len(worker_done)
            netns.kill_processes(worker_ns)  # the worker machine dies, holding its next file
            second_rc, second_stdout = driver.finish(second)
            second_err = (root / "second.err").read_text()
        records = read_records(root / "out" / "fixative-batch.jsonl")
        assert second_rc == 0, (f"resumed batch exited {second_rc}:\n{second_err[-4000:]}\n" +
                                "\n".join(json.dumps({k: r.get(k) for k in ("input", "status", "node", "error")})
                                          for r in records[len(first_records):]))
        yield {"root": root, "nodes": nodes, "first_rc": first_rc, "first": first_records,
               "second": records[len(first_records):], "after_kill": records[killed_at:],
               "summary": json.loads(second_stdout), "stderr": second_err,
               "seconds": time.monotonic() - started}
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _final_by_input(records: list[dict]) -> dict[str, dict]:
    final: dict[str, dict] = {}
    for record in records:
        if record["status"] in (DONE, "failed"):
            final[record["input"]] = record
    return final


def test_cluster_has_two_nodes_and_every_file_is_done(cluster_run):
    assert cluster_run["nodes"] == [HEAD_IP, WORKER_IP]
    final = _final_by_input(cluster_run["first"] + cluster_run["second"])
    assert len(final) == FILES and all(r["status"] == DONE for r in final.values())
    outputs = sorted(p.name for p in (cluster_run["root"] / "out").glob("*.protected.png"))
    assert outputs == [f"p{i:02d}.protected.png" for i in range(FILES)]
    summary = cluster_run["summary"]
    assert summary["failed"] == 0 and not summary["interrupted"]
    assert summary["done"] + summary["skipped_done"] == FILES


def test_both_nodes_did_work_and_the_manifest_names_node_and_actor(cluster_run):
    done = [r for r in cluster_run["first"] + cluster_run["second"] if r["status"] == DONE]
    assert {r["node"] for r in done} == {HEAD_IP, WORKER_IP}
    assert all(len(r["node_id"]) >= 32 and len(r["actor"]) >= 16 for r in done)
    assert len({r["node_id"] for r in done}) == 2
    per_node = cluster_run["summary"]["done_per_node"]
    assert set(per_node) == {HEAD_IP, WORKER_IP} and sum(per_node.values()) == cluster_run["summary"]["done"]
    assert "done per node: " in cluster_run["stderr"] and f"{WORKER_IP} " in cluster_run["stderr"]


def test_file_held_by_the_dead_node_is_retried_and_done_on_the_head(cluster_run):
    retried = [r for r in cluster_run["after_kill"] if r["status"] == RETRIED]
    assert len(retried) == 1, [r["status"] for r in cluster_run["after_kill"]]
    assert retried[0]["error"]["code"] == "worker_lost" and retried[0]["node"] == WORKER_IP
    later = [r for r in cluster_run["after_kill"] if r["input"] == retried[0]["input"]]
    assert [r["status"] for r in later] == [RETRIED, DONE]
    assert later[1]["node"] == HEAD_IP
    assert all(r["node"] == HEAD_IP for r in cluster_run["after_kill"] if r["status"] == DONE)
    assert cluster_run["summary"]["retried"] == 1


def test_resume_after_the_driver_was_killed_redoes_nothing(cluster_run):
    assert cluster_run["first_rc"] == -signal.SIGKILL
    done_first = {r["input"] for r in cluster_run["first"] if r["status"] == DONE}
    assert KILL_DRIVER_AFTER <= len(done_first) < FILES
    assert not done_first & {r["input"] for r in cluster_run["second"]}
    assert cluster_run["summary"]["skipped_done"] == len(done_first)
