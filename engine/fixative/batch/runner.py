"""The batch scheduler: plan from the manifest, feed files to workers from a queue, record results.

The scheduler does not care where work runs: :class:`InProcessExecutor` protects files one by one
in this process (no cluster needed), :class:`fixative.batch.ray_executor.RayExecutor` hands them to
Ray actors. Both run :func:`fixative.batch.work.protect_one`, so the outputs are the same.
"""

from __future__ import annotations

import collections
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fixative.batch.manifest import (
    DONE,
    FAILED,
    INTERRUPTED,
    RETRIED,
    Manifest,
    array_digest,
    fingerprint,
)
from fixative.batch.work import JobSpec, OutcomeDict, WorkItem, protect_one, warm_up
from fixative.errors import BadImage, FixativeError


@dataclass
class Event:
    """A worker finished with an item: ``outcome`` is None when the worker died holding it."""

    item: WorkItem
    outcome: OutcomeDict | None
    lost_reason: str | None = None
    where: dict[str, Any] | None = None
    """For a lost worker: the node, node id and actor it ran on, when known."""


class Executor(Protocol):
    """Where files are protected. The scheduler keeps at most ``free_slots()`` items in flight."""

    description: str

    def start(self, spec: JobSpec) -> None: ...
    def free_slots(self) -> int: ...
    def in_flight(self) -> int: ...
    def submit(self, item: WorkItem, data: bytes) -> None: ...
    def poll(self, timeout: float) -> list[Event]: ...
    def request_stop(self) -> None: ...
    def shutdown(self) -> None: ...


class InProcessExecutor:
    """One slot, run in this process: the no-cluster path, and the reference for the Ray one."""

    description = "in-process"

    def __init__(self, stop: threading.Event | None = None, threads: int | None = None) -> None:
        self.stop = stop or threading.Event()
        self.threads = threads
        self.spec: JobSpec | None = None
        self._pending: tuple[WorkItem, bytes] | None = None
        self._threads_before: int | None = None

    def start(self, spec: JobSpec) -> None:
        if self.threads:
            import torch

            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(max(1, self.threads))
        self.spec = spec
        warm_up(spec)

    def free_slots(self) -> int:
        return 0 if self._pending else 1

    def in_flight(self) -> int:
        return 1 if self._pending else 0

    def submit(self, item: WorkItem, data: bytes) -> None:
        self._pending = (item, data)

    def poll(self, timeout: float) -> list[Event]:
        if not self._pending or self.spec is None:
            return []
        item, data = self._pending
        try:
            outcome = protect_one(self.spec, item.source.name, data, cancel=self.stop.is_set)
        finally:
            self._pending = None
        return [Event(item, outcome)]

    def request_stop(self) -> None:
        self.stop.set()

    def shutdown(self) -> None:
        self._pending = None
        if self._threads_before:  # give the process back its thread count (tests, library callers)
            import torch

            torch.set_num_threads(self._threads_before)
            self._threads_before = None


@dataclass
class BatchSummary:
    total: int = 0
    done: int = 0
    failed: int = 0
    skipped_done: int = 0
    gave_up: int = 0
    retried: int = 0
    interrupted: bool = False
    seconds: float = 0.0
    failures: list[dict[str, Any]] = field(default_factory=list)
    done_per_node: dict[str, int] = field(default_factory=dict)
    """Files done in this run by each node (its IP; the host name in-process)."""

    @property
    def images_per_minute(self) -> float:
        return 60.0 * self.done / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "done": self.done, "failed": self.failed,
                "skipped_done": self.skipped_done, "gave_up": self.gave_up, "retried": self.retried,
                "interrupted": self.interrupted, "seconds": round(self.seconds, 3),
                "images_per_minute": round(self.images_per_minute, 3), "done_per_node": dict(self.done_per_node)}


@dataclass
class Plan:
    todo: list[WorkItem]
    skipped_done: list[Path]
    gave_up: list[tuple[Path, dict[str, Any] | None]]
    collisions: list[tuple[Path, Path]]
    """(input, the earlier input it collides with): both would be written to the same output."""


Hook = Callable[["BatchRunner", Event], None]


