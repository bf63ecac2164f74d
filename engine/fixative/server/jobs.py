"""Job queue for the engine: a bounded FIFO, one worker thread, client leases and result lifetimes.

One worker because one optimisation already uses every core (or the whole GPU); running two would
only make both slower and double the memory. The manager knows nothing about HTTP or images: it runs
whatever ``runner`` it is given, so its rules (queue limit, cancel, lease, TTL) are tested with fakes.
"""

from __future__ import annotations

import collections
import logging
import math
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fixative.errors import Cancelled, FixativeError
from fixative.server.limits import echo
from fixative.server.uploads import discard_payload

log = logging.getLogger("fixative.server")

JobState = Literal["queued", "running", "done", "failed", "cancelled"]
FINISHED: frozenset[str] = frozenset({"done", "failed", "cancelled"})

ProgressFn = Callable[[Any], None]
CancelFn = Callable[[], bool]

CANCEL_MESSAGES = {
    "cancelled": "The job was cancelled by the client.",
    "lease_expired": "The job was cancelled because its client stopped polling (lease expired).",
    "shutdown": "The job was cancelled because the engine is shutting down.",
}


class QueueFull(FixativeError):
    code = "queue_full"
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class JobNotFound(FixativeError):
    code = "not_found"
    http_status = 404


class NotDone(FixativeError):
    code = "not_done"
    http_status = 409


class ShuttingDown(FixativeError):
    code = "shutting_down"
    http_status = 503


def _set_event() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


@dataclass
class JobOutput:
    """What a finished job keeps until it is fetched or expires: bytes only, no arrays."""

    result: bytes
    media_type: str
    filename: str
    report: dict[str, Any]
    preview: bytes | None = None
    preview_factory: Callable[[], bytes | None] | None = None
    """Draws the preview after the job is marked done, so it never delays the result."""
    preview_ready: threading.Event = field(default_factory=_set_event)

    def __post_init__(self) -> None:
        if self.preview_factory is not None:
            self.preview_ready.clear()

    def wait_preview(self, timeout: float) -> bytes | None:
        self.preview_ready.wait(timeout)
        return self.preview


@dataclass
class Job:
    """One request to protect an image. Mutable fields are guarded by the manager's lock."""

    id: str
    payload: Any
    """The runner's input (image bytes, options...); dropped as soon as the job ends."""
    created: float
    last_seen: float
    state: JobState = "queued"
    progress: float = 0.0
    stage: str = "queued"
    eta_s: float | None = None
    error: dict[str, str] | None = None
    output: JobOutput | None = None
    started: float | None = None
    finished: float | None = None
    result_fetched: float | None = None
    cancel_reason: str | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)


