"""The benchmark suite at its small size (as CI runs it) and the pieces its numbers rest on."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import ART, MODELS, REPO, SHARED


def _env() -> dict[str, str]:
    return {**os.environ, "FIXATIVE_MODEL_DIR": str(MODELS), "FIXATIVE_OFFLINE": "1",
            "FIXATIVE_SHARED": str(SHARED)}


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """One `python -m benchmarks.run --size small` into a temporary folder."""
    if not (MODELS / "taef2_encoder.pth").exists() or not ART.is_dir():
        pytest.skip("../shared (models/taesd and art) must sit beside the checkout")
    out = tmp_path_factory.mktemp("bench")
    home = tmp_path_factory.mktemp("home")
    done = subprocess.run([sys.executable, "-m", "benchmarks.run", "--size", "small", "--out", str(out),
                           "--json", str(out / "results.json")], cwd=REPO, capture_output=True, text=True,
                          env={**_env(), "FIXATIVE_HOME": str(home)}, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def _numbers(value, where="results"):
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _numbers(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _numbers(item, f"{where}[{i}]")
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield where, value
    elif value is None:
        yield where, None


def test_small_run_produces_every_number_finite(small_run):
    _, results = small_run
    strength = results["strength"]
    purifications = strength["purifications"]
    assert purifications == ["clean", "jpeg75", "resize0.5"]
    expected = {"fixative-default", "fixative-low", "fixative-high", "naive", "texture", "untargeted"}
    for painting in strength["paintings"].values():
        assert set(painting["methods"]) == expected
        for method in painting["methods"].values():
            assert set(method["f"]) == set(purifications)
            assert method["shift"]["clean"] > 0
            assert method["seconds"] > 0
            assert method["robust_f"] == min(v for k, v in method["f"].items() if k != "clean")
        untargeted = painting["methods"]["untargeted"]
        assert set(untargeted["shift"]) == set(purifications) and untargeted["robust_shift"] > 0
    for where, value in _numbers({k: v for k, v in results.items() if k != "targets"}):
        if value is None:
            assert where.endswith(".lpips"), f"{where} is missing"
        else:
            assert math.isfinite(value), f"{where} = {value}"
    assert [row["side"] for row in results["scale"]] == [64, 128]
    for row in results["scale"]:
        assert row["seconds"] > 0 and row["peak_rss_mb"] > 50
    assert strength["consistency"]["fixative-default"]["pairs"] and len(strength["ladder"]["tries"]) >= 1
    assert len(results["targets"]) == 5  # strength, time to match, default time, scale, memory
    assert all(isinstance(t["passed"], bool) for t in results["targets"])
    mimic = results["mimic"]
    (entry,) = mimic["paintings"].values()
    for run in (entry["default"], entry["ceiling"]):
        assert {"resize512", "resize512+jpeg75", "blur1+resize512"} <= set(run["gain"])
        assert "resize1024" not in run["gain"]  # a 96² file is never upscaled to a bucket
        assert all(ratio > 0 for ratio in run["shift"].values()) and run["file_psnr"] >= 35.4
    assert set(mimic["ladder"]) == {"low", "default", "high"}
    assert mimic["ladder"]["low"]["file_psnr"] > mimic["ladder"]["high"]["file_psnr"]
    first = next(iter(strength["paintings"].values()))["methods"]["fixative-default"]
    assert first["report_seconds"] > 0  # what the artist waits for beyond the timed optimisation
    assert set(entry["report_seconds"]) == {"summary", "full"} and min(entry["report_seconds"].values()) > 0
    bf16 = entry["default"]["dtype"].startswith("bfloat16")
    assert bf16 == results["meta"]["native_bf16"]  # auto precision: bf16 exactly where the CPU has it
    assert ("default_fp32" in entry) == bf16 and ("seconds_fp32" in first) == bf16
    if bf16:
        assert entry["default_fp32"]["dtype"] == "float32" and entry["default_fp32"]["file_psnr"] >= 35.4


def test_baselines_are_matched_to_fixatives_psnr(small_run):
    _, results = small_run
    for painting in results["strength"]["paintings"].values():
        methods = painting["methods"]
        for name in ("naive", "texture", "untargeted"):
            assert abs(methods[name]["psnr"] - methods["fixative-default"]["psnr"]) <= 0.3, name


def test_small_run_writes_markdown_plots_and_previews(small_run):
    out, results = small_run
    markdown = (out / "benchmarks.md").read_text()
    for heading in ("## Targets", "## Protection strength", "## Consistency", "## Speed and scale", "## Closing note"):
        assert heading in markdown
    for target in results["targets"]:
        assert target["name"] in markdown
    for text in ("## What a mimic's model sees", "### Goals (issue 13", "### Intensity ladder", "gain ceiling"):
        assert text in markdown
    (entry,) = results["mimic"]["paintings"].values()
    assert f"the AI's-eye report takes {entry['report_seconds']['summary']:.1f} s (`summary`" in markdown
    images = sorted((out / "img").glob("bench-*.png"))
    names = {p.name for p in images}
    assert {"bench-robustness.png", "bench-scale.png"} <= names
    assert any(n.startswith("bench-preview-") for n in names)
    for image in images:
        data = image.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) < 200_000, image.name


def test_gpu_script_smoke_on_cpu(tmp_path):
    pytest.importorskip("diffusers")
    out = tmp_path / "gpu.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--device", "cpu", "--tiny", "--out", str(out)],
                          cwd=REPO, capture_output=True, text=True, env=_env(), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    (row,) = results["rows"]
    assert row["side"] == 64 and row["steps"] == 2
    assert row["seconds"] > 0 and row["tflop"] > 0 and math.isfinite(row["tflops"])


def test_gpu_script_refuses_cuda_without_a_gpu(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    done = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--device", "cuda"], cwd=REPO,
                          capture_output=True, text=True, env=_env(), timeout=300)
    assert done.returncode == 2 and "no CUDA device" in done.stderr


def test_match_psnr_hits_the_requested_psnr():
    from benchmarks.baselines import match_psnr, psnr, quantise

    rng = np.random.default_rng(0)
    original = (rng.integers(0, 256, (48, 48, 3)) / 255).astype(np.float32)
    delta = rng.normal(0, 0.02, original.shape).astype(np.float32)
    for wanted in (33.0, 36.5, 40.0):
        image, scale, achieved = match_psnr(original, delta, wanted)
        assert abs(achieved - wanted) <= 0.3
        assert abs(psnr(original, image) - achieved) < 1e-9
        assert np.allclose(image * 255, np.round(image * 255), atol=1e-3)  # on the uint8 grid
    # a perturbation of identical ±steps: PSNR moves in whole-grey-level jumps; the closest one wins
    steps = rng.choice([-1.0, 1.0], original.shape).astype(np.float32) * 0.03
    _, _, achieved = match_psnr(original, steps, 33.0)
    scan = [psnr(original, quantise(original + s * steps)) for s in np.linspace(0.3, 1.5, 400)]
    assert abs(achieved - 33.0) <= min(abs(p - 33.0) for p in scan) + 1e-9


def test_sign_pgd_stays_in_the_ball_and_lowers_the_loss():
    from benchmarks.baselines import sign_pgd

    artwork = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    goal = torch.zeros_like(artwork)

    def loss_of(x: torch.Tensor) -> torch.Tensor:
        return ((x - goal) ** 2).mean()

    eps = 4 / 255
    delta = sign_pgd(artwork, loss_of, eps, steps=10)
    assert float(delta.abs().max()) <= eps + 1e-6
    assert float(((artwork + delta).clamp(0, 1) - (artwork + delta)).abs().max()) == 0
    assert float(loss_of(artwork + delta)) < float(loss_of(artwork))
    pushed = sign_pgd(artwork, loss_of, eps, steps=10, maximise=True)
    assert float(loss_of(artwork + pushed)) > float(loss_of(artwork))


def test_cosine_agreement_and_finiteness_checks():
    from benchmarks.run import check_finite
    from benchmarks.strength import cosine_agreement

    same = cosine_agreement([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]])
    assert same["pairs"] == [1.0, 1.0, 1.0] and same["mean"] == 1.0
    mixed = cosine_agreement([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    assert mixed["pairs"] == [-1.0, 0.0, 0.0] and mixed["mean"] == pytest.approx(-1 / 3, abs=1e-4)
    assert check_finite({"a": [1.0, float("nan")], "b": {"c": float("inf")}, "d": None}) == ["results.a[1]", "results.b.c"]


def test_painting_loader_and_purifications_keep_shape():
    from benchmarks.data import load_painting, purifications

    if not ART.is_dir():
        pytest.skip("../shared/art is missing")
    image = load_painting("the_scream_munch_1893.jpg", 96)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8
    original = image.astype(np.float32) / 255
    for name, purify in purifications(["jpeg75", "resize0.5", "noise0.05+resample", "blur1"]).items():
        out = purify(original, np.random.default_rng(0))
        assert out.shape == original.shape and 0 <= out.min() and out.max() <= 1, name
        if name != "clean":
            assert float(np.abs(out - original).mean()) > 1e-4, name
    with pytest.raises(ValueError, match="unknown purification"):
        purifications(["jpeg42"])


def test_sweep_keeps_sizes_finished_by_an_interrupted_run():
    from dataclasses import replace

    from benchmarks.config import CONFIGS
    from benchmarks.scale import run_sweep

    kept = {"side": 64, "seconds": 1.5, "peak_rss_mb": 600.0}
    messages: list[str] = []
    rows = run_sweep(replace(CONFIGS["small"], sweep_sides=(64,)), "ink-hatching", messages.append, done=[kept])
    assert rows == [kept] and "kept" in messages[0]


def test_report_only_needs_saved_results(tmp_path, fixative_home, monkeypatch):
    from benchmarks.run import main

    # main() turns protect()'s own report off for the process; keep that inside this test
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")
    assert main(["--size", "small", "--out", str(tmp_path), "--report-only"]) == 2


def test_mimic_goals_pass_and_fail_on_the_numbers():
    from benchmarks.mimic import goals, section

    def run(gain512: float, ratio: float, held: float) -> dict:
        return {"file_psnr": 35.6, "file_ssim": 0.97, "summary": "line", "held_out": ["taesana"],
                "gain": {"resize512": gain512, "resize512+jpeg75": 5.5},
                "shift": {"resize512+jpeg75|taef2": ratio, "resize512+jpeg75|taesana": held},
                "seconds": 1.0, "steps": 3, "dtype": "float32"}

    mimic = {"side": 96, "model": "taef2", "held_out": ["taesana"], "ceiling_steps": 2,
             "paintings": {"a.jpg": {"default": run(8.5, 3.2, 1.6), "ceiling": run(10.0, 4.0, 2.0)},
                           "b.jpg": {"default": run(7.9, 2.9, 1.4), "ceiling": run(10.0, 4.0, 2.0)}},
             "ladder": {"default": run(8.5, 3.2, 1.6)}}
    result = {(g["painting"], g["goal"].split(" ≥")[0]): g["passed"] for g in goals(mimic)}
    assert result[("a.jpg", "gain after resize512")] and not result[("b.jpg", "gain after resize512")]
    assert result[("a.jpg", "latent shift vs noise (taesana (held out), resize512+jpeg75)")]
    assert not result[("b.jpg", "latent shift vs noise (taef2, resize512+jpeg75)")]
    assert not result[("b.jpg", "latent shift vs noise (taesana (held out), resize512+jpeg75)")]
    markdown = section(mimic)
    assert "| resize512 | +8.50 | +10.00 | 85% |" in markdown and "**FAIL**" in markdown


def test_ceiling_rounding_ends_under_the_floor_even_at_one_level_changes():
    """±1 level on most pixels and ±4 on a tenth sit below a 46 dB floor; shrinking the rounded image by
    0.97 rounds back to the same image forever, so the unrounded change must shrink instead."""
    from benchmarks.mimic import _rounded_within_floor
    from fixative import mimicry

    rng = np.random.default_rng(0)
    original = np.round(rng.random((32, 32, 3)) * 255) / 255
    original = np.clip(original, 4 / 255, 251 / 255)  # no clipping at 0 or 1 muddles the levels
    change = rng.choice([-1.0, 1.0], size=original.shape) * np.where(rng.random(original.shape) < 0.1, 4, 1) / 255
    assert mimicry.psnr(original, original + change) < 46.0
    protected = _rounded_within_floor(original, change, 46.0)
    assert mimicry.psnr(original, protected) >= 46.0
    assert np.array_equal(np.round(protected * 255), np.round(protected * 255).astype(np.uint8))
    assert not np.array_equal(protected, original.astype(np.float32))  # shrunk, not thrown away


def _finished_run(tmp_path, gain: dict, shift: dict, seconds: float) -> tuple[str, dict, Path]:
    """A finished full run's JSON with one small painting whose default and ceiling are ``measured``:
    what ``python -m benchmarks.mimic`` adds its extra measurements to."""
    if not (MODELS / "taef2_encoder.pth").exists() or not ART.is_dir():
        pytest.skip("../shared (models/taesd and art) must sit beside the checkout")
    from benchmarks.config import CONFIGS

    name = CONFIGS["small"].paintings[0]
    measured = {"file_psnr": 35.6, "file_ssim": 0.97, "summary": "line", "held_out": ["taesana"],
                "gain": gain, "shift": shift, "seconds": seconds, "steps": 3, "dtype": "float32"}
    path = tmp_path / "full.json"
    path.write_text(json.dumps({"mimic": {
        "side": 48, "model": "taef2", "held_out": ["taesana"], "ceiling_steps": 2, "ladder": {},
        "paintings": {name: {"default": measured, "ceiling": measured}}}}))
    return name, measured, path


def test_report_times_are_added_to_a_finished_run(tmp_path, monkeypatch):
    """``python -m benchmarks.mimic --report-times`` protects the first painting once, times the real
    AI's-eye report at both levels and the section prints them; the run's own metric is not measured again."""
    from benchmarks import mimic as bench_mimic
    from benchmarks import strength

    name, _, path = _finished_run(tmp_path, {"resize512": 9.0}, {"resize512+jpeg75|taef2": 1.2}, seconds=2.0)
    protected_runs = []

    def fake_protect(image: np.ndarray, options: dict, precision_setting: str | None = None):
        protected_runs.append(options)
        stripes = np.where(np.arange(image.shape[1]) % 2, 3, -3)[None, :, None]
        return None, (np.clip(image.astype(int) + stripes, 0, 255) / 255).astype(np.float32), 5.0

    monkeypatch.setattr(strength, "run_fixative", fake_protect)
    monkeypatch.setattr(bench_mimic, "protect_and_measure", lambda *a, **k: pytest.fail("the metric was measured"))
    monkeypatch.setattr(bench_mimic, "ceiling_attack", lambda *a, **k: pytest.fail("no ceiling was asked for"))
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")  # main() sets it for the process; keep it in this test
    assert bench_mimic.main(["--json", str(path), "--report-times"]) == 0
    assert len(protected_runs) == 1 and protected_runs[0]["intensity"] == "default"
    saved = json.loads(path.read_text())["mimic"]
    times = saved["paintings"][name]["report_seconds"]
    assert set(times) == {"summary", "full"} and min(times.values()) > 0
    assert f"the AI's-eye report takes {times['summary']:.1f} s (`summary`" in bench_mimic.section(saved)


def test_ceiling_at_1024_is_added_to_a_finished_run(tmp_path, monkeypatch):
    """``python -m benchmarks.mimic --ceiling-side 1024`` measures the ceiling through that resize,
    stores it beside the run's numbers and the report sets it against the 1024 goals."""
    from benchmarks import mimic as bench_mimic

    name, _, path = _finished_run(tmp_path, {"resize1024": 2.0, "resize1024+jpeg75": 1.0},
                                  {"resize1024+jpeg75|taef2": 1.2}, seconds=1.0)
    calls = []

    def attack(original: np.ndarray, steps: int, long_side: int = 512, **_ignored) -> np.ndarray:
        calls.append((original.shape, steps, long_side))
        stripes = np.where(np.arange(original.shape[1]) % 2, 3, -3)[None, :, None] / 255
        return np.clip(original + stripes, 0, 1).astype(np.float32)

    monkeypatch.setattr(bench_mimic, "ceiling_attack", attack)
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")  # main() sets it for the process; keep it in this test
    assert bench_mimic.main(["--json", str(path), "--steps", "3"]) == 0
    assert calls == [((48, 48, 3), 3, 1024)]
    saved = json.loads(path.read_text())["mimic"]
    entry = saved["paintings"][name]["ceiling_1024"]
    # a 48² square is never upscaled, so its rows are the unresized ones; the numbers are real
    assert entry["steps"] == 3 and entry["gain"] and entry["file_psnr"] < 45
    assert all(math.isfinite(value) for value in entry["gain"].values())
    markdown = bench_mimic.section(saved)
    assert "### Ceiling through the resize to 1024" in markdown and f"| {name} | 3 |" in markdown

    saved["paintings"][name]["ceiling_1024"]["gain"]["resize1024"] = 4.25
    [goal] = [g for g in bench_mimic.goals(saved) if g["goal"].startswith("gain after resize1024 ")]
    assert goal["measured"] == "+2.00 dB (ceiling at 1024: +4.25)" and not goal["passed"]
    del saved["paintings"][name]["ceiling_1024"]
    [goal] = [g for g in bench_mimic.goals(saved) if g["goal"].startswith("gain after resize1024 ")]
    assert goal["measured"] == "+2.00 dB"  # no 1024 ceiling measured: nothing claimed


