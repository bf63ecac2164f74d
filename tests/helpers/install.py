"""Install the plug-ins into a test home with the real installer (installer/install.py), so the
real-editor tests run exactly the copies a user gets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.conftest import REPO


def run_installer(home: Path, *flags: str) -> None:
    spec = importlib.util.spec_from_file_location("fixative_installer", REPO / "installer" / "install.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    code = module.main(["--target-home", str(home), "--use-current-env", "--skip-engine", "--no-models",
                        "--quiet", *flags])
    assert code == 0, f"installer exited {code}"
