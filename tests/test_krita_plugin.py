"""The Krita plugin's logic with PyQt5 offscreen, a fake ``krita`` module and a fake engine."""

from __future__ import annotations

import io
import json
import os
import struct
import sys
import time

import numpy as np
import pytest

from tests.conftest import REPO, painting
from tests.krita.fake_engine import FakeEngine

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
pytest.importorskip("PyQt5.QtWidgets", reason="needs PyQt5 (pip install PyQt5)")
sys.path.insert(0, str(REPO / "tests" / "krita" / "fakes"))
sys.path.insert(0, str(REPO / "plugins" / "krita"))

import fixative_krita  # noqa: E402
import krita  # noqa: E402  (the fake)
from fixative_krita import optout, pixels  # noqa: E402
from fixative_krita.job import LayerError, ProtectJob  # noqa: E402
from fixative_krita.panel import ProtectPanel, format_eta  # noqa: E402
from PIL import Image  # noqa: E402
from PyQt5.QtWidgets import QApplication  # noqa: E402

fc = fixative_krita.fixative_client
APP = QApplication.instance() or QApplication(["fixative-tests"])


@pytest.fixture
def app(tmp_path, monkeypatch):
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    krita.Krita._instance = None
    yield krita.Krita.instance()
    krita.Krita._instance = None


@pytest.fixture
def engine(app, tmp_path):
    fake = FakeEngine(tmp_path / "home" / "state", job_seconds=0.3).start()
    yield fake
    fake.stop()


def make_document(app, depth="U8", size=(40, 30), layer_box=(4, 3, 24, 20)):
    """A document with one painted layer (a painting crop with a soft alpha) inside ``layer_box``."""
    document = app.createDocument(size[0], size[1], "test", "RGBA", depth, "", 72.0)
    app.active_document = document
    node = document.add_paint_layer("Paint")
    x, y, w, h = layer_box
    rgb = painting(size=(w, h)).astype(np.float64) / 255
    alpha = np.linspace(0.2, 1.0, w * h).reshape(h, w, 1)
    rgba = np.concatenate([rgb, alpha], axis=2)
    if depth == "U8":
        values = np.round(rgba * 255).astype(np.uint8)
    elif depth == "U16":
        values = np.round(rgba * 65535).astype(np.uint16)
    else:
        values = rgba.astype(krita.DTYPES[depth])
    node.set_rgba(values, x, y)
    return document, node


# -- pixels ----------------------------------------------------------------------------------

def test_u8_bgra_becomes_rgba_and_back():
    raw = bytes([10, 20, 30, 40, 1, 2, 3, 4])  # B,G,R,A B,G,R,A
    encoded = pixels.krita_to_png(raw, "U8")
    assert encoded.bit_depth == 8 and encoded.samples == bytes([30, 20, 10, 40, 3, 2, 1, 4])
    changed = bytes([31, 21, 11, 99, 4, 3, 2, 0])  # the engine must not change alpha; we insist
    assert pixels.png_to_krita(changed, encoded, raw, "U8") == bytes([11, 21, 31, 40, 2, 3, 4, 4])


def test_u16_little_endian_bgra_becomes_big_endian_rgba():
    raw = struct.pack("<4H", 1000, 2000, 3000, 65535)
    encoded = pixels.krita_to_png(raw, "U16")
    assert encoded.bit_depth == 16
    assert struct.unpack(">4H", encoded.samples) == (3000, 2000, 1000, 65535)
    back = pixels.png_to_krita(struct.pack(">4H", 3001, 2002, 1003, 7), encoded, raw, "U16")
    assert struct.unpack("<4H", back) == (1003, 2002, 3001, 65535)


