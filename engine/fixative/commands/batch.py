"""`fixative batch`: protect a folder or a list of files, resumably, in-process or on a Ray cluster.

Outputs get the same names and metadata as `fixative protect --out-dir`; a manifest
(``fixative-batch.jsonl`` in the output folder) records every file, so a re-run resumes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixative.commands._options import (
    IMAGE_SUFFIXES,
    add_protect_options,
    expand_inputs,
    options_from_args,
)
from fixative.errors import BadOptions

if TYPE_CHECKING:
    from rich.console import Console

    from fixative.batch.runner import BatchSummary
    from fixative.batch.work import JobSpec

LIST_SUFFIXES = {".txt", ".lst", ".list"}
EXIT_INTERRUPTED = 130


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "batch", help="protect many images, resumably, optionally on a Ray cluster",
        description="Protect every image of folders or list files into --out-dir (NAME.protected.png). "
                    "A manifest in --out-dir records each file; running the same command again skips "
                    "what is done and retries what failed. Ctrl-C stops cleanly (exit 130).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT_DIR|LIST.txt",
                        help="folders, list files (one path per line, relative to the list; # comments), "
                             "image files or globs")
    parser.add_argument("--out-dir", required=True, help="folder for the outputs and the manifest")
    cluster = parser.add_argument_group("workers")
    cluster.add_argument("--ray", metavar="ADDRESS|local",
                         help="run on Ray: 'local' starts a one-machine cluster on 127.0.0.1; 'auto', "
                              "'HOST:6379' or 'ray://HOST:10001' joins an existing one. "
                              "Without --ray files are protected one by one in this process")
    cluster.add_argument("--workers", type=int, help="Ray actors (default: one per GPU, else one per CPU slot)")
    cluster.add_argument("--gpus-per-worker", type=float,
                         help="GPUs per actor (default 1 when the cluster has GPUs, else 0; 0.5 = two per GPU)")
    cluster.add_argument("--cpus-per-worker", type=float,
                         help="CPUs (and torch threads) per worker (default: 1 per Ray actor; torch's "
                              "own choice in-process)")
    cluster.add_argument("--ray-runtime-env", metavar="JSON",
                         help="Ray runtime_env for the workers, e.g. '{\"env_vars\": {\"OMP_NUM_THREADS\": \"1\"}}'; "
                              "not needed for weights or offline mode: the driver ships those")
    cluster.add_argument("--max-attempts", type=int, default=3,
                         help="give up on a file after this many failed attempts over all runs (default 3)")
    add_protect_options(parser)
    files = parser.add_argument_group("files")
    files.add_argument("--max-pixels", type=float, default=400e6, help="refuse larger images (default 400 MP)")
    files.add_argument("-v", "--verbose", action="store_true", help="one line per protected file")
    files.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run)


def read_list_file(path: Path) -> list[Path]:
    """Paths listed one per line; relative ones are relative to the list file's folder."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BadOptions(f"cannot read the list file {path}: {exc}") from exc
    found: list[Path] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        entry = Path(line).expanduser()
        if not entry.is_absolute():
            entry = path.parent / entry
        found.extend(expand_inputs([str(entry)]))
    return found


def collect_inputs(items: list[str]) -> list[Path]:
    """Folders, list files, images and globs → one de-duplicated list, in the order given."""
    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_file() and (path.suffix.lower() in LIST_SUFFIXES or path.suffix.lower() not in IMAGE_SUFFIXES
                               and _looks_like_text(path)):
            found.extend(read_list_file(path))
        else:
            if not path.exists() and not any(ch in item for ch in "*?[") and path.suffix.lower() not in IMAGE_SUFFIXES:
                raise BadOptions(f"{item}: no such folder or list file")
            found.extend(expand_inputs([item]))
    seen: set[Path] = set()
    unique: list[Path] = []
    for path in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


def _looks_like_text(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(512)
    return b"\0" not in head and all(b >= 9 for b in head)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from fixative.batch.work import JobSpec, WriteSettings

    console = Console(stderr=True, soft_wrap=True)
    if args.cpus_per_worker is not None and args.cpus_per_worker <= 0:
        raise BadOptions("--cpus-per-worker must be more than 0")
    if not args.ray and (args.workers not in (None, 1) or args.gpus_per_worker):
        raise BadOptions("--workers and --gpus-per-worker need --ray (use --ray local for one machine)")
    runtime_env = None
    if args.ray_runtime_env:
        try:
            runtime_env = json.loads(args.ray_runtime_env)
        except ValueError as exc:
            raise BadOptions(f"--ray-runtime-env is not JSON: {exc}") from exc
    sources = collect_inputs(args.inputs)
    if not sources:
        console.print("fixative: error: no input images found")
        return 2
    options, style_image, anchors = options_from_args(args)
    spec = JobSpec(options=options.model_dump(), style_image=style_image, anchors=anchors,
                   settings=WriteSettings(max_pixels=int(args.max_pixels)))
    if options.optout_metadata:  # the driver signs every output: make or load its identity before any work
        from fixative.identity import load_identity

        load_identity(create=True)
    out_dir = Path(args.out_dir)
    # Ray prints worker and cluster messages ("(raylet) node ... marked dead") to stdout; stdout is
    # for the --json summary alone, so everything printed while the batch runs goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        summary = _run_batch(args, console, sources, spec, out_dir, runtime_env)
    if args.json:
        print(json.dumps({**summary.as_dict(), "manifest": str(out_dir / "fixative-batch.jsonl"),
                          "failures": summary.failures}, indent=2))
        sys.stdout.flush()
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return 1 if summary.failed or summary.gave_up else 0


def _run_batch(args: argparse.Namespace, console: Console, sources: list[Path], spec: JobSpec, out_dir: Path,
               runtime_env: dict[str, Any] | None) -> BatchSummary:
    """Connect (or not) to Ray, run the batch into ``out_dir``, and leave Ray as it was found."""
    from fixative.batch.display import BatchDisplay
    from fixative.batch.manifest import Manifest
    from fixative.batch.runner import BatchRunner, InProcessExecutor
    from fixative.imageio import default_output_path

    started_ray = False
    if args.ray:
        from fixative.batch.ray_executor import RayExecutor, connect

        executor = RayExecutor(args.workers, args.gpus_per_worker, args.cpus_per_worker or 1.0)
        started_ray = connect(args.ray, runtime_env)
    else:
        executor = InProcessExecutor(threads=int(args.cpus_per_worker) if args.cpus_per_worker else None)
    try:
        with Manifest.open(out_dir) as manifest:
            if manifest.repaired_bytes:
                console.print(f"fixative batch: note: cut a torn last line ({manifest.repaired_bytes} bytes) "
                              f"from {manifest.path}")
            runner = BatchRunner(sources, out_dir, spec, executor, manifest,
                                 output_for=lambda source: default_output_path(source, out_dir),
                                 max_attempts=args.max_attempts,
                                 display=BatchDisplay(console, verbose=args.verbose))
            summary = runner.run()
    finally:
        if started_ray:
            import ray

            ray.shutdown()
    return summary

