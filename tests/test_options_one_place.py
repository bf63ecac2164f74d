"""Adding one field to ProtectOptions is enough for it to reach the CLI, the schema and /v1/info.

The test copies the engine package, adds a dummy option to options.py only, and runs the copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fixative.options import ProtectOptions
from tests.helpers.engine import REPO, engine_env, start_engine

DUMMY_FIELD = '''
    dummy_knob: Literal["soft", "hard"] = _ui("soft", label="Dummy knob", help="A knob only this test adds",
                                              choices=[("soft", "Soft", "the gentle one"),
                                                       ("hard", "Hard", "the firm one")])
'''
ANCHOR = "\n    @classmethod\n    def coerce("


@pytest.fixture(scope="module")
def patched_engine(tmp_path_factory) -> Path:
    """A copy of engine/ whose ProtectOptions has one extra field, dummy_knob."""
    root = tmp_path_factory.mktemp("patched") / "engine"
    shutil.copytree(REPO / "engine" / "fixative", root / "fixative",
                    ignore=shutil.ignore_patterns("__pycache__"))
    options_py = root / "fixative" / "options.py"
    text = options_py.read_text(encoding="utf-8")
    assert text.count(ANCHOR) == 1, "options.py changed shape: update this test's anchor"
    options_py.write_text(text.replace(ANCHOR, DUMMY_FIELD + ANCHOR), encoding="utf-8")
    return root


def _cli(engine_root: Path, home: Path, *args: str) -> str:
    env = engine_env(home, {"PYTHONPATH": str(engine_root)})
    proc = subprocess.run([sys.executable, "-m", "fixative.cli", *args], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_dummy_option_reaches_help_schema_and_info(patched_engine, fixative_home):
    help_text = _cli(patched_engine, fixative_home, "protect", "--help")
    assert "--dummy-knob {soft,hard}" in help_text and "A knob only this test adds" in help_text
    assert "dummy_knob" not in ProtectOptions.model_fields, "the engine under test is unchanged"

    schema = json.loads(_cli(patched_engine, fixative_home, "options-schema"))
    dummy = next(field for field in schema["fields"] if field["name"] == "dummy_knob")
    assert dummy["kind"] == "choice" and dummy["default"] == "soft" and dummy["label"] == "Dummy knob"
    assert [choice["value"] for choice in dummy["choices"]] == ["soft", "hard"]

    engine = start_engine(fixative_home, "--no-preload", env={"PYTHONPATH": str(patched_engine)})
    try:
        info = engine.request("GET", "/v1/info").json()
        written = json.loads((fixative_home / "state" / "options-schema.json").read_text(encoding="utf-8"))
    finally:
        engine.stop()
    assert info["options_schema"] == schema == written


def test_dummy_option_reaches_the_gimp2_and_krita_dialogs(patched_engine, fixative_home, monkeypatch):
    """The schema the patched engine publishes (its options-schema.json, as a plug-in finds it when no
    engine runs) becomes a GIMP 2.10 parameter and a Krita panel row, with no plug-in change. The
    real GIMP 3 and real Krita read the same file (tests/test_gimp3.py, tests/test_krita_real.py)."""
    home = fixative_home
    (home / "state").mkdir(exist_ok=True)
    (home / "state" / "options-schema.json").write_text(_cli(patched_engine, home, "options-schema"))
    monkeypatch.setenv("FIXATIVE_HOME", str(home))

    from tests.test_gimp2 import FAKE, FAKE_MODULES, load_plugin

    try:
        gimp2 = load_plugin()
        registered = gimp2.gimpfu._registered_plugins_["python-fu-fixative-protect"][8]
        knob = next(entry for entry in registered if entry[1] == "dummy-knob")
        assert knob[0] == gimp2.gimpfu.PF_OPTION and knob[3:] == (0, ["Soft", "Hard"])
    finally:
        for name in FAKE_MODULES:
            sys.modules.pop(name, None)
        if str(FAKE) in sys.path:
            sys.path.remove(str(FAKE))

    pytest.importorskip("PyQt5.QtWidgets", reason="needs PyQt5 (pip install PyQt5)")
    import tests.test_krita_plugin as krita_tests

    krita_tests.krita.Krita._instance = None
    try:
        panel = krita_tests.ProtectPanel(lambda: (None, None))
        assert "Dummy knob" in krita_tests.form_labels(panel)
        assert panel.fields["dummy_knob"].currentData() == "soft"
        panel.fields["dummy_knob"].setCurrentIndex(1)
        assert panel.options()["dummy_knob"] == "hard"
    finally:
        krita_tests.krita.Krita._instance = None
