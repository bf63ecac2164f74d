"""The engine's job queue rules with fake runners: FIFO, limit, cancel, lease, lifetimes, failures."""

from __future__ import annotations

import threading
import time

import pytest

from fixative.errors import BadImage, Cancelled
from fixative.server.jobs import (
    JobManager,
    JobNotFound,
    JobOutput,
    NotDone,
    QueueFull,
    ShuttingDown,
)


def stepping_runner(steps: int = 1000, step_s: float = 0.01, order: list | None = None):
    """A fake protect(): reports progress each step and honours cancel() like the core must."""

    def run(payload, progress, cancel):
        if order is not None:
            order.append(payload)
        for step in range(steps):
            if cancel():
                raise Cancelled("cancelled")
            progress(type("P", (), {"fraction": step / steps, "stage": "optimising",
                                    "eta_s": (steps - step) * step_s})())
            time.sleep(step_s)
        return JobOutput(result=f"result-{payload}".encode(), media_type="image/png", filename="p.png",
                         report={"payload": payload})

    return run


def wait_state(manager: JobManager, job_id: str, states: set[str], timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = manager.status(job_id)
        if status["state"] in states:
            return status
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} stayed {manager.status(job_id)['state']}, wanted {states}")


@pytest.fixture
def make_manager():
    managers: list[JobManager] = []

    def make(runner, **kwargs) -> JobManager:
        manager = JobManager(runner, **kwargs)
        manager.start()
        managers.append(manager)
        return manager

    yield make
    for manager in managers:
        manager.stop(timeout=5)


def test_jobs_run_one_at_a_time_in_fifo_order(make_manager):
    order: list = []
    manager = make_manager(stepping_runner(steps=3, step_s=0.005, order=order), max_queue=10)
    jobs = [manager.submit(index) for index in range(5)]
    for job in jobs:
        wait_state(manager, job.id, {"done"})
    assert order == [0, 1, 2, 3, 4]
    assert [manager.output(job.id).result for job in jobs] == [f"result-{i}".encode() for i in range(5)]
    assert manager.status(jobs[0].id)["progress"] == 1.0


def test_queue_positions_and_limit_with_retry_after(make_manager):
    manager = make_manager(stepping_runner(steps=2000, step_s=0.01), max_queue=3)
    first = manager.submit("a")
    wait_state(manager, first.id, {"running"})
    second, third = manager.submit("b"), manager.submit("c")
    assert manager.status(first.id)["queue_position"] is None
    assert manager.status(second.id)["queue_position"] == 1
    assert manager.status(third.id)["queue_position"] == 2
    with pytest.raises(QueueFull) as refused:
        manager.submit("d")
    assert refused.value.http_status == 429 and refused.value.retry_after >= 1
    manager.cancel(second.id)
    assert manager.status(third.id)["queue_position"] == 1
    manager.submit("e")  # room again after the cancel


def test_cancel_running_job_stops_within_a_step(make_manager):
    manager = make_manager(stepping_runner(steps=100000, step_s=0.01), max_queue=2)
    job = manager.submit("x")
    wait_state(manager, job.id, {"running"})
    started = time.monotonic()
    manager.cancel(job.id)
    assert manager.wait_finished(job.id, 5.0) == "cancelled"
    assert time.monotonic() - started < 1.0
    status = manager.status(job.id)
    assert status["error"]["code"] == "cancelled"
    assert manager.get(job.id, touch=False).payload is None  # input freed
    with pytest.raises(NotDone):
        manager.output(job.id)


def test_lease_expiry_cancels_unpolled_jobs_but_not_polled_ones(make_manager):
    manager = make_manager(stepping_runner(steps=100000, step_s=0.01), max_queue=4, lease_seconds=0.6)
    running = manager.submit("running")
    queued = manager.submit("queued")
    polled = manager.submit("polled")
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:  # a client that keeps polling keeps its job
        manager.status(polled.id)
        time.sleep(0.1)
    assert manager.status(running.id, touch=False)["state"] == "cancelled"
    assert manager.status(running.id, touch=False)["error"]["code"] == "lease_expired"
    assert manager.status(queued.id, touch=False)["state"] == "cancelled"
    assert manager.status(polled.id)["state"] in ("queued", "running")
    assert manager.get(queued.id, touch=False).payload is None


