"""The `fixative` command line as a user runs it (real subprocesses, real TAEF2 weights)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fixative.imageio import DMI_PROHIBITED, load_image
from tests.conftest import MODELS, REPO, painting

QUICK = ["--quality", "fast", "--steps", "2"]


def run_cli(*args: str, home: Path, check_rc: int | None = 0) -> subprocess.CompletedProcess:
    env = {**os.environ, "FIXATIVE_HOME": str(home), "FIXATIVE_MODEL_DIR": str(MODELS), "FIXATIVE_OFFLINE": "1",
           "PYTHONPATH": str(REPO / "engine"), "COLUMNS": "120"}
    proc = subprocess.run([sys.executable, "-m", "fixative.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


@pytest.fixture
def art(tmp_path) -> Path:
    folder = tmp_path / "art"
    folder.mkdir()
    Image.fromarray(painting(size=48)).save(folder / "a.png")
    rgba = np.dstack([painting("great_wave_hokusai_1831.jpg", size=40), np.full((40, 40), 180, np.uint8)])
    Image.fromarray(rgba).save(folder / "b.png")
    exif = Image.Exif()
    exif[0x010F] = "Maker"
    exif[0x8825] = {1: "N"}
    Image.fromarray(painting("udnie_picabia_1913.jpg", size=40)).save(folder / "c.jpg", exif=exif.tobytes())
    return folder


def test_protect_one_file_with_every_output(fixative_home, art, tmp_path):
    out = tmp_path / "out.png"
    run_cli("protect", str(art / "a.png"), "-o", str(out), *QUICK, "--concept", "sky",
            "--save-target", str(tmp_path / "target.png"), "--preview", str(tmp_path / "preview.png"),
            "--report", str(tmp_path / "report.json"), home=fixative_home)
    loaded = load_image(out)
    assert loaded.array.shape == (48, 48, 3)
    assert DMI_PROHIBITED.encode() in out.read_bytes()
    assert loaded.fixative_info["target"].startswith("style:")
    assert Image.open(tmp_path / "target.png").size == (48, 48)
    assert Image.open(tmp_path / "preview.png").width > 3 * 48
    report = json.loads((tmp_path / "report.json").read_text())
    assert report[0]["status"] == "done" and report[0]["stats"]["steps"] == 2


def test_folder_batch_continues_after_a_bad_file(fixative_home, art, tmp_path):
    (art / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    original_a = (art / "a.png").read_bytes()
    proc = run_cli("protect", str(art), "--out-dir", str(tmp_path / "web"), *QUICK, "--strip-location",
                   home=fixative_home, check_rc=1)
    assert "broken.png" in proc.stderr and "1 of 4 file(s) failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    outputs = sorted(p.name for p in (tmp_path / "web").iterdir())
    assert outputs == ["a.protected.png", "b.protected.png", "c.protected.png"]
    assert (art / "a.png").read_bytes() == original_a, "inputs are never modified"
    b = load_image(tmp_path / "web" / "b.protected.png")
    assert np.array_equal(b.array[..., 3], np.full((40, 40), 180, np.uint8))
    c = load_image(tmp_path / "web" / "c.protected.png")
    exif = Image.Exif()
    exif.load(c.exif)
    assert exif[0x010F] == "Maker" and 0x8825 not in exif


def test_sixteen_bit_png_stays_sixteen_bit(fixative_home, tmp_path):
    from fixative.imageio import encode_image

    image = (painting(size=40).astype(np.uint16) * 257)
    source = tmp_path / "deep.png"
    source.write_bytes(encode_image(image, "PNG"))
    run_cli("protect", str(source), *QUICK, home=fixative_home)
    out = load_image(tmp_path / "deep.protected.png").array
    assert out.dtype == np.uint16 and out.shape == (40, 40, 3)
    assert np.any(out % 257 != 0), "16-bit output must carry 16-bit detail"


def test_evaluate_prints_the_table_and_json(fixative_home, art, tmp_path):
    run_cli("protect", str(art / "a.png"), "-o", str(tmp_path / "p.png"), *QUICK, home=fixative_home)
    table = run_cli("evaluate", str(art / "a.png"), str(tmp_path / "p.png"), home=fixative_home).stdout
    for row in ("clean", "jpeg75", "jpeg90", "resize0.5", "noise0.05", "blur1", "robust",
                "What a mimic's model sees", "resize512+jpeg75", "gain over noise", "taesana (held out)"):
        assert row in table
    data = json.loads(run_cli("evaluate", str(art / "a.png"), str(tmp_path / "p.png"), "--json",
                              home=fixative_home).stdout)
    f = data["f"]
    assert f["target"].startswith("style:") and set(f["closing"]["clean"]) == {"taef2"}
    rows = data["mimicry"]["rows"]
    assert {r["preprocess"] for r in rows} >= {"resize512", "resize512+jpeg75", "blur1+resize512"}
    assert all(r["gain_db"] is not None for r in rows if r["model"] == "taef2")
    assert all(r["held_out"] and r["gain_db"] is None for r in rows if r["model"] == "taesana")
    assert data["mimicry"]["file_psnr"] > 30 and "louder than equal noise" in data["mimicry"]["summary"]


@pytest.mark.parametrize("args, message", [
    (["--models", "taef9"], "unknown model"),
    (["--target-style", "no-such-style"], "unknown style"),
    (["--mode", "poison"], "anchor"),
])
def test_bad_options_give_one_clear_line(fixative_home, art, args, message):
    proc = run_cli("protect", str(art / "a.png"), *QUICK, *args, home=fixative_home, check_rc=1)
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_flag_and_missing_file(fixative_home, art):
    proc = run_cli("protect", str(art / "a.png"), "--colour", "red", home=fixative_home, check_rc=2)
    assert "unrecognized arguments" in proc.stderr
    proc = run_cli("protect", str(art / "missing.png"), *QUICK, home=fixative_home, check_rc=1)
    assert "missing.png" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_weights_offline_is_one_clear_line(art, tmp_path):
    env_home = tmp_path / "h"
    env = {**os.environ, "FIXATIVE_HOME": str(env_home), "FIXATIVE_MODEL_DIR": str(tmp_path / "nothing"),
           "FIXATIVE_OFFLINE": "1", "PYTHONPATH": str(REPO / "engine")}
    proc = subprocess.run([sys.executable, "-m", "fixative.cli", "protect", str(art / "a.png"), *QUICK],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 1
    assert "taef2_encoder.pth" in proc.stderr and "Traceback" not in proc.stderr
    assert not (art / "a.protected.png").exists()


def test_output_over_the_input_is_refused(fixative_home, art):
    before = (art / "a.png").read_bytes()
    proc = run_cli("protect", str(art / "a.png"), "-o", str(art / "a.png"), *QUICK, home=fixative_home, check_rc=1)
    assert "overwrite the input" in proc.stderr
    assert (art / "a.png").read_bytes() == before


def test_models_styles_and_doctor(fixative_home):
    assert "taef2" in run_cli("models", "list", home=fixative_home).stdout
    assert run_cli("models", "verify", "taef2", home=fixative_home).stdout.count("checksum ok") == 2
    assert "op-art-stripes" in run_cli("styles", "list", home=fixative_home).stdout
    doctor = json.loads(run_cli("doctor", "--json", home=fixative_home).stdout)
    assert doctor["device"] == "cpu" and any(m["name"] == "taef2" and m["available"] for m in doctor["models"])