class BatchRunner:
    """Runs one batch: plan → dispatch → record; Ctrl-C (SIGINT/SIGTERM) stops it cleanly."""

    def __init__(self, sources: list[Path], out_dir: Path, spec: JobSpec, executor: Executor,
                 manifest: Manifest, *, output_for: Callable[[Path], Path], max_attempts: int = 3,
                 display: Any | None = None, on_event: Hook | None = None,
                 stop: threading.Event | None = None) -> None:
        if max_attempts < 1:
            raise FixativeError("--max-attempts must be at least 1")
        self.sources, self.out_dir, self.spec = sources, out_dir, spec
        self.executor, self.manifest = executor, manifest
        self.output_for, self.max_attempts = output_for, max_attempts
        self.display, self.on_event = display, on_event
        self.stop = stop or getattr(executor, "stop", None) or threading.Event()
        self.fingerprint = fingerprint(spec.options, {
            "style": None if spec.style_image is None else array_digest(spec.style_image),
            "anchors": [array_digest(a) for a in spec.anchors or []],
            "settings": spec.settings.__dict__, "format": spec.fmt})
        self.summary = BatchSummary(total=len(sources))
        self.run_id = uuid.uuid4().hex[:12]
        """Tags this run's manifest records (several runs append to one manifest)."""
        self._stop_sent = False

    # -- planning -----------------------------------------------------------------------------
    def plan(self) -> Plan:
        """Skip files done under these options (output still there); skip files that failed
        ``max_attempts`` times; refuse two inputs that would overwrite one output."""
        todo: list[WorkItem] = []
        skipped: list[Path] = []
        gave_up: list[tuple[Path, dict[str, Any] | None]] = []
        collisions: list[tuple[Path, Path]] = []
        claimed: dict[Path, Path] = {}
        for index, source in enumerate(self.sources):
            output = self.output_for(source)
            key = _output_key(output)
            if key in claimed:
                collisions.append((source, claimed[key]))
                continue
            claimed[key] = source
            state = self.manifest.state(input_key(source), self.fingerprint)
            if state.status == DONE and Path(state.output or output).exists():
                skipped.append(source)
                continue
            if state.failures >= self.max_attempts:
                gave_up.append((source, state.last_error))
                continue
            todo.append(WorkItem(index=index, source=source, output=output, attempt=state.failures + 1))
        return Plan(todo, skipped, gave_up, collisions)

    # -- running ------------------------------------------------------------------------------
    def run(self) -> BatchSummary:
        started = time.perf_counter()
        plan = self.plan()
        self.summary.skipped_done = len(plan.skipped_done)
        self.summary.gave_up = len(plan.gave_up)
        if self.display:
            self.display.begin(self, plan)
        for source, other in plan.collisions:
            self._fail(WorkItem(-1, source, self.output_for(source)), {
                "code": "output_collision",
                "message": f"{source} and {other} would both be written to {self.output_for(source).name}; "
                           "rename one or protect them into different folders"})
        with _StopOnSignals(self._request_stop):
            try:
                if plan.todo:
                    self.executor.start(self.spec)
                    if self.display:
                        self.display.workers_ready(self)
                    self._loop(collections.deque(plan.todo))
            finally:
                self.summary.seconds = time.perf_counter() - started
                if self.stop.is_set():
                    self.summary.interrupted = True
                self.executor.shutdown()
                if self.display:
                    self.display.end(self)
        return self.summary

    def _request_stop(self) -> None:
        self.stop.set()

    def _loop(self, queue: collections.deque[WorkItem]) -> None:
        while True:
            if self.stop.is_set() and not self._stop_sent:
                self._stop_sent = True
                self.executor.request_stop()
            while queue and not self.stop.is_set() and self.executor.free_slots() > 0:
                item = queue.popleft()
                data = self._read(item)
                if data is not None:
                    self.executor.submit(item, data)
            if self.executor.in_flight() == 0 and (not queue or self.stop.is_set()):
                return
            for event in self.executor.poll(0.5):
                self._handle(event, queue)
                if self.on_event:
                    self.on_event(self, event)
            if self.display:
                self.display.tick(self)

    def _read(self, item: WorkItem) -> bytes | None:
        try:
            if not item.source.is_file():
                raise BadImage(f"{item.source}: no such file")
            return item.source.read_bytes()
        except OSError as exc:
            self._fail(item, {"code": "bad_image", "message": f"{item.source}: {exc.strerror or exc}"})
        except FixativeError as exc:
            self._fail(item, {"code": exc.code, "message": str(exc)})
        return None

    def _handle(self, event: Event, queue: collections.deque[WorkItem]) -> None:
        item, outcome = event.item, event.outcome
        if outcome is None:  # the worker died (killed, OOM-killed, node lost): not the file's fault
            lost = {"code": "worker_lost", "message": event.lost_reason}
            if self.stop.is_set():
                self._record(item, INTERRUPTED, outcome=event.where, error=lost)
                return
            item.losses += 1
            if item.losses >= self.max_attempts:
                self._fail(item, {"code": "worker_lost", "message": f"{item.source}: the worker died "
                                  f"{item.losses} times while protecting it ({event.lost_reason})"}, event.where)
                return
            self.summary.retried += 1
            self._record(item, RETRIED, outcome=event.where, error=lost)
            queue.appendleft(item)
            return
        status = outcome.get("status")
        if status == "done":
            from fixative.imageio import write_atomic

            try:
                write_atomic(item.output, self._signed(outcome["data"]), protect_inputs=(item.source,))
            except FixativeError as exc:
                self._fail(item, {"code": exc.code, "message": str(exc)}, outcome)
                return
            self.summary.done += 1
            node = _node_of(outcome)
            self.summary.done_per_node[node] = self.summary.done_per_node.get(node, 0) + 1
            self._record(item, DONE, outcome=outcome)
            if self.display:
                self.display.file_done(self, item, outcome)
        elif status == "interrupted":
            self._record(item, INTERRUPTED, outcome=outcome)
        else:
            self._fail(item, outcome.get("error") or {"code": "internal_error", "message": "unknown"}, outcome)

    def _signed(self, data: bytes) -> bytes:
        """The worker's bytes with the driver's C2PA credentials: only the driver holds the artist's
        identity, so files done on any node are signed by the same person."""
        from fixative.provenance import add_optout_credentials

        enabled = bool(self.spec.options.get("optout_metadata", True))
        return add_optout_credentials(data, self.spec.fmt, enabled=enabled)

    def _fail(self, item: WorkItem, error: dict[str, Any], outcome: OutcomeDict | None = None) -> None:
        self.summary.failed += 1
        self.summary.failures.append({"input": str(item.source), **error})
        self._record(item, FAILED, outcome=outcome, error=error)
        if self.display:
            self.display.file_failed(self, item, error)

    def _record(self, item: WorkItem, status: str, *, outcome: OutcomeDict | None = None,
                error: dict[str, Any] | None = None) -> None:
        outcome = outcome or {}
        stats = outcome.get("stats")
        record: dict[str, Any] = {
            "input": input_key(item.source), "output": str(item.output), "status": status,
            "run": self.run_id, "attempt": item.attempt, "fingerprint": self.fingerprint, "options": self.spec.options,
            "models": (stats or {}).get("models"), "seconds": outcome.get("seconds"),
            "worker": outcome.get("worker"), "node": _node_of(outcome) if outcome else None,
            "node_id": outcome.get("node_id"), "actor": outcome.get("actor"), "stats": stats,
        }
        if error:
            record["error"] = error
        self.manifest.append(record)


def _node_of(outcome: OutcomeDict) -> str:
    """The node that produced an outcome: its IP on Ray, the worker's host name in-process."""
    return str(outcome.get("node") or (outcome.get("worker") or "?").rsplit(":", 1)[0])


def input_key(source: Path) -> str:
    """Inputs are known by absolute path, so a re-run from another folder still resumes."""
    return str(Path(source).expanduser().resolve())


def _output_key(output: Path) -> Path:
    return Path(output).expanduser().resolve()


class _StopOnSignals:
    """First Ctrl-C (or SIGTERM, as Kubernetes sends): stop dispatching and let running files finish
    or cancel within one step. A second Ctrl-C raises KeyboardInterrupt at once; the manifest is
    still whole because every record went out in one write."""

    def __init__(self, request_stop: Callable[[], None]) -> None:
        self.request_stop = request_stop
        self.previous: dict[int, Any] = {}
        self.hits = 0

    def _handler(self, signum: int, frame: Any) -> None:
        self.hits += 1
        self.request_stop()
        if self.hits > 1 and signum == signal.SIGINT:
            raise KeyboardInterrupt

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