def test_joint_ceiling_is_added_beside_the_default(tmp_path, monkeypatch):
    """``python -m benchmarks.mimic --joint`` runs one ceiling through the resizes to 512 and 1024 at once,
    stores it as ``ceiling_joint`` and the report counts the goals it and the default meet."""
    from benchmarks import mimic as bench_mimic

    name, _, path = _finished_run(tmp_path, {"resize512": 9.0, "resize512+jpeg75": 5.5, "resize1024": 2.0,
                                             "resize1024+jpeg75": 1.0}, {"resize512+jpeg75|taef2": 1.2}, seconds=1.0)
    calls = []

    def attack(original: np.ndarray, steps: int, long_side: int = 512, **kwargs) -> np.ndarray:
        calls.append((steps, long_side, kwargs.get("joint_sides"), kwargs.get("lean_first")))
        stripes = np.where(np.arange(original.shape[1]) % 2, 3, -3)[None, :, None] / 255
        return np.clip(original + stripes, 0, 1).astype(np.float32)

    monkeypatch.setattr(bench_mimic, "ceiling_attack", attack)
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")
    assert bench_mimic.main(["--json", str(path), "--joint", "--steps", "3"]) == 0
    assert calls == [(3, 1024, (512, 1024), False)]
    saved = json.loads(path.read_text())["mimic"]
    entry = saved["paintings"][name]["ceiling_joint"]
    assert entry["sides"] == [512, 1024] and entry["steps"] == 3 and entry["gain"]
    assert "ceiling_1024" not in saved["paintings"][name]
    entry["seconds"], entry["gain"] = 1.0, {"resize512": 12.0, "resize512+jpeg75": 4.0, "resize1024": 5.5,
                                            "resize1024+jpeg75": 3.5}
    markdown = bench_mimic.section(saved)
    assert "### One cloak for both sizes: the joint ceiling" in markdown
    assert (f"| {name} | equal | 1 | +12.00 / +9.00 | +4.00 / +5.50 | +5.50 / +2.00 | +3.50 / +1.00 | 3 / 2 |"
            in markdown)
    assert set(bench_mimic.ceilings_of({"mimic": saved}, 48)[name]) == {"ceiling", "ceiling_joint"}

    path.write_text(json.dumps({"mimic": saved}))
    assert bench_mimic.main(["--json", str(path), "--joint", "--lean-512", "--steps", "3"]) == 0
    assert calls[-1] == (3, 1024, (512, 1024), True)
    saved = json.loads(path.read_text())["mimic"]
    lean = saved["paintings"][name]["ceiling_joint_lean512"]
    assert lean["lean_512"] and not saved["paintings"][name]["ceiling_joint"]["lean_512"]
    markdown = bench_mimic.section(saved)
    assert f"| {name} | equal | 1 |" in markdown and f"| {name} | leaning to 512 + JPEG |" in markdown
    with pytest.raises(SystemExit):  # leaning without --joint would silently measure another ceiling
        bench_mimic.main(["--json", str(path), "--lean-512"])