@pytest.mark.parametrize("depth,fmt", [("F16", "e"), ("F32", "f")])
def test_float_layers_keep_hdr_values_and_get_the_change(depth, fmt):
    raw = struct.pack("<8" + fmt, 0.5, 2.0, -0.25, 0.75, 0.1, 0.2, 0.3, 1.0)
    encoded = pixels.krita_to_png(raw, depth)
    sent = struct.unpack(">8H", encoded.samples)
    assert sent[1] == 65535 and sent[2] == 0  # clipped for the engine only
    result = struct.pack(">8H", *[value + 655 if index % 4 != 3 and value < 65000 else value
                                  for index, value in enumerate(sent)])
    back = struct.unpack("<8" + fmt, pixels.png_to_krita(result, encoded, raw, depth))
    assert back[1] == pytest.approx(2.0, abs=1e-3)  # HDR value untouched (no change sent)
    assert back[0] == pytest.approx(0.5 + 655 / 65535, abs=2e-3)
    assert back[4] == pytest.approx(0.1 + 655 / 65535, abs=2e-3)
    assert back[3] == 0.75 and back[7] == 1.0


def test_linear_float_goes_through_the_srgb_curve():
    assert pixels.is_linear_profile("sRGB-elle-V2-g10.icc")
    assert not pixels.is_linear_profile("sRGB-elle-V2-srgbtrc.icc")
    raw = struct.pack("<4f", 0.2140, 0.0, 1.0, 1.0)  # linear 0.214 is about sRGB 0.5
    encoded = pixels.krita_to_png(raw, "F32", linear=True)
    assert struct.unpack(">4H", encoded.samples)[0] == pytest.approx(32768, abs=200)


def test_unknown_depth_is_refused():
    with pytest.raises(pixels.PixelError, match="U32"):
        pixels.krita_to_png(b"\0" * 16, "U32")


# -- protect_layer with the fake engine ----------------------------------------------------

@pytest.mark.parametrize("depth", ["U8", "U16", "F32"])
def test_protect_layer_adds_a_protected_layer_above(app, engine, depth):
    document, node = make_document(app, depth)
    above = document.add_paint_layer("Lines")
    document.active = node
    before = node.pixels.copy()
    new = fixative_krita.protect_layer(document, node, {"quality": "fast", "models": ["taef2"]})
    root = document.rootNode()
    assert [child.name() for child in root.childNodes()] == ["Paint (original)", "Paint (protected)", "Lines"]
    assert not node.visible() and new.visible(), "the copy takes the original's place"
    assert above.name() == "Lines"
    assert new.name() == "Paint (protected)" and new.colorDepth() == depth
    assert document.undo_stack == [("add", "Paint (protected)")]
    assert new.bounds() == node.bounds()
    assert np.array_equal(node.pixels, before), "the source layer must not change"
    box = node.bounds()
    region = (slice(box.y(), box.y() + box.height()), slice(box.x(), box.x() + box.width()))
    old, got = before[region], new.pixels[region]
    assert np.array_equal(got[..., 3], old[..., 3]), "alpha copied bit for bit"
    if depth == "U8":
        assert np.all((got[..., :3].astype(int) - old[..., :3]) % 256 == engine.amount)
    elif depth == "U16":  # the fake engine adds to the low byte of big-endian samples
        low = (got[..., :3].astype(int) & 0xFF) - (old[..., :3].astype(int) & 0xFF)
        assert np.all(low % 256 == engine.amount)
    else:
        delta = got[..., :3].astype(np.float64) - old[..., :3]
        assert np.all(np.abs(delta) < 0.01) and np.mean(np.abs(delta)) > 1e-5
    job = next(iter(engine.jobs.values()))
    assert job.options == {"quality": "fast", "models": ["taef2"]}


def test_layer_partly_outside_the_image_is_clipped(app, engine):
    document = app.createDocument(20, 20, "clip", "RGBA", "U8", "", 72.0)
    node = document.add_paint_layer("Edge")
    node.set_rgba(np.full((20, 8, 4), 200, np.uint8), 12, 0)
    new = fixative_krita.protect_layer(document, node, {})
    box = new.bounds()
    assert (box.x(), box.y(), box.width(), box.height()) == (12, 0, 8, 20)


