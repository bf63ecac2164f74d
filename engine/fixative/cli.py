"""`fixative` command line: one small module per verb under fixative.commands (rembg-style).

Each command module has ``register(subparsers)`` which adds its parser and sets ``func``;
``func(args) -> int`` returns the exit code. Heavy imports (torch) happen inside ``func``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fixative import __version__

COMMANDS = ["protect", "evaluate", "models", "styles", "doctor", "serve", "batch", "install_plugins",
            "options_schema", "identity", "inspect"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fixative",
        description="Protect artwork from AI style mimicry (style cloak) and concept scraping (poison).",
    )
    parser.add_argument("--version", action="version", version=f"fixative {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fixative.commands.{name}")
        except ModuleNotFoundError as exc:  # a command whose optional module is absent
            if exc.name != f"fixative.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from fixative.errors import FixativeError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FixativeError as exc:
        print(f"fixative: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("fixative: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
