#!/usr/bin/env python3
"""Install the Fixative engine and its GIMP/Krita plug-ins for the current user.

Standard library only and Python 3.8+, because it runs before anything else is installed.
Also reachable as ``fixative install-plugins`` (then the current environment is the engine).

    python installer/install.py              # engine venv + every editor found
    python installer/install.py --krita      # Krita only
    python installer/install.py --dry-run    # print the plan, write nothing
    python installer/install.py --uninstall  # remove what the manifest lists
    python installer/install.py --zip out.zip  # a zip for Krita's "Import Python Plugin from File"

Every file written is listed with its sha256 in a manifest, so running twice changes nothing,
uninstall removes exactly those files, and a file the user edited is backed up, never lost.

The work is done by the ``installer`` package beside this script (see its __init__.py); this
file only makes the package importable from the checkout and runs its command line.
"""

from __future__ import annotations

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
_CHECKOUT = str(_HERE.parent)
if sys.path and Path(sys.path[0] or ".").resolve() == _HERE:
    sys.path[0] = _CHECKOUT  # run as a script: the package, not its modules, is importable
elif _CHECKOUT not in sys.path:
    sys.path.insert(0, _CHECKOUT)  # loaded by path (fixative install-plugins, tests)

from installer.cli import add_arguments, build_parser, main, run  # noqa: E402
from installer.report import InstallError, Reporter  # noqa: E402

__all__ = ["add_arguments", "build_parser", "main", "run", "InstallError", "Reporter"]

if __name__ == "__main__":
    sys.exit(main())