def test_jpeg_every_step_ceiling_is_added_and_the_report_takes_the_better_ceiling(tmp_path, monkeypatch):
    """``--ceiling-side 512 --jpeg-every-step`` stores ``ceiling_jpeg`` beside the run's own ceiling; for
    each number the goals and the table show the better of the two, and the shift goal's ceiling is the
    higher shift: a ceiling is the most any measured attack reached."""
    from benchmarks import mimic as bench_mimic

    name, _, path = _finished_run(tmp_path, {"resize512": 9.0, "resize512+jpeg75": 4.0},
                                  {"resize512+jpeg75|taef2": 1.2}, seconds=1.0)
    calls = []

    def attack(original: np.ndarray, steps: int, long_side: int = 512, **kwargs) -> np.ndarray:
        calls.append((steps, long_side, kwargs.get("jpeg_every_step")))
        stripes = np.where(np.arange(original.shape[1]) % 2, 3, -3)[None, :, None] / 255
        return np.clip(original + stripes, 0, 1).astype(np.float32)

    monkeypatch.setattr(bench_mimic, "ceiling_attack", attack)
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")
    assert bench_mimic.main(["--json", str(path), "--ceiling-side", "512", "--jpeg-every-step", "--steps", "3"]) == 0
    assert calls == [(3, 512, True)]
    saved = json.loads(path.read_text())["mimic"]
    entry = saved["paintings"][name]
    assert entry["ceiling_jpeg"]["steps"] == 3 and "ceiling_512" not in entry
    entry["ceiling"].update(gain={"resize512": 15.0, "resize512+jpeg75": 5.0}, shift={"resize512+jpeg75|taef2": 2.5})
    entry["ceiling_jpeg"].update(gain={"resize512": 14.0, "resize512+jpeg75": 6.25},
                                 shift={"resize512+jpeg75|taef2": 3.5})
    measured = {g["goal"]: g["measured"] for g in bench_mimic.goals(saved)}
    assert measured["gain after resize512 ≥ 8 dB"] == "+9.00 dB (ceiling at 512: +15.00)"
    assert measured["gain after resize512+jpeg75 ≥ 5 dB"] == "+4.00 dB (ceiling at 512: +6.25)"
    assert measured["latent shift vs noise (taef2, resize512+jpeg75) ≥ 3x"] == "1.20x (ceiling at 512: 3.50x)"
    # the ceilings through both sizes at once say how much of the shift a cloak keeping the 1024 gains reached
    entry["ceiling_joint"] = {**entry["ceiling"], "shift": {"resize512+jpeg75|taef2": 2.25}}
    entry["ceiling_joint_lean512"] = {**entry["ceiling"], "shift": {"resize512+jpeg75|taef2": 2.5}}
    measured = {g["goal"]: g["measured"] for g in bench_mimic.goals(saved)}
    assert (measured["latent shift vs noise (taef2, resize512+jpeg75) ≥ 3x"]
            == "1.20x (ceiling at 512: 3.50x, at 512 and 1024 at once: 2.50x)")
    del entry["ceiling_joint"], entry["ceiling_joint_lean512"]
    markdown = bench_mimic.section(saved)
    assert "| resize512+jpeg75 | +4.00 | +6.25 | 64% |" in markdown and "| resize512 | +9.00 | +15.00 | 60% |" in markdown
    assert "With JPEG in every step (3 steps" in markdown and "latent shift after JPEG taef2 3.50x" in markdown
    assert set(bench_mimic.ceilings_of({"mimic": saved}, 48)[name]) == {"ceiling", "ceiling_jpeg"}


