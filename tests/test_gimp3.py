"""The GIMP 3 plug-in inside real GIMP 3.0 (Debian 13 chroot) and GIMP 3.2 (Debian sid chroot)
against a real `fixative serve`: every test runs once per version.

tests/gimp/build_chroot.sh builds the chroots (FIXATIVE_CHROOT_SUITE=trixie|sid; CI builds both
and sets FIXATIVE_REQUIRE_GIMP=1, so a missing version fails); without them these tests skip. A
host with gimp-console-3.x installed runs that GIMP directly instead. GIMP runs the cases in tests/gimp/gimp_batch.py through python-fu-eval and
writes raw pixels and the layer stack; the judging happens here. The colour-space cases (linear,
float HDR, Adobe RGB) run in the same GIMP session against a fake engine whose change is known
exactly, so what the engine received and what came back can be checked sample by sample.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, painting
from tests.gimp.checks import check_exported_optout, check_within_budget, engine_in

# Every GIMP 3 these machines run: (version, chroot built by tests/gimp/build_chroot.sh with
# FIXATIVE_CHROOT_SUITE=...). GIMP 3.0.4 from Debian 13, GIMP 3.2.x from Debian sid.
GIMP_VERSIONS = {
    "3.0": Path(os.environ.get("FIXATIVE_GIMP_CHROOT", "/var/cache/fixative/gimp3-chroot")),
    "3.2": Path(os.environ.get("FIXATIVE_GIMP32_CHROOT", "/var/cache/fixative/sid-chroot")),
}
PLUGIN_DIR = REPO / "plugins" / "gimp" / "gimp3" / "fixative_protect"
COMMON_DIR = REPO / "plugins" / "common"
GIMP_DIR = REPO / "tests" / "gimp"
GIMP_TIMEOUT_S = float(os.environ.get("FIXATIVE_GIMP_TIMEOUT", "420"))
# Comma-separated case names: the shared GIMP session runs only these (the tests of the others
# skip), to check one change quickly on a busy machine. Empty: every case, as CI runs them.
ONLY_CASES = [name for name in os.environ.get("FIXATIVE_GIMP_CASES", "").split(",") if name]

pytestmark = [pytest.mark.gimp, pytest.mark.slow]

sys.path.insert(0, str(COMMON_DIR))
import fixative_png  # noqa: E402


class GimpSetup:
    """Where GIMP runs (chroot or host) and how paths look from inside it."""

    def __init__(self, chroot: Path | None, version: str):
        self.chroot, self.version = chroot, version
        self.console = f"gimp-console-{version}"

    def inside(self, host_path: Path) -> str:
        """The path GIMP sees for a host path."""
        if self.chroot is None:
            return str(host_path)
        return "/" + str(host_path.relative_to(self.chroot))

    def home(self, work: Path) -> Path:
        """GIMP's HOME: inside each run's own folder, so parallel runs never share a profile."""
        return work / "gimp-home"

    def work_dir(self, scratch: Path) -> Path:
        if self.chroot is None:
            return scratch / "gimp-work"
        return self.chroot / "tmp" / f"fixative-test-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module", params=sorted(GIMP_VERSIONS), ids=lambda v: f"gimp{v}")
def gimp_setup(request) -> GimpSetup:
    version = request.param
    chroot = GIMP_VERSIONS[version]
    suite = "trixie" if version == "3.0" else "sid"
    if (chroot / ".fixative-gimp-ready").exists() and (chroot / "usr" / "bin"
                                                        / f"gimp-console-{version}").exists():
        return GimpSetup(chroot, version)
    if shutil.which(f"gimp-console-{version}"):
        return GimpSetup(None, version)
    reason = (f"no GIMP {version}: {chroot} has no gimp-console-{version} and none is installed; "
              f"run FIXATIVE_CHROOT_SUITE={suite} tests/gimp/build_chroot.sh (as root) first")
    if os.environ.get("FIXATIVE_REQUIRE_GIMP"):
        pytest.fail(reason + " (FIXATIVE_REQUIRE_GIMP is set)")
    pytest.skip(reason)


def install_plugin(gimp_home: Path, version: str) -> Path:
    """Install with the real installer into GIMP ``version``'s folder under ``gimp_home`` (made
    first, as GIMP's own first run would)."""
    from tests.helpers.install import run_installer

    config = gimp_home / ".config" / "GIMP" / version
    config.mkdir(parents=True, exist_ok=True)
    target = config / "plug-ins" / "fixative_protect"
    if target.exists():
        shutil.rmtree(target)
    run_installer(gimp_home, "--gimp", "--gimp-version", version)
    assert os.access(target / "fixative_protect.py", os.X_OK)
    for name in ("fixative_client.py", "fixative_png.py", "fixative_options.py",
                 "fixative_pixels.py", "fixative_plugin.py", "fixative_options_fallback.json"):
        assert (target / name).is_file(), name
    return target


def write_png(path: Path, pixels: np.ndarray) -> None:
    """8- or 16-bit PNG from (H, W, C) pixels, with the stdlib encoder the plug-ins use."""
    height, width, channels = pixels.shape
    if pixels.dtype == np.uint16:
        data, depth = pixels.astype(">u2").tobytes(), 16
    else:
        data, depth = pixels.astype(np.uint8).tobytes(), 8
    path.write_bytes(fixative_png.encode_png(width, height, channels, depth, data))


COLOUR_DUMPS = tuple(f"{kind}.{form}" for kind in ("before", "reference", "source-after", "result")
                     for form in ("native", "srgb16"))


