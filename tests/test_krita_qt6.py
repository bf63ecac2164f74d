"""The Krita plug-in's Qt shim on PyQt6 (Krita 6 readiness), with the system's python3-pyqt6.

Runs the panel in a fresh system Python that has only PyQt6 chosen (FIXATIVE_QT_API=pyqt6): the
option widgets, the remembered-settings fallback and the dialog/event helpers must work there.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.conftest import REPO

SYSTEM_PYTHON = "/usr/bin/python3"

SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from fixative_krita import qt
from fixative_krita.panel import ProtectPanel
app = qt.QApplication(["qt6-check"])
panel = ProtectPanel(lambda: (None, None))
panel.intensity.setCurrentIndex(panel.intensity.findData("high"))
qt.process_events()
form = panel.form_box.layout()
print(json.dumps({"api": qt.QT_API, "major": qt.QT_MAJOR, "options": panel.options(),
                  "labels": [form.labelForField(w).text() for w in panel.fields.values()],
                  "keep_original": panel.keep_original.text(),
                  "has_exec": callable(getattr(qt.QtWidgets.QDialog, "exec", None))}))
"""


def test_panel_runs_on_pyqt6(tmp_path):
    check = subprocess.run([SYSTEM_PYTHON, "-c", "import PyQt6.QtWidgets"], capture_output=True)
    if check.returncode != 0:
        if os.environ.get("FIXATIVE_REQUIRE_KRITA"):
            pytest.fail("python3-pyqt6 is missing (scripts/test.sh installs it)")
        pytest.skip("python3-pyqt6 is not installed")
    env = {"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen", "FIXATIVE_QT_API": "pyqt6",
           "FIXATIVE_KRITA_NO_REGISTER": "1", "HOME": str(tmp_path), "FIXATIVE_HOME": str(tmp_path / "home")}
    done = subprocess.run([SYSTEM_PYTHON, "-c", SCRIPT, str(REPO / "plugins" / "krita")], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["api"] == "pyqt6" and result["major"] == 6
    assert result["options"]["intensity"] == "high"
    assert result["labels"][:3] == ["Mode", "Intensity", "Quality"]
    assert result["keep_original"] == "Keep original visible" and result["has_exec"]