def test_ceiling_attack_can_pass_every_step_through_jpeg(monkeypatch):
    """``jpeg_every_step`` sends the view through the real JPEG in every step; otherwise every other one."""
    if not (MODELS / "taef2_encoder.pth").exists() or not ART.is_dir():
        pytest.skip("../shared (models/taesd and art) must sit beside the checkout")
    from benchmarks import mimic as bench_mimic
    from benchmarks.data import load_painting

    through_jpeg = []

    def counted(images, quality):
        through_jpeg.append(quality)
        return images

    monkeypatch.setattr(bench_mimic, "real_jpeg_straight_through", counted)
    original = load_painting("starry_night_van_gogh_1889.jpg", 48).astype(np.float32) / 255
    bench_mimic.ceiling_attack(original, 4, long_side=32, jpeg_every_step=True)
    assert len(through_jpeg) == 4 and all(60 <= q <= 90 for q in through_jpeg)
    through_jpeg.clear()
    bench_mimic.ceiling_attack(original, 4, long_side=32)
    assert len(through_jpeg) == 2


@pytest.mark.parametrize("lean_first", [False, True])
def test_joint_ceiling_attack_moves_the_latent_at_both_sizes(lean_first):
    """The real joint attack (TAEF2, a few steps on a small crop, through 32 and 64 long side; equal or
    leaning to the first size) stays within the PSNR floor in 8-bit levels and moves the model's latent
    more than equal-PSNR noise at both sizes."""
    if not (MODELS / "taef2_encoder.pth").exists() or not ART.is_dir():
        pytest.skip("../shared (models/taesd and art) must sit beside the checkout")
    from benchmarks.data import load_painting
    from benchmarks.mimic import ceiling_attack
    from fixative import mimicry
    from fixative.budget import BUDGETS

    original = load_painting("starry_night_van_gogh_1889.jpg", 64).astype(np.float32) / 255
    protected = ceiling_attack(original, 6, joint_sides=(32, 64), lean_first=lean_first)
    assert mimicry.psnr(original, protected) >= BUDGETS["default"].min_psnr
    assert np.array_equal(protected * 255, np.round(protected * 255))
    noisy, _ = mimicry.equal_psnr_noise(original, protected)
    models, _ = mimicry.available_models(["taef2"])
    for side in (32, 64):
        seen = [mimicry.resize_long_side(image, side) for image in (original, protected, noisy)]
        clean, cloaked, control = (mimicry.encode_image(models[0], image) for image in seen)
        assert float((cloaked - clean).norm()) > 1.5 * float((control - clean).norm()), side