class JobManager:
    """Bounded FIFO of jobs run one at a time by a worker thread.

    ``runner(payload, progress, cancel) -> JobOutput`` does the work; it must raise
    :class:`fixative.errors.Cancelled` soon after ``cancel()`` returns True.
    ``max_queue`` bounds the jobs queued or running, so memory stays bounded and the
    429 answer does not depend on whether the worker has picked a job up yet.
    """

    def __init__(self, runner: Callable[[Any, ProgressFn, CancelFn], JobOutput], *,
                 max_queue: int = 16, lease_seconds: float = 30.0, result_ttl: float = 600.0,
                 fetched_grace: float = 60.0, warmup: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, max_jobs: int = 256) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_jobs = max(max_jobs, 1)
        """Job records kept at once; the oldest finished one is forgotten to make room."""
        self.runner = runner
        self.max_queue = max_queue
        self.lease_seconds = lease_seconds
        self.result_ttl = result_ttl
        self.fetched_grace = fetched_grace
        self.warmup = warmup
        self.clock = clock
        self._jobs: dict[str, Job] = {}
        self._queue: collections.deque[Job] = collections.deque()
        self._running: Job | None = None
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._stopping = False
        self._durations: collections.deque[float] = collections.deque(maxlen=8)
        self._worker: threading.Thread | None = None
        self._reaper: threading.Thread | None = None
        self.last_activity = clock()
        """When a job last started, ended or was submitted (idle-exit uses it)."""
        self.warm = threading.Event()
        """Set once ``warmup`` has finished (or failed): the first job will not pay for loading."""

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self._worker = threading.Thread(target=self._work, name="fixative-worker", daemon=True)
        self._worker.start()
        self._reaper = threading.Thread(target=self._reap, name="fixative-reaper", daemon=True)
        self._reaper.start()

    def begin_shutdown(self) -> None:
        """Refuse new jobs and cancel every job (the running one within one step); do not wait."""
        with self._lock:
            self._stopping = True
            for job in list(self._queue):
                self._cancel_locked(job, "shutdown")
            if self._running is not None:
                self._running.cancel_reason = self._running.cancel_reason or "shutdown"
                self._running.cancel_event.set()
            self._wake.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel every job and wait (at most ``timeout`` s per thread) for the worker to end."""
        self.begin_shutdown()
        for thread in (self._worker, self._reaper):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)

    # -- client operations -----------------------------------------------------------------------
    def submit(self, payload: Any) -> Job:
        """Queue a job or raise :class:`QueueFull` (with a Retry-After estimate)."""
        now = self.clock()
        with self._lock:
            if self._stopping:
                raise ShuttingDown("The engine is shutting down; start it again and resubmit.")
            active = len(self._queue) + (1 if self._running is not None else 0)
            if active >= self.max_queue:
                raise QueueFull(f"The engine already has {active} jobs (the limit); try again later.",
                                self._retry_after_locked())
            if len(self._jobs) >= self.max_jobs and not self._evict_oldest_finished_locked():
                raise QueueFull(f"The engine already keeps {len(self._jobs)} live jobs (the limit); "
                                "try again later.", self._retry_after_locked())
            job = Job(id=secrets.token_urlsafe(12), payload=payload, created=now, last_seen=now)
            self._jobs[job.id] = job
            self._queue.append(job)
            self.last_activity = now
            self._wake.notify_all()
            return job

    def _find(self, job_id: str, touch: bool) -> Job:
        """The job (caller holds the lock); ``touch`` renews its lease (every client poll does)."""
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"No job with id {job_id!r} (finished jobs are kept for a limited time).")
        if touch:
            job.last_seen = self.clock()
        return job

    def get(self, job_id: str, *, touch: bool = True) -> Job:
        """Find a job; ``touch`` renews its lease."""
        with self._lock:
            return self._find(job_id, touch)

    def status(self, job_id: str, *, touch: bool = True) -> dict[str, Any]:
        """A consistent snapshot of the job for the API."""
        with self._lock:
            job = self._find(job_id, touch)
            return {
                "id": job.id,
                "state": job.state,
                "progress": round(job.progress, 4),
                "eta_s": job.eta_s,
                "stage": echo(job.stage, 200),
                "queue_position": self._position_locked(job),
                "error": {key: echo(str(value)) for key, value in job.error.items()} if job.error else None,
            }

    def output(self, job_id: str, *, is_result: bool = False) -> JobOutput:
        """The finished job's output; fetching the result starts its short grace period."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"No job with id {job_id!r} (finished jobs are kept for a limited time).")
            job.last_seen = self.clock()
            if job.state != "done" or job.output is None:
                raise NotDone(f"The job is {job.state}, not done; poll GET /v1/jobs/{job_id} first.")
            if is_result and job.result_fetched is None:
                job.result_fetched = self.clock()
            return job.output

    def cancel(self, job_id: str, reason: str = "cancelled") -> Job:
        """Cancel a queued job at once, a running one within one step; forget a finished one."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                raise JobNotFound(f"No job with id {job_id!r}.")
            if job.state in FINISHED:
                del self._jobs[job_id]  # the client is done with it: free the result now
            else:
                self._cancel_locked(job, reason)
            return job

    def wait_finished(self, job_id: str, timeout: float) -> str:
        """Wait (briefly) until the job leaves the running state; returns the state then."""
        deadline = self.clock() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                state = job.state if job else "cancelled"
                remaining = deadline - self.clock()
                if state in FINISHED or remaining <= 0:
                    return state
                self._wake.wait(min(remaining, 0.1))

    # -- introspection -----------------------------------------------------------------------------
    def active_count(self) -> int:
        with self._lock:
            return len(self._queue) + (1 if self._running is not None else 0)

    def job_count(self) -> int:
        with self._lock:
            return len(self._jobs)

    def sweep(self) -> None:
        """Cancel jobs whose lease ran out and forget finished jobs past their lifetime."""
        now = self.clock()
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state in FINISHED:
                    assert job.finished is not None
                    expired = now - job.finished > self.result_ttl
                    fetched = job.result_fetched is not None and now - job.result_fetched > self.fetched_grace
                    if expired or fetched:
                        del self._jobs[job.id]
                elif now - job.last_seen > self.lease_seconds and job.cancel_reason is None:
                    log.info("job %s: lease expired after %.0f s without a poll", job.id, now - job.last_seen)
                    self._cancel_locked(job, "lease_expired")

    # -- internals ---------------------------------------------------------------------------------
    def _position_locked(self, job: Job) -> int | None:
        if job.state != "queued":
            return None
        for index, queued in enumerate(self._queue):
            if queued is job:
                return index + 1
        return None

    def _evict_oldest_finished_locked(self) -> bool:
        """Forget the finished job that ended first; False when every record is a live job."""
        finished = [job for job in self._jobs.values() if job.state in FINISHED]
        if not finished:
            return False
        oldest = min(finished, key=lambda job: job.finished or 0.0)
        del self._jobs[oldest.id]
        return True

    def _retry_after_locked(self) -> int:
        running = self._running
        if running is not None and running.eta_s is not None:
            estimate = running.eta_s
        elif self._durations:
            estimate = sum(self._durations) / len(self._durations)
        else:
            estimate = 5.0
        return int(min(600, max(1, math.ceil(estimate))))

    def _cancel_locked(self, job: Job, reason: str) -> None:
        job.cancel_reason = job.cancel_reason or reason
        job.cancel_event.set()
        if job.state == "queued":
            try:
                self._queue.remove(job)
            except ValueError:
                pass
            self._finish_locked(job, "cancelled", error={
                "code": job.cancel_reason, "message": CANCEL_MESSAGES.get(job.cancel_reason, "Cancelled.")})

    def _finish_locked(self, job: Job, state: JobState, *, error: dict[str, str] | None = None,
                       output: JobOutput | None = None) -> None:
        now = self.clock()
        job.state = state
        job.error = error
        job.output = output
        discard_payload(job.payload)  # delete its spilled upload files now, on every way a job ends
        job.payload = None  # free the input image now, not when the record expires
        job.finished = now
        job.eta_s = 0.0 if state == "done" else None
        if state == "done":
            job.progress = 1.0
        job.stage = state
        self.last_activity = now
        self._wake.notify_all()

    def _work(self) -> None:
        if self.warmup is not None:
            try:
                self.warmup()
            except Exception:  # a failed warm-up only makes the first job slower
                log.warning("warm-up failed", exc_info=True)
        self.warm.set()
        while True:
            with self._lock:
                while not self._queue and not self._stopping:
                    self._wake.wait()
                if self._stopping:
                    return
                job = self._queue.popleft()
                job.state = "running"
                job.stage = "starting"
                job.started = self.clock()
                self._running = job
                payload = job.payload
            self._run_one(job, payload)
            del payload
            with self._lock:
                self._running = None
                self._wake.notify_all()
            _release_accelerator_memory()

    def _run_one(self, job: Job, payload: Any) -> None:
        def progress(report: Any) -> None:
            with self._lock:
                job.progress = min(1.0, max(0.0, float(getattr(report, "fraction", 0.0))))
                job.stage = str(getattr(report, "stage", job.stage))
                eta = getattr(report, "eta_s", None)
                job.eta_s = None if eta is None else max(0.0, float(eta))

        def cancel() -> bool:
            return job.cancel_event.is_set()

        try:
            if cancel():
                raise Cancelled("cancelled before start")
            output = self.runner(payload, progress, cancel)
        except Cancelled:
            reason = job.cancel_reason or "cancelled"
            with self._lock:
                self._finish_locked(job, "cancelled", error={
                    "code": reason, "message": CANCEL_MESSAGES.get(reason, "Cancelled.")})
        except FixativeError as exc:
            with self._lock:
                self._finish_locked(job, "failed", error={"code": exc.code, "message": str(exc)})
        except MemoryError:
            with self._lock:
                self._finish_locked(job, "failed", error={
                    "code": "out_of_memory",
                    "message": "Not enough memory for this image; try a smaller image or quality 'fast'."})
        except Exception as exc:  # never let one job kill the worker
            log.exception("job %s failed", job.id)
            with self._lock:
                self._finish_locked(job, "failed", error={
                    "code": "internal_error", "message": f"The engine failed: {type(exc).__name__}: {exc}"})
        else:
            with self._lock:
                if job.started is not None:
                    self._durations.append(self.clock() - job.started)
                if job.cancel_event.is_set():  # cancelled during the last step: honour it
                    reason = job.cancel_reason or "cancelled"
                    self._finish_locked(job, "cancelled", error={
                        "code": reason, "message": CANCEL_MESSAGES.get(reason, "Cancelled.")})
                else:
                    self._finish_locked(job, "done", output=output)
            if job.state == "done":
                _draw_preview(output)

    def _reap(self) -> None:
        interval = max(0.05, min(1.0, self.lease_seconds / 4))
        while True:
            with self._lock:
                if self._stopping:
                    return
                self._wake.wait(interval)
                if self._stopping:
                    return
            self.sweep()


def _draw_preview(output: JobOutput) -> None:
    """Run the output's preview factory (on the worker, after 'done'); never raises."""
    factory, output.preview_factory = output.preview_factory, None
    if factory is None:
        return
    try:
        output.preview = factory()
    except Exception:
        log.warning("preview failed", exc_info=True)
    finally:
        output.preview_ready.set()


def _release_accelerator_memory() -> None:
    """Give cached GPU memory back after each job (only if torch is already loaded)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return
    try:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - best effort
        pass