def run_gimp(setup: GimpSetup, scratch: Path, fixative_home: Path, cases: list[dict],
             display: bool = False, fake_discovery: Path | None = None,
             fonts: bool = False) -> dict:
    """Run the cases in one GIMP session; returns the verdict with raw pixel files loaded.

    ``display``: under Xvfb, so interactive runs can build the plug-in's dialog.
    ``fonts``: load fonts (slower start), for the cases that make text layers.
    ``fake_discovery``: a fake engine's engine.json; cases with ``"engine": "fake"`` use it."""
    work = setup.work_dir(scratch)
    work.mkdir(parents=True)
    try:
        home_inside = work / "fixative-home"
        shutil.copytree(fixative_home, home_inside, dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("cache", "data"))
        if fake_discovery is not None:  # gimp_batch.use_engine picks one per case
            state = home_inside / "state"
            shutil.copy2(state / "engine.json", state / "engine-real.json")
            shutil.copy2(fake_discovery, state / "engine-fake.json")
        for case in cases:
            png_path = work / f"{case['name']}.png"
            write_png(png_path, case.pop("pixels"))
            case["png"] = setup.inside(png_path)
            if "style_pixels" in case:
                style_path = work / f"{case['name']}-style.png"
                write_png(style_path, case.pop("style_pixels"))
                case["args"]["style-image"] = setup.inside(style_path)
        spec = {"out_dir": setup.inside(work), "cases": cases}
        (work / "spec.json").write_text(json.dumps(spec))
        shutil.copy2(GIMP_DIR / "gimp_batch.py", work / "gimp_batch.py")
        install_plugin(setup.home(work), setup.version)

        code = f"exec(open({setup.inside(work / 'gimp_batch.py')!r}).read())"
        # -f: no fonts (fast start) unless a case makes a text layer.
        gimp_args = ((["xvfb-run", "-a"] if display else [])
                     + [setup.console, "-i", "-d", *([] if fonts else ["-f"]), "--no-splash",
                        "--batch-interpreter=python-fu-eval", "-b", code, "--quit"])
        env_args = [f"HOME={setup.inside(setup.home(work))}",
                    f"FIXATIVE_HOME={setup.inside(home_inside)}",
                    f"FIXATIVE_GIMP_SPEC={setup.inside(work / 'spec.json')}"]
        if display:  # the plug-in builds its dialog, then closes it at once
            env_args.append("FIXATIVE_GIMP_DIALOG_CHECK=1")
        if setup.chroot is not None:
            command = [str(GIMP_DIR / "run_in_chroot.sh"), str(setup.chroot), "env", *env_args,
                       *gimp_args]
            env = None
        else:
            command = gimp_args
            env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8",
                   **dict(arg.split("=", 1) for arg in env_args)}
        done = subprocess.run(command, capture_output=True, text=True, timeout=GIMP_TIMEOUT_S,
                              env=env)
        log = f"exit {done.returncode}\nstdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-6000:]}"
        verdict_path = work / "verdict.json"
        assert verdict_path.exists(), f"GIMP wrote no verdict\n{log}"
        verdict = json.loads(verdict_path.read_text())
        verdict["log"] = log
        assert verdict["gimp_version"].startswith(setup.version + "."), verdict["gimp_version"]
        for case in verdict["cases"]:
            case["pixels"] = {}
            for kind in ("before", "source-after", "result", "text", "text-after", "visible",
                         *COLOUR_DUMPS):
                path = work / f"{case['name']}.{kind}"
                if path.exists():
                    case["pixels"][kind] = path.read_bytes()
            exported = next((c.get("export") for c in cases if c["name"] == case["name"]), None)
            if exported and (work / exported).exists():
                case["pixels"]["export"] = (work / exported).read_bytes()
        return verdict
    finally:
        shutil.rmtree(work, ignore_errors=True)


def as_array(data: bytes, fmt: str, width: int, height: int) -> np.ndarray:
    """Raw GEGL bytes (native-endian for u16) as (H, W, C)."""
    components = fmt.split()[0]
    channels = {"Y'": 1, "Y'A": 2, "R'G'B'": 3, "R'G'B'A": 4}[components]
    dtype = np.uint16 if fmt.endswith("u16") else np.uint8
    return np.frombuffer(data, dtype=dtype).reshape(height, width, channels)


def with_alpha(rgb: np.ndarray) -> np.ndarray:
    """Add a left-to-right alpha ramp (64..255) so alpha handling is visible."""
    height, width, _ = rgb.shape
    ramp = np.linspace(64, 255, width).astype(np.uint8)
    alpha = np.broadcast_to(ramp, (height, width))[..., None]
    return np.concatenate([rgb, alpha], axis=2)


def deep(rgb8: np.ndarray) -> np.ndarray:
    """16-bit pixels that use the low byte too (an 8-bit round trip would lose it)."""
    noise = np.random.default_rng(1).integers(-128, 129, rgb8.shape)
    return (rgb8.astype(np.int64) * 257 + noise).clip(0, 65535).astype(np.uint16)


def grey(rgb: np.ndarray) -> np.ndarray:
    return rgb.mean(axis=2, keepdims=True).round().astype(np.uint8)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FAST = {"quality": "fast", "intensity": "default", "robustness": "off"}


def check_pixels(original: np.ndarray, protected: np.ndarray, fmt: str, intensity: str) -> None:
    check_within_budget(original, protected, fmt.split()[0].endswith("A"),
                        65535 if fmt.endswith("u16") else 255, intensity)


COPIED = ("width", "height", "offsets", "type", "opacity", "mode", "lock_position", "lock_alpha",
          "lock_content", "mask")


def layer_named(case: dict, name: str) -> dict:
    return next(layer for layer in case["after_layers"] if layer["name"] == name)


def check_protected_layer(case: dict, intensity: str, keep_visible: bool = False) -> None:
    """The copy takes the source's place with all its properties; the source is kept untouched
    below it: hidden and renamed by default, unchanged with keep-original-visible."""
    assert case["status"] == "success", case
    before = {layer["name"]: layer for layer in case["before_layers"]}
    after = [layer["name"] for layer in case["after_layers"]]
    original_name = "Painting" if keep_visible else "Painting (original)"
    assert after == ["Top", "Painting (protected)", original_name, "Background"], after
    source = layer_named(case, original_name)
    result = layer_named(case, "Painting (protected)")
    assert source["visible"] is keep_visible, source
    unchanged = {key: value for key, value in source.items()
                 if key not in ("position", "name", "visible")}
    assert unchanged == {key: value for key, value in before["Painting"].items()
                         if key not in ("position", "name", "visible")}
    assert result["position"] == before["Painting"]["position"], "not in the source's place"
    assert result["visible"] is True
    for key in COPIED:
        assert result[key] == before["Painting"][key], (key, result, before["Painting"])

    pixels = case["pixels"]
    assert pixels["source-after"] == pixels["before"], "the source layer's pixels changed"
    assert case["result_format"] == case["source_format"]
    fmt = case["source_format"]
    original = as_array(pixels["before"], fmt, source["width"], source["height"])
    protected = as_array(pixels["result"], fmt, source["width"], source["height"])
    check_pixels(original, protected, fmt, intensity)