def test_quality_max_is_added_beside_the_default(tmp_path, monkeypatch):
    """``python -m benchmarks.mimic --quality max`` protects each painting at that quality, measures it
    like the default and the report sets the two side by side; no ceiling is run unless asked."""
    from benchmarks import mimic as bench_mimic
    from benchmarks import strength

    name, measured, path = _finished_run(tmp_path, {"resize512": 9.0, "resize512+jpeg75": 4.0},
                                         {"resize512+jpeg75|taef2": 1.2}, seconds=2.0)
    seen_options = []

    class Stats:
        steps, dtype = 7, "float32"

    class Result:
        stats = Stats()

    def fake_protect(image: np.ndarray, options: dict, precision_setting: str | None = None):
        seen_options.append(options)
        stripes = np.where(np.arange(image.shape[1]) % 2, 3, -3)[None, :, None]
        return Result(), (np.clip(image.astype(int) + stripes, 0, 255) / 255).astype(np.float32), 5.0

    monkeypatch.setattr(strength, "run_fixative", fake_protect)
    monkeypatch.setattr(bench_mimic, "ceiling_attack", lambda *a, **k: pytest.fail("no ceiling was asked for"))
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")  # main() sets it for the process; keep it in this test
    assert bench_mimic.main(["--json", str(path), "--quality", "max"]) == 0
    assert [o["quality"] for o in seen_options] == ["max"] and seen_options[0]["intensity"] == "default"
    saved = json.loads(path.read_text())["mimic"]
    entry = saved["paintings"][name]["quality_max"]
    assert entry["steps"] == 7 and entry["seconds"] == 5.0 and entry["file_psnr"] < 45
    assert all(math.isfinite(value) for value in entry["gain"].values()) and entry["gain"]
    markdown = bench_mimic.section(saved)
    assert "### Quality max: what more search buys" in markdown and f"| {name} | 5 / 2 | 7 / 3 |" in markdown
    entry["gain"].update({"resize512+jpeg75": 4.56, "resize1024": 5.04})
    line = bench_mimic.quality_line(measured, entry)
    assert line == "2.5× the default's time; model: +4.6 dB after resize to 512 + JPEG 75, +5.0 dB at 1024"


