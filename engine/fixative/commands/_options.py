"""CLI flags shared by `protect` and `batch`: one per ProtectOptions field, built from the option schema."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fixative.errors import BadImage
from fixative.options import ProtectOptions

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff"}

CLI_ONLY = {"target_style": {"metavar": "NAME|PATH|auto", "help_suffix": "; or a style image file"}}
"""What only the command line adds to a schema field (a file path where the API takes an upload)."""


def add_protect_options(parser: argparse.ArgumentParser) -> None:
    """One flag per ProtectOptions field, generated from the option schema (fixative.options)."""
    from fixative.options import option_fields

    group = parser.add_argument_group("protection")
    for field in option_fields(suggestions=False):
        flag = "--" + field["name"].replace("_", "-")
        extra = CLI_ONLY.get(field["name"], {})
        help_text = field["help"] + extra.get("help_suffix", "")
        kind, default = field["kind"], field["default"]
        if kind == "boolean" and default:
            group.add_argument(f"--no-{flag[2:]}", dest=field["name"], action="store_false",
                               help=f"do not {help_text[0].lower()}{help_text[1:]}")
        elif kind == "boolean":
            group.add_argument(flag, dest=field["name"], action="store_true", help=help_text)
        elif kind == "choice":
            group.add_argument(flag, dest=field["name"], default=default,
                               choices=[choice["value"] for choice in field["choices"]],
                               help=f"{help_text} (default: %(default)s)")
        elif kind == "integer":
            group.add_argument(flag, dest=field["name"], type=int, default=default, metavar="N", help=help_text)
        elif kind == "list":
            group.add_argument(flag, dest=field["name"], default=",".join(default or []), metavar="A,B",
                               help=f"{help_text} (default: %(default)s)")
        else:
            group.add_argument(flag, dest=field["name"], default=default, metavar=extra.get("metavar"),
                               help=help_text)
        if field["name"] == "target_concept":
            group.add_argument("--anchor", metavar="PATH", help="image or folder of images of the target concept")


def options_from_args(args: argparse.Namespace) -> tuple[ProtectOptions, Any, list[Any] | None]:
    """(validated options, style image or None, anchor images or None) from parsed flags.

    Validating here makes a bad option one clear error before any file is touched."""
    from fixative.imageio import load_image

    values = {name: getattr(args, name) for name in ProtectOptions.model_fields}
    style_image = None
    if values["target_style"] != "auto" and Path(values["target_style"]).is_file():
        style_image = load_image(values["target_style"]).array
        values["target_style"] = "auto"
    anchors = None
    if args.anchor:
        anchor_path = Path(args.anchor)
        files = sorted(p for p in anchor_path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES) \
            if anchor_path.is_dir() else [anchor_path]
        if not files:
            raise BadImage(f"no images found in {anchor_path}")
        anchors = [load_image(f).array for f in files]
    return ProtectOptions.coerce(values), style_image, anchors


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
