"""One command for every benchmark: ``python -m benchmarks.run [--size small|full]``.

``full`` regenerates docs/benchmarks.md and docs/img/bench-*.png (about 30 minutes on 2 CPU cores);
``small`` runs the same code at toy sizes (CI) into benchmarks/out/small/.
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.config import CONFIGS
from benchmarks.data import REPO, configure_environment

OPTIONAL_SECTIONS = ("benchmarks.server_overhead", "benchmarks.batch_throughput")
"""Modules owned by other benchmarks; each is included when it exists and has ``section(size) -> str``."""
GPU_RESULTS = REPO / "benchmarks" / "results" / "gpu.json"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def optional_sections(size: str) -> list[str]:
    """Markdown from the other benchmark modules; a failure is reported in the docs, not hidden."""
    sections = []
    for module_name in OPTIONAL_SECTIONS:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        section = getattr(module, "section", None)
        if section is None:
            title = module_name.rsplit(".", 1)[-1].replace("_", " ").capitalize()
            summary = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
            script = module_name.replace(".", "/") + ".py"
            sections.append(f"## {title}\n\n{summary} Not part of this run: see `python {script} --help`.\n")
            continue
        try:
            sections.append(section(size).rstrip() + "\n")
        except Exception as exc:  # another team's benchmark must not sink this one
            sections.append(f"## {module_name}\n\nFailed: {type(exc).__name__}: {exc}\n")
            log(f"{module_name} failed: {exc}")
    return sections


def check_finite(value: object, where: str = "results") -> list[str]:
    """Paths of numbers that are NaN or infinite (LPIPS may be None: it is optional)."""
    bad: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            bad += check_finite(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            bad += check_finite(item, f"{where}[{i}]")
    elif isinstance(value, float) and not math.isfinite(value):
        bad.append(where)
    return bad


def measure_all(config, json_path: Path, image_dir: Path, resume: bool,  # noqa: ANN001
                keep_ceilings: bool = False) -> dict:
    """Run every measurement (resuming from a partial file when asked; reusing the ceilings of the
    finished run at ``json_path`` when asked); returns all numbers."""
    import torch

    from benchmarks.mimic import ceilings_of, run_mimic
    from benchmarks.scale import run_sweep
    from benchmarks.strength import run_strength
    from fixative.autocast import cpu_has_native_bf16

    started = time.perf_counter()
    load_before = os.getloadavg()[0]
    partial_path = json_path.with_name(json_path.name + ".partial")
    partial = json.loads(partial_path.read_text()) if resume and partial_path.is_file() else {}
    if partial.get("size", config.size) != config.size:
        partial = {}
    resumed = bool(partial)
    partial["size"] = config.size

    def save(key: str, value: object) -> None:
        partial[key] = value
        partial_path.parent.mkdir(parents=True, exist_ok=True)
        partial_path.write_text(json.dumps(partial, default=float))

    log(f"size {config.size}: what a mimic's model sees, {len(config.paintings)} painting(s) at {config.mimic_side}²")
    kept = ceilings_of(json.loads(json_path.read_text()), config.mimic_side) if keep_ceilings and json_path.is_file() else {}
    mimic = run_mimic(config, log, partial.get("mimic"), lambda m: save("mimic", m), kept_ceilings=kept)
    save("mimic", mimic)
    log(f"size {config.size}: strength on {len(config.paintings)} painting(s) at {config.side}²")
    strength = run_strength(config, image_dir, log, partial.get("strength"), lambda s: save("strength", s))
    log(f"scale sweep: {', '.join(f'{s}²' for s in config.sweep_sides)}")
    scale = run_sweep(config, strength["style"], log, partial.get("scale"), lambda rows: save("scale", rows))
    partial_path.unlink(missing_ok=True)
    return {
        "meta": {"size": config.size, "date": datetime.date.today().isoformat(), "side": config.side,
                 "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads",
                 "cores": os.cpu_count(), "native_bf16": cpu_has_native_bf16(),
                 "torch": torch.__version__, "seconds": round(time.perf_counter() - started, 1), "resumed": resumed,
                 "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
                 "sweep_quality": config.sweep_quality, "sweep_steps": config.sweep_steps},
        "mimic": mimic,
        "strength": strength,
        "scale": scale,
    }


def partial_results(config, json_path: Path) -> dict | None:  # noqa: ANN001
    """The finished sections of an interrupted run, with the metadata of this machine (None: no such run).
    The .partial file stays, so ``--resume`` can finish the run later."""
    import torch

    from fixative.autocast import cpu_has_native_bf16

    partial_path = json_path.with_name(json_path.name + ".partial")
    if not partial_path.is_file():
        return None
    partial = json.loads(partial_path.read_text())
    done = {key: partial[key] for key in ("mimic", "strength", "scale") if key in partial
            and (key != "strength" or "consistency" in partial[key])}  # strength: only when whole
    meta = {"size": config.size, "date": datetime.date.today().isoformat(), "side": config.side, "partial": True,
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch threads",
            "cores": os.cpu_count(), "native_bf16": cpu_has_native_bf16(), "torch": torch.__version__,
            "seconds": None, "sweep_quality": config.sweep_quality, "sweep_steps": config.sweep_steps}
    return {"meta": meta, **done}


def write_report(results: dict, out: Path, size: str) -> list[dict]:
    """docs: the markdown and the plots, from the numbers alone (``--report-only`` reruns just this)."""
    from benchmarks import report

    image_dir = out / "img"
    complete = "strength" in results and "scale" in results
    targets = report.compute_targets(results) if complete else []
    results["targets"] = targets
    if "strength" in results:
        report.plot_robustness(results, image_dir / "bench-robustness.png")
    if "scale" in results:
        report.plot_scale(results, image_dir / "bench-scale.png")
    extra = optional_sections(size) if not results["meta"].get("partial") else [
        "## Server overhead, batch throughput\n\nNot measured in this partial run.\n"]
    if GPU_RESULTS.is_file():
        extra.append(report.gpu_section(json.loads(GPU_RESULTS.read_text())))
    else:
        extra.append("## GPU\n\nNo GPU results yet: run `python -m benchmarks.gpu --out benchmarks/results/gpu.json` "
                     "on a CUDA machine, then rerun this command (`--report-only` is enough).\n")
    (out / "benchmarks.md").write_text(report.render_markdown(results, targets, extra))
    return targets


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(CONFIGS), default="full")
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for benchmarks.md and img/ (default: docs/ for full, benchmarks/out/small for small)")
    parser.add_argument("--json", type=Path, default=None,
                        help="where to write all numbers (default: benchmarks/results/full.json, or <out>/benchmarks.json)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the paintings and sizes an interrupted run of the same size finished")
    parser.add_argument("--keep-ceilings", action="store_true",
                        help="reuse the white-box ceilings of the finished run in --json instead of measuring them "
                             "again: they do not run protect(), so they stand while the budgets and the metric "
                             "(fixative.mimicry) are unchanged; they are about 35 of the full run's minutes")
    parser.add_argument("--report-only", action="store_true",
                        help="measure nothing: rebuild the markdown and plots from the saved JSON")
    parser.add_argument("--partial", action="store_true",
                        help="with --report-only: report what an interrupted run finished (its .partial file), "
                             "marking the sections it did not reach; --resume later measures the rest")
    args = parser.parse_args(argv)
    configure_environment()
    # protect()'s own AI's-eye report is skipped: the benchmark measures every run with the full set
    # (benchmarks.mimic), and protect times stay the optimisation's.
    os.environ.setdefault("FIXATIVE_MIMIC_REPORT", "off")
    config = CONFIGS[args.size]
    out = args.out or (REPO / "docs" if args.size == "full" else REPO / "benchmarks" / "out" / "small")
    json_path = args.json or (REPO / "benchmarks" / "results" / "full.json" if args.size == "full"
                              else out / "benchmarks.json")
    (out / "img").mkdir(parents=True, exist_ok=True)
    if args.report_only and args.partial:
        results = partial_results(config, json_path)
        if results is None:
            print(f"no interrupted run at {json_path}.partial", file=sys.stderr)
            return 2
    elif args.report_only:
        if not json_path.is_file():
            print(f"no results at {json_path}: run without --report-only first", file=sys.stderr)
            return 2
        results = json.loads(json_path.read_text())
    else:
        results = measure_all(config, json_path, out / "img", args.resume, args.keep_ceilings)
    targets = write_report(results, out, config.size)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    if args.report_only and not args.partial:
        # Measured nothing: update only the targets, in the file as it is now, so measurements another
        # command (benchmarks.mimic) added while the report was drawn are kept.
        saved = json.loads(json_path.read_text())
        saved["targets"] = results["targets"]
        results = saved
    json_path.write_text(json.dumps(results, indent=1, default=float))
    for t in targets:
        log(f"target {'PASS' if t['passed'] else 'FAIL'}: {t['name']}: {t['measured']}")
    log(f"wrote {out / 'benchmarks.md'} and {json_path}")
    bad = check_finite({k: v for k, v in results.items() if k != "targets"})
    if bad:
        log(f"non-finite numbers: {', '.join(bad)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