def test_latent_warmup_frontier_is_added_beside_the_default(tmp_path, monkeypatch):
    """``python -m benchmarks.mimic --latent-warmup N`` protects each painting with N warm-up steps in
    protect()'s plans (restored afterwards), and the report counts the goals each run meets."""
    from benchmarks import mimic as bench_mimic
    from benchmarks import strength
    from fixative import core

    name, measured, path = _finished_run(tmp_path, {"resize512": 9.0, "resize512+jpeg75": 4.0},
                                         {"resize512+jpeg75|taef2": 1.2}, seconds=2.0)
    warmups_seen = []

    class Result:
        class stats:  # noqa: N801 - stands in for ProtectStats
            steps, dtype = 7, "float32"

    def fake_protect(image: np.ndarray, options: dict, precision_setting: str | None = None):
        warmups_seen.append({p.latent_warmup_steps for t in (core.QUALITY, core.LARGE_FILE_QUALITY) for p in t.values()})
        stripes = np.where(np.arange(image.shape[1]) % 2, 3, -3)[None, :, None]
        return Result(), (np.clip(image.astype(int) + stripes, 0, 255) / 255).astype(np.float32), 5.0

    monkeypatch.setattr(strength, "run_fixative", fake_protect)
    monkeypatch.setattr(bench_mimic, "ceiling_attack", lambda *a, **k: pytest.fail("no ceiling was asked for"))
    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")
    assert bench_mimic.main(["--json", str(path), "--latent-warmup", "10", "--latent-warmup", "20"]) == 0
    assert warmups_seen == [{10}, {20}]
    assert {p.latent_warmup_steps for t in (core.QUALITY, core.LARGE_FILE_QUALITY) for p in t.values()} == {0}
    saved = json.loads(path.read_text())["mimic"]
    frontier = saved["paintings"][name]["frontier"]
    assert sorted(frontier) == ["10", "20"] and frontier["10"]["seconds"] == 5.0
    frontier["10"].update(gain=dict.fromkeys(bench_mimic.GOALS, 9.0), shift={"resize512+jpeg75|taef2": 3.1})
    frontier["20"].update(gain=dict.fromkeys(bench_mimic.GOALS, 2.0), shift={"resize512+jpeg75|taef2": 2.9})
    markdown = bench_mimic.section(saved)
    assert "### The latent-shift frontier" in markdown
    rows = [line for line in markdown.splitlines() if line.startswith(f"| {name} | ") and " of 5 |" in line]
    assert [row.split(" | ")[1] for row in rows] == ["0", "10", "20"]
    assert [row.split(" | ")[-2] for row in rows] == ["1 of 5", "5 of 5", "0 of 5"]
    assert "| 3.10x |" in rows[1]


