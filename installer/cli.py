"""The command line: ``python installer/install.py`` and ``fixative install-plugins`` (which adds
the same options to its subcommand with ``add_arguments`` and calls ``run``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from installer.actions import install, uninstall
from installer.editors import CHECKOUT, PLATFORMS, Layout
from installer.kritarc import KRITA_PLUGIN
from installer.plugin_files import Sources, build_zip, project_version
from installer.report import InstallError, Reporter


def default_source() -> Path:
    """The checkout this installer belongs to (the folder holding plugins/)."""
    return CHECKOUT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """All options; ``fixative install-plugins`` adds the same ones to its subcommand."""
    editors = parser.add_argument_group("editors (default: every editor found)")
    editors.add_argument("--gimp", action="store_true", help="install only into GIMP")
    editors.add_argument("--krita", action="store_true",
                         help="install only into Krita (creates its folder if Krita never ran)")
    editors.add_argument("--gimp-version", action="append", metavar="X.Y",
                         help="also install into the GIMP X.Y folder (2.10, 3.0, 3.2), even "
                              "with --krita, once GIMP X.Y has run and created it; repeatable")
    modes = parser.add_argument_group("what to do (default: install)")
    modes.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    modes.add_argument("--uninstall", action="store_true",
                       help="remove exactly what the install manifest lists")
    modes.add_argument("--zip", metavar="FILE", nargs="?", const="",
                       help="build a zip for Krita's 'Import Python Plugin from File' and stop "
                            "(default name: fixative_krita-VERSION.zip here)")
    engine = parser.add_argument_group("engine")
    where = engine.add_mutually_exclusive_group()
    where.add_argument("--use-current-env", dest="use_current_env", action="store_true",
                       help="run the engine with this Python (pip-installs it there if missing)")
    where.add_argument("--venv", dest="use_current_env", action="store_false",
                       help="run the engine from its own virtual environment (the default)")
    engine.add_argument("--venv-dir", metavar="DIR",
                        help="where the virtual environment goes (default: DATA/engine-venv)")
    engine.add_argument("--python", metavar="PATH",
                        help="the Python (3.10+) that creates the venv or runs the engine")
    engine.add_argument("--engine-source", metavar="SPEC",
                        help="what pip installs (default: this checkout)")
    engine.add_argument("--pip-arg", action="append", metavar="ARG",
                        help="extra argument for pip install, e.g. --pip-arg=--no-deps; repeatable")
    engine.add_argument("--no-models", action="store_true",
                        help="do not run 'fixative models fetch'")
    engine.add_argument("--skip-engine", action="store_true",
                        help="install plug-ins and config only; do not check or pip-install the "
                             "engine")
    engine.add_argument("--keep-engine", action="store_true",
                        help="with --uninstall: keep the engine's virtual environment")
    other = parser.add_argument_group("other")
    other.add_argument("--source", default=str(default_source()), metavar="DIR",
                       help="the Fixative checkout holding plugins/ (default: %(default)s)")
    other.add_argument("--target-home", metavar="DIR",
                       help="install as if DIR were the home folder of a user with default "
                            "settings (tests, chroots)")
    other.add_argument("--quiet", action="store_true", help="print nothing")
    other.add_argument("--platform", choices=PLATFORMS, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install the Fixative engine and its GIMP and Krita plug-ins for this user.")
    add_arguments(parser)
    return parser


def run(options: argparse.Namespace, report: Reporter | None = None) -> int:
    """Do what the parsed options say; returns the exit code (errors are printed, not raised)."""
    report = report or Reporter(quiet=bool(getattr(options, "quiet", False)))
    try:
        target_home = Path(options.target_home) if options.target_home else None
        layout = Layout(options.platform, target_home)
        if options.zip is not None:
            sources = Sources(Path(options.source).resolve())
            name = options.zip or f"{KRITA_PLUGIN}-{project_version(sources.root)}.zip"
            return build_zip(sources, Path(name).resolve(), report)
        action: Callable[[argparse.Namespace, Layout, Reporter], int]
        action = uninstall if options.uninstall else install
        return action(options, layout, report)
    except InstallError as exc:
        print(f"install: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = getattr(exc, "filename", "") or ""
        print(f"install: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    return run(options)