def test_refused_layers_say_what_to_do(app, engine):
    document, node = make_document(app)
    mask = document.createNode("Mask", "transparencymask")
    with pytest.raises(LayerError, match="not a transparencymask"):
        fixative_krita.protect_layer(document, mask, {})
    empty = document.add_paint_layer("Empty")
    with pytest.raises(LayerError, match="no pixels"):
        fixative_krita.protect_layer(document, empty, {})
    cmyk = document.add_paint_layer("Print", model="CMYKA")
    cmyk.pixels[..., -1] = 255
    # the fake's Krita cannot convert CMYK: the artist is told what to do
    with pytest.raises(LayerError, match="Convert Layer Color Space"):
        fixative_krita.protect_layer(document, cmyk, {})
    with pytest.raises(LayerError, match="Open a document"):
        fixative_krita.protect_layer(None, None, {})
    assert engine.jobs == {} and document.undo_stack == []


def test_gray_layer_is_converted_on_a_copy(app, engine):
    document, _ = make_document(app)
    gray = document.add_paint_layer("Gray", model="GRAYA")
    gray.set_rgba(np.dstack([np.arange(100, dtype=np.uint8).reshape(10, 10),
                             np.full((10, 10), 255, np.uint8)]), 2, 2)
    before = gray.pixels.copy()
    new = fixative_krita.protect_layer(document, gray, {})
    assert gray.colorModel() == "GRAYA" and np.array_equal(gray.pixels, before)
    assert new.colorModel() == "GRAYA" and new.bounds() == gray.bounds(), "back in the layer's own space"
    assert document.undo_stack == [("add", "Gray (protected)")], "no Convert Layer Color Space entries"
    assert document.conversions == [] and len(app.documents()) == 1, "scratch documents are closed"
    changed = new.pixels[2:12, 2:12, 0].astype(int) - before[2:12, 2:12, 0]
    assert np.all(changed == engine.amount) and np.array_equal(new.pixels[..., 1], before[..., 1])


def test_engine_not_installed_leaves_the_document_alone(app):
    document, node = make_document(app)
    with pytest.raises(fc.EngineNotInstalled, match="installer"):
        fixative_krita.protect_layer(document, node, {})
    assert len(document.rootNode().childNodes()) == 1 and document.undo_stack == []


def test_engine_error_reaches_the_caller(app, engine):
    engine.fail_with = ("missing_weights", "The taef2 weights are missing.")
    document, node = make_document(app)
    with pytest.raises(fc.JobFailed, match="taef2 weights are missing"):
        fixative_krita.protect_layer(document, node, {})
    assert document.undo_stack == []


def test_document_closed_mid_job_discards_the_result(app, engine):
    engine.job_seconds = 30
    document, node = make_document(app)
    job = fixative_krita.protect_layer(document, node, {}, wait=False)
    assert isinstance(job, ProtectJob)
    deadline = time.monotonic() + 5
    while not engine.jobs and time.monotonic() < deadline:
        APP.processEvents()
        time.sleep(0.02)
    document.close()
    job.wait(timeout=10)
    assert job.state == "cancelled" and "closed" in str(job.error)
    assert document.undo_stack == []
    deadline = time.monotonic() + 3
    while not engine.deleted and time.monotonic() < deadline:
        time.sleep(0.05)
    assert engine.deleted == list(engine.jobs), "the engine job is cancelled too"


def test_source_layer_deleted_mid_job(app, engine):
    engine.job_seconds = 0.5
    document, node = make_document(app)
    job = fixative_krita.protect_layer(document, node, {}, wait=False)
    document.rootNode().children.remove(node)
    node.parent = None
    job.wait(timeout=10)
    assert job.state == "failed" and "deleted" in str(job.error)
    assert document.undo_stack == []


def test_cancel_stops_the_engine_job(app, engine):
    engine.job_seconds = 30
    document, node = make_document(app)
    job = fixative_krita.protect_layer(document, node, {}, wait=False)
    deadline = time.monotonic() + 5
    while not engine.jobs and time.monotonic() < deadline:
        APP.processEvents()
        time.sleep(0.02)
    job.cancel()
    job.wait(timeout=5)
    assert job.state == "cancelled" and engine.deleted == list(engine.jobs)