def test_a_rerun_can_keep_the_ceilings_of_the_finished_run(tmp_path, monkeypatch):
    """``benchmarks.run --keep-ceilings``: Fixative is measured again, the ceilings (which never run
    protect()) are carried over from the finished run, also the ones at 1024; a ceiling of another
    step count is measured again."""
    from dataclasses import replace

    from benchmarks import mimic as bench_mimic
    from benchmarks import strength
    from benchmarks.config import CONFIGS

    name, measured, path = _finished_run(tmp_path, {"resize512": 9.0}, {"resize512|taef2": 1.2}, seconds=2.0)
    finished = json.loads(path.read_text())
    finished["meta"] = {"date": "2026-12-02"}
    finished["mimic"]["paintings"][name]["ceiling_1024"] = {**measured, "steps": 60}
    finished["mimic"]["paintings"][name]["quality_max"] = measured
    config = replace(CONFIGS["small"], mimic_side=48, intensities=("default",))
    kept = bench_mimic.ceilings_of(finished, config.mimic_side)
    assert set(kept[name]) == {"ceiling", "ceiling_1024"}  # quality_max runs protect(): never kept
    assert bench_mimic.ceilings_of(finished, 96) == {}  # squares of another size: nothing to keep

    class Result:
        class stats:  # noqa: N801
            steps, dtype = 7, "float32"

    def fake_protect(image: np.ndarray, options: dict, precision_setting: str | None = None):
        stripes = np.where(np.arange(image.shape[1]) % 2, 3, -3)[None, :, None]
        return Result(), (np.clip(image.astype(int) + stripes, 0, 255) / 255).astype(np.float32), 5.0

    monkeypatch.setattr(strength, "run_fixative", fake_protect)
    monkeypatch.setattr(bench_mimic, "measured_ceiling", lambda *a, **k: pytest.fail("the ceiling was kept"))
    messages: list[str] = []
    config = replace(config, ceiling_steps=measured["steps"])
    mimic = bench_mimic.run_mimic(config, messages.append, kept_ceilings=kept)
    entry = mimic["paintings"][name]
    assert entry["ceiling"] == {"measured_on": "2026-12-02", **measured} and entry["ceiling_1024"]["steps"] == 60
    assert entry["default"]["seconds"] == 5.0 and entry["default"]["steps"] == 7  # measured anew
    assert any("kept from the earlier run" in m for m in messages)
    assert "Ceiling (measured on 2026-12-02, kept by `--keep-ceilings`)" in bench_mimic.section(mimic)

    ceilings = []
    monkeypatch.setattr(bench_mimic, "measured_ceiling", lambda *a, **k: ceilings.append(a[1]) or measured)
    bench_mimic.run_mimic(replace(config, ceiling_steps=5), messages.append, kept_ceilings=kept)
    assert ceilings == [5]


def test_layout_benchmark_small_prints_both_layouts_and_their_agreement():
    """``python -m benchmarks.layout --small`` (CI size) times both layouts of every default encoder."""
    if not (MODELS / "taef2_encoder.pth").exists():
        pytest.skip("../shared/models/taesd is missing")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.layout", "--small"], cwd=REPO, capture_output=True,
                          text=True, timeout=600,
                          env={**_env(), "PYTHONPATH": os.pathsep.join([str(REPO / "engine"), str(REPO)])})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert [row["model"] for row in rows] == ["taef2", "taesana"]
    for row in rows:
        assert row["nchw_s"] > 0 and row["channels_last_s"] > 0 and math.isfinite(row["saving"])
        assert row["gradient_difference"] < 1e-2, row


