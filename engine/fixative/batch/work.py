"""What one worker does with one file, the same in-process and inside a Ray actor.

Workers get the input's bytes and hand back the encoded output's bytes: on a cluster the workers
need not see the driver's disks, and only the driver writes outputs and the manifest, so what is on
disk is always consistent with the manifest.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OutcomeDict = dict[str, Any]


@dataclass(frozen=True)
class WriteSettings:
    """The `fixative batch` file flags that are not protection options (those travel in JobSpec.options)."""

    max_pixels: int = 400_000_000


@dataclass
class JobSpec:
    """Everything a worker needs once, before the first file: sent to each actor a single time."""

    options: dict[str, Any]
    style_image: Any | None = None
    anchors: list[Any] | None = None
    settings: WriteSettings = field(default_factory=WriteSettings)
    fmt: str = "PNG"
    offline: bool = field(default_factory=lambda: _offline())
    """The driver's FIXATIVE_OFFLINE (read when the spec is made): workers on other machines do not
    share the driver's environment, so the setting travels with the job."""


@dataclass
class WorkItem:
    """One input file on its way through the batch."""

    index: int
    source: Path
    output: Path
    attempt: int = 1
    """1 + the failures recorded for this file in earlier runs."""
    losses: int = 0
    """How often a worker died while holding this file in this run (retries, not failures)."""


def _offline() -> bool:
    from fixative.models.weights import offline

    return offline()


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def warm_up(spec: JobSpec) -> dict[str, Any]:
    """Load the encoders once per worker, so the first file does not pay for it and a missing
    weight file stops the batch at the start with one clear error instead of failing every file."""
    from fixative import service

    return {"worker": worker_name(), "device": service.warm_up(spec.options)}


def protect_one(spec: JobSpec, name: str, data: bytes, cancel: Callable[[], bool] | None = None) -> OutcomeDict:
    """Protect one file's bytes. Never raises for a bad file: the outcome says what went wrong."""
    from fixative import service
    from fixative.errors import Cancelled, FixativeError

    started = time.perf_counter()
    outcome: OutcomeDict = {"worker": worker_name()}
    try:
        # Unsigned: the driver signs the credentials with the artist's identity, which workers on other
        # machines do not have (fixative.batch.runner).
        protected = service.protect_bytes(data, spec.options, fmt=spec.fmt, max_pixels=spec.settings.max_pixels,
                                          style_image=spec.style_image, anchor_images=spec.anchors, cancel=cancel,
                                          credentials=False)
        outcome.update(status="done", data=protected.data, stats=protected.result.stats.model_dump())
    except Cancelled:
        outcome.update(status="interrupted")
    except FixativeError as exc:
        outcome.update(status="failed", error={"code": exc.code, "message": f"{name}: {exc}"})
    except MemoryError:
        outcome.update(status="failed", error={"code": "out_of_memory",
                                               "message": f"{name}: out of memory; use a bigger worker"})
    except Exception as exc:  # one bad file never stops the batch; the manifest keeps the reason
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        code = "out_of_memory" if "out of memory" in text.lower() else "internal_error"
        outcome.update(status="failed", error={"code": code, "message": f"{name}: {type(exc).__name__}: {text}"})
    outcome["seconds"] = round(time.perf_counter() - started, 3)
    return outcome