CHECKER_STEP = {8: 5, 16: 1200}


def checker(png: bytes) -> bytes:
    """The fake engine's change in the colour cases: pixels with x + y even move every colour
    sample by a fixed step (up in the lower half of the range, down in the upper); the others
    and alpha stay. So the test knows which pixels the engine changed, and by how much."""
    width, height, channels, bit_depth, samples = fixative_png.decode_png(png)
    dtype = np.dtype(">u2") if bit_depth == 16 else np.dtype(np.uint8)
    pixels = np.frombuffer(samples, dtype).reshape(height, width, channels).astype(np.int64)
    colour = channels - 1 if channels in (2, 4) else channels
    step, half = CHECKER_STEP[bit_depth], 1 << (bit_depth - 1)
    moved = np.where(pixels[..., :colour] < half, pixels[..., :colour] + step,
                     pixels[..., :colour] - step)
    on = checker_cells(width, height)
    pixels[..., :colour][on] = moved[on]
    return fixative_png.encode_png(width, height, channels, bit_depth,
                                   pixels.astype(dtype).tobytes())


def checker_cells(width: int, height: int) -> np.ndarray:
    """True where checker() changes a pixel."""
    rows, columns = np.mgrid[:height, :width]
    return (rows + columns) % 2 == 0


@pytest.fixture(scope="module")
def engine_verdict(gimp_setup, tmp_path_factory):
    """One GIMP session with a real engine running: every success and refusal case. The colour
    cases (``"engine": "fake"``) go to a fake engine whose change is known exactly (checker);
    ``verdict["fake_jobs"]`` holds the PNGs it received."""
    scratch = tmp_path_factory.mktemp("gimp3")
    home = scratch / "fixative-home"
    from tests.krita.fake_engine import FakeEngine

    fake = FakeEngine(scratch / "fake-state", job_seconds=0.05, perturb=checker).start()
    try:
        verdict = _engine_verdict(gimp_setup, scratch, home, fake)
    finally:
        fake.stop()
    verdict["fake_jobs"] = [job.image for job in fake.jobs.values()]
    return verdict


def _engine_verdict(gimp_setup, scratch: Path, home: Path, fake) -> dict:
    with engine_in(home):
        rgb16 = deep(painting(size=56))
        cases = [
            {"name": "rgba8", "pixels": with_alpha(painting(size=(88, 72))), "canvas": [130, 110],
             "offsets": [13, 7], "args": FAST,
             "setup": {"opacity": 60.0, "mode": "MULTIPLY", "lock_position": True,
                       "lock_alpha": True, "mask": True}},
            {"name": "rgb16", "pixels": rgb16, "canvas": [80, 70], "offsets": [5, 9],
             "args": FAST},
            {"name": "gray8", "pixels": grey(painting(size=64, box=(0.6, 0.5))),
             "canvas": [70, 70], "offsets": [3, 2], "args": FAST},
            {"name": "graya16", "pixels": deep(with_alpha(grey(painting(size=40, box=(0.5, 0.2))))),
             "canvas": [50, 44], "offsets": [4, 1], "args": FAST},
            {"name": "keepvisible", "pixels": painting(size=40, box=(0.1, 0.1)),
             "canvas": [44, 44], "offsets": [2, 2], "args": {**FAST, "keep-original-visible": True},
             "style_pixels": painting(name="great_wave_hokusai_1831.jpg", size=32)},
            {"name": "inplace", "pixels": painting(size=48, box=(0.2, 0.7)), "canvas": [60, 60],
             "offsets": [6, 6], "args": {**FAST, "new-layer": False}},
            # Image coordinates: layer offsets (5, 3), so the box is x 12..52, y 8..38 of the layer.
            {"name": "selection", "pixels": painting(size=64, box=(0.4, 0.4)), "canvas": [74, 70],
             "offsets": [5, 3], "select": [17, 11, 40, 30], "args": FAST},
            {"name": "selection-inplace", "pixels": painting(size=64, box=(0.7, 0.4)),
             "canvas": [64, 64], "offsets": [0, 0], "select": [20, 8, 24, 40],
             "args": {**FAST, "new-layer": False}},
            {"name": "indexed", "pixels": painting(size=40), "canvas": [40, 40],
             "offsets": [0, 0], "convert": "indexed", "args": FAST},
            {"name": "group", "pixels": with_alpha(painting(size=(40, 36), box=(0.2, 0.5))),
             "canvas": [50, 50], "offsets": [5, 6], "args": FAST, "setup": {"group": True}},
            {"name": "visible", "pixels": with_alpha(painting(size=(40, 30), box=(0.6, 0.1))),
             "canvas": [48, 40], "offsets": [4, 5], "args": {**FAST, "visible-picture": True}},
            {"name": "export-png", "pixels": painting(size=48, box=(0.3, 0.2)),
             "canvas": [48, 48], "offsets": [0, 0], "export": "posted.png", "args": dict(FAST)},
            {"name": "export-jpeg", "pixels": painting(size=48, box=(0.5, 0.2)),
             "canvas": [48, 48], "offsets": [0, 0], "export": "posted.jpg", "args": dict(FAST)},
            {"name": "export-webp", "pixels": painting(size=48, box=(0.5, 0.6)),
             "canvas": [48, 48], "offsets": [0, 0], "export": "posted.webp", "args": dict(FAST)},
            {"name": "export-webp-unsigned", "pixels": painting(size=48, box=(0.2, 0.6)),
             "canvas": [48, 48], "offsets": [0, 0], "export": "plain.webp",
             "args": {**FAST, "credentials": False}},
            {"name": "export-unsignable", "pixels": painting(size=(46, 38), box=(0.4, 0.4)),
             "canvas": [46, 38], "offsets": [0, 0], "export": "unsigned.png", "args": dict(FAST),
             "engine": "fake"},  # the fake engine refuses to sign
            # Colour spaces and precisions, against the fake engine (each region's size is its
            # own, so its job can be found). Layer boxes are in COLOUR_BOXES.
            {"name": "srgb8-direct", "pixels": with_alpha(painting(size=(36, 34), box=(0.8, 0.3))),
             "canvas": [36, 34], "offsets": [0, 0], "args": FAST, "engine": "fake",
             "colour": {"precision": "U8_NON_LINEAR"}},
            {"name": "linear8", "pixels": with_alpha(painting(size=(60, 52), box=(0.3, 0.8))),
             "canvas": [70, 60], "offsets": [5, 3], "select": [15, 9, 36, 26], "args": FAST,
             "engine": "fake", "colour": {"precision": "U8_LINEAR"}},
            {"name": "hdr-float", "pixels": with_alpha(painting(size=(44, 36), box=(0.9, 0.9))),
             "canvas": [44, 36], "offsets": [0, 0], "args": FAST, "engine": "fake",
             "colour": {"precision": "FLOAT_LINEAR", "hdr": True}},
            {"name": "adobe16", "pixels": deep(painting(size=(50, 46), box=(0.1, 0.6))),
             "canvas": [56, 50], "offsets": [3, 2], "select": [13, 10, 30, 28], "args": FAST,
             "engine": "fake", "colour": {"profile": "adobe"}},
            {"name": "grey-linear16",
             "pixels": deep(with_alpha(grey(painting(size=(42, 40), box=(0.7, 0.7))))),
             "canvas": [42, 40], "offsets": [0, 0], "args": {**FAST, "new-layer": False},
             "engine": "fake", "colour": {"precision": "U16_LINEAR"}},
        ]
        if ONLY_CASES:
            cases = [case for case in cases if case["name"] in ONLY_CASES]
        return run_gimp(gimp_setup, scratch, home, cases,
                        fake_discovery=scratch / "fake-state" / "engine.json")