def test_the_gui_keeps_running_while_a_job_works(app, engine):
    engine.job_seconds = 1.0
    document, node = make_document(app)
    ticks = []
    from fixative_krita.qt import QTimer

    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(20)
    job = fixative_krita.protect_layer(document, node, {}, wait=False)
    job.wait(timeout=10)
    timer.stop()
    assert job.state == "done"
    assert len(ticks) >= 20  # the event loop turned all along
    assert max(np.diff(ticks)) < 0.5


def test_protect_active_layer_uses_the_active_document(app, engine):
    document, node = make_document(app)
    new = fixative_krita.protect_active_layer({})
    assert new.name() == "Paint (protected)"
    app.active_document = None
    with pytest.raises(LayerError, match="protect_layer"):
        fixative_krita.protect_active_layer({})


# -- export ------------------------------------------------------------------------------------

@pytest.mark.parametrize("extension,pil_format", [(".png", "PNG"), (".jpg", "JPEG"), (".webp", "WEBP")])
def test_export_protected_writes_tagged_files(app, engine, tmp_path, extension, pil_format):
    document, node = make_document(app, layer_box=(0, 0, 40, 30))
    before = node.pixels.copy()
    path = str(tmp_path / ("out" + extension))
    assert fixative_krita.export_protected(document, path, {}) == path
    with Image.open(path) as image:
        assert image.format == pil_format and image.size == (40, 30)
        image.load()
        xmp = image.info.get("xmp") or image.info.get(optout.XMP_KEYWORD) or b""
        if pil_format == "PNG":
            expected = before[..., [0, 1, 2, 3]].astype(int)
            got = np.asarray(image).astype(int)
            assert np.all((got[..., :3] - expected[..., :3]) % 256 == engine.amount)
    text = xmp.decode() if isinstance(xmp, bytes) else xmp
    assert optout.OPT_OUT_MARKER in text
    assert np.array_equal(node.pixels, before) and document.undo_stack == []


def test_export_rejects_unknown_extensions(app, engine, tmp_path):
    document, _ = make_document(app)
    with pytest.raises(LayerError, match=".png, .jpg or .webp"):
        fixative_krita.export_protected(document, str(tmp_path / "out.gif"), {})


# -- the panel ---------------------------------------------------------------------------------

