"""The shared stdlib plugin client and PNG codec (plugins/common), against a fake and a real engine."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import REPO, painting
from tests.krita.fake_engine import FakeEngine

sys.path.insert(0, str(REPO / "plugins" / "common"))

import fixative_client as fc  # noqa: E402
import fixative_png  # noqa: E402


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def engine(home):
    fake = FakeEngine(home / "state").start()
    yield fake
    fake.stop()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


# -- PNG codec ---------------------------------------------------------------------------------

def _filtered_png(array: np.ndarray, filter_type: int) -> bytes:
    """A PNG whose rows all use one filter type, written here independently of the module."""
    height, width, channels = array.shape
    bpp = channels * array.dtype.itemsize
    rows = array.astype(array.dtype.newbyteorder(">")).tobytes()
    stride = width * bpp
    raw = bytearray()
    previous = bytes(stride)
    for y in range(height):
        line = rows[y * stride:(y + 1) * stride]
        out = bytearray(stride)
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if filter_type == 1:
                predictor = a
            elif filter_type == 2:
                predictor = b
            elif filter_type == 3:
                predictor = (a + b) // 2
            else:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                predictor = a if pa <= pb and pa <= pc else b if pb <= pc else c
            out[i] = (line[i] - predictor) & 0xFF
        raw += bytes([filter_type]) + out
        previous = line
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    header = (width.to_bytes(4, "big") + height.to_bytes(4, "big")
              + bytes([array.dtype.itemsize * 8, color_type, 0, 0, 0]))

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (len(payload).to_bytes(4, "big") + kind + payload
                + (zlib.crc32(kind + payload) & 0xFFFFFFFF).to_bytes(4, "big"))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(raw)))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize("filter_type", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_decode_every_filter_type(filter_type, dtype):
    rng = np.random.default_rng(filter_type)
    array = rng.integers(0, np.iinfo(dtype).max, (9, 11, 4), dtype=dtype, endpoint=True)
    data = _filtered_png(array, filter_type)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))), array) if dtype == np.uint8 else True
    width, height, channels, bit_depth, samples = fixative_png.decode_png(data)
    assert (width, height, channels, bit_depth) == (11, 9, 4, 8 * np.dtype(dtype).itemsize)
    decoded = np.frombuffer(samples, np.dtype(dtype).newbyteorder(">")).reshape(9, 11, 4)
    assert np.array_equal(decoded, array)


@pytest.mark.parametrize("mode,channels", [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_png_round_trip_with_pillow(mode, channels):
    array = painting(size=48)
    if channels in (1, 2):
        gray = np.asarray(Image.fromarray(array).convert("L"))
        array = gray[..., None] if channels == 1 else np.dstack([gray, 255 - gray])
    elif channels == 4:
        array = np.dstack([array, np.arange(48 * 48, dtype=np.uint8).reshape(48, 48)])
    ours = fixative_png.encode_png(48, 48, channels, 8, array.tobytes())
    with Image.open(io.BytesIO(ours)) as image:
        assert image.mode == mode
        assert np.array_equal(np.asarray(image).reshape(48, 48, channels), array)
    pillow = png_bytes(array[..., 0] if channels == 1 else array)
    width, height, got_channels, bit_depth, samples = fixative_png.decode_png(pillow)
    assert (width, height, got_channels, bit_depth) == (48, 48, channels, 8)
    assert samples == array.tobytes()


def test_png_16_bit_round_trip():
    array = (painting(size=32).astype(np.uint16) * 257 + 3)
    ours = fixative_png.encode_png(32, 32, 3, 16, array.astype(">u2").tobytes())
    width, height, channels, bit_depth, samples = fixative_png.decode_png(ours)
    assert (width, height, channels, bit_depth) == (32, 32, 3, 16)
    assert np.array_equal(np.frombuffer(samples, ">u2").reshape(32, 32, 3), array)
    gray = array[..., 0]
    with Image.open(io.BytesIO(fixative_png.encode_png(32, 32, 1, 16, gray.astype(">u2").tobytes()))) as im:
        assert np.array_equal(np.asarray(im).astype(np.uint16), gray)


@pytest.mark.parametrize("data,words", [
    (b"GIF89a....", "Not a PNG"),
    (None, "palette"),
    (b"truncated", "truncated"),
    (b"crc", "checksum"),
])
def test_png_decode_errors_are_clear(data, words):
    if data is None:
        buffer = io.BytesIO()
        Image.new("P", (4, 4)).save(buffer, "PNG")
        data = buffer.getvalue()
    elif data == b"truncated":
        data = fixative_png.encode_png(8, 8, 3, 8, bytes(192))[:-30]
    elif data == b"crc":
        good = bytearray(fixative_png.encode_png(8, 8, 3, 8, bytes(192)))
        good[20] ^= 0xFF  # inside IHDR
        data = bytes(good)
    with pytest.raises(fixative_png.PngError, match=words):
        fixative_png.decode_png(data)


def test_png_encode_rejects_wrong_sizes():
    with pytest.raises(fixative_png.PngError, match="Expected 48 bytes"):
        fixative_png.encode_png(4, 4, 3, 8, bytes(47))
    with pytest.raises(fixative_png.PngError, match="1 to 4 channels"):
        fixative_png.encode_png(4, 4, 5, 8, bytes(80))


# -- folders and Python 2.7 compatibility ------------------------------------------------------

def test_folders_follow_engine_rules(monkeypatch, tmp_path):
    from fixative import paths

    monkeypatch.setenv("FIXATIVE_HOME", str(tmp_path))
    assert fc.state_dir() == str(paths.state_dir())
    assert fc.config_dir() == str(paths.config_dir())
    monkeypatch.delenv("FIXATIVE_HOME")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xs"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xc"))
    assert fc.state_dir() == str(paths.state_dir()) == str(tmp_path / "xs" / "fixative")
    assert fc.config_dir() == str(paths.config_dir())
    assert fc.discovery_file() == str(paths.discovery_file())
    assert fc.plugin_config_file() == str(paths.plugin_config_file())


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin is not installed")
def test_common_modules_run_on_python_27():
    result = subprocess.run(["vermin", "--target=2.7-", "--target=3.6-", "--no-tips", "--violations",
                             str(REPO / "plugins" / "common")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_multipart_parses_with_the_email_package():
    from email.parser import BytesParser
    from email.policy import HTTP

    binary = bytes(range(256)) * 3 + b"\r\n--not-a-boundary\r\n"
    content_type, body = fc.build_multipart([("options", '{"mode": "style", "concept": "chat é"}'),
                                             ("image", ("a.png", binary, "image/png"))])
    message = BytesParser(policy=HTTP).parsebytes(
        (f"Content-Type: {content_type}\r\n\r\n").encode() + body)
    parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
    assert parts["image"].get_payload(decode=True) == binary
    assert parts["image"].get_filename() == "a.png"
    assert json.loads(parts["options"].get_payload(decode=True).decode())["concept"] == "chat é"


# -- against the fake engine -------------------------------------------------------------------

def test_connect_finds_a_running_engine(engine):
    statuses = []
    client = fc.FixativeClient()
    info = client.connect(start=False, on_status=statuses.append)
    assert info["styles"] == ["impasto", "woodblock", "cubist"]
    assert client.url == engine.url and client.token == engine.token
    assert statuses[-1] == "engine connected"


def test_protect_bytes_round_trip_and_progress(engine):
    engine.job_seconds = 0.6
    image = np.dstack([painting(size=24), np.full((24, 24), 200, np.uint8)])
    progress = []
    client = fc.FixativeClient()
    client.connect()
    result, report = client.protect_bytes(png_bytes(image), {"quality": "fast", "models": ["taef2"]},
                                          on_progress=lambda *values: progress.append(values))
    job = next(iter(engine.jobs.values()))
    assert job.options == {"quality": "fast", "models": ["taef2"]}
    assert job.parts["image"][1] == "image/png"
    with Image.open(io.BytesIO(result)) as out:
        changed = np.asarray(out).astype(int) - image
    assert np.all(changed[..., 3] == 0)
    assert np.all((changed[..., :3] % 256) == engine.amount)
    assert report["psnr"] == 42.0
    assert len(progress) >= 2 and progress[-1][0] == 1.0
    assert [p[0] for p in progress] == sorted(p[0] for p in progress)
    assert job.polls >= 2


def test_style_image_and_anchor_are_sent_as_files(engine):
    client = fc.FixativeClient()
    client.connect()
    jpeg = io.BytesIO()
    Image.fromarray(painting(size=16)).save(jpeg, "JPEG")
    job_id = client.submit(png_bytes(painting(size=16)), {}, style_image=jpeg.getvalue(),
                           anchor=png_bytes(painting(size=16)))
    parts = engine.jobs[job_id].parts
    assert parts["style_image"][1] == "image/jpeg" and parts["style_image"][2] == jpeg.getvalue()
    assert parts["anchor"][1] == "image/png"


def test_job_failure_carries_the_engine_message(engine):
    engine.fail_with = ("missing_weights", "The taef2 weights are missing; run fixative models.")
    client = fc.FixativeClient()
    client.connect()
    with pytest.raises(fc.JobFailed) as caught:
        client.protect_bytes(png_bytes(painting(size=16)), {})
    assert caught.value.code == "missing_weights"
    assert str(caught.value) == "The taef2 weights are missing; run fixative models."


def test_submit_errors_carry_code_and_status(engine):
    client = fc.FixativeClient()
    client.connect()
    with pytest.raises(fc.JobFailed) as caught:
        client.submit(png_bytes(painting(size=16)), {"colour": "red"})
    assert caught.value.code == "bad_options" and caught.value.http_status == 422
    engine.reject_submit = (413, "too_many_pixels", "The image has too many pixels.")
    with pytest.raises(fc.JobFailed, match="too many pixels") as caught:
        client.submit(png_bytes(painting(size=16)), {})
    assert caught.value.http_status == 413


def test_cancel_deletes_the_job_quickly(engine):
    engine.job_seconds = 30
    client = fc.FixativeClient()
    client.connect()
    asked = threading.Event()
    threading.Timer(0.3, asked.set).start()
    started = time.monotonic()
    with pytest.raises(fc.Cancelled):
        client.protect_bytes(png_bytes(painting(size=16)), {}, should_cancel=asked.is_set)
    assert time.monotonic() - started < 2.0
    assert engine.deleted == list(engine.jobs)


def test_wrong_token_is_unreachable_not_a_crash(engine):
    client = fc.FixativeClient()
    client.connect()
    client.token = "wrong"
    with pytest.raises(fc.EngineUnreachable, match="refused our key"):
        client.info()


def test_not_installed_when_no_plugin_config(home):
    with pytest.raises(fc.EngineNotInstalled, match="installer"):
        fc.FixativeClient(start_timeout=2).connect()


def test_not_installed_when_engine_program_is_missing(home):
    (home / "config").mkdir(parents=True)
    (home / "config" / "plugin.json").write_text(json.dumps(
        {"engine_command": [str(home / "venv" / "bin" / "fixative"), "serve"]}))
    with pytest.raises(fc.EngineNotInstalled, match="is missing"):
        fc.FixativeClient(start_timeout=2).connect()


def test_unreachable_when_not_running_and_start_false(home):
    with pytest.raises(fc.EngineUnreachable, match="not running"):
        fc.FixativeClient().connect(start=False)


def test_stale_discovery_file_is_ignored(home):
    (home / "state").mkdir(parents=True)
    (home / "state" / "engine.json").write_text(json.dumps(
        {"url": "http://127.0.0.1:9", "token": "x", "pid": 1}))
    with pytest.raises(fc.EngineUnreachable):
        fc.FixativeClient().connect(start=False)


def _write_plugin_config(home: Path, *extra: str) -> None:
    (home / "config").mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "tests.krita.fake_engine", "--state", str(home / "state"), *extra]
    (home / "config" / "plugin.json").write_text(json.dumps({"engine_command": command}))


def test_start_runs_the_engine_command_detached(home, monkeypatch):
    monkeypatch.chdir(REPO)  # `-m tests.krita.fake_engine` needs the repository on the path
    _write_plugin_config(home, "--delay", "0.5")
    statuses = []
    client = fc.FixativeClient(start_timeout=20)
    try:
        info = client.connect(on_status=statuses.append)
        assert "styles" in info
        assert "starting engine…" in statuses
        assert os.getsid(client.started_process.pid) == client.started_process.pid  # own session
        # a second client finds the same engine without starting another
        second = fc.FixativeClient()
        second.connect()
        assert second.url == client.url and second.started_process is None
    finally:
        if client.started_process is not None:
            client.started_process.kill()
            client.started_process.wait()


def test_start_that_dies_reports_the_log(home, monkeypatch):
    (home / "config").mkdir(parents=True)
    command = [sys.executable, "-c", "import sys; print('boom: no torch'); sys.exit(3)"]
    (home / "config" / "plugin.json").write_text(json.dumps({"engine_command": command}))
    with pytest.raises(fc.EngineUnreachable, match="exit code 3") as caught:
        fc.FixativeClient(start_timeout=20).connect()
    log = Path(str(caught.value).split("see ")[-1].rstrip("."))
    assert "boom: no torch" in log.read_text()


def test_start_timeout_is_clear(home, monkeypatch):
    (home / "config").mkdir(parents=True)
    command = [sys.executable, "-c", "import time; time.sleep(30)"]
    (home / "config" / "plugin.json").write_text(json.dumps({"engine_command": command}))
    client = fc.FixativeClient(start_timeout=1.0)
    try:
        with pytest.raises(fc.EngineUnreachable, match="did not start within 1 s"):
            client.connect()
    finally:
        client.started_process.kill()
        client.started_process.wait()


# -- against the real engine -------------------------------------------------------------------

@pytest.mark.slow
def test_real_engine_protects_a_small_painting(running_engine):
    image = painting(size=64)
    client = fc.FixativeClient()
    client.connect(start=False)
    info = client.info()
    assert "taef2" in [model["name"] for model in info["models"]]
    progress = []
    result, report = client.protect_bytes(png_bytes(image), {"models": ["taef2"], "quality": "fast"},
                                          on_progress=lambda *values: progress.append(values))
    width, height, channels, bit_depth, samples = fixative_png.decode_png(result)
    assert (width, height, channels, bit_depth) == (64, 64, 3, 8)
    changed = np.abs(np.frombuffer(samples, np.uint8).reshape(64, 64, 3).astype(int) - image)
    assert changed.max() > 0
    assert changed.max() <= 32  # an imperceptible budget, not a new picture
    assert report and progress


# -- the shared plug-in layer: option schema ----------------------------------------------------

import fixative_options as fo  # noqa: E402
import fixative_plugin as fp  # noqa: E402

FALLBACK = REPO / "plugins" / "common" / fo.FALLBACK_FILE


def with_dummy(schema: dict) -> dict:
    schema = json.loads(json.dumps(schema))
    schema["fields"].append({"name": "dummy", "kind": "integer", "label": "Dummy", "help": "",
                             "default": 2, "minimum": 1, "maximum": 5, "dialog": True})
    return schema


def test_fallback_schema_equals_what_the_engine_publishes():
    """The shipped copy is `fixative options-schema` verbatim; regenerate it with
    `fixative options-schema > plugins/common/fixative_options_fallback.json`."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "engine")}
    done = subprocess.run([sys.executable, "-m", "fixative.cli", "options-schema"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(FALLBACK.read_text()) == json.loads(done.stdout)


def test_fallback_schema_values_are_accepted_by_the_engine():
    from fixative.options import ProtectOptions

    schema = fo.fallback_schema()
    assert fo.is_schema(schema)
    for field in schema["fields"]:
        assert field["name"] in ProtectOptions.model_fields, field["name"]
        for value in fo.choice_values(field) if field["kind"] == "choice" else []:
            ProtectOptions(**{field["name"]: value})
    assert [field["name"] for field in fo.dialog_fields(schema)] == [
        "mode", "intensity", "quality", "robustness", "target_style", "concept", "target_concept"]


def test_schema_comes_from_the_engine_then_the_cache_then_the_fallback(home):
    fallback = fo.fallback_schema()
    assert fo.load_schema() == fallback  # nothing running, nothing cached
    state = home / "state"
    state.mkdir(parents=True)
    cached = with_dummy(fallback)
    (state / fo.CACHE_FILE).write_text(json.dumps(cached))
    assert fo.load_schema() == cached
    engine = FakeEngine(state).start()
    try:
        assert fo.load_schema() == cached  # an engine without options_schema (older engine)
        served = with_dummy(cached)
        served["fields"][-1]["name"] = "served_dummy"
        engine.options_schema = served
        assert fo.load_schema() == served
        assert fo.load_schema(ask_engine=False) == cached
        assert fo.load_schema(info={"options_schema": fallback}) == fallback
    finally:
        engine.stop()
    for broken in ("{not json", json.dumps({**cached, "version": 99}),
                   json.dumps({"version": 1, "fields": [{"name": "x", "kind": "colour"}]})):
        (state / fo.CACHE_FILE).write_text(broken)
        assert fo.load_schema() == fallback, broken


def test_build_options_checks_values_against_the_schema():
    from fixative.options import ProtectOptions

    schema = with_dummy(fo.fallback_schema())
    values = {"mode": "style", "intensity": "high", "quality": "fast", "robustness": "off",
              "target_style": "  ", "concept": "cat", "target_concept": "", "dummy": 4}
    options = fo.build_options(schema, values)
    # empty text falls back to the field's default or is left out; concept only applies to poison
    assert options == {"mode": "style", "intensity": "high", "quality": "fast",
                       "robustness": "off", "target_style": "auto", "dummy": 4}
    options = fo.build_options(schema, {**values, "mode": "both", "target_concept": " dog "})
    assert options["concept"] == "cat" and options["target_concept"] == "dog"
    ProtectOptions(**{key: value for key, value in options.items() if key != "dummy"})
    assert fo.build_options(schema, {"models": "taef2, sd15,", "seed": "7"}) == {
        "models": ["taef2", "sd15"], "seed": 7}
    with pytest.raises(fo.OptionsError, match="Quality must be one of fast, default, max, not 'slow'"):
        fo.build_options(schema, {**values, "quality": "slow"})
    with pytest.raises(fo.OptionsError, match="Dummy must be between 1 and 5, not 9"):
        fo.build_options(schema, {**values, "dummy": 9})
    with pytest.raises(fo.OptionsError, match="whole number"):
        fo.build_options(schema, {**values, "dummy": "many"})
    assert isinstance(fo.OptionsError("x"), fc.PluginError)
    assert isinstance(fc.PluginError("x"), fc.FixativeClientError)


def test_choice_indices_map_back_to_values():
    field = fo.field_named(fo.fallback_schema(), "robustness")
    assert [fo.choice_from_index(field, index) for index in range(3)] == ["off", "standard", "strong"]
    assert fo.index_of_choice(field, "standard") == 1 and fo.index_of_choice(field, "nope") == 0
    with pytest.raises(fo.OptionsError, match=r"Robustness must be one of off, standard, strong "
                                              r"\(an index from 0 to 2\), not 3"):
        fo.choice_from_index(field, 3)


# -- the shared plug-in layer: round trip and words --------------------------------------------

def test_progress_text_says_steps_and_time_left_never_loss():
    assert fp.progress_text("optimising (step 16/30, loss 0.412)", 40.2) == \
        "step 16 of 30, about 40 s left"
    assert fp.progress_text("optimising (step 3/30, loss 1.2e-3)", None) == "step 3 of 30"
    assert fp.progress_text("encoding the result", 125) == "encoding the result, about 2 min 05 s left"
    assert fp.progress_text("", 0.4) == "protecting"
    assert "loss" not in fp.progress_text("refining (loss 0.2)", 3)


def test_done_text_prefers_the_reports_summary():
    summary = "To a person: no visible change. To the model: a cubist picture."
    assert fp.done_text("Paint (protected)", {"summary": summary, "psnr": 41.0}) == \
        "Added 'Paint (protected)'. " + summary
    assert fp.done_text("Paint (protected)", {"psnr": 41.04, "seconds": 12.4}) == \
        "Added 'Paint (protected)' (PSNR 41.0 dB, 12 s)."
    assert fp.done_text("Paint (protected)", None) == "Added 'Paint (protected)'."


def test_error_texts():
    assert fp.error_text(fc.PluginError("Select a layer.")) == "Fixative: Select a layer."
    assert fp.error_text(fc.EngineUnreachable("No engine.")) == \
        "Fixative: No engine. The image was not changed."
    assert fp.error_text(KeyError("x")).startswith("Fixative: unexpected error (KeyError")


def test_round_trip_size_checks():
    samples = bytes(range(48))
    png = fp.encode_layer(4, 3, 4, 8, samples)
    assert fp.decode_result(png, 4, 3, 4, 8) == samples
    fp.check_result_size(png, 4, 3)
    with pytest.raises(fc.PluginError, match="sent back a 4x3 4-channel 8-bit image for a 3x4"):
        fp.decode_result(png, 3, 4, 4, 8)
    with pytest.raises(fc.PluginError, match="sent back a 4x3 image for a 4x4 layer"):
        fp.check_result_size(png, 4, 4)
    with pytest.raises(fc.PluginError, match="cannot read"):
        fp.decode_result(b"not a png", 4, 3, 4, 8)
    with pytest.raises(fc.PluginError, match="at most 100"):
        fp.check_layer_size({"limits": {"max_pixels": 100}}, 20, 10)
    fp.check_layer_size({"limits": {"max_pixels": 200}}, 20, 10)


def test_protect_fetches_report_and_preview_in_one_call(engine):
    client = fc.FixativeClient()
    client.connect()
    image = np.dstack([painting(size=16), np.full((16, 16), 255, np.uint8)])
    outcome = client.protect(png_bytes(image), {"quality": "fast"}, fetch_preview=True)
    assert outcome.report["psnr"] == 42.0
    assert fixative_png.decode_png(outcome.preview)[:2] == (6, 2)
    assert fixative_png.decode_png(outcome.result)[:2] == (16, 16)
