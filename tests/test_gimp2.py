"""The GIMP 2.10 plug-in run end to end through a faithful stand-in gimpfu (tests/fake_gimpfu).

The plug-in file is imported as GIMP would (it registers itself and calls main()), then called
through the fake PDB against a real `fixative serve`. The same run also happens under Python 2.7
when one is installed, and vermin checks that the plug-in and the shared client stay 2.7-clean.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, painting
from tests.gimp.checks import check_exported_optout, check_within_budget, engine_in

PLUGIN = REPO / "plugins" / "gimp" / "gimp2" / "fixative_protect.py"
COMMON = REPO / "plugins" / "common"
FAKE = REPO / "tests" / "fake_gimpfu"
FAKE_MODULES = ("gimp", "gimpfu", "gimpenums", "gimpcolor", "fixative_protect_gimp2")
PARAM_NAMES = ["image", "drawable", "mode", "intensity", "quality", "robustness", "target-style",
               "concept", "target-concept", "new-layer", "keep-original-visible",
               "visible-picture"]
# mode=style, intensity=default, quality=fast, robustness=off, target-style, concept,
# target-concept
FAST_OPTIONS = [0, 1, 0, 0, "auto", "", ""]
# ... then new-layer, keep-original-visible, visible-picture
FAST_ARGS = FAST_OPTIONS + [True, False, False]


def protect_args(new_layer: bool = True, keep_visible: bool = False,
                 visible: bool = False) -> list:
    return FAST_OPTIONS + [new_layer, keep_visible, visible]


def load_plugin() -> types.SimpleNamespace:
    """Fresh fake modules and a fresh import of the plug-in, as a new plug-in process would get."""
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)
    if str(FAKE) not in sys.path:
        sys.path.insert(0, str(FAKE))
    spec = importlib.util.spec_from_file_location("fixative_protect_gimp2", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import gimp
    import gimpenums
    import gimpfu

    return types.SimpleNamespace(gimp=gimp, gimpfu=gimpfu, enums=gimpenums, plugin=module)


@pytest.fixture
def gimp2(monkeypatch, tmp_path):
    temp_root = tmp_path / "temp"
    temp_root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp_root))
    with monkeypatch.context() as registration:
        # Registration reads the option schema; an empty home gives the shipped fallback copy.
        registration.setenv("FIXATIVE_HOME", str(tmp_path / "registration-home"))
        loaded = load_plugin()
    loaded.temp_root = temp_root
    yield loaded
    for name in FAKE_MODULES:
        sys.modules.pop(name, None)
    if str(FAKE) in sys.path:
        sys.path.remove(str(FAKE))


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    with engine_in(tmp_path_factory.mktemp("gimp2") / "fixative-home") as running:
        yield running


def to_bytes(pixels: np.ndarray) -> bytes:
    return pixels.astype(">u2").tobytes() if pixels.dtype == np.uint16 else pixels.tobytes()


def from_bytes(data: bytes, like: np.ndarray) -> np.ndarray:
    dtype = ">u2" if like.dtype == np.uint16 else np.uint8
    return np.frombuffer(data, dtype=dtype).reshape(like.shape)


def build_image(g, pixels: np.ndarray, offsets=(9, 4)):
    """Background, the painting at an offset, and a small layer on top, like a real document."""
    e = g.enums
    height, width, channels = pixels.shape
    base = e.GRAY if channels in (1, 2) else e.RGB
    image = g.gimp.Image(width + 24, height + 16, base)
    if pixels.dtype == np.uint16:
        image.precision = e.PRECISION_U16_GAMMA
    background = g.gimp.Layer(image, "Background", image.width, image.height,
                              e.GRAY_IMAGE if base == e.GRAY else e.RGB_IMAGE)
    g.gimp.pdb.gimp_image_insert_layer(image, background, None, 0)
    kind = {1: e.GRAY_IMAGE, 2: e.GRAYA_IMAGE, 3: e.RGB_IMAGE, 4: e.RGBA_IMAGE}[channels]
    layer = g.gimp.Layer(image, "Painting", width, height, kind, 80.0, e.NORMAL_MODE)
    layer.fake_set_data(to_bytes(pixels))
    g.gimp.pdb.gimp_image_insert_layer(image, layer, None, 0)
    layer.set_offsets(*offsets)
    top = g.gimp.Layer(image, "Top", 4, 4, e.GRAYA_IMAGE if base == e.GRAY else e.RGBA_IMAGE)
    g.gimp.pdb.gimp_image_insert_layer(image, top, None, 0)
    image.fake_log[:] = []
    return image, layer


def with_alpha(rgb: np.ndarray) -> np.ndarray:
    height, width, _ = rgb.shape
    alpha = np.broadcast_to(np.linspace(64, 255, width).astype(np.uint8), (height, width))
    return np.concatenate([rgb, alpha[..., None]], axis=2)


def check_new_layer(g, image, source, before: bytes, pixels: np.ndarray,
                    keep_visible: bool = False) -> None:
    """The copy in the source's place with its properties, the source kept below (hidden and
    renamed by default), one undo group, budget kept."""
    original_name = "Painting" if keep_visible else "Painting (original)"
    assert [layer.name for layer in image.layers] == ["Top", "Painting (protected)", original_name,
                                                      "Background"]
    result = image.layers[1]
    assert image.layers[2] is source and source.visible is keep_visible and result.visible
    assert (result.width, result.height, result.offsets) == (source.width, source.height,
                                                             source.offsets)
    assert result.type == source.type and result.opacity == source.opacity
    assert result.mode == source.mode and result.fake_locks == source.fake_locks
    if source.mask is None:
        assert result.mask is None
    else:
        assert result.mask.fake_data == source.mask.fake_data
        assert result.fake_apply_mask == source.fake_apply_mask
    assert source.fake_data == before, "the source layer's pixels changed"
    assert image.fake_undo_groups == 1 and image.fake_undo_depth == 0
    inserts = [entry for entry in image.fake_log if entry[0] == "insert-layer"]
    assert inserts and all(depth == 1 for _kind, _name, depth in inserts), image.fake_log
    full = 65535 if pixels.dtype == np.uint16 else 255
    check_within_budget(pixels, from_bytes(result.fake_data, pixels), pixels.shape[2] in (2, 4),
                        full, "default")
    updates = [value for kind, value in g.gimp.fake_progress if kind == "update"]
    assert updates and updates[-1] == 1.0 and updates == sorted(updates), updates
    assert any(kind == "text" for kind, _value in g.gimp.fake_progress)
    assert g.gimp.fake_messages == []
    assert list(g.temp_root.iterdir()) == [], "temporary PNG files were left behind"


def test_registration_matches_gimp3_procedure(gimp2):
    registered = gimp2.gimp.fake_procedures["python-fu-fixative-protect"]
    assert [param[1] for param in registered["params"]] == ["run-mode"] + PARAM_NAMES
    assert registered["imagetypes"] == "RGB*, GRAY*"
    assert registered["label"] == "Protect for Web..."
    assert gimp2.gimp.fake_menus["python-fu-fixative-protect"] == ["<Image>/Filters"]
    options = {entry[1]: entry for entry in gimp2.gimpfu._registered_plugins_[
        "python-fu-fixative-protect"][8] if entry[0] == gimp2.gimpfu.PF_OPTION}
    plugin = gimp2.plugin
    schema = json.loads((COMMON / "fixative_options_fallback.json").read_text())
    fields = {field["name"]: field for field in schema["fields"]}
    for name in ("mode", "intensity", "quality", "robustness"):
        assert options[name][4] == [choice["label"] for choice in fields[name]["choices"]]
        default = [choice["value"] for choice in fields[name]["choices"]].index(
            fields[name]["default"])
        assert options[name][3] == default
    # the engine's own option names and values
    from fixative.options import ProtectOptions

    ProtectOptions(**plugin.build_options(2, 2, 2, 2, " auto ", "a cat", "a dog"))
    with pytest.raises(plugin.PluginError, match="Mode must be one of style, poison, both"):
        plugin.build_options(5, 1, 1, 1, "auto", "", "")


def test_export_procedure_is_registered_under_file_export(gimp2):
    """Export Protected, as in GIMP 3: File > Export, any image type, every option, then the
    credentials toggle (on by default); where and what to write as folder + file name."""
    registered = gimp2.gimp.fake_procedures["python-fu-fixative-export"]
    assert [param[1] for param in registered["params"]] == [
        "run-mode", "image", "drawable", "folder", "file-name", *PARAM_NAMES[2:9], "credentials"]
    assert registered["label"] == "Export Protected..." and registered["imagetypes"] == "*"
    assert gimp2.gimp.fake_menus["python-fu-fixative-export"] == ["<Image>/File/Export"]
    params = gimp2.gimpfu._registered_plugins_["python-fu-fixative-export"][8]
    assert params[2][0] == gimp2.gimpfu.PF_DIRNAME and params[-1][3] is True


@pytest.mark.slow
def test_rgba_layer_protected_into_new_layer(gimp2, engine):
    pixels = with_alpha(painting(size=(72, 56)))
    image, layer = build_image(gimp2, pixels)
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    check_new_layer(gimp2, image, layer, before, pixels)


@pytest.mark.slow
def test_copy_carries_mask_mode_and_locks_and_keep_visible_option(gimp2, engine):
    pixels = with_alpha(painting(size=(48, 40), box=(0.2, 0.3)))
    image, layer = build_image(gimp2, pixels)
    pdb, e = gimp2.gimp.pdb, gimp2.enums
    layer.mode = 3  # multiply
    pdb.gimp_layer_set_lock_alpha(layer, True)
    pdb.gimp_item_set_lock_position(layer, True)
    image.fake_select_rectangle(12, 6, 20, 30)  # the mask's shape comes from a selection
    pdb.gimp_layer_add_mask(layer, pdb.gimp_layer_create_mask(layer, e.ADD_SELECTION_MASK))
    image.fake_selection = None
    pdb.gimp_layer_set_apply_mask(layer, False)
    mask_before = layer.mask.fake_data
    assert 0 < mask_before.count(b"\xff") < len(mask_before)
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    check_new_layer(gimp2, image, layer, before, pixels)
    assert layer.mask.fake_data == mask_before and image.channels == []
    assert image.fake_selection is None or pdb.gimp_selection_is_empty(image)

    gimp2.gimp.fake_progress[:] = []
    image, layer = build_image(gimp2, pixels)
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *protect_args(keep_visible=True))
    check_new_layer(gimp2, image, layer, before, pixels, keep_visible=True)


@pytest.mark.slow
def test_selection_protects_only_its_bounding_box(gimp2, engine):
    pixels = painting(size=(64, 48), box=(0.6, 0.6))
    image, layer = build_image(gimp2, pixels, offsets=(9, 4))
    image.fake_select_rectangle(9 + 10, 4 + 6, 30, 24)  # image coordinates
    selection = image.fake_selection
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert image.fake_selection == selection, "the artist's selection must survive"
    result = from_bytes(image.layers[1].fake_data, pixels)
    assert layer.fake_data == before
    inside = np.zeros(pixels.shape[:2], bool)
    inside[6:30, 10:40] = True
    np.testing.assert_array_equal(result[~inside], pixels[~inside])
    check_within_budget(pixels[6:30, 10:40], result[6:30, 10:40], False, 255, "default")

    image, layer = build_image(gimp2, pixels)
    image.fake_select_rectangle(0, 0, 12, 60)  # touches the layer for 3 px only
    with pytest.raises(gimp2.gimp.error, match="at least 16x16"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert [item.name for item in image.layers] == ["Top", "Painting", "Background"]


@pytest.mark.slow
def test_16bit_and_grey_layers(gimp2, engine):
    deep = painting(size=48).astype(np.int64) * 257
    deep = (deep + np.random.default_rng(2).integers(-128, 129, deep.shape)).clip(0, 65535)
    deep = deep.astype(np.uint16)
    image, layer = build_image(gimp2, deep)
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    check_new_layer(gimp2, image, layer, before, deep)
    result = np.frombuffer(image.layers[1].fake_data, dtype=">u2")
    assert (result % 257 != 0).mean() > 0.5, "the result lost its 16-bit precision"

    gimp2.gimp.fake_progress[:] = []
    grey = painting(size=48, box=(0.7, 0.4)).mean(axis=2, keepdims=True).round().astype(np.uint8)
    image, layer = build_image(gimp2, grey)
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    check_new_layer(gimp2, image, layer, before, grey)


@pytest.mark.slow
def test_replace_in_place_keeps_name_and_position(gimp2, engine):
    pixels = painting(size=40, box=(0.1, 0.8))
    image, layer = build_image(gimp2, pixels)
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *protect_args(new_layer=False))
    assert [item.name for item in image.layers] == ["Top", "Painting", "Background"]
    replaced = image.layers[1]
    assert replaced.opacity == layer.opacity and replaced.visible
    assert replaced is not layer and replaced.offsets == layer.offsets
    assert image.fake_undo_groups == 1 and image.fake_undo_depth == 0
    check_within_budget(pixels, from_bytes(replaced.fake_data, pixels), False, 255, "default")


def stale_engine(home: Path) -> None:
    """A discovery file naming a port nobody listens on: the engine has stopped."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    (home / "state").mkdir(parents=True, exist_ok=True)
    (home / "state" / "engine.json").write_text(json.dumps(
        {"url": f"http://127.0.0.1:{port}", "token": "stale", "pid": 999999}))