def _pump(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        APP.processEvents()
        time.sleep(0.01)
    return condition()


def test_panel_fills_styles_from_the_engine_and_builds_options(app, engine):
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    panel.connect_engine(start=False)
    assert _pump(lambda: panel.info is not None)
    assert "connected" in panel.status.text()
    names = [panel.target_style.itemData(i) for i in range(panel.target_style.count())]
    assert names == ["auto", "impasto", "woodblock", "cubist", "Choose image…"]
    panel.target_style.setCurrentIndex(2)
    panel.quality.setCurrentIndex(panel.quality.findData("fast"))
    assert panel.options() == {"mode": "style", "intensity": "default", "quality": "fast",
                               "robustness": "standard", "target_style": "woodblock"}
    assert not panel.concept.isEnabled()
    panel.mode.setCurrentIndex(panel.mode.findData("poison"))
    assert panel.concept.isEnabled()
    assert panel.protect() is None and "target concept" in panel.status.text()
    panel.concept.setText(" cat ")
    panel.target_concept.setText("dog")
    options = panel.options()
    assert options["concept"] == "cat" and options["target_concept"] == "dog"


def test_panel_style_image_is_sent(app, engine, tmp_path):
    document, node = make_document(app)
    style = tmp_path / "style.jpg"
    Image.fromarray(painting("great_wave_hokusai_1831.jpg", 32)).save(style)
    panel = ProtectPanel(lambda: (document, node))
    panel.choose_style_file = lambda: str(style)
    panel._style_chosen(panel.target_style.findData("Choose image…"))
    assert panel.target_style.currentData() == "file"
    assert "style.jpg" in panel.target_style.currentText()
    assert "target_style" not in panel.options()
    job = panel.protect()
    assert _pump(lambda: job.finished)
    sent = next(iter(engine.jobs.values())).parts["style_image"]
    assert sent[2] == style.read_bytes() and sent[1] == "image/jpeg"


def test_panel_runs_a_job_with_progress_and_preview(app, engine):
    engine.job_seconds = 0.8
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    job = panel.protect()
    assert job is not None and not panel.protect_button.isEnabled() and panel.cancel_button.isEnabled()
    seen = []
    assert _pump(lambda: (seen.append(panel.progress.value()) or job.finished))
    assert job.state == "done"
    assert panel.protect_button.isEnabled() and not panel.cancel_button.isEnabled()
    assert panel.progress.value() == 1000 and any(0 < value < 1000 for value in seen)
    assert "Paint (protected)" in panel.stage.text()
    assert panel.preview.pixmap() is not None and not panel.preview.pixmap().isNull()


def test_panel_shows_not_installed_with_what_to_do(app):
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    panel.connect_engine(start=True)
    assert _pump(lambda: panel.last_error is not None)
    assert "not installed" in panel.status.text() and "installer" in panel.status.text()


def test_panel_cancel(app, engine):
    engine.job_seconds = 30
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    job = panel.protect()
    assert _pump(lambda: bool(engine.jobs))
    panel.cancel_button.click()
    assert _pump(lambda: job.finished)
    assert job.state == "cancelled" and panel.stage.text() == "cancelled"
    assert document.undo_stack == []


def test_format_eta():
    assert format_eta(None) == "" and format_eta(4.4) == "about 4 s left"
    assert format_eta(125) == "about 2 min 05 s left"


# -- registration and packaging ------------------------------------------------------------------

def test_plugin_registers_dock_and_actions(app):
    import importlib

    importlib.reload(fixative_krita)
    assert [type(e).__name__ for e in app.extensions] == ["FixativeExtension"]
    factory = app.dock_factories[0]
    assert factory.identifier == "fixative_protect_dock"
    dock = factory.widget_class()
    assert dock.windowTitle() == "Protect for Web"
    assert dock.panel.protect_button.text() == "Protect layer"


def test_qt_module_uses_the_loaded_binding():
    from fixative_krita import qt

    assert qt.QT_API == "pyqt5" and qt.QtWidgets.__name__ == "PyQt5.QtWidgets"


def test_desktop_and_action_files_name_the_package_and_actions():
    desktop = (REPO / "plugins" / "krita" / "fixative_krita.desktop").read_text()
    assert "X-KDE-Library=fixative_krita" in desktop and "ServiceTypes=Krita/PythonPlugin" in desktop
    action = (REPO / "plugins" / "krita" / "fixative_krita.action").read_text()
    for name in ("fixative_protect_layer", "fixative_export_protected"):
        assert f'name="{name}"' in action
        assert name in (REPO / "plugins" / "krita" / "fixative_krita" / "krita_ui.py").read_text()
    assert "fixative_undo_protection" not in action, "Edit › Undo undoes a protection: no menu command of ours"
    assert (REPO / "plugins" / "krita" / "manual.html").exists()


def test_jpeg_and_webp_metadata_survive_pillow(tmp_path):
    image = Image.fromarray(painting(size=16))
    for fmt in ("JPEG", "WEBP"):
        buffer = io.BytesIO()
        image.save(buffer, fmt)
        data = (optout.add_to_jpeg(buffer.getvalue()) if fmt == "JPEG"
                else optout.add_to_webp(buffer.getvalue(), 16, 16))
        with Image.open(io.BytesIO(data)) as tagged:
            tagged.load()
            assert tagged.size == (16, 16)
            xmp = tagged.info.get("xmp")
            assert xmp and optout.OPT_OUT_MARKER in (xmp.decode() if isinstance(xmp, bytes) else xmp)
            assert np.abs(np.asarray(tagged).astype(int) - np.asarray(Image.open(buffer))).max() == 0
    with pytest.raises(optout.MetadataError):
        optout.add_to_jpeg(b"not a jpeg")
    assert json.dumps(optout.OPT_OUT_XMP)


# -- the option schema -------------------------------------------------------------------------

def dummy_schema() -> dict:
    """The shipped schema plus fields only a newer engine would have."""
    schema = json.loads((REPO / "plugins" / "common" / "fixative_options_fallback.json").read_text())
    schema["fields"] += [
        {"name": "dummy_level", "kind": "choice", "label": "Dummy level", "help": "test only",
         "default": "b", "dialog": True, "choices": [{"value": "a", "label": "A", "help": "first"},
                                                     {"value": "b", "label": "B", "help": "second"}]},
        {"name": "dummy_count", "kind": "integer", "label": "Dummy count", "help": "test only",
         "default": 3, "minimum": 1, "maximum": 9, "dialog": True},
        {"name": "dummy_flag", "kind": "boolean", "label": "Dummy flag", "help": "", "default": True,
         "dialog": True, "enabled_when": {"mode": ["both"]}},
        {"name": "dummy_hidden", "kind": "text", "label": "Hidden", "help": "", "default": "",
         "dialog": False},
    ]
    return schema


def form_labels(panel) -> list[str]:
    form = panel.form_box.layout()
    return [form.itemAt(row, form.ItemRole.LabelRole).widget().text() for row in range(form.rowCount())]


def test_panel_widgets_come_from_the_cached_schema(app, tmp_path):
    state = tmp_path / "home" / "state"
    state.mkdir(parents=True)
    (state / "options-schema.json").write_text(json.dumps(dummy_schema()))
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    assert form_labels(panel) == ["Mode", "Intensity", "Quality", "Robustness", "Target style",
                                  "Concept", "Target concept", "Dummy level", "Dummy count",
                                  "Dummy flag"]
    from PyQt5 import QtWidgets

    level, count, flag = (panel.fields[name] for name in ("dummy_level", "dummy_count", "dummy_flag"))
    assert isinstance(level, QtWidgets.QComboBox) and level.currentData() == "b"
    assert isinstance(count, QtWidgets.QSpinBox) and (count.minimum(), count.maximum()) == (1, 9)
    assert isinstance(flag, QtWidgets.QCheckBox) and not flag.isEnabled()
    assert "dummy_hidden" not in panel.fields
    count.setValue(7)
    options = panel.options()
    assert options["dummy_level"] == "b" and options["dummy_count"] == 7
    assert "dummy_flag" not in options  # only in mode "both"
    panel.mode.setCurrentIndex(panel.mode.findData("both"))
    assert flag.isEnabled() and panel.options()["dummy_flag"] is True


def test_panel_takes_the_running_engines_schema_and_sends_the_new_field(app, engine):
    engine.options_schema = dummy_schema()
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    assert "dummy_level" not in panel.fields  # nothing cached yet: the shipped schema
    panel.quality.setCurrentIndex(panel.quality.findData("fast"))
    panel.connect_engine(start=False)
    assert _pump(lambda: panel.info is not None)
    assert "Dummy level" in form_labels(panel)
    assert panel.quality.currentData() == "fast", "values chosen before the rebuild are kept"
    names = [panel.target_style.itemData(i) for i in range(panel.target_style.count())]
    assert names == ["auto", "impasto", "woodblock", "cubist", "Choose image…"]
    panel.fields["dummy_level"].setCurrentIndex(0)
    job = panel.protect()
    assert _pump(lambda: job.finished) and job.state == "done", job.error
    sent = next(iter(engine.jobs.values())).options
    assert sent["dummy_level"] == "a" and sent["dummy_count"] == 3 and sent["quality"] == "fast"


def test_panel_progress_says_steps_and_time_not_loss(app):
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    panel._progressed(0.5, "optimising (step 16/30, loss 0.412)", 40.2)
    assert panel.stage.text() == "50% — step 16 of 30, about 40 s left"


def test_panel_done_line_shows_the_report_summary(app, engine):
    engine.report_extra = {"summary": "To a person: no visible change; to the model: a cubist picture."}
    document, node = make_document(app)
    panel = ProtectPanel(lambda: (document, node))
    job = panel.protect()
    assert _pump(lambda: job.finished) and job.state == "done"
    assert panel.stage.text() == ("Added 'Paint (protected)'. To a person: no visible change; to "
                                  "the model: a cubist picture.")