def test_report_only_keeps_what_another_command_added_meanwhile(tmp_path, fixative_home, monkeypatch):
    """`--report-only` measures nothing, so it must not write back the results it read at its start:
    a ceiling that `benchmarks.mimic` added while the report was drawn (minutes) stays in the JSON."""
    import benchmarks.run as bench_run

    monkeypatch.setenv("FIXATIVE_MIMIC_REPORT", "off")
    json_path = tmp_path / "results.json"
    json_path.write_text(json.dumps({"meta": {}, "mimic": {"paintings": {"a.jpg": {"default": {}}}}}))

    def report_while_a_ceiling_lands(results, out, size):
        on_disk = json.loads(json_path.read_text())
        on_disk["mimic"]["paintings"]["a.jpg"]["ceiling_1024"] = {"steps": 60}
        json_path.write_text(json.dumps(on_disk))
        results["targets"] = [{"name": "t", "passed": True, "measured": "1"}]
        return results["targets"]

    monkeypatch.setattr(bench_run, "write_report", report_while_a_ceiling_lands)
    monkeypatch.setattr(bench_run, "check_finite", lambda results: [])
    assert bench_run.main(["--size", "small", "--out", str(tmp_path), "--json", str(json_path), "--report-only"]) == 0
    saved = json.loads(json_path.read_text())
    assert saved["mimic"]["paintings"]["a.jpg"]["ceiling_1024"] == {"steps": 60}
    assert saved["targets"] == [{"name": "t", "passed": True, "measured": "1"}]


def test_a_bf16_default_is_measured_again_in_float32(tmp_path, monkeypatch):
    """Where the default ran under bf16 autocast, the AI's-eye section runs it again in float32 and
    sets the two side by side (the issue: show that bf16 costs the protection nothing); a float32
    default is not run twice."""
    from dataclasses import replace

    from benchmarks import mimic as bench_mimic
    from benchmarks import strength
    from benchmarks.config import CONFIGS

    name, measured, path = _finished_run(tmp_path, {"resize512": 9.0}, {"resize512|taef2": 1.2}, seconds=2.0)
    calls: list[str | None] = []

    def fake_protect(image: np.ndarray, options: dict, precision_setting: str | None = None):
        calls.append(precision_setting)
        amplitude, dtype = (2, "float32") if precision_setting == "fp32" or not bf16 else (4, "bfloat16 (autocast)")

        class Result:
            class stats:  # noqa: N801
                steps = 7

        Result.stats.dtype = dtype
        stripes = np.where(np.arange(image.shape[1]) % 2, amplitude, -amplitude)[None, :, None]
        return Result(), (np.clip(image.astype(int) + stripes, 0, 255) / 255).astype(np.float32), 3.0 * amplitude

    monkeypatch.setattr(strength, "run_fixative", fake_protect)
    monkeypatch.setattr(bench_mimic, "measured_ceiling", lambda *a, **k: measured)
    config = replace(CONFIGS["small"], mimic_side=48, intensities=("default",))
    bf16 = True
    mimic = bench_mimic.run_mimic(config, lambda message: None)
    assert calls == [None, "fp32"]
    entry = mimic["paintings"][name]
    assert entry["default"]["dtype"].startswith("bfloat16") and entry["default_fp32"]["dtype"] == "float32"
    assert entry["default_fp32"]["seconds"] == 6.0 and entry["default_fp32"]["file_psnr"] > entry["default"]["file_psnr"]
    markdown = bench_mimic.section(mimic)
    assert "### bf16 autocast against float32" in markdown and f"| {name} | 12 / 6 |" in markdown
    difference = entry["default"]["gain"]["resize512"] - entry["default_fp32"]["gain"]["resize512"]
    assert f"resize512 {difference:+.2f} dB" in markdown and "float32 takes 0.50x the time" in markdown

    calls.clear()
    bf16 = False
    mimic = bench_mimic.run_mimic(config, lambda message: None)
    assert calls == [None] and "default_fp32" not in mimic["paintings"][name]
    assert "bf16 autocast against float32" not in bench_mimic.section(mimic)


def test_the_time_target_names_the_float32_time_and_the_reports_cost():
    from benchmarks.report import _precision_note

    bf16 = [{"seconds": 16.0, "dtype": "bfloat16 (autocast)", "seconds_fp32": 26.0, "report_seconds": 12.0},
            {"seconds": 18.0, "dtype": "bfloat16 (autocast)", "seconds_fp32": 28.0}]
    note = _precision_note({"native_bf16": True}, bf16)
    assert note.startswith("bfloat16 (autocast); float32 on the same CPU: 27.0 s")
    assert "the AI's-eye report the plug-ins show adds 12.0 s" in note
    note = _precision_note({"native_bf16": False}, [{"seconds": 30.0, "dtype": "float32"}])
    assert note == "float32; this CPU has no native bf16 (AVX512-BF16/AMX), so fp32 ran"


def test_precision_is_set_for_one_run_only(monkeypatch):
    from benchmarks.strength import precision
    from fixative.autocast import PRECISION_ENV, precision_setting

    monkeypatch.setenv(PRECISION_ENV, "bf16")
    with precision("fp32"):
        assert precision_setting() == "fp32"
    assert precision_setting() == "bf16"
    monkeypatch.delenv(PRECISION_ENV)
    with precision("fp32"):
        assert precision_setting() == "fp32"
    assert PRECISION_ENV not in os.environ
    with precision(None):
        assert PRECISION_ENV not in os.environ
