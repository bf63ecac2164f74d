"""`fixative styles list [--render DIR]`: the built-in target styles."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("styles", help="list (and draw) the built-in target styles")
    verbs = parser.add_subparsers(dest="styles_command", metavar="list")
    show = verbs.add_parser("list", help="names of the built-in styles")
    show.add_argument("--render", metavar="DIR", help="also write each style as DIR/NAME.png")
    parser.set_defaults(func=run, render=None)


def run(args: argparse.Namespace) -> int:
    from fixative.targets.styles import STYLES, render_style

    for name, draw in STYLES.items():
        print(f"{name:18s} {(draw.__doc__ or '').strip()}")
    if args.render:
        from pathlib import Path

        from fixative.imageio import encode_image, write_atomic

        for name in STYLES:
            write_atomic(Path(args.render) / f"{name}.png", encode_image((render_style(name) * 255).astype("uint8")))
    return 0
