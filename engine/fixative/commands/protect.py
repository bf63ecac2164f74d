"""`fixative protect`: protect image files (one, several, folders, globs); one failure never stops the rest."""

from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixative.commands._options import add_protect_options, expand_inputs, options_from_args

if TYPE_CHECKING:
    from fixative.options import ProtectOptions
    from fixative.result import ProtectResult


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("protect", help="protect images against style mimicry / concept scraping",
                            description="Write a protected copy of each image (NAME.protected.png by default).")
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or globs")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("-o", "--output", help="output file (single input only); format from its suffix")
    out.add_argument("--out-dir", help="folder for outputs (NAME.protected.png)")
    add_protect_options(parser)
    files = parser.add_argument_group("files")
    files.add_argument("--save-target", metavar="PATH", help="write the target image aimed at (single input)")
    files.add_argument("--preview", metavar="PATH", help="write original | AI's-eye view before | after | target (training size)")
    files.add_argument("--report", metavar="FILE.json", help="write the stats of every file as JSON (with the AI's-eye rows --ai-report asks for)")
    files.add_argument("--max-pixels", type=float, default=400e6, help="refuse larger images (default 400 MP)")
    parser.set_defaults(func=run)


def output_path_for(source: Path, args: argparse.Namespace) -> Path:
    from fixative.imageio import default_output_path

    if args.output:
        return Path(args.output)
    return default_output_path(source, args.out_dir)


def protect_one(source: Path, destination: Path, options: ProtectOptions, style_image: Any, anchors: Any,
                args: argparse.Namespace, *, several: bool, progress: Any = None) -> ProtectResult:
    """Protect one file through fixative.service, then write the target and preview files asked for."""
    import numpy as np

    from fixative.imageio import encode_image, format_for_path, write_atomic
    from fixative.service import protect_file

    result = protect_file(source, destination, options, max_pixels=int(args.max_pixels), style_image=style_image,
                          anchor_images=anchors, progress=progress)
    if args.save_target:
        target = result.target_image()
        if target is None:
            print("fixative: note: the target cannot be drawn (no decoder for this model)", file=sys.stderr)
        else:
            write_atomic(args.save_target, encode_image(np.clip(target, 0, 1).astype(np.float32),
                                                        format_for_path(args.save_target)))
    if args.preview:
        from fixative.preview import make_preview

        preview = make_preview(result, height=512)  # AI's-eye views at their training size
        preview_path = Path(args.preview)
        if several:
            preview_path = preview_path.with_name(f"{source.stem}.{preview_path.name}")
        buffer = io.BytesIO()
        preview.save(buffer, "PNG")
        write_atomic(preview_path, buffer.getvalue())
    return result


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from fixative.errors import FixativeError

    console = Console(stderr=True, soft_wrap=True, highlight=False)
    sources = expand_inputs(args.inputs)
    if not sources:
        console.print("fixative: error: no input images found")
        return 2
    if args.output and len(sources) > 1:
        console.print("fixative: error: -o/--output takes a single input; use --out-dir for several")
        return 2
    if args.save_target and len(sources) > 1:
        console.print("fixative: error: --save-target takes a single input")
        return 2
    options, style_image, anchors = options_from_args(args)
    report: list[dict] = []
    failures = 0
    columns = [TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as bar:
        overall = bar.add_task(f"{len(sources)} image(s)", total=len(sources)) if len(sources) > 1 else None
        for source in sources:
            task = bar.add_task(source.name, total=1.0)

            def on_progress(p, task=task, name=source.name):
                bar.update(task, completed=p.fraction, description=f"{name}: {p.stage}")

            destination = output_path_for(source, args)
            try:
                if not source.is_file():
                    raise FixativeError(f"{source}: no such file")
                result = protect_one(source, destination, options, style_image, anchors, args,
                                     several=len(sources) > 1, progress=on_progress)
                bar.update(task, completed=1.0, description=f"{source.name}: done")
                stats = result.stats
                f = ", ".join(f"{k} {v:.3f}" for k, v in stats.closing.items())
                console.print(f"{source} → {destination}  (f {f}; PSNR {stats.psnr:.1f} dB; {stats.seconds:.1f} s)")
                if stats.summary:
                    console.print(f"  {stats.summary}")
                report.append({"input": str(source), "output": str(destination), "status": "done",
                               "stats": stats.model_dump()})
            except FixativeError as exc:
                failures += 1
                bar.update(task, description=f"{source.name}: failed")
                console.print(f"fixative: error: {source}: {exc}")
                report.append({"input": str(source), "status": "failed", "error": {"code": exc.code, "message": str(exc)}})
            if overall is not None:
                bar.advance(overall)
    if args.report:
        from fixative.imageio import write_atomic

        write_atomic(args.report, json.dumps(report, indent=2).encode())
    if failures:
        console.print(f"fixative: {failures} of {len(sources)} file(s) failed")
        return 1
    return 0
