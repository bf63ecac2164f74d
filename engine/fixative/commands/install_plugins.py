"""`fixative install-plugins`: the installer (installer/install.py) with this environment as engine.

The installer is a standalone stdlib script so it can run before the engine exists; once this
command can run, the engine is already installed, so ``--use-current-env`` is the default here
(``--venv`` asks for the dedicated virtual environment instead).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

INSTALLER_RELATIVE = Path("installer") / "install.py"


def find_installer() -> Path | None:
    """installer/install.py of the checkout this package runs from (editable install) or of
    ``$FIXATIVE_SOURCE``; None when neither has it (a wheel does not carry the plug-ins)."""
    candidates = []
    if os.environ.get("FIXATIVE_SOURCE"):
        candidates.append(Path(os.environ["FIXATIVE_SOURCE"]).expanduser())
    candidates.append(Path(__file__).resolve().parents[3])  # engine/fixative/commands -> repo
    for root in candidates:
        path = root / INSTALLER_RELATIVE
        if path.is_file() and (root / "plugins" / "common").is_dir():
            return path
    return None


def load_installer(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("fixative_installer", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fixative_installer", module)
    spec.loader.exec_module(module)
    return module


def register(subparsers: argparse._SubParsersAction) -> None:
    installer_path = find_installer()
    parser = subparsers.add_parser(
        "install-plugins",
        help="install the GIMP and Krita plug-ins (and config) for this user",
        description="Install the Fixative plug-ins into every GIMP 2.10/3.x and Krita found, "
                    "with this Python environment as the engine. Same options as "
                    "installer/install.py.",
    )
    if installer_path is None:
        parser.set_defaults(func=_missing_sources)
        return
    installer = load_installer(installer_path)
    installer.add_arguments(parser)
    parser.set_defaults(use_current_env=True, func=lambda args: installer.run(args))


def _missing_sources(args: argparse.Namespace) -> int:
    print("fixative install-plugins: the plug-in sources are not next to this installation. Run "
          "installer/install.py from a Fixative checkout, or set FIXATIVE_SOURCE to one.",
          file=sys.stderr)
    return 1
