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
from tests.gimp.checks import check_within_budget, engine_in

PLUGIN = REPO / "plugins" / "gimp" / "gimp2" / "fixative_protect.py"
COMMON = REPO / "plugins" / "common"
FAKE = REPO / "tests" / "fake_gimpfu"
FAKE_MODULES = ("gimp", "gimpfu", "gimpenums", "gimpcolor", "fixative_protect_gimp2")
PARAM_NAMES = ["image", "drawable", "mode", "intensity", "quality", "robustness", "target-style",
               "concept", "target-concept", "new-layer", "keep-original-visible"]
# mode=style, intensity=default, quality=fast, robustness=off, target-style, concept,
# target-concept, new-layer, keep-original-visible
FAST_ARGS = [0, 1, 0, 0, "auto", "", "", True, False]


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
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS[:-1], True)
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
    gimp2.gimp.pdb.python_fu_fixative_protect(image, layer, *FAST_ARGS[:-2], False, False)
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
            PARAM_NAMES[:-1] + ["dummy-level", "dummy-count", "keep-original-visible"])
        assert registered[-3][0] == loaded.gimpfu.PF_OPTION and registered[-3][3:] == (1, ["A", "B"])
        assert registered[-2][0] == loaded.gimpfu.PF_INT and registered[-2][3] == 3
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
    with pytest.raises(TypeError, match="takes 11 arguments"):
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


@pytest.mark.slow
@pytest.mark.parametrize("interpreter", ["python2.7", "python3"])
def test_plugin_process_end_to_end(interpreter, engine, tmp_path):
    """The plug-in in its own process, as GIMP runs it; under Python 2.7 when available."""
    python = find_python27() if interpreter == "python2.7" else sys.executable
    if python is None:
        pytest.skip("no Python 2.7 interpreter (set FIXATIVE_PYTHON27)")
    sys.path.insert(0, str(COMMON))
    try:
        import fixative_png
    finally:
        sys.path.remove(str(COMMON))
    pixels = with_alpha(painting(size=(40, 32), box=(0.5, 0.5)))
    source = tmp_path / "input.png"
    source.write_bytes(fixative_png.encode_png(40, 32, 4, 8, pixels.tobytes()))
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "FIXATIVE_HOME": str(engine.home), "TMPDIR": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    done = subprocess.run([python, str(FAKE / "run_plugin.py"), str(PLUGIN), str(source), str(out),
                           json.dumps(FAST_ARGS)], capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    verdict = json.loads((out / "verdict.json").read_text())
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
