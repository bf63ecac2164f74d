"""Issue 14 (Krita, fakes): the protected copy takes the original's place, carries its properties
and masks, respects the selection, handles groups and the visible image, undoes in one step.

The same behaviour runs in real Krita in tests/test_krita_real.py (``compositing`` scenario);
these fast checks cover the logic with the fake ``krita`` module.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_krita_plugin import app, engine, make_document  # noqa: F401  (fixtures; sets sys.path)

fixative_krita = pytest.importorskip("fixative_krita")
krita = pytest.importorskip("krita")  # the fake
LayerError = fixative_krita.LayerError
undo_protection = fixative_krita.undo_protection


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_copy_carries_properties_and_masks_and_hides_the_original(app, engine):  # noqa: F811
    document, node = make_document(app)
    node.setOpacity(128)
    node.setBlendingMode("multiply")
    node.setInheritAlpha(True)
    node.setAlphaLocked(True)
    mask = document.createNode("Soft edge", "transparencymask")
    node.addChildNode(mask, None)
    document.undo_stack.clear()
    new = fixative_krita.protect_layer(document, node, {})
    assert (new.opacity(), new.blendingMode(), new.inheritAlpha(), new.alphaLocked()) == (
        128, "multiply", True, True)
    assert [child.name() for child in new.childNodes()] == ["Soft edge"], "masks are copied"
    assert node.name() == "Paint (original)" and not node.visible()
    assert new.visible() and new.name() == "Paint (protected)"
    assert document.undo_stack == [("add", "Paint (protected)")], "one step, no colour conversions"


def test_keep_original_visible_is_todays_behaviour(app, engine):  # noqa: F811
    document, node = make_document(app)
    fixative_krita.protect_layer(document, node, {}, keep_original_visible=True)
    assert node.name() == "Paint" and node.visible()


def test_hidden_layer_stays_hidden_in_its_copy(app, engine):  # noqa: F811
    document, node = make_document(app)
    node.setVisible(False)
    new = fixative_krita.protect_layer(document, node, {})
    assert not new.visible() and not node.visible()


def test_undo_protection_restores_everything_in_one_step(app, engine):  # noqa: F811
    document, node = make_document(app)
    before = node.pixels.copy()
    fixative_krita.protect_layer(document, node, {})
    assert undo_protection(document)
    assert [child.name() for child in document.rootNode().childNodes()] == ["Paint"]
    assert node.visible() and np.array_equal(node.pixels, before)
    assert not undo_protection(document), "nothing left to undo"


def test_edit_undo_and_redo_carry_the_original_along(app, engine):  # noqa: F811
    """Krita's Edit › Undo takes the copy out (its "Add Layer" step); the watcher then gives the
    original its name and visibility back, and hides it again on Redo."""
    document, node = make_document(app)
    document.undo_stack.clear()
    new = fixative_krita.protect_layer(document, node, {})
    assert document.undo_stack == [("add", "Paint (protected)")], "exactly one undo step"
    assert fixative_krita.sync_protections() == 0, "nothing moved yet"
    place = new.detach_for_undo()
    assert fixative_krita.sync_protections() == 1
    assert (node.name(), node.visible()) == ("Paint", True)
    new.reattach_for_redo(place)
    assert fixative_krita.sync_protections() == 1
    assert (node.name(), node.visible()) == ("Paint (original)", False)
    node.setVisible(True)  # the artist shows the original again by hand: the watcher leaves it
    new.detach_for_undo()
    assert fixative_krita.sync_protections() == 0 and node.name() == "Paint (original)"


def test_merged_copy_adds_no_blending_step_for_normal_layers(app, engine):  # noqa: F811
    document, node = make_document(app)
    group = document.createNode("Group", "grouplayer")
    document.rootNode().addChildNode(group, node)
    inner = document.createNode("Inner", "paintlayer")
    group.addChildNode(inner, None)
    inner.pixels = node.pixels.copy()
    document.undo_stack.clear()
    fixative_krita.protect_layer(document, group, {})
    assert document.undo_stack == [("add", "Group (protected)")]
    group_multiply = document.createNode("Group 2", "grouplayer")
    document.rootNode().addChildNode(group_multiply, None)
    group_multiply.addChildNode(inner.duplicate(), None)
    group_multiply.setBlendingMode("multiply")
    document.undo_stack.clear()
    new = fixative_krita.protect_layer(document, group_multiply, {})
    assert new.blendingMode() == "multiply"
    assert document.undo_stack == [("blend", "Group 2 (protected)"), ("add", "Group 2 (protected)")]


def test_selection_protects_only_its_box(app, engine):  # noqa: F811
    document, node = make_document(app)  # layer at (4, 3, 24, 20)
    selection = krita.Selection()
    selection.select(10, 6, 8, 5, 255)
    document.setSelection(selection)
    new = fixative_krita.protect_layer(document, node, {})
    inside = (slice(6, 11), slice(10, 18))
    changed = new.pixels[..., :3].astype(int) - node.pixels[..., :3]
    assert np.all(changed[inside] % 256 == engine.amount)
    outside = np.ones(changed.shape[:2], bool)
    outside[inside] = False
    assert np.array_equal(new.pixels[outside], node.pixels[outside]), "bit-identical outside"
    job = next(iter(engine.jobs.values()))
    assert png_size(job.image) == (8, 5)


def test_selection_outside_the_layer_is_refused(app, engine):  # noqa: F811
    document, node = make_document(app)
    selection = krita.Selection()
    selection.select(35, 25, 3, 3, 255)
    document.setSelection(selection)
    with pytest.raises(LayerError, match="selection does not touch"):
        fixative_krita.protect_layer(document, node, {})


def test_group_layer_becomes_a_protected_paint_layer(app, engine):  # noqa: F811
    document, node = make_document(app)
    group = document.createNode("Group", "grouplayer")
    document.rootNode().addChildNode(group, None)
    node.parent.children.remove(node)
    group.addChildNode(node, None)
    group.setOpacity(200)
    new = fixative_krita.protect_layer(document, group, {})
    assert new.type() == "paintlayer" and new.name() == "Group (protected)" and new.opacity() == 200
    assert group.name() == "Group (original)" and not group.visible()
    changed = new.pixels[..., :3].astype(int) - node.pixels[..., :3]
    assert np.all(changed[3:23, 4:28] % 256 == engine.amount)


def test_visible_image_becomes_one_protected_top_layer(app, engine):  # noqa: F811
    document, node = make_document(app)
    new = fixative_krita.protect_visible_image(document, {})
    assert document.rootNode().childNodes()[-1] is new and new.name() == "Visible image (protected)"
    assert node.visible() and node.name() == "Paint", "the layers stay as they are"
    assert png_size(next(iter(engine.jobs.values())).image) == (40, 30)


# -- start-up, feedback, remembered settings (items 8-10) -------------------------------------

def test_dock_starts_no_engine_until_shown(app, monkeypatch):  # noqa: F811
    import importlib

    from fixative_krita import panel as panel_module

    started = []
    monkeypatch.setattr(panel_module.ProtectPanel, "connect_engine",
                        lambda self, start=True: (started.append(start), self.set_status("starting engine…")))
    importlib.reload(fixative_krita)
    dock = app.dock_factories[0].widget_class()
    assert started == [], "creating the docker (window open) must not start the engine"
    dock.show()
    assert started == [True] and dock.panel.status.text() == "Engine: starting engine…"
    dock.hide()
    dock.show()
    assert started == [True], "started once"


def test_panel_remembers_its_settings(app):  # noqa: F811
    from fixative_krita.panel import ProtectPanel

    first = ProtectPanel(lambda: (None, None))
    first.intensity.setCurrentIndex(first.intensity.findData("high"))
    first.keep_original.setChecked(True)
    assert '"intensity": "high"' in app.readSetting("fixative", "panel", "")
    second = ProtectPanel(lambda: (None, None))
    assert second.intensity.currentData() == "high" and second.keep_original.isChecked()
    assert second.options()["intensity"] == "high"


def test_menu_action_shows_the_hidden_dock(app, monkeypatch):  # noqa: F811
    from fixative_krita import krita_ui
    from PyQt5.QtWidgets import QDockWidget

    dock = QDockWidget("Protect for Web")
    dock.setObjectName("fixative_protect_dock")
    dock.hide()

    class Window:
        def dockers(self):
            return [QDockWidget("Layers"), dock]

    monkeypatch.setattr(app, "activeWindow", lambda: Window())
    assert krita_ui.show_dock() and not dock.isHidden()


def test_export_of_a_grey_image_is_converted_to_srgb_and_says_so(app, engine, tmp_path):  # noqa: F811
    from PIL import Image

    document = app.createDocument(20, 16, "grey", "GRAYA", "U8", "", 72.0)
    layer = document.add_paint_layer("Grey")
    layer.set_rgba(np.dstack([np.full((16, 20), 90, np.uint8), np.full((16, 20), 255, np.uint8)]))
    job = fixative_krita.export_protected(document, str(tmp_path / "out.png"), {}, wait=False,
                                          credentials=False)
    job.wait()
    assert job.state == "done", job.error
    assert any("converted to sRGB" in note for note in job.notes), job.notes
    with Image.open(tmp_path / "out.png") as saved:
        assert saved.mode == "RGBA" and saved.getpixel((3, 3))[:3] == (93, 93, 93)
        assert saved.info.get("srgb") == 0, "the file itself says sRGB (perceptual)"


def test_float_benchmark_prints_its_numbers():
    import subprocess
    import sys

    from tests.conftest import REPO

    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "krita_float.py"), "--size", "32", "--linear"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    numbers = dict(line.split(":", 1) for line in done.stdout.splitlines())
    assert {"to_png_s", "from_png_s", "peak_extra_mib"} <= {key.strip() for key in numbers}