def case_named(verdict: dict, name: str) -> dict:
    if ONLY_CASES and name not in ONLY_CASES:
        pytest.skip(f"case {name} left out (FIXATIVE_GIMP_CASES)")
    case = next(case for case in verdict["cases"] if case["name"] == name)
    assert case["status"] != "harness-error", f"{case['error']}\n{verdict['log']}"
    assert case["status"] != "not-registered", f"plug-in not registered\n{verdict['log']}"
    return case


def test_rgba_8bit_layer_copy_carries_mask_opacity_mode_and_locks(engine_verdict):
    case = case_named(engine_verdict, "rgba8")
    assert case["precision"].startswith("u8")
    painting_before = next(layer for layer in case["before_layers"] if layer["name"] == "Painting")
    assert painting_before["mask"] is not None and painting_before["mode"] == "multiply"
    assert painting_before["lock_position"] and painting_before["opacity"] == 60.0
    check_protected_layer(case, "default")


def test_16bit_layer_keeps_its_precision(engine_verdict):
    case = case_named(engine_verdict, "rgb16")
    assert case["precision"].startswith("u16")
    check_protected_layer(case, "default")
    result = np.frombuffer(case["pixels"]["result"], dtype=np.uint16)
    # An 8-bit round trip would leave only multiples of 257.
    assert (result % 257 != 0).mean() > 0.5, "the result lost its 16-bit precision"


def test_greyscale_layer(engine_verdict):
    case = case_named(engine_verdict, "gray8")
    assert case["base_type"] == "gray"
    check_protected_layer(case, "default")


def test_16bit_grey_alpha_layer(engine_verdict):
    case = case_named(engine_verdict, "graya16")
    assert case["base_type"] == "gray" and case["source_format"] == "Y'A u16", case
    check_protected_layer(case, "default")


def test_keep_original_visible_leaves_the_source_as_it_was(engine_verdict):
    check_protected_layer(case_named(engine_verdict, "keepvisible"), "default", keep_visible=True)


def test_in_place_when_new_layer_is_off(engine_verdict):
    case = case_named(engine_verdict, "inplace")
    assert case["status"] == "success", case
    assert case["after_layers"] == case["before_layers"], "no layer may be added"
    source = layer_named(case, "Painting")
    fmt = case["source_format"]
    before = as_array(case["pixels"]["before"], fmt, source["width"], source["height"])
    after = as_array(case["pixels"]["source-after"], fmt, source["width"], source["height"])
    check_pixels(before, after, fmt, "default")


def check_only_box_changed(before: np.ndarray, after: np.ndarray, box: tuple[int, int, int, int],
                           fmt: str) -> None:
    """Inside the box (layer coordinates) protected within budget; outside bit-identical."""
    x, y, width, height = box
    outside = np.ones(before.shape[:2], bool)
    outside[y:y + height, x:x + width] = False
    np.testing.assert_array_equal(after[outside], before[outside],
                                  err_msg="pixels outside the selection changed")
    check_pixels(before[y:y + height, x:x + width], after[y:y + height, x:x + width], fmt,
                 "default")


def test_selection_protects_only_its_bounding_box_in_a_new_layer(engine_verdict):
    case = case_named(engine_verdict, "selection")
    assert case["status"] == "success", case
    source = layer_named(case, "Painting (original)")
    fmt = case["source_format"]
    before = as_array(case["pixels"]["before"], fmt, source["width"], source["height"])
    result = as_array(case["pixels"]["result"], fmt, source["width"], source["height"])
    assert case["pixels"]["source-after"] == case["pixels"]["before"]
    check_only_box_changed(before, result, (12, 8, 40, 30), fmt)


def test_selection_in_place(engine_verdict):
    case = case_named(engine_verdict, "selection-inplace")
    assert case["status"] == "success", case
    source = layer_named(case, "Painting")
    fmt = case["source_format"]
    before = as_array(case["pixels"]["before"], fmt, source["width"], source["height"])
    after = as_array(case["pixels"]["source-after"], fmt, source["width"], source["height"])
    check_only_box_changed(before, after, (20, 8, 24, 40), fmt)


def test_indexed_image_is_refused_clearly(engine_verdict):
    case = case_named(engine_verdict, "indexed")
    assert case["status"] == "execution-error", case
    assert "indexed" in (case["error"] or "").lower(), case["error"]
    assert case["after_layers"] == case["before_layers"]
    assert case["pixels"]["source-after"] == case["pixels"]["before"]


def test_engine_stopped_gives_clear_error_and_unchanged_image(gimp_setup, fixative_home,
                                                             tmp_path):
    """A stale discovery file (engine gone) and no installed engine: message, nothing changed."""
    state = fixative_home / "state"
    state.mkdir(parents=True, exist_ok=True)
    (state / "engine.json").write_text(json.dumps(
        {"url": f"http://127.0.0.1:{free_port()}", "token": "stale", "pid": 999999,
         "version": "0.1.0"}))
    cases = [{"name": "stopped", "pixels": painting(size=40), "canvas": [50, 50],
              "offsets": [4, 4], "args": FAST}]
    verdict = run_gimp(gimp_setup, tmp_path, fixative_home, cases)
    case = case_named(verdict, "stopped")
    assert case["status"] == "execution-error", case
    message = case["error"] or ""
    assert message.startswith("Fixative:") and "engine" in message, message
    assert "not changed" in message, message
    assert "Traceback" not in message and "Traceback" not in verdict["log"], verdict["log"]
    assert case["after_layers"] == case["before_layers"]
    assert case["pixels"]["source-after"] == case["pixels"]["before"]
    assert message.split(":", 1)[1].strip()[:40] in verdict["log"], "no Gimp.message shown"


def test_a_new_schema_field_becomes_a_procedure_argument(gimp_setup, fixative_home, tmp_path):
    """A field added to the engine's cached options-schema.json is registered in real GIMP 3."""
    schema = json.loads((COMMON_DIR / "fixative_options_fallback.json").read_text())
    schema["fields"] += [
        {"name": "dummy_level", "kind": "choice", "label": "Dummy level", "help": "test only",
         "default": "b", "dialog": True,
         "choices": [{"value": "a", "label": "A", "help": ""},
                     {"value": "b", "label": "B", "help": ""}]},
        {"name": "dummy_count", "kind": "integer", "label": "Dummy count", "help": "test only",
         "default": 3, "minimum": 1, "maximum": 9, "dialog": True},
        {"name": "dummy_hidden", "kind": "text", "label": "Hidden", "help": "", "default": "",
         "dialog": False},
    ]
    (fixative_home / "state").mkdir(parents=True, exist_ok=True)
    (fixative_home / "state" / "options-schema.json").write_text(json.dumps(schema))
    verdict = run_gimp(gimp_setup, tmp_path, fixative_home, [])
    arguments = verdict["arguments"]
    assert isinstance(arguments, list), f"{arguments}\n{verdict['log']}"
    names = [argument["name"] for argument in arguments]
    assert names[-13:] == ["mode", "intensity", "quality", "robustness", "target-style",
                           "concept", "target-concept", "new-layer", "dummy-level",
                           "dummy-count", "style-image", "keep-original-visible",
                           "visible-picture"], names
    by_name = {argument["name"]: argument for argument in arguments}
    assert by_name["dummy-level"]["choices"] == ["a", "b"]
    assert by_name["dummy-level"]["default"] == "b"
    assert by_name["dummy-level"]["label"].replace("_", "") == "Dummy level"
    assert by_name["dummy-count"]["type"] == "gint" and by_name["dummy-count"]["default"] == 3
    assert by_name["mode"]["choices"] == ["style", "poison", "both"]
    assert by_name["concept"]["type"] == "gchararray" and by_name["concept"]["default"] == ""
    assert "dummy-hidden" not in by_name


def test_dialog_opens_without_gtk_warnings_and_target_style_is_a_list(gimp_setup, fixative_home,
                                                                      tmp_path):
    """The real dialog, built under Xvfb: no 'chars != NULL' or 'duplicate mnemonic' warnings on
    GIMP's stderr; target style offered as the engine's list; style image a file argument."""
    cases = [{"name": "dialog", "pixels": painting(size=32), "canvas": [32, 32],
              "offsets": [0, 0], "args": {}, "interactive": True}]
    verdict = run_gimp(gimp_setup, tmp_path, fixative_home, cases, display=True)
    case = case_named(verdict, "dialog")
    assert case["status"] == "cancel", f"{case}\n{verdict['log']}"
    assert "Fixative: cannot grey out" not in verdict["log"], verdict["log"]
    for warning in ("chars != NULL", "duplicate mnemonic", "no mnemonic", "Traceback"):
        assert warning not in verdict["log"], f"{warning!r} in GIMP's output:\n{verdict['log']}"
    # GIMP's own core process (gimp-console run interactively) may log criticals; ours may not.
    plugin_criticals = [line for line in verdict["log"].splitlines() if "CRITICAL" in line
                        and not line.lstrip().startswith(("(gimp:", "(gimp-console"))]
    assert plugin_criticals == [], verdict["log"]
    by_name = {argument["name"]: argument for argument in verdict["arguments"]}
    schema = json.loads((COMMON_DIR / "fixative_options_fallback.json").read_text())
    styles = next(f for f in schema["fields"] if f["name"] == "target_style")["suggestions"]
    assert by_name["target-style"]["choices"] == styles
    assert by_name["target-style"]["default"] == "auto"
    assert by_name["style-image"]["type"] == "GFile", by_name["style-image"]


def check_export(case: dict, fmt: str, credentials: bool) -> bytes:
    """The exported file: right format and size, opt-out XMP, valid C2PA credentials when asked
    (read back with c2pa.Reader), image unchanged."""
    import io

    from PIL import Image

    assert case["status"] == "success", case
    assert case["after_layers"] == case["before_layers"], "export must not change the image"
    assert case["pixels"]["source-after"] == case["pixels"]["before"]
    data = case["pixels"]["export"]
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt and image.size == (48, 48), (image.format, image.size)
        image.load()  # the whole file decodes after the XMP and the manifest went in
    check_exported_optout(data, "image/" + fmt.lower(), signed=credentials)
    return data


def test_export_protected_png_has_optout_and_credentials(engine_verdict):
    import io

    from PIL import Image

    case = case_named(engine_verdict, "export-png")
    data = check_export(case, "PNG", credentials=True)
    with Image.open(io.BytesIO(data)) as image:
        exported = np.asarray(image.convert("RGB"))
    before = as_array(case["pixels"]["before"], case["source_format"], 48, 48)
    # An opaque layer filling the canvas: the merged picture is the layer itself.
    check_pixels(before, exported, case["source_format"], "default")


def test_export_protected_jpeg_and_webp(engine_verdict):
    check_export(case_named(engine_verdict, "export-jpeg"), "JPEG", credentials=True)
    check_export(case_named(engine_verdict, "export-webp"), "WEBP", credentials=True)
    check_export(case_named(engine_verdict, "export-webp-unsigned"), "WEBP", credentials=False)


def test_export_keeps_the_file_when_signing_fails(engine_verdict):
    """As in GIMP 2.10 and Krita, an engine that cannot sign does not cost the artist the
    protection: the file is written with the engine's pixels, no credentials, and one message
    says why."""
    import io

    from PIL import Image

    from fixative import provenance

    case = case_named(engine_verdict, "export-unsignable")
    assert case["status"] == "success", case
    assert case["after_layers"] == case["before_layers"], "export must not change the image"
    data = case["pixels"]["export"]
    _received, returned, _bits = exchanged(engine_verdict, "export-unsignable")
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        assert np.array_equal(np.asarray(image.convert("RGB")), returned[..., :3])
    assert not provenance.read_credentials(data).present
    log = engine_verdict["log"]
    assert "unsigned.png was saved without signed credentials" in log, log
    assert "this engine has no identity" in log, log


def test_layer_group_is_protected_as_one_merged_copy(engine_verdict):
    case = case_named(engine_verdict, "group")
    assert case["status"] == "success", case
    names = [layer["name"] for layer in case["after_layers"]]
    assert names == ["Top", "Group (protected)", "Group (original)", "Background"], names
    group, result = layer_named(case, "Group (original)"), layer_named(case, "Group (protected)")
    assert group["visible"] is False and result["visible"] is True
    assert (result["width"], result["height"], result["offsets"]) == (
        group["width"], group["height"], group["offsets"])
    assert case["pixels"]["source-after"] == case["pixels"]["before"], "a layer in the group changed"
    fmt = case["source_format"]  # the painting (RGBA) alone makes up the group's look
    before = as_array(case["pixels"]["before"], fmt, result["width"], result["height"])
    protected = as_array(case["pixels"]["result"], case["result_format"], result["width"],
                         result["height"])
    check_pixels(before, protected, fmt, "default")


def test_visible_picture_becomes_one_protected_layer_on_top(engine_verdict):
    case = case_named(engine_verdict, "visible")
    assert case["status"] == "success", case
    names = [layer["name"] for layer in case["after_layers"]]
    assert names == ["Visible (protected)", "Top", "Painting", "Background"], names
    assert [layer for layer in case["after_layers"] if layer["name"] != "Visible (protected)"] == [
        {**layer, "position": layer["position"] + 1} for layer in case["before_layers"]]
    result = layer_named(case, "Visible (protected)")
    assert (result["width"], result["height"], result["offsets"]) == (48, 40, [0, 0])
    assert case["pixels"]["source-after"] == case["pixels"]["before"]
    fmt = case["visible_format"]
    before = as_array(case["pixels"]["visible"], fmt, 48, 40)
    protected = as_array(case["pixels"]["result"], case["result_format"], 48, 40)
    check_pixels(before, protected, fmt, "default")


@pytest.fixture(scope="module")
def text_verdict(gimp_setup, tmp_path_factory):
    """A GIMP session with fonts loaded (slower start), so a real text layer can be made; the
    fake engine's known change (checker) shows exactly what was written where."""
    from tests.krita.fake_engine import FakeEngine

    if ONLY_CASES and "text" not in ONLY_CASES:
        pytest.skip("case text left out (FIXATIVE_GIMP_CASES)")
    scratch = tmp_path_factory.mktemp("gimp3-text")
    home = scratch / "fixative-home"
    fake = FakeEngine(home / "state", job_seconds=0.05, perturb=checker).start()
    try:
        cases = [{"name": "text", "pixels": painting(size=(96, 64)), "canvas": [400, 120],
                  "offsets": [8, 8], "args": FAST, "setup": {"text": True, "text_style": True}},
                 {"name": "text-in-place", "pixels": painting(size=(96, 64)),
                  "canvas": [400, 120], "offsets": [8, 8],
                  "args": {**FAST, "new-layer": False}, "setup": {"text": True}}]
        verdict = run_gimp(gimp_setup, scratch, home, cases, fonts=True)
    finally:
        fake.stop()
    verdict["fake_jobs"] = [job.image for job in fake.jobs.values()]
    return verdict


def test_text_layer_copy_is_a_plain_layer_and_the_text_stays_editable(text_verdict):
    """A text layer: the protected copy is a plain layer (so GIMP never re-renders the text over
    the protection), in the text's place; the text layer stays below, hidden, still editable
    text, its pixels untouched."""
    case = case_named(text_verdict, "text")
    assert case["status"] == "success", (case, text_verdict["log"])
    [text_before] = [layer for layer in case["before_layers"] if layer["text"]]
    name = text_before["name"]
    names = [layer["name"] for layer in case["after_layers"]]
    assert names == ["Top", f"{name} (protected)", f"{name} (original)", "Painting",
                     "Background"], names
    original, result = layer_named(case, f"{name} (original)"), layer_named(case, f"{name} (protected)")
    assert original["text"] is True and original["visible"] is False
    assert result["text"] is False and result["visible"] is True
    assert text_before["mode"] == "screen" and text_before["mask"] is not None
    for key in COPIED:
        assert result[key] == text_before[key], (key, result, text_before)
    assert case["pixels"]["text-after"] == case["pixels"]["text"], "the text layer's pixels changed"
    assert case["pixels"]["source-after"] == case["pixels"]["before"]
    width, height = text_before["width"], text_before["height"]
    sent = next(png for png in text_verdict["fake_jobs"]  # both text cases send the same
                if fixative_png.decode_png(png)[:2] == (width, height))
    returned = fixative_png.decode_png(checker(sent))
    fmt = case["result_format"]
    assert fmt == case["text_format"] and returned[2] == 4 and returned[3] == 8, (fmt, returned[:4])
    written = as_array(case["pixels"]["result"], fmt, width, height)
    expected = np.frombuffer(returned[4], np.uint8).reshape(height, width, 4)
    visible = expected[..., 3] > 0  # GIMP may keep any colour under fully transparent pixels
    assert np.array_equal(written[visible], expected[visible])
    assert np.array_equal(written[..., 3], expected[..., 3])
    assert visible.sum() > 200, "the text drew almost nothing: are fonts loaded?"


def test_text_layer_protected_in_place_is_no_longer_live_text(text_verdict):
    """In place, the text layer becomes a plain layer with the protected pixels (same name,
    place and properties): live text would be re-rendered over the protection on the next edit
    (GIMP 3.2 keeps a text layer live after a plug-in writes its pixels; 3.0 does not)."""
    case = case_named(text_verdict, "text-in-place")
    assert case["status"] == "success", (case, text_verdict["log"])
    [text_before] = [layer for layer in case["before_layers"] if layer["text"]]
    after = layer_named(case, text_before["name"])
    assert after["text"] is False and after["visible"] is True, after
    assert [layer["name"] for layer in case["after_layers"]] == [
        layer["name"] for layer in case["before_layers"]]
    for key in COPIED:
        assert after[key] == text_before[key], (key, after, text_before)
    assert case["pixels"]["result"] != case["pixels"]["text"]


# -- colour spaces and precisions (fake engine: checker) --------------------------------------

COLOUR_BOXES = {"srgb8-direct": (0, 0, 36, 34), "linear8": (10, 6, 36, 26),
                "hdr-float": (0, 0, 44, 36), "adobe16": (10, 8, 30, 28),
                "grey-linear16": (0, 0, 42, 40), "export-unsignable": (0, 0, 46, 38)}
BABL_DTYPES = {"u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "half": np.float16,
               "float": np.float32, "double": np.float64}


def colour_case(verdict: dict, name: str) -> dict:
    case = case_named(verdict, name)
    assert case["status"] == "success", f"{case}\n{verdict['log']}"
    return case


def native(case: dict, kind: str) -> np.ndarray:
    """The painting's (or its protected copy's) pixels in the layer's own format, (H, W, C)."""
    described = case["native_before"]
    source = next(layer for layer in case["before_layers"] if layer["name"] == "Painting")
    data = case["pixels"][f"{kind}.native"]
    return np.frombuffer(data, BABL_DTYPES[described["type"]]).reshape(
        source["height"], source["width"], described["channels"])


def srgb16(case: dict, kind: str) -> np.ndarray:
    source = next(layer for layer in case["before_layers"] if layer["name"] == "Painting")
    data = case["pixels"][f"{kind}.srgb16"]
    return np.frombuffer(data, np.uint16).reshape(source["height"], source["width"], -1)


def exchanged(verdict: dict, name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(what the fake engine received, what it sent back, bit depth) for this case's region."""
    _x, _y, width, height = COLOUR_BOXES[name]
    for png in verdict["fake_jobs"]:
        got_w, got_h, channels, bit_depth, samples = fixative_png.decode_png(png)
        if (got_w, got_h) == (width, height):
            dtype = np.dtype(">u2") if bit_depth == 16 else np.dtype(np.uint8)
            received = np.frombuffer(samples, dtype).reshape(height, width, channels)
            returned = np.frombuffer(fixative_png.decode_png(checker(png))[4], dtype).reshape(
                height, width, channels)
            return received.astype(np.int64), returned.astype(np.int64), bit_depth
    raise AssertionError(f"the fake engine got no {width}x{height} job for {name}")


def box_of(pixels: np.ndarray, name: str) -> np.ndarray:
    x, y, width, height = COLOUR_BOXES[name]
    return pixels[y:y + height, x:x + width]


def outside_box(pixels: np.ndarray, name: str) -> np.ndarray:
    x, y, width, height = COLOUR_BOXES[name]
    outside = np.ones(pixels.shape[:2], bool)
    outside[y:y + height, x:x + width] = False
    return pixels[outside]


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    linear = np.asarray(linear, np.float64)
    return np.where(linear <= 0.0031308, 12.92 * linear,
                    1.055 * np.abs(linear) ** (1 / 2.4) - 0.055)


def srgb_decode(encoded: np.ndarray) -> np.ndarray:
    encoded = np.asarray(encoded, np.float64)
    return np.where(encoded <= 0.04045, encoded / 12.92, ((encoded + 0.055) / 1.055) ** 2.4)


def linear_u8(samples16: np.ndarray) -> np.ndarray:
    """16-bit perceptual sRGB colour samples as 8-bit linear ones."""
    return np.round(srgb_decode(samples16[..., :3] / 65535) * 255)


def test_8bit_srgb_layer_travels_as_8_bits_and_comes_back_as_the_engine_sent_it(engine_verdict):
    case = colour_case(engine_verdict, "srgb8-direct")
    assert case["native_before"]["format"] == "R'G'B'A u8", case["native_before"]
    received, returned, bit_depth = exchanged(engine_verdict, "srgb8-direct")
    assert bit_depth == 8
    np.testing.assert_array_equal(received, native(case, "before"))
    np.testing.assert_array_equal(native(case, "result"), returned)


def test_8bit_linear_layer_untouched_pixels_bit_identical(engine_verdict):
    """8-bit linear travels as 16-bit sRGB; pixels outside the selection and those the engine did
    not change come back bit-identical, changed ones carry the engine's change, alpha exact."""
    name = "linear8"
    case = colour_case(engine_verdict, name)
    assert case["native_before"]["format"] == "RGBA u8", case["native_before"]
    before, result = native(case, "before").astype(np.int64), native(case, "result").astype(np.int64)
    assert case["native_result"]["format"] == "RGBA u8", "the copy keeps the layer's precision"
    received, returned, bit_depth = exchanged(engine_verdict, name)
    assert bit_depth == 16, "8-bit linear needs more than 8 perceptual bits"
    inside = box_of(before, name)
    # The engine got perceptual sRGB: the linear samples through the sRGB curve.
    expected_sent = np.round(srgb_encode(inside[..., :3] / 255) * 65535)
    assert np.abs(received[..., :3] - expected_sent).max() <= 2
    np.testing.assert_array_equal(received[..., 3], inside[..., 3] * 257)

    np.testing.assert_array_equal(outside_box(result, name), outside_box(before, name),
                                  err_msg="pixels outside the selection changed")
    np.testing.assert_array_equal(result[..., 3], before[..., 3], err_msg="alpha changed")
    got = box_of(result, name)
    on = checker_cells(*COLOUR_BOXES[name][2:])
    np.testing.assert_array_equal(got[~on], inside[~on],
                                  err_msg="pixels the engine left alone changed")
    expected = np.clip(inside[..., :3] + linear_u8(returned) - linear_u8(received), 0, 255)
    assert np.abs(got[on][:, :3] - expected[on]).max() <= 1
    assert (got[on][:, :3] != inside[on][:, :3]).mean() > 0.3, "the engine's change was lost"


def test_float_hdr_values_above_one_survive_with_the_change_added(engine_verdict):
    name = "hdr-float"
    case = colour_case(engine_verdict, name)
    assert case["native_before"]["format"] == "RGBA float", case["native_before"]
    before, result = native(case, "before"), native(case, "result")
    assert before[..., :3].max() > 2.0 and before[..., :3].min() < 0, "the case needs HDR values"
    received, returned, bit_depth = exchanged(engine_verdict, name)
    assert bit_depth == 16
    expected_sent = np.round(np.clip(srgb_encode(before[..., :3]), 0, 1) * 65535)
    assert np.abs(received[..., :3] - expected_sent).max() <= 2, "the engine got sRGB, clipped"

    on = checker_cells(*COLOUR_BOXES[name][2:])
    np.testing.assert_array_equal(result[~on].view(np.uint32), before[~on].view(np.uint32),
                                  err_msg="pixels the engine left alone changed")
    np.testing.assert_array_equal(result[..., 3].view(np.uint32), before[..., 3].view(np.uint32))
    change = srgb_decode(returned[..., :3] / 65535) - srgb_decode(received[..., :3] / 65535)
    expected = before[..., :3].astype(np.float64) + change
    assert np.abs(result[on][:, :3] - expected[on]).max() < 1e-4
    bright = on[..., None] & (before[..., :3] > 1.5)  # the change is far smaller than 0.5
    assert bright.sum() > 50
    assert (result[..., :3][bright] > 1.0).all(), "values above 1.0 were clipped"
    assert (result[..., :3][bright] != before[..., :3][bright]).mean() > 0.9, \
        "the engine's change is missing from the HDR pixels"


def test_wide_gamut_image_engine_gets_srgb_and_the_layer_stays_in_its_space(engine_verdict):
    """An image converted to Adobe RGB: the engine receives GIMP's own sRGB conversion, the copy
    keeps the Adobe RGB encoding, and every pixel the engine did not change is bit-identical,
    although a 16-bit round trip through sRGB is not; seen in sRGB, the change is the engine's."""
    name = "adobe16"
    case = colour_case(engine_verdict, name)
    own_format = case["native_before"]["format"]
    assert own_format.startswith("R'G'B' u16-space-"), own_format
    assert case["native_result"]["format"] == own_format, "the copy left the image's space"
    received, returned, bit_depth = exchanged(engine_verdict, name)
    assert bit_depth == 16
    reference = box_of(srgb16(case, "reference"), name).astype(np.int64)
    own = box_of(native(case, "before"), name).astype(np.int64)
    assert np.abs(received - own).max() > 1000, "the test needs colours Adobe RGB encodes apart"
    assert np.abs(received - reference).max() <= 2, "the engine did not get sRGB"

    before, result = native(case, "before"), native(case, "result")
    np.testing.assert_array_equal(outside_box(result, name), outside_box(before, name),
                                  err_msg="pixels outside the selection changed")
    on = checker_cells(*COLOUR_BOXES[name][2:])
    np.testing.assert_array_equal(box_of(result, name)[~on], box_of(before, name)[~on],
                                  err_msg="pixels the engine left alone changed")
    assert (box_of(result, name)[on] != box_of(before, name)[on]).mean() > 0.9
    # The change is added in Adobe RGB's encoding, so it is the engine's only to first order:
    # exact in most samples, within one 8-bit step where dark saturated colours bend the curves.
    seen = box_of(srgb16(case, "result"), name).astype(np.int64)
    error = np.abs(seen[on] - returned[on])
    assert np.median(error) <= 2 and error.max() <= 257, np.percentile(error, [50, 99, 100])


def test_grey_linear_16bit_layer_in_place(engine_verdict):
    name = "grey-linear16"
    case = colour_case(engine_verdict, name)
    assert case["native_before"]["format"] == "YA u16", case["native_before"]
    assert case["after_layers"] == case["before_layers"], "in place: no layer may be added"
    before, after = native(case, "before").astype(np.int64), native(case, "source-after")
    received, returned, bit_depth = exchanged(engine_verdict, name)
    assert bit_depth == 16 and received.shape[2] == 2
    expected_sent = np.round(srgb_encode(before[..., 0] / 65535) * 65535)
    assert np.abs(received[..., 0] - expected_sent).max() <= 2, "the engine got no sRGB grey"
    on = checker_cells(*COLOUR_BOXES[name][2:])
    np.testing.assert_array_equal(after[~on], before[~on])
    np.testing.assert_array_equal(after[..., 1], before[..., 1], err_msg="alpha changed")

    def linear16(samples: np.ndarray) -> np.ndarray:
        return np.round(srgb_decode(samples[..., 0] / 65535) * 65535)

    expected = np.clip(before[..., 0] + linear16(returned) - linear16(received), 0, 65535)
    assert np.abs(after[..., 0][on] - expected[on]).max() <= 1
