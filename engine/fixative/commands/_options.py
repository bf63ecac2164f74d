"""CLI flags shared by `protect` and `batch`, mapped onto ProtectOptions fields."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fixative.errors import BadImage

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}


def add_protect_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("protection")
    group.add_argument("--mode", choices=["style", "poison", "both"], default="style",
                       help="style cloak (default), concept poison, or both")
    group.add_argument("--intensity", choices=["low", "default", "high"], default="default")
    group.add_argument("--quality", choices=["fast", "default", "max"], default="default")
    group.add_argument("--robustness", choices=["off", "standard", "strong"], default="standard")
    group.add_argument("--target-style", default="auto", metavar="NAME|PATH|auto",
                       help="a built-in style (fixative styles list), a style image, or auto")
    group.add_argument("--concept", help="what the artwork shows (poison mode; written to the caption)")
    group.add_argument("--target-concept", help="what the encoder should see instead (poison mode)")
    group.add_argument("--anchor", metavar="PATH", help="image or folder of images of the target concept")
    group.add_argument("--models", default="taef2", help="comma-separated encoders (fixative models list)")
    group.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
    group.add_argument("--seed", type=int, default=0)
    group.add_argument("--steps", type=int, help="override the quality's step count")
    group.add_argument("--pipeline", help="diffusers pipeline (repo id or folder) for img2img/text-to-image targets")


def options_from_args(args: argparse.Namespace) -> tuple[dict[str, Any], Any, list[Any] | None]:
    """(options dict, style image or None, anchor images or None) from parsed flags."""
    from fixative.imageio import load_image

    style_image = None
    target_style = args.target_style
    if target_style not in ("auto",) and Path(target_style).is_file():
        style_image = load_image(target_style).array
        target_style = "auto"
    anchors = None
    if args.anchor:
        anchor_path = Path(args.anchor)
        files = sorted(p for p in anchor_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if anchor_path.is_dir() else [anchor_path]
        if not files:
            raise BadImage(f"no images found in {anchor_path}")
        anchors = [load_image(f).array for f in files]
    options = {
        "mode": args.mode, "intensity": args.intensity, "quality": args.quality, "robustness": args.robustness,
        "target_style": target_style, "concept": args.concept, "target_concept": args.target_concept,
        "models": args.models, "device": args.device, "seed": args.seed, "steps": args.steps,
        "pipeline": args.pipeline,
    }
    from fixative.options import as_options

    as_options(options)  # validate now: a bad option is one clear error before any work
    return options, style_image, anchors


def expand_inputs(items: list[str]) -> list[Path]:
    """Files, folders (their images) and globs → a sorted, de-duplicated list of image paths."""
    import glob

    found: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                                and ".protected." not in p.name))
        elif any(ch in item for ch in "*?["):
            found.extend(sorted(Path(p) for p in glob.glob(item) if Path(p).suffix.lower() in IMAGE_SUFFIXES))
        else:
            found.append(path)
    unique: list[Path] = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique
