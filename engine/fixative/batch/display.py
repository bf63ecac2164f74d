"""Progress for people: a rich bar on a terminal, a plain line every few seconds in logs (CI, pods)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fixative.batch.runner import BatchRunner, Plan
    from fixative.batch.work import WorkItem


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class BatchDisplay:
    """Done / failed / retried, images per minute and ETA; a summary at the end."""

    def __init__(self, console: Any, *, log_every_s: float = 10.0, verbose: bool = False) -> None:
        self.console = console
        self.log_every_s = log_every_s
        self.verbose = verbose
        self.progress: Any = None
        self.task: Any = None
        self.started = time.perf_counter()
        self.last_log = 0.0
        self.todo = 0
        self.collisions = 0

    def begin(self, runner: BatchRunner, plan: Plan) -> None:
        self.started = time.perf_counter()
        self.todo = len(plan.todo)
        self.collisions = len(plan.collisions)
        parts = [f"{runner.summary.total} file(s)", f"{len(plan.todo)} to protect"]
        if plan.skipped_done:
            parts.append(f"{len(plan.skipped_done)} already done")
        if plan.gave_up:
            parts.append(f"{len(plan.gave_up)} skipped after {runner.max_attempts} failed attempts")
        if plan.collisions:
            parts.append(f"{len(plan.collisions)} output name collision(s)")
        self.console.print(f"fixative batch: {', '.join(parts)} → {runner.out_dir}")
        for source, error in plan.gave_up:
            message = (error or {}).get("message", "")
            self.console.print(f"  gave up on {source}: {message} (raise --max-attempts to try again)")
        if self.console.is_terminal and self.todo:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.progress = Progress(TextColumn("[bold]protecting"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[line]}"), console=self.console, transient=False)
            self.progress.start()
            self.task = self.progress.add_task("batch", total=self.todo, line="")

    def workers_ready(self, runner: BatchRunner) -> None:
        self.console.print(f"fixative batch: workers ready ({runner.executor.description})")
        self.started = time.perf_counter()  # throughput counts from here, not from model loading

    def _line(self, runner: BatchRunner) -> str:
        s = runner.summary
        elapsed = time.perf_counter() - self.started
        rate = 60.0 * s.done / elapsed if elapsed > 0 and s.done else 0.0
        left = self.todo - self._finished(runner)
        eta = (left / rate * 60.0) if rate > 0 else None
        text = f"done {s.done}  failed {s.failed}  retried {s.retried}  {rate:.1f} img/min  ETA {_duration(eta)}"
        if runner.stop.is_set():
            text += "  [stopping: finishing running files]"
        return text

    def _finished(self, runner: BatchRunner) -> int:
        """Files of this run's queue that are finished (collisions fail before the queue starts)."""
        s = runner.summary
        return max(0, s.done + s.failed - self.collisions)

    def tick(self, runner: BatchRunner) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=min(self.todo, self._finished(runner)),
                                 line=self._line(runner))
        elif time.perf_counter() - self.last_log >= self.log_every_s and self.todo:
            self.last_log = time.perf_counter()
            self.console.print(f"fixative batch: {self._line(runner)}")

    def file_done(self, runner: BatchRunner, item: WorkItem, outcome: dict[str, Any]) -> None:
        if self.verbose:
            stats = outcome.get("stats") or {}
            closing = ", ".join(f"{k} {v:.3f}" for k, v in (stats.get("closing") or {}).items())
            self.console.print(f"{item.source} → {item.output}  (f {closing}; PSNR {stats.get('psnr', 0):.1f} dB;"
                               f" {outcome.get('seconds', 0):.1f} s)")
        self.tick(runner)

    def file_failed(self, runner: BatchRunner, item: WorkItem, error: dict[str, Any]) -> None:
        self.console.print(f"fixative: error: {error.get('message')} [{error.get('code')}]")
        self.tick(runner)

    def end(self, runner: BatchRunner) -> None:
        if self.progress is not None:
            self.tick(runner)
            self.progress.stop()
        s = runner.summary
        parts = [f"{s.done} done", f"{s.failed} failed"]
        if s.skipped_done:
            parts.append(f"{s.skipped_done} already done")
        if s.gave_up:
            parts.append(f"{s.gave_up} given up")
        if s.retried:
            parts.append(f"{s.retried} retried after a worker was lost")
        self.console.print(f"fixative batch: {', '.join(parts)} in {_duration(s.seconds)} "
                           f"({s.images_per_minute:.1f} images/min); manifest: {runner.manifest.path}")
        if s.done_per_node:
            nodes = ", ".join(f"{node} {count}" for node, count in sorted(s.done_per_node.items()))
            self.console.print(f"fixative batch: done per node: {nodes}")
        if s.interrupted:
            self.console.print("fixative batch: interrupted; run the same command again to resume")