def test_finished_jobs_expire_after_ttl_or_after_fetch(make_manager):
    manager = make_manager(stepping_runner(steps=1, step_s=0), result_ttl=0.5, fetched_grace=0.1,
                           lease_seconds=0.2)
    fetched, unfetched = manager.submit("f"), manager.submit("u")
    wait_state(manager, fetched.id, {"done"})
    wait_state(manager, unfetched.id, {"done"})
    manager.output(fetched.id, is_result=True)
    time.sleep(0.3)
    manager.sweep()
    with pytest.raises(JobNotFound):
        manager.status(fetched.id)
    assert manager.status(unfetched.id)["state"] == "done"  # a done job has no lease to lose
    time.sleep(0.5)
    manager.sweep()
    with pytest.raises(JobNotFound):
        manager.status(unfetched.id)


def test_runner_errors_become_job_errors_and_worker_survives(make_manager):
    def runner(payload, progress, cancel):
        if payload == "bad":
            raise BadImage("the image is broken")
        if payload == "crash":
            raise RuntimeError("boom")
        return JobOutput(result=b"ok", media_type="image/png", filename="p.png", report={})

    manager = make_manager(runner, max_queue=5)
    bad, crash, good = manager.submit("bad"), manager.submit("crash"), manager.submit("good")
    assert wait_state(manager, bad.id, {"failed"})["error"] == {"code": "bad_image",
                                                              "message": "the image is broken"}
    assert wait_state(manager, crash.id, {"failed"})["error"]["code"] == "internal_error"
    assert wait_state(manager, good.id, {"done"})["error"] is None


def test_delete_of_finished_job_frees_it_and_unknown_ids_are_404(make_manager):
    manager = make_manager(stepping_runner(steps=1, step_s=0), max_queue=2)
    job = manager.submit("x")
    wait_state(manager, job.id, {"done"})
    assert manager.cancel(job.id).state == "done"
    with pytest.raises(JobNotFound):
        manager.status(job.id)
    with pytest.raises(JobNotFound):
        manager.cancel("no-such-job")


def test_shutdown_cancels_running_and_refuses_new_jobs():
    manager = JobManager(stepping_runner(steps=100000, step_s=0.01), max_queue=3)
    manager.start()
    running, waiting = manager.submit("r"), manager.submit("w")
    wait_state(manager, running.id, {"running"})
    started = time.monotonic()
    manager.stop(timeout=5)
    assert time.monotonic() - started < 2.0
    assert manager.status(running.id)["error"]["code"] == "shutdown"
    assert manager.status(waiting.id)["state"] == "cancelled"
    with pytest.raises(ShuttingDown):
        manager.submit("late")


def test_warmup_runs_before_first_job_and_failure_is_not_fatal(make_manager):
    events: list[str] = []
    gate = threading.Event()

    def warmup():
        events.append("warmup")
        gate.wait(2)
        raise RuntimeError("no weights")

    def runner(payload, progress, cancel):
        events.append("job")
        return JobOutput(result=b"", media_type="image/png", filename="p.png", report={})

    manager = make_manager(runner, warmup=warmup)
    job = manager.submit("x")
    time.sleep(0.1)
    assert manager.status(job.id)["state"] == "queued"  # waits for the warm-up
    gate.set()
    wait_state(manager, job.id, {"done"})
    assert events == ["warmup", "job"] and manager.warm.is_set()


def test_preview_is_drawn_after_done_and_never_delays_the_result(make_manager):
    release = threading.Event()

    def slow_preview() -> bytes:
        release.wait(5)
        return b"preview-png"

    def runner(payload, progress, cancel):
        return JobOutput(result=b"image", media_type="image/png", filename="p.png", report={},
                         preview_factory=slow_preview)

    manager = make_manager(runner)
    job = manager.submit("x")
    wait_state(manager, job.id, {"done"})
    output = manager.output(job.id)
    assert output.result == b"image" and output.wait_preview(0.05) is None  # result first
    release.set()
    assert output.wait_preview(5) == b"preview-png"


def test_job_records_are_capped_oldest_finished_first_then_429(make_manager):
    manager = make_manager(stepping_runner(steps=2000, step_s=0.01), max_queue=3, max_jobs=3)
    first = manager.submit("a")
    wait_state(manager, first.id, {"running"})
    second = manager.submit("b")
    manager.cancel(second.id)
    third = manager.submit("c")
    manager.cancel(third.id)
    fourth = manager.submit("d")  # full: the oldest finished record (second) is forgotten
    with pytest.raises(JobNotFound):
        manager.status(second.id)
    assert manager.status(third.id)["state"] == "cancelled" and manager.job_count() == 3
    fifth = manager.submit("e")  # third goes; now every record is a live job
    assert {manager.status(job.id)["state"] for job in (first, fourth, fifth)} <= {"queued", "running"}
    with pytest.raises(QueueFull) as refused:
        manager.submit("f")
    assert refused.value.http_status == 429 and manager.job_count() == 3
