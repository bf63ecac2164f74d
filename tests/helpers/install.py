"""Install the plug-ins into a test home with the real installer (installer/install.py), so the
real-editor tests run exactly the copies a user gets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import REPO


def run_installer(home: Path, *flags: str) -> None:
    """The installer with ``flags``; a ``--gimp-version X.Y`` folder is made first, as GIMP X.Y's
    first run would (the installer never creates GIMP's own folder)."""
    for flag, value in zip(flags, flags[1:], strict=False):
        if flag == "--gimp-version":
            (home / ".config" / "GIMP" / value).mkdir(parents=True, exist_ok=True)
    spec = importlib.util.spec_from_file_location("fixative_installer", REPO / "installer" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--target-home", str(home), "--use-current-env", "--skip-engine", "--no-models",
                        "--quiet", *flags])
    assert code == 0, f"installer exited {code}"
