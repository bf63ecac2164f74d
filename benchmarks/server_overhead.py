"""What the engine process costs on top of protect(): per-job overhead and queued throughput.

    python benchmarks/server_overhead.py            # default 512² job (slow on CPU)
    python benchmarks/server_overhead.py --small    # CI: 64², fast quality, 2 steps, 4 queued jobs

Per-job overhead = wall time from POST to having the result bytes, minus the protect() time the
engine itself reports for that job (``report.seconds``): HTTP, upload checks (header + decode),
queueing, polling, encoding the result and the preview. It is also compared with the same protect()
call run in this process. Target: overhead ≤ 5 % of a default 512² job.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.helpers.engine starts the real `fixative serve`


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI size: 64², fast, 2 steps, 4 queued jobs")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--quality", default="default")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=2, help="timed single jobs (after one warm-up)")
    parser.add_argument("--jobs", type=int, default=16, help="jobs queued at once for the throughput run")
    parser.add_argument("--poll", type=float, default=0.05, help="client poll interval in seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    if args.small:
        args.size, args.quality, args.steps, args.jobs, args.repeats = 64, "fast", 2, 4, 2
    return args


def main() -> int:
    args = parse_args()
    os.environ.setdefault("FIXATIVE_MODEL_DIR", str(REPO.parent / "shared" / "models" / "taesd"))
    os.environ.setdefault("FIXATIVE_OFFLINE", "1")
    from fixative import protect
    from fixative.imageio import load_image
    from tests.conftest import painting
    from tests.helpers.engine import start_engine
    from tests.helpers.images import png_bytes

    options = {"models": ["taef2"], "quality": args.quality}
    if args.steps:
        options["steps"] = args.steps
    art = painting(size=args.size)
    upload = png_bytes(art)

    protect(art, options)  # warm: weights loaded, kernels compiled
    in_process = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        protect(load_image(upload).array, options)
        in_process.append(time.perf_counter() - started)

    with tempfile.TemporaryDirectory() as home:
        engine = start_engine(Path(home), "--max-queue", str(max(16, args.jobs)), "--lease-seconds", "600")
        try:
            def run_job() -> tuple[float, float]:
                started = time.perf_counter()
                job = engine.request("POST", "/v1/jobs", files={"image": ("art.png", upload)},
                                     data={"options": json.dumps(options)}).json()
                status = engine.wait_job(job["id"], timeout=3600, poll=args.poll)
                assert status["state"] == "done", status
                engine.request("GET", f"/v1/jobs/{job['id']}/result").raise_for_status()
                wall = time.perf_counter() - started
                report = engine.request("GET", f"/v1/jobs/{job['id']}/report").json()
                return wall, float(report["seconds"])

            run_job()  # the engine's first job after its own warm-up
            served = [run_job() for _ in range(args.repeats)]

            started = time.perf_counter()
            ids = []
            for _ in range(args.jobs):
                ids.append(engine.request("POST", "/v1/jobs", files={"image": ("art.png", upload)},
                                          data={"options": json.dumps(options)}).json()["id"])
            pending = set(ids)
            while pending:  # one client polling all jobs, as a batch plug-in would
                for job_id in list(pending):
                    state = engine.request("GET", f"/v1/jobs/{job_id}").json()["state"]
                    if state in ("done", "failed", "cancelled"):
                        assert state == "done", state
                        engine.request("GET", f"/v1/jobs/{job_id}/result").raise_for_status()
                        pending.discard(job_id)
                time.sleep(args.poll)
            queued_wall = time.perf_counter() - started
        finally:
            engine.stop()

    walls = [wall for wall, _ in served]
    overheads = [wall - inside for wall, inside in served]
    numbers = {
        "size": args.size, "options": options,
        "in_process_s": statistics.median(in_process),
        "served_wall_s": statistics.median(walls),
        "engine_protect_s": statistics.median(inside for _, inside in served),
        "overhead_s": statistics.median(overheads),
        "overhead_pct_of_job": 100 * statistics.median(overheads) / statistics.median(in_process),
        "queued_jobs": args.jobs, "queued_wall_s": queued_wall,
        "throughput_jobs_per_min": 60 * args.jobs / queued_wall,
        "in_process_jobs_per_min": 60 / statistics.median(in_process),
    }
    print(f"job: {args.size}² {options}")
    print(f"in-process protect():        {numbers['in_process_s']:8.3f} s")
    print(f"through the engine (wall):   {numbers['served_wall_s']:8.3f} s "
          f"(protect inside: {numbers['engine_protect_s']:.3f} s)")
    print(f"per-job overhead:            {numbers['overhead_s']:8.3f} s = "
          f"{numbers['overhead_pct_of_job']:.1f} % of the job (target ≤ 5 % for a default 512² job)")
    print(f"{args.jobs} queued jobs:              {queued_wall:8.1f} s = "
          f"{numbers['throughput_jobs_per_min']:.2f} jobs/min "
          f"(in-process back to back: {numbers['in_process_jobs_per_min']:.2f} jobs/min)")
    if args.json:
        args.json.write_text(json.dumps(numbers, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
