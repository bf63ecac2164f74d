"""The Ray side of tests/test_batch_ray.py, run inside a network namespace (see netns.py).

One local Ray cluster (2 CPUs, 127.0.0.1), two batch runs into one output folder:

1. ``interrupt``: stop (as Ctrl-C does) once ``stop_after`` files are done;
2. ``resume``: the same batch again; after its first result one busy actor is ``ray.kill``-ed;
3. ``missing_on_driver``: a model whose weights the driver lacks: it stops before any actor;
4. ``missing_on_worker``: a model the actors cannot load: the error names the node.

Writes what it saw to the JSON file named by ``--results``; pytest checks it and the files.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inputs", required=True)
    parser.add_argument("--out-dir", required=True)
    parser.add_argument("--options", required=True, help="protect options as JSON")
    parser.add_argument("--results", required=True)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stop-after", type=int, default=3)
    args = parser.parse_args()
    results: dict = {"started": time.time()}
    try:
        _run(args, results)
        results["ok"] = True
    except BaseException:  # report everything to pytest, which shows it
        results["ok"] = False
        results["traceback"] = traceback.format_exc()
    Path(args.results).write_text(json.dumps(results, indent=2, default=str))
    return 0 if results["ok"] else 1


def _run(args: argparse.Namespace, results: dict) -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    import ray

    from fixative.batch.manifest import Manifest
    from fixative.batch.ray_executor import RayExecutor
    from fixative.batch.runner import BatchRunner
    from fixative.batch.work import JobSpec
    from fixative.commands.batch import collect_inputs
    from fixative.imageio import default_output_path

    t0 = time.perf_counter()
    ray.init(num_cpus=args.workers, include_dashboard=False, _node_ip_address="127.0.0.1",
             logging_level="warning")
    results["ray_init_s"] = round(time.perf_counter() - t0, 2)
    results["node_ip"] = ray.util.get_node_ip_address()
    sources = collect_inputs([args.inputs])
    out_dir = Path(args.out_dir)
    spec = JobSpec(options=json.loads(args.options))

    def batch(hook, spec: JobSpec = spec, out_dir: Path = out_dir) -> dict:
        executor = RayExecutor(workers=args.workers, gpus_per_worker=0, cpus_per_worker=1)
        with Manifest.open(out_dir) as manifest:
            runner = BatchRunner(sources, out_dir, spec, executor, manifest,
                                 output_for=lambda s: default_output_path(s, out_dir), on_event=hook)
            started = time.perf_counter()
            summary = runner.run()
        return {"summary": summary.as_dict(), "failures": summary.failures, "run_id": runner.run_id,
                "wall_s": round(time.perf_counter() - started, 2), "workers": executor.workers,
                "replacements": executor.replacements}

    def stop_after(runner, event) -> None:
        if runner.summary.done >= args.stop_after:
            runner.stop.set()

    results["interrupt"] = batch(stop_after)

    killed: dict = {}

    def kill_one_busy(runner, event) -> None:
        if killed:
            return
        executor = runner.executor
        for ref, (slot, item) in list(executor.running.items()):
            finished, _ = ray.wait([ref], timeout=0)
            if finished:  # kill a worker in the middle of a file, not one that just finished
                continue
            actor = executor.actors[slot]
            killed["input"] = str(item.source)
            killed["pid"] = ray.get(actor.pid.remote(), timeout=60)
            ray.kill(actor, no_restart=True)
            return

    results["resume"] = batch(kill_one_busy)
    results["killed"] = killed

    # Weights the driver does not have stop the batch on the driver, before any actor starts.
    results["missing_on_driver"] = _failed_batch(batch, {**json.loads(args.options), "models": ["taesd"]},
                                                 out_dir.parent / "out-missing-on-driver")
    # A model the driver does not ship (a diffusers VAE folder) that a worker cannot load: the
    # actors cannot start, and the one error names the node.
    results["missing_on_worker"] = _failed_batch(batch, {**json.loads(args.options),
                                                         "models": ["vae:/nonexistent/fixative-test-vae"]},
                                                 out_dir.parent / "out-missing-on-worker")
    ray.shutdown()


def _failed_batch(batch, options: dict, out_dir: Path) -> dict:
    """Run a batch that must fail as a whole; what it raised, and what it left in ``out_dir``."""
    from fixative.batch.work import JobSpec

    try:
        batch(None, JobSpec(options=options), out_dir)
        return {"raised": None}
    except Exception as exc:
        return {"raised": type(exc).__name__, "message": str(exc), "code": getattr(exc, "code", None),
                "outputs": sorted(p.name for p in out_dir.glob("*.png"))}


if __name__ == "__main__":
    sys.exit(main())