def test_engine_down_interactive_shows_message_not_traceback(gimp2, fixative_home):
    stale_engine(fixative_home)
    gimp2.gimpfu.fake_dialog_values["quality"] = 0
    image, layer = build_image(gimp2, painting(size=32))
    before = layer.fake_data
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, run_mode=gimp2.enums.RUN_INTERACTIVE)
    assert gimp2.gimpfu.fake_traceback_dialogs == []
    [message] = gimp2.gimp.fake_messages
    assert message.startswith("Fixative: ") and "engine" in message and "not changed" in message
    assert [item.name for item in image.layers] == ["Top", "Painting", "Background"]
    assert layer.fake_data == before and image.fake_undo_depth == 0
    assert list(gimp2.temp_root.iterdir()) == []


def test_engine_down_batch_call_fails_with_the_message(gimp2, fixative_home):
    stale_engine(fixative_home)
    image, layer = build_image(gimp2, painting(size=32))
    with pytest.raises(gimp2.gimp.error, match="engine"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert len(gimp2.gimp.fake_messages) == 1
    assert [item.name for item in image.layers] == ["Top", "Painting", "Background"]


def test_indexed_image_refused_before_contacting_engine(gimp2, fixative_home):
    e = gimp2.enums
    image = gimp2.gimp.Image(16, 16, e.INDEXED)
    layer = gimp2.gimp.Layer(image, "Painting", 16, 16, e.INDEXED_IMAGE)
    gimp2.gimp.pdb.gimp_image_insert_layer(image, layer, None, 0)
    with pytest.raises(gimp2.gimp.error, match="Indexed-colour images cannot be protected"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert [kind for kind, *_rest in image.fake_log if kind == "file-png-save"] == []
    assert image.layers == [layer]


def test_a_new_schema_field_becomes_a_parameter(monkeypatch, tmp_path):
    """A field added to the engine's cached schema shows up in the dialog and reaches the job."""
    home = tmp_path / "home"
    (home / "state").mkdir(parents=True)
    schema = json.loads((COMMON / "fixative_options_fallback.json").read_text())
    schema["fields"].append({"name": "dummy_level", "kind": "choice", "label": "Dummy level",
                             "help": "test only", "default": "b", "dialog": True,
                             "choices": [{"value": "a", "label": "A", "help": ""},
                                         {"value": "b", "label": "B", "help": ""}]})
    schema["fields"].append({"name": "dummy_count", "kind": "integer", "label": "Dummy count",
                             "help": "test only", "default": 3, "minimum": 1, "maximum": 9,
                             "dialog": True})
    schema["fields"].append({"name": "hidden", "kind": "text", "label": "Hidden", "help": "",
                             "default": "", "dialog": False})
    (home / "state" / "options-schema.json").write_text(json.dumps(schema))
    monkeypatch.setenv("FIXATIVE_HOME", str(home))
    try:
        loaded = load_plugin()
        registered = loaded.gimpfu._registered_plugins_["python-fu-fixative-protect"][8]
        assert [entry[1] for entry in registered] == (
            PARAM_NAMES[:-2] + ["dummy-level", "dummy-count", "keep-original-visible",
                                "visible-picture"])
        assert registered[-4][0] == loaded.gimpfu.PF_OPTION and registered[-4][3:] == (1, ["A", "B"])
        assert registered[-3][0] == loaded.gimpfu.PF_INT and registered[-3][3] == 3
        exported = loaded.gimpfu._registered_plugins_["python-fu-fixative-export"][8]
        assert [entry[1] for entry in exported][-3:] == ["dummy-level", "dummy-count",
                                                          "credentials"]
        options = loaded.plugin.build_options(0, 1, 0, 0, "auto", "", "", 0, 7)
        assert options["dummy_level"] == "a" and options["dummy_count"] == 7
        with pytest.raises(loaded.plugin.PluginError, match="Dummy count must be between 1 and 9"):
            loaded.plugin.build_options(0, 1, 0, 0, "auto", "", "", 0, 12)
    finally:
        for name in FAKE_MODULES:
            sys.modules.pop(name, None)
        if str(FAKE) in sys.path:
            sys.path.remove(str(FAKE))


def test_wrong_argument_count_is_a_calling_error(gimp2):
    image, layer = build_image(gimp2, painting(size=16))
    with pytest.raises(TypeError, match="takes 12 arguments"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, 0, 1)


def test_vermin_python27_compatible():
    vermin = shutil.which("vermin")
    if vermin is None:
        pytest.skip("vermin is not installed (pip install vermin)")
    files = [str(PLUGIN)] + [str(COMMON / name) for name in (
        "fixative_client.py", "fixative_png.py", "fixative_options.py", "fixative_plugin.py")]
    done = subprocess.run([vermin, "--target=2.7-", "--no-tips", "--violations", *files],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def find_python27() -> str | None:
    candidates = [os.environ.get("FIXATIVE_PYTHON27", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/2.7*/bin/python2.7")))
    candidates += [shutil.which("python2.7") or ""]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[0])"],
                                  capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == "2":
            return candidate
    return None


def run_plugin_process(python: str, engine, tmp_path: Path, pixels: np.ndarray, arguments: list,
                       *export_name: str) -> tuple[Path, dict]:
    """The plug-in in its own ``python`` process on an RGBA PNG of ``pixels``, as GIMP runs it
    (fake/run_plugin.py; with a file name: Export Protected); returns (out folder, verdict)."""
    sys.path.insert(0, str(COMMON))
    try:
        import fixative_png
    finally:
        sys.path.remove(str(COMMON))
    height, width = pixels.shape[:2]
    source = tmp_path / "input.png"
    source.write_bytes(fixative_png.encode_png(width, height, 4, 8, pixels.tobytes()))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "FIXATIVE_HOME": str(engine.home), "TMPDIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([python, str(FAKE / "run_plugin.py"), str(PLUGIN), str(source), str(out),
                           json.dumps(arguments), *export_name],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, json.loads((out / "verdict.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("interpreter", ["python2.7", "python3"])
def test_plugin_process_end_to_end(interpreter, engine, tmp_path):
    """The plug-in in its own process, as GIMP runs it; under Python 2.7 when available."""
    python = find_python27() if interpreter == "python2.7" else sys.executable
    if python is None:
        pytest.skip("no Python 2.7 interpreter (set FIXATIVE_PYTHON27)")
    pixels = with_alpha(painting(size=(40, 32), box=(0.5, 0.5)))
    out, verdict = run_plugin_process(python, engine, tmp_path, pixels, FAST_ARGS)
    assert verdict["python"][0] == (2 if interpreter == "python2.7" else 3)
    assert verdict["error"] is None and verdict["messages"] == [], verdict
    assert [layer["name"] for layer in verdict["layers"]] == [
        "Top", "Painting (protected)", "Painting (original)", "Background"]
    assert verdict["layers"][1]["offsets"] == verdict["layers"][2]["offsets"] == [7, 5]
    assert verdict["undo_groups"] == 1 and verdict["undo_depth"] == 0
    assert (out / "source-after").read_bytes() == (out / "before").read_bytes()
    result = np.frombuffer((out / "result").read_bytes(), dtype=np.uint8).reshape(pixels.shape)
    check_within_budget(pixels, result, True, 255, "default")


class FakeGtk(types.ModuleType):
    """PyGTK's event loop as the plug-in uses it: counts the events it runs; after ``cancel_after``
    runs (the job is going by then) it does what GIMP's Cancel does: ask the plug-in to stop."""

    def __init__(self, plugin, cancel_after: int | None):
        super().__init__("gtk")
        self.plugin, self.cancel_after, self.iterations, self.polls = plugin, cancel_after, 0, 0

    def events_pending(self) -> bool:
        self.polls += 1
        return self.polls % 2 == 1  # one event waits each time the plug-in looks, then none

    def main_iteration(self, block: bool = True) -> bool:
        assert block is False, "a blocking main_iteration would hang the wait loop"
        self.iterations += 1
        if self.cancel_after is not None and self.iterations >= self.cancel_after:
            self.plugin.request_cancel()
        return False


@pytest.mark.slow
def test_gtk_events_run_while_waiting_and_cancel_stops_the_job(gimp2, engine, monkeypatch):
    pixels = painting(size=(64, 64), box=(0.3, 0.6))
    image, layer = build_image(gimp2, pixels)
    gtk = FakeGtk(gimp2.plugin, cancel_after=None)
    monkeypatch.setitem(sys.modules, "gtk", gtk)
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert gtk.iterations > 5, "GTK events were not run while the job ran"

    image, layer = build_image(gimp2, pixels)
    before = layer.fake_data
    gtk = FakeGtk(gimp2.plugin, cancel_after=3)  # a few events into the job
    monkeypatch.setitem(sys.modules, "gtk", gtk)
    with pytest.raises(gimp2.gimp.error, match="cancelled"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS)
    assert [item.name for item in image.layers] == ["Top", "Painting", "Background"]
    assert layer.fake_data == before and image.fake_undo_depth == 0


# -- the fake's new PDB procedures: faithful where the plug-in can tell -----------------------------

def test_fake_file_savers_have_gimp_2_10_signatures(gimp2, tmp_path):
    pdb, e = gimp2.gimp.pdb, gimp2.enums
    assert (pdb.file_png_save.nparams, pdb.file_jpeg_save.nparams,
            pdb.file_webp_save.nparams) == (12, 14, 18)
    assert [param[1] for param in pdb.file_webp_save.params][11:13] == ["minimize-size",
                                                                        "kf-distance"]
    image, layer = build_image(gimp2, painting(size=24))
    target = str(tmp_path / "x.jpg")
    with pytest.raises(TypeError, match="wrong number of parameters"):
        pdb.file_jpeg_save(image, layer, target, target, 0.9, 0.0, 1, 1, "", 2, 1, 0)
    with pytest.raises(TypeError, match="wrong type"):  # quality is a FLOAT, comment a STRING
        pdb.file_jpeg_save(image, layer, target, target, 0.9, 0.0, 1, 1, None, 2, 1, 0, 0)
    pdb.file_jpeg_save(e.RUN_NONINTERACTIVE, image, layer, target, target, 0.9, 0.0, 1, 1, "",
                       2, 1, 0, 0)  # the run mode may also be given
    assert Path(target).read_bytes()[:3] == b"\xff\xd8\xff"


def test_fake_composites_groups_and_the_visible_picture(gimp2):
    """The projection the plug-in reads: an opaque layer on top is what you see; a group's pixels
    are its children's; merging a group keeps its look and properties."""
    g, e = gimp2, gimp2.enums
    pdb = g.gimp.pdb
    pixels = with_alpha(painting(size=(30, 20)))
    image, layer = build_image(g, pixels)
    layer.opacity = 100.0
    group = g.gimp.GroupLayer(image, "Group")
    pdb.gimp_image_insert_layer(image, group, None, 1)
    pdb.gimp_image_reorder_item(image, layer, group, 0)
    assert (group.width, group.height, group.offsets) == (30, 20, (9, 4))
    assert group.fake_data == layer.fake_data  # one child at full opacity: the same pixels
    group.opacity = 50.0
    visible = pdb.gimp_layer_new_from_visible(image, image, "seen")
    seen = from_bytes(visible.fake_data, np.zeros((36, 54, 4), np.uint8))
    expected = pixels[..., :3] * (pixels[..., 3:] / 255.0 * 0.5)  # over the black background
    np.testing.assert_allclose(seen[4:24, 9:39, :3], expected, atol=1)
    assert (seen[..., 3] == 255).all()
    merged = pdb.gimp_image_merge_layer_group(image, group)
    assert image.layers[1] is merged and merged.name == "Group" and merged.opacity == 50.0
    assert merged.fake_data == layer.fake_data
    again = pdb.gimp_layer_new_from_visible(image, image, "seen again")
    assert again.fake_data == visible.fake_data
    merged.mode = e.MULTIPLY_MODE
    with pytest.raises(g.gimp.error, match="not modelled"):
        pdb.gimp_image_flatten(image)


# -- layer groups and the visible picture ------------------------------------------------------------

def build_group_image(g, pixels: np.ndarray):
    """build_image's document with the painting inside a group "Group" (opacity 70, a mask from
    a selection) together with a small opaque "Patch" above it; returns (image, group)."""
    e, pdb = g.enums, g.gimp.pdb
    image, layer = build_image(g, pixels)
    layer.opacity = 100.0
    group = g.gimp.GroupLayer(image, "Group", 70.0)
    pdb.gimp_image_insert_layer(image, group, None, 1)
    pdb.gimp_image_reorder_item(image, layer, group, 0)
    patch = g.gimp.Layer(image, "Patch", 12, 10, e.RGBA_IMAGE)
    patch.fake_set_data(with_alpha(painting(size=(12, 10), box=(0.9, 0.9))).tobytes())
    pdb.gimp_image_insert_layer(image, patch, group, 0)
    patch.set_offsets(15, 8)
    image.fake_select_rectangle(0, 0, 30, 40)
    pdb.gimp_layer_add_mask(group, pdb.gimp_layer_create_mask(group, e.ADD_SELECTION_MASK))
    image.fake_selection = None
    image.fake_log[:] = []
    return image, group


@pytest.mark.slow
def test_layer_group_is_protected_as_one_merged_copy(gimp2, engine):
    """As in GIMP 3: "Group (protected)", one layer with the group's look and properties, takes
    the group's place; the group stays below, hidden, as "Group (original)"; one undo step."""
    pixels = with_alpha(painting(size=(48, 40), box=(0.4, 0.6)))
    image, group = build_group_image(gimp2, pixels)
    children_before = [(child.name, child.fake_data) for child in group.layers]
    look = np.frombuffer(group.fake_data, np.uint8).reshape(group.height, group.width, 4)
    box = (group.width, group.height, group.offsets)
    gimp2.gimp.pdb.python_fu_fixative_protect(image, group, *FAST_ARGS)
    assert [item.name for item in image.layers] == ["Top", "Group (protected)",
                                                    "Group (original)", "Background"]
    result = image.layers[1]
    assert image.layers[2] is group and not group.visible and result.visible
    assert [(child.name, child.fake_data) for child in group.layers] == children_before
    assert (result.width, result.height, result.offsets) == box
    assert result.opacity == 70.0 and result.mode == group.mode
    assert result.mask.fake_data == group.mask.fake_data
    assert not gimp2.gimp.pdb.gimp_item_is_group(result)
    protected = np.frombuffer(result.fake_data, np.uint8).reshape(look.shape)
    check_within_budget(look, protected, True, 255, "default")
    assert image.fake_undo_groups == 1 and image.fake_undo_depth == 0
    changes = [entry for entry in image.fake_log if entry[0] in ("insert-layer", "remove-layer",
                                                                  "merge-layer-group")]
    assert changes and all(entry[-1] == 1 for entry in changes), image.fake_log
    assert gimp2.gimp.fake_messages == [] and list(gimp2.temp_root.iterdir()) == []


def test_layer_group_needs_gimp_2_10_14(gimp2, fixative_home, monkeypatch):
    """Before 2.10.14 GIMP had no gimp-image-merge-layer-group: refused before any work."""
    image, group = build_group_image(gimp2, with_alpha(painting(size=(40, 32))))
    monkeypatch.delattr(type(gimp2.gimp.pdb), "gimp_image_merge_layer_group")
    with pytest.raises(gimp2.gimp.error, match="GIMP 2.10.14 or newer"):
        gimp2.gimp.pdb.python_fu_fixative_protect(image, group, *FAST_ARGS)
    assert [item.name for item in image.layers] == ["Top", "Group", "Background"]
    assert [kind for kind, *_rest in image.fake_log if kind == "file-png-save"] == []


@pytest.mark.slow
def test_visible_picture_with_a_selection_becomes_one_layer_on_top(gimp2, engine):
    """Everything shown (the painting at 80 % over the background) as one new layer on top;
    with a selection only its box is protected, the rest is the picture bit for bit."""
    pixels = with_alpha(painting(size=(56, 40), box=(0.7, 0.3)))
    image, layer = build_image(gimp2, pixels)
    pdb = gimp2.gimp.pdb
    shown = np.frombuffer(pdb.gimp_layer_new_from_visible(image, image, "before").fake_data,
                          np.uint8).reshape(image.height, image.width, 4)
    stack_before = [(item.name, item.fake_data, item.visible) for item in image.layers]
    image.fake_select_rectangle(14, 6, 40, 34)
    pdb.python_fu_fixative_protect(image, layer, *protect_args(visible=True))
    assert [item.name for item in image.layers] == ["Visible (protected)", "Top", "Painting",
                                                    "Background"]
    assert [(item.name, item.fake_data, item.visible)
            for item in image.layers[1:]] == stack_before
    result = image.layers[0]
    assert (result.width, result.height, result.offsets) == (image.width, image.height, (0, 0))
    protected = np.frombuffer(result.fake_data, np.uint8).reshape(shown.shape)
    inside = np.zeros(shown.shape[:2], bool)
    inside[6:40, 14:54] = True
    np.testing.assert_array_equal(protected[~inside], shown[~inside])
    check_within_budget(shown[inside][None], protected[inside][None], True, 255, "default")
    assert image.fake_undo_groups == 1 and image.fake_undo_depth == 0
    assert all(item.fake_deleted for item in gimp2.gimp.fake_new_images)
    assert gimp2.gimp.fake_messages == [] and list(gimp2.temp_root.iterdir()) == []


# -- Export Protected ---------------------------------------------------------------------------------

def export_image(g, tmp_path: Path):
    """build_image's document, saved (as far as GIMP knows) as tmp_path/art.xcf."""
    image, layer = build_image(g, with_alpha(painting(size=(48, 40), box=(0.2, 0.4))))
    image.filename = str(tmp_path / "art.xcf")
    return image, layer


def shown_picture(g, image, flatten: bool) -> np.ndarray:
    """What the image shows (flattened onto white for JPEG), through the fake's own compositing."""
    scratch = g.gimp.Image(image.width, image.height, image.base_type)
    layer = g.gimp.pdb.gimp_layer_new_from_visible(image, scratch, "shown")
    g.gimp.pdb.gimp_image_insert_layer(scratch, layer, None, 0)
    if flatten:
        layer = g.gimp.pdb.gimp_image_flatten(scratch)
    return np.frombuffer(layer.fake_data, np.uint8).reshape(image.height, image.width, -1)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    error = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0 ** 2 / max(error, 1e-12)))


@pytest.mark.slow
@pytest.mark.parametrize("file_name,fmt,signed", [
    ("", "PNG", True), ("posted.jpg", "JPEG", True), ("posted.webp", "WEBP", True),
    ("plain.webp", "WEBP", False)])
def test_export_protected_writes_the_file_and_leaves_the_image(gimp2, engine, tmp_path,
                                                               monkeypatch, file_name, fmt,
                                                               signed):
    """The visible picture, protected, in a valid PNG/JPEG/WebP with the opt-out XMP and (asked)
    C2PA credentials c2pa.Reader validates; the open image is exactly as before."""
    import io

    from PIL import Image

    if file_name == "plain.webp":  # also: a GIMP 2.10 whose file-webp-save has 16 parameters
        monkeypatch.setattr(gimp2.gimp, "fake_webp_save_params",
                            gimp2.gimp.WEBP_SAVE_PARAMS_EARLY_2_10)
    image, layer = export_image(gimp2, tmp_path)
    shown = shown_picture(gimp2, image, flatten=fmt == "JPEG")
    stack_before = [(item.name, item.fake_data, item.visible, item.offsets)
                    for item in image.layers]
    gimp2.gimp.pdb.python_fu_fixative_export(image, layer, "", file_name, *FAST_OPTIONS, signed)
    path = tmp_path / (file_name or "art.protected.png")
    data = path.read_bytes()
    with Image.open(io.BytesIO(data)) as exported:
        assert exported.format == fmt and exported.size == (image.width, image.height)
        pixels = np.asarray(exported.convert("RGBA" if fmt == "PNG" else "RGB"))
    check_exported_optout(data, "image/" + fmt.lower(), signed)
    if fmt == "PNG":  # lossless: the cloak within its budget of what the artist sees
        check_within_budget(shown, pixels, True, 255, "default")
    else:  # GIMP's lossy encoder on top of the cloak: still the same picture
        assert psnr(shown[..., :3], pixels) > 30
    assert [(item.name, item.fake_data, item.visible, item.offsets)
            for item in image.layers] == stack_before
    assert image.fake_undo_groups == 0 and image.fake_undo_depth == 0
    assert all(item.fake_deleted for item in gimp2.gimp.fake_new_images)
    assert gimp2.gimp.fake_messages == [] and list(gimp2.temp_root.iterdir()) == []
    assert sorted(item.name for item in tmp_path.iterdir()) == sorted(["temp", path.name])


@pytest.mark.slow
def test_export_keeps_the_file_when_signing_fails(gimp2, engine, tmp_path, monkeypatch):
    """The protection is not thrown away: the file is written with its XMP opt-out and the artist
    is told that it carries no credentials."""
    client = gimp2.plugin.fixative_client

    def refuse(_self, _data):
        raise client.JobFailed("Signing failed: no identity.", code="credentials_error")

    monkeypatch.setattr(client.FixativeClient, "add_credentials", refuse)
    image, layer = export_image(gimp2, tmp_path)
    gimp2.gimp.pdb.python_fu_fixative_export(image, layer, str(tmp_path), "out.png",
                                             *FAST_OPTIONS, True)
    check_exported_optout((tmp_path / "out.png").read_bytes(), "image/png", signed=False)
    [note] = gimp2.gimp.fake_messages
    assert "out.png was saved without signed credentials" in note and "no identity" in note


def test_export_file_name_rules(gimp2, tmp_path):
    """Empty name: NAME.protected.png beside the image; never the image's own file; a missing
    folder or another format is refused before any work."""
    plugin = gimp2.plugin
    image, _layer = export_image(gimp2, tmp_path)
    assert plugin.export_path(image, "", "") == str(tmp_path / "art.protected.png")
    assert plugin.export_path(image, str(tmp_path / "x"), str(tmp_path / "a.webp")) == str(
        tmp_path / "a.webp")
    image.filename = str(tmp_path / "art.png")  # an imported PNG: its own file is off limits
    with pytest.raises(plugin.PluginError, match="overwrite the image's own file"):
        plugin.export_path(image, "", "art.png")
    with pytest.raises(plugin.PluginError, match="does not exist"):
        plugin.export_path(image, str(tmp_path / "missing"), "a.png")
    with pytest.raises(plugin.PluginError, match=".png, .jpg or .webp"):
        plugin.export_path(image, "", "a.tif")
    image.filename = None
    assert plugin.export_path(image, str(tmp_path), "") == str(tmp_path / "Untitled.protected.png")


def test_export_with_engine_down_writes_nothing(gimp2, fixative_home, tmp_path):
    stale_engine(fixative_home)
    image, layer = export_image(gimp2, tmp_path)
    with pytest.raises(gimp2.gimp.error, match="engine"):
        gimp2.gimp.pdb.python_fu_fixative_export(image, layer, "", "", *FAST_OPTIONS, True)
    assert not (tmp_path / "art.protected.png").exists()
    assert all(item.fake_deleted for item in gimp2.gimp.fake_new_images)
    assert list(gimp2.temp_root.iterdir()) == []


@pytest.mark.slow
def test_export_in_its_own_python27_process(engine, tmp_path):
    """Export Protected as GIMP 2.10 runs it, under Python 2.7: a signed PNG, image unchanged."""
    python = find_python27()
    if python is None:
        pytest.skip("no Python 2.7 interpreter (set FIXATIVE_PYTHON27)")
    pixels = with_alpha(painting(size=(40, 32), box=(0.6, 0.5)))
    out, verdict = run_plugin_process(python, engine, tmp_path, pixels, FAST_OPTIONS + [True],
                                      "posted.png")
    assert verdict["python"][0] == 2 and verdict["error"] is None, verdict
    assert verdict["messages"] == [] and verdict["new_images_left"] == 0, verdict
    assert [layer["name"] for layer in verdict["layers"]] == ["Top", "Painting", "Background"]
    assert verdict["undo_groups"] == 0
    assert (out / "source-after").read_bytes() == (out / "before").read_bytes()
    check_exported_optout((out / "posted.png").read_bytes(), "image/png", signed=True)


def test_webp_and_jpeg_metadata_helpers_give_the_same_bytes_under_python27(tmp_path):
    """add_webp_xmp/add_jpeg_xmp run in GIMP 2.10's Python 2.7: byte for byte what Python 3 gives."""
    import io

    from PIL import Image

    python = find_python27()
    if python is None:
        pytest.skip("no Python 2.7 interpreter (set FIXATIVE_PYTHON27)")
    sys.path.insert(0, str(COMMON))
    try:
        import fixative_plugin
    finally:
        sys.path.remove(str(COMMON))
    xmp = b"<x:xmpmeta>DMI-PROHIBITED-AIMLTRAINING</x:xmpmeta>"
    inputs = {}
    for name, fmt, options in (("lossy.webp", "WEBP", {"quality": 80}),
                               ("lossless.webp", "WEBP", {"lossless": True}),
                               ("photo.jpg", "JPEG", {"quality": 90})):
        buffer = io.BytesIO()
        picture = with_alpha(painting(size=(21, 13))) if name == "lossless.webp" else painting(
            size=(21, 13))
        Image.fromarray(picture).save(buffer, fmt, **options)
        inputs[name] = buffer.getvalue()
        (tmp_path / name).write_bytes(inputs[name])
    (tmp_path / "packet.xmp").write_bytes(xmp)
    script = ("import sys; sys.path.insert(0, sys.argv[1]); import fixative_plugin as p\n"
              "xmp = open(sys.argv[2], 'rb').read()\n"
              "for name in ('lossy.webp', 'lossless.webp', 'photo.jpg'):\n"
              "    data = open(sys.argv[3] + '/' + name, 'rb').read()\n"
              "    out = p.add_jpeg_xmp(data, xmp) if name.endswith('.jpg') else "
              "p.add_webp_xmp(data, xmp)\n"
              "    open(sys.argv[3] + '/' + name + '.py2', 'wb').write(out)\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    done = subprocess.run([python, "-c", script, str(COMMON), str(tmp_path / "packet.xmp"),
                           str(tmp_path)], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    for name, data in inputs.items():
        expected = (fixative_plugin.add_jpeg_xmp(data, xmp) if name.endswith(".jpg")
                    else fixative_plugin.add_webp_xmp(data, xmp))
        assert (tmp_path / (name + ".py2")).read_bytes() == expected, name
