"""Speed and scale: protect() wall time and peak memory per image size, each size in a fresh process.

``python -m benchmarks.scale --side N ...`` is the worker: it protects one square painting of side N
and prints one JSON line. Peak RSS is the process's VmHWM read right after protect() (so the
measurement that follows does not count); robust f of images larger than a training bucket is
measured after resizing them to 512² and 1024² (never upscaling), as a fine-tuning pipeline would.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import subprocess
import sys
import time
from collections.abc import Callable

from benchmarks.config import STARRY, BenchConfig
from benchmarks.data import REPO, configure_environment

Log = Callable[[str], None]


def peak_rss_mb() -> float:
    """This process's peak resident set size so far (VmHWM), in MiB."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024 * 1024) if sys.platform == "darwin" else rss / 1024


def worker(side: int, quality: str, steps: int | None, style: str, purification_names: list[str],
           painting: str) -> dict:
    import numpy as np

    from benchmarks.data import load_painting, purifications
    from fixative import protect
    from fixative.evaluate import evaluate

    image = load_painting(painting, side)
    options = {"models": ["taef2"], "quality": quality, "target_style": style, "device": "cpu", "seed": 0}
    if steps is not None:
        options["steps"] = steps
    started = time.perf_counter()
    result = protect(image, options)
    seconds = time.perf_counter() - started
    rss_mb = peak_rss_mb()
    steps_done = result.stats.steps
    if style == "auto":
        style = result.stats.target.split(":", 1)[1]
    original = image.astype(np.float32) / 255
    protected = np.asarray(result.image, dtype=np.float32) / 255
    del result, image
    purify = purifications(purification_names)
    robust = {}
    for label, area in (("512", 512 * 512), ("1024", 1024 * 1024)):
        if label == "1024" and side * side <= 512 * 512:  # never upscaled: the same as at 512²
            robust["1024"], robust["clean1024"] = robust["512"], robust["clean512"]
            continue
        evaluation = evaluate(original, protected, target=f"style:{style}", models=["taef2"],
                              purifications=purify, max_area=area)
        robust[label] = evaluation.robust["taef2"]
        robust[f"clean{label}"] = evaluation.closing["clean"]["taef2"]
    megapixels = side * side / 1e6
    return {"side": side, "megapixels": round(megapixels, 4), "seconds": round(seconds, 3),
            "seconds_per_mp": round(seconds / megapixels, 3), "peak_rss_mb": round(rss_mb, 1),
            "steps": steps_done, "robust_f_512": robust["512"],
            "robust_f_1024": robust["1024"], "clean_f_512": robust["clean512"],
            "clean_f_1024": robust["clean1024"], "psnr": float(np.round(10 * math.log10(
                1 / max(float(np.mean((original - protected) ** 2)), 1e-12)), 3))}


def run_sweep(config: BenchConfig, style: str, log: Log, done: list[dict] | None = None,
              save: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """One worker process per size; sizes in ``done`` (from an interrupted run) are kept."""
    kept = {row["side"]: row for row in done or []}
    rows = []
    for side in config.sweep_sides:
        if side in kept:
            rows.append(kept[side])
            log(f"scale {side}²: kept from the interrupted run")
            continue
        command = [sys.executable, "-m", "benchmarks.scale", "--side", str(side), "--quality", config.sweep_quality,
                   "--style", style, "--purifications", ",".join(config.sweep_purifications)]
        if config.sweep_steps is not None:
            command += ["--steps", str(config.sweep_steps)]
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=config.sweep_timeout_s)
        if done.returncode != 0:
            raise RuntimeError(f"scale worker for {side}² failed ({done.returncode}):\n{done.stderr[-3000:]}")
        row = json.loads(done.stdout.strip().splitlines()[-1])
        row["process_seconds"] = round(time.perf_counter() - started, 3)
        rows.append(row)
        if save is not None:
            save(rows)
        log(f"scale {side}²: protect {row['seconds']:.1f}s ({row['seconds_per_mp']:.1f} s/MP), peak RSS "
            f"{row['peak_rss_mb']:.0f} MiB, robust f @512² {row['robust_f_512']:.3f} @1024² {row['robust_f_1024']:.3f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, required=True)
    parser.add_argument("--quality", default="fast", choices=["fast", "default", "max"])
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--style", default="auto")
    parser.add_argument("--purifications", default="jpeg75,resize0.5")
    parser.add_argument("--painting", default=STARRY)
    args = parser.parse_args(argv)
    configure_environment()
    row = worker(args.side, args.quality, args.steps, args.style,
                 [p for p in args.purifications.split(",") if p], args.painting)
    print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
