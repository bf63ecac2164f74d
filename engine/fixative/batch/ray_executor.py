"""Ray actors for `fixative batch --ray`: one per GPU (or per CPU slot), models loaded once each.

The scheduler keeps one file in flight per actor. An actor that dies (``ray.kill``, OOM killer, a
lost node) costs a retry of the file it held, never a failure, and is replaced by a fresh actor.

Workers get everything from the driver, nothing from their node's environment: the driver reads
the weight files once (checked against their pins) and puts their bytes in Ray's object store; each
actor loads its models from those bytes. Offline mode travels in the JobSpec. Actors are spread
over the nodes, and every outcome names the node and actor that produced it.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from fixative.batch.runner import Event
from fixative.batch.work import JobSpec, OutcomeDict, WorkItem, protect_one, warm_up
from fixative.errors import FixativeError, MissingWeights
from fixative.models.weights import WeightBytes

STARTUP_TIMEOUT_S = 600.0
"""Loading models on a cold node (or waiting for an autoscaler) can take minutes, not hours."""


class RayUnavailable(FixativeError):
    code = "ray_unavailable"


def require_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailable("--ray needs Ray: pip install 'fixative[ray]' (or 'ray[default]')") from exc
    return ray


def connect(address: str, runtime_env: dict[str, Any] | None = None) -> bool:
    """Join a cluster (``auto``, ``ray://host:10001``, ``host:6379``) or start a local one
    (``local``, bound to 127.0.0.1). Returns True when this call started Ray (so we shut it down)."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = require_ray()
    if ray.is_initialized():
        return False
    kwargs: dict[str, Any] = {"include_dashboard": False, "configure_logging": True,
                              "logging_level": "warning"}
    if runtime_env:
        kwargs["runtime_env"] = runtime_env
    try:
        if address == "local":
            ray.init(_node_ip_address="127.0.0.1", **kwargs)
        else:
            kwargs.pop("include_dashboard")  # only for a cluster this call starts
            ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RayUnavailable(f"cannot connect to the Ray cluster at {address}: {exc}") from exc
    return True


class ProtectWorker:
    """A Ray actor (made remote by :class:`RayExecutor`): the models stay loaded between files.

    Runs with two threads so that ``stop()`` can reach a ``run()`` in progress: protect() polls the
    flag every step and raises Cancelled."""

    def __init__(self, spec: JobSpec, weights: list[WeightBytes], threads: int) -> None:
        import ray

        from fixative.models.weights import hold_in_memory

        if threads > 0:
            import torch

            torch.set_num_threads(threads)
        self.spec = spec
        self._stop = threading.Event()
        self._loaded: dict[str, Any] | None = None
        context = ray.get_runtime_context()
        self.where = {"node": ray.util.get_node_ip_address(), "node_id": context.get_node_id(),
                      "actor": context.get_actor_id()}
        if spec.offline:  # the driver's setting, not this node's environment
            os.environ["FIXATIVE_OFFLINE"] = "1"
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        hold_in_memory(weights, only=True)  # from here on, weights come from the driver or not at all

    def ready(self) -> dict[str, Any]:
        """Load the models (from the shipped bytes) once; a failure names this node."""
        if self._loaded is None:
            here = f"on Ray node {self.where['node']} (node id {self.where['node_id'][:12]})"
            try:
                self._loaded = {**warm_up(self.spec), **self.where}
            except FixativeError as exc:
                raise type(exc)(f"{here}: {exc}") from exc
            except Exception as exc:
                raise MissingWeights(f"{here}: could not load the models: {type(exc).__name__}: {exc}") from exc
        return self._loaded

    def run(self, name: str, data: bytes) -> OutcomeDict:
        try:
            self.ready()  # a replacement actor gets its first file without a separate ready() call
        except FixativeError as exc:
            return {"status": "failed", "error": {"code": exc.code, "message": f"{name}: {exc}"}, **self.where}
        return {**protect_one(self.spec, name, data, cancel=self._stop.is_set), **self.where}

    def stop(self) -> None:
        self._stop.set()

    def pid(self) -> int:
        return os.getpid()


class RayExecutor:
    """Feeds files to a pool of ProtectWorker actors on the Ray cluster this process is connected to."""

    def __init__(self, workers: int | None = None, gpus_per_worker: float | None = None,
                 cpus_per_worker: float = 1.0, stop: threading.Event | None = None,
                 startup_timeout_s: float = STARTUP_TIMEOUT_S, max_replacements: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise FixativeError("--workers must be at least 1")
        if gpus_per_worker is not None and gpus_per_worker < 0:
            raise FixativeError("--gpus-per-worker must be 0 or more")
        if cpus_per_worker <= 0:
            raise FixativeError("--cpus-per-worker must be more than 0")
        self.requested_workers = workers
        self.requested_gpus = gpus_per_worker
        self.cpus_per_worker = cpus_per_worker
        self.stop = stop or threading.Event()
        self.startup_timeout_s = startup_timeout_s
        self.max_replacements = max_replacements
        self.workers = 0
        self.gpus_per_worker = 0.0
        self.replacements = 0
        self.description = "ray"
        self.actors: list[Any] = []
        self.running: dict[Any, tuple[int, WorkItem]] = {}
        """ObjectRef of a run() call → (actor slot, item); tests pick an actor to kill from it."""
        self.starting: dict[Any, int] = {}
        """ObjectRef of a replacement actor's ready() call → its slot (it gets no file before that)."""
        self.where: dict[int, dict[str, Any]] = {}
        """Actor slot → the node, node id and actor id it last reported (named in lost-worker records)."""
        self._spec_ref: Any = None
        self._weights_ref: Any = None
        self._remote_cls: Any = None

    # -- sizing -------------------------------------------------------------------------------
    def size(self, resources: dict[str, float]) -> tuple[int, float]:
        """(workers, GPUs per worker) from the request and the cluster: one actor per GPU by
        default, one per ``cpus_per_worker`` CPUs when the cluster has no GPU."""
        cluster_gpus = float(resources.get("GPU", 0.0))
        cluster_cpus = float(resources.get("CPU", 0.0))
        gpus = self.requested_gpus if self.requested_gpus is not None else (1.0 if cluster_gpus >= 1 else 0.0)
        if gpus > 0 and cluster_gpus < gpus:
            raise FixativeError(f"each worker asks for {gpus:g} GPU(s) but the Ray cluster has {cluster_gpus:g}; "
                                "use --gpus-per-worker 0 for CPU workers")
        if self.requested_workers is not None:
            workers = self.requested_workers
        elif gpus > 0:
            workers = int(cluster_gpus // gpus)
        else:
            workers = int(cluster_cpus // self.cpus_per_worker)
        workers = max(1, workers)
        if gpus > 0 and workers * gpus > cluster_gpus + 1e-9:
            raise FixativeError(f"{workers} workers × {gpus:g} GPU need {workers * gpus:g} GPUs; the Ray "
                                f"cluster has {cluster_gpus:g}")
        if workers * self.cpus_per_worker > cluster_cpus + 1e-9:
            raise FixativeError(f"{workers} workers × {self.cpus_per_worker:g} CPU need "
                                f"{workers * self.cpus_per_worker:g} CPUs; the Ray cluster has {cluster_cpus:g}")
        return workers, gpus

    # -- Executor protocol --------------------------------------------------------------------
    def start(self, spec: JobSpec) -> None:
        ray = require_ray()
        if not ray.is_initialized():
            raise RayUnavailable("Ray is not initialised: call fixative.batch.ray_executor.connect() first")
        self.workers, self.gpus_per_worker = self.size(ray.cluster_resources())
        if self.max_replacements is None:
            self.max_replacements = 2 * self.workers + 8
        where = f"{self.gpus_per_worker:g} GPU" if self.gpus_per_worker else f"{self.cpus_per_worker:g} CPU"
        self.description = f"ray: {self.workers} worker(s) × {where}"
        from fixative.models.registry import weight_bytes_for
        from fixative.options import ProtectOptions

        weights = weight_bytes_for(ProtectOptions.coerce(spec.options).models, download=not spec.offline)
        self._remote_cls = ray.remote(ProtectWorker)
        self._spec_ref = ray.put(spec)
        self._weights_ref = ray.put(weights)  # once: every actor, on every node, reads this one object
        self.actors = [self._new_actor() for _ in range(self.workers)]
        pending = [actor.ready.remote() for actor in self.actors]
        slots = {ref: slot for slot, ref in enumerate(pending)}
        deadline = time.monotonic() + self.startup_timeout_s
        try:
            while pending and not self.stop.is_set():  # short waits, so Ctrl-C is heard while starting
                if time.monotonic() > deadline:
                    self.shutdown()
                    raise RayUnavailable(f"the Ray workers did not start within {self.startup_timeout_s:g} s: "
                                         f"the cluster may lack free resources for {self.description}")
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=0.5)
                for ref, info in zip(ready, ray.get(ready), strict=True):
                    self.where[slots[ref]] = {k: info[k] for k in ("node", "node_id", "actor")}
        except ray.exceptions.RayError as exc:
            self.shutdown()
            raise RayUnavailable(f"a Ray worker could not start: {_reason(exc)}") from exc

    def _new_actor(self, strategy: Any = "SPREAD") -> Any:
        return self._remote_cls.options(
            num_cpus=self.cpus_per_worker, num_gpus=self.gpus_per_worker, max_concurrency=2, max_restarts=0,
            scheduling_strategy=strategy).remote(self._spec_ref, self._weights_ref, max(1, int(self.cpus_per_worker)))

    def _usable(self) -> list[int]:
        """Slots whose actor is up: replacements get files only once their models are loaded, so a
        replacement that never starts (placed on a node that is dying) costs no file a retry."""
        starting = set(self.starting.values())
        busy = {slot for slot, _ in self.running.values()}
        return [s for s in range(len(self.actors)) if s not in starting and s not in busy]

    def free_slots(self) -> int:
        return len(self._usable())

    def in_flight(self) -> int:
        return len(self.running)

    def submit(self, item: WorkItem, data: bytes) -> None:
        slot = self._usable()[0]
        ref = self.actors[slot].run.remote(item.source.name, data)
        self.running[ref] = (slot, item)

    def poll(self, timeout: float) -> list[Event]:
        ray = require_ray()
        refs = [*self.running, *self.starting]
        if not refs:
            return []
        ready, rest = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready and rest:
            more, _ = ray.wait(rest, num_returns=len(rest), timeout=0)
            ready += more
        events = []
        for ref in ready:
            if ref in self.starting:
                self._started(ref)
                continue
            slot, item = self.running.pop(ref)
            try:
                outcome = ray.get(ref)
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError) as exc:
                where = self.where.pop(slot, None)
                reason = _reason(exc) + (f" (on node {where['node']})" if where else "")
                events.append(Event(item, None, lost_reason=reason, where=where))
                self._replace(slot, where)
                continue
            except ray.exceptions.RayTaskError as exc:  # protect_one catches file errors; this is a bug
                outcome = {"status": "failed", "error": {"code": "internal_error",
                                                         "message": f"{item.source.name}: {_reason(exc)}"}}
            if "node" in outcome:
                self.where[slot] = {k: outcome[k] for k in ("node", "node_id", "actor")}
            events.append(Event(item, outcome))
        return events

    def _started(self, ref: Any) -> None:
        """A replacement actor answered ready(): its slot takes files, or it is replaced again."""
        ray = require_ray()
        slot = self.starting.pop(ref)
        try:
            info = ray.get(ref)
        except ray.exceptions.RayActorError:  # died while starting (its node went away too)
            self._replace(slot, None)
            return
        except ray.exceptions.RayError as exc:
            raise RayUnavailable(f"a replacement Ray worker could not start: {_reason(exc)}") from exc
        self.where[slot] = {k: info[k] for k in ("node", "node_id", "actor")}

    def _replace(self, slot: int, lost: dict[str, Any] | None) -> None:
        ray = require_ray()
        try:
            ray.kill(self.actors[slot])
        except Exception:  # already gone
            pass
        if self.stop.is_set():
            return
        self.replacements += 1
        if self.max_replacements is not None and self.replacements > self.max_replacements:
            raise RayUnavailable(f"Ray workers died {self.replacements} times; stopping the batch (the "
                                 "manifest is complete: fix the cluster and run again to resume)")
        self.actors[slot] = self._new_actor(self._away_from(lost))
        self.starting[self.actors[slot].ready.remote()] = slot

    def _away_from(self, lost: dict[str, Any] | None) -> Any:
        """Prefer another node than the one that just lost an actor: Ray may still count a dead
        node as alive for some seconds. Soft, so a one-node cluster uses its one node."""
        if not lost:
            return "SPREAD"
        ray = require_ray()
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ours = [w["node_id"] for w in self.where.values()]
        others = [n["NodeID"] for n in ray.nodes() if n.get("Alive") and n["NodeID"] != lost["node_id"]
                  and n.get("Resources", {}).get("CPU", 0) >= self.cpus_per_worker]
        if not others:
            return "SPREAD"
        return NodeAffinitySchedulingStrategy(node_id=min(others, key=ours.count), soft=True)

    def request_stop(self) -> None:
        self.stop.set()
        for slot, _ in list(self.running.values()):
            try:
                self.actors[slot].stop.remote()
            except Exception:  # a dead actor: its run() will report the loss
                pass

    def shutdown(self) -> None:
        ray = require_ray()
        for actor in self.actors:
            try:
                ray.kill(actor)
            except Exception:
                pass
        self.actors = []
        self.running = {}
        self.starting = {}
        self._weights_ref = None


def _reason(exc: BaseException) -> str:
    """One readable line from a Ray exception (they are long and multi-line)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException) and cause is not exc:
        return f"{type(cause).__name__}: {str(cause).strip().splitlines()[0] if str(cause).strip() else ''}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
