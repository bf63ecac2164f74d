"""Protection strength: Fixative (each intensity) against the baselines at matched PSNR, the time
Fixative needs to match the naive baseline, and the consistency of latent shifts across paintings.

Every method is measured the same way (``fixative.evaluate`` with real JPEG, resampling, noise and
blur), toward the same target: the built-in style Fixative picks for the first painting.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from unittest import mock

import numpy as np
import torch

from benchmarks.baselines import BASELINES, run_baseline, texture_pattern, to_tensor
from benchmarks.config import BenchConfig
from benchmarks.data import load_painting, purifications
from fixative.autocast import PRECISION_ENV
from fixative.evaluate import evaluate, make_target
from fixative.models.registry import load_encoder
from fixative.targets import encode
from fixative.views import whole_view

MODEL = "taef2"
Log = Callable[[str], None]


def fixative_options(style: str, intensity: str, quality: str, steps: int | None) -> dict:
    options = {"models": [MODEL], "target_style": style, "intensity": intensity, "quality": quality,
               "device": "cpu", "seed": 0}
    if steps is not None:
        options["steps"] = steps
    return options


def precision(value: str | None) -> contextlib.AbstractContextManager:
    """``FIXATIVE_PRECISION`` (fixative.autocast) set to ``value`` for one run; None leaves it as it is."""
    return contextlib.nullcontext() if value is None else mock.patch.dict(os.environ, {PRECISION_ENV: value})


def ran_bf16(result) -> bool:  # noqa: ANN001 - ProtectResult
    """Whether the run's optimisation used bf16 autocast (then the benchmarks time a float32 run too)."""
    return str(result.stats.dtype).startswith("bfloat16")


def run_fixative(image: np.ndarray, options: dict, precision_setting: str | None = None):  # noqa: ANN201
    """protect() with wall time; returns (result, protected float image, seconds).
    ``precision_setting``: 'fp32' or 'bf16' for this run only (default: the machine's choice)."""
    from fixative import protect

    with precision(precision_setting):
        started = time.perf_counter()
        result = protect(image, options)
        seconds = time.perf_counter() - started
    return result, np.asarray(result.image, dtype=np.float32) / 255, seconds


def time_protect_report(original: np.ndarray, protected: np.ndarray, level: str = "summary") -> float:
    """Seconds the AI's-eye report of a protect run takes at ``level`` (``fixative.mimicry.report_for``,
    which the benchmarks switch off in their timed runs, switched on for this call): the artist waits
    for it too."""
    from fixative import mimicry

    with mock.patch.dict(os.environ, {mimicry.REPORT_ENV: "on"}):
        mimicry.available_models([MODEL])  # loaded once per process, as in the engine: not part of the time
        started = time.perf_counter()
        report, summary = mimicry.report_for(original, protected, [MODEL], level)
        seconds = time.perf_counter() - started
    if report is None:
        raise RuntimeError(f"the protect report failed: {summary}")
    return seconds


def measure(original: np.ndarray, protected: np.ndarray, style: str, purify: dict,
            with_shift: bool = True, shift_everywhere: bool = False) -> dict:
    """Closing fraction f toward the shared target per purification, robust f (the minimum over
    purifications), image quality, and the relative latent shift ‖E(x′)−E(x)‖/‖E(x)‖ (clean only,
    unless ``shift_everywhere``: then under every purification too, and its minimum)."""
    toward = evaluate(original, protected, target=f"style:{style}", models=[MODEL], purifications=purify)
    out = {"psnr": toward.psnr, "ssim": toward.ssim, "lpips": toward.lpips,
           "f": {name: values[MODEL] for name, values in toward.closing.items()},
           "robust_f": toward.robust[MODEL]}
    if with_shift:
        where = purify if shift_everywhere else {"clean": purify["clean"]}
        shift = evaluate(original, protected, target=None, models=[MODEL], purifications=where)
        out["shift"] = {name: values[MODEL] for name, values in shift.closing.items()}
        if shift_everywhere:
            out["robust_shift"] = shift.robust[MODEL]
        out["shift_vector"] = channel_shift(original, protected)
    return out


@torch.no_grad()
def channel_shift(original: np.ndarray, protected: np.ndarray) -> list[float]:
    """Per-channel mean of E(x′) − E(x): the global direction the protection moves the latent."""
    model = load_encoder(MODEL, "cpu", torch.float32)
    h, w = original.shape[:2]
    view = whole_view(h, w, 512 * 512, model.downscale)
    difference = encode(model, view.render(to_tensor(protected))) - encode(model, view.render(to_tensor(original)))
    return [round(float(v), 6) for v in difference.mean(dim=(0, 2, 3))]


@torch.no_grad()
def target_latent(original: np.ndarray, style: str) -> torch.Tensor:
    """The shared target at native resolution, exactly as ``evaluate`` defines it for 'clean'."""
    model = load_encoder(MODEL, "cpu", torch.float32)
    h, w = original.shape[:2]
    view = whole_view(h, w, h * w, model.downscale)
    artwork = to_tensor(original)
    goal = make_target(f"style:{style}", h, w)
    goal.prepare(model, artwork, view)
    return goal.latent(model, view, view.render(artwork))


def cosine_agreement(vectors: list[list[float]]) -> dict:
    """Pairwise cosines of latent-shift directions, and their mean."""
    pairs = []
    for a, b in itertools.combinations(vectors, 2):
        va, vb = np.asarray(a, np.float64), np.asarray(b, np.float64)
        denominator = float(np.linalg.norm(va) * np.linalg.norm(vb))
        pairs.append(float(va @ vb) / denominator if denominator > 0 else 0.0)
    return {"pairs": [round(p, 4) for p in pairs], "mean": round(float(np.mean(pairs)), 4) if pairs else math.nan}


def style_of(target_description: str) -> str:
    """'style:NAME' (from ProtectStats.target) → NAME."""
    if not target_description.startswith("style:"):
        raise RuntimeError(f"expected a built-in style target, got '{target_description}'")
    return target_description.split(":", 1)[1]


def run_strength(config: BenchConfig, image_dir: Path, log: Log, done: dict | None = None,
                 save: Callable[[dict], None] | None = None) -> dict:
    """``done``: a partial result from an interrupted run (paintings already measured are kept);
    ``save`` is called with the partial result after each painting."""
    from fixative.preview import make_preview

    purify = purifications(list(config.purifications))
    model = load_encoder(MODEL, "cpu", torch.float32)  # loaded once, outside every timed run
    done = done or {}
    style = done.get("style", "auto")
    paintings: dict[str, dict] = dict(done.get("paintings", {}))
    ladder: dict = done.get("ladder", {})
    previews: list[str] = list(done.get("previews", []))
    for index, name in enumerate(config.paintings):
        if name in paintings:
            log(f"{name}: kept from the interrupted run")
            continue
        image = load_painting(name, config.side)
        original = image.astype(np.float32) / 255
        methods: dict[str, dict] = {}
        intensities = config.intensities if index == 0 else ("default",)
        for intensity in sorted(intensities, key=lambda i: i != "default"):
            options = fixative_options(style, intensity, config.quality, config.fixative_steps)
            result, protected, seconds = run_fixative(image, options)
            if style == "auto":
                style = style_of(result.stats.target)
                log(f"target style (auto-picked for {name}): {style}")
            methods[f"fixative-{intensity}"] = {"seconds": round(seconds, 3), "steps": result.stats.steps,
                                                "dtype": result.stats.dtype,
                                                **measure(original, protected, style, purify)}
            if intensity == "default" and ran_bf16(result):  # the issue asks for the fp32 time too
                _, _, fp32_seconds = run_fixative(image, options, "fp32")
                methods["fixative-default"]["seconds_fp32"] = round(fp32_seconds, 3)
                log(f"{name} fixative-default in float32: {fp32_seconds:.1f}s")
            if intensity == "default" and index == 0:
                methods["fixative-default"]["report_seconds"] = round(time_protect_report(original, protected), 3)
            log(f"{name} fixative-{intensity}: {seconds:.1f}s, robust f "
                f"{methods[f'fixative-{intensity}']['robust_f']:.3f}, PSNR {result.stats.psnr:.2f}")
            if intensity == "default":
                preview = image_dir / f"bench-preview-{Path(name).stem.split('_')[0]}.png"
                save_small_png(make_preview(result, height=192), preview)
                previews.append(preview.name)
        matched_psnr = methods["fixative-default"]["psnr"]
        goal = target_latent(original, style)
        for baseline in BASELINES:
            run = run_baseline(baseline, model, original, goal, matched_psnr, config.baseline_steps)
            entry = {"seconds": round(run.seconds, 3), "steps": run.steps, "eps_255": round(run.eps * 255, 3),
                     "scale": round(run.scale, 4),
                     **measure(original, run.protected, style, purify, shift_everywhere=baseline == "untargeted")}
            if baseline == "texture":
                own = evaluate(original, run.protected, target=texture_pattern(*original.shape[:2]),
                               models=[MODEL], purifications=purify)
                entry["own_target_f"] = {k: v[MODEL] for k, v in own.closing.items()}
                entry["own_target_robust_f"] = own.robust[MODEL]
            methods[baseline] = entry
            log(f"{name} {baseline}: {run.seconds:.1f}s, robust f {entry['robust_f']:.3f}, "
                f"PSNR {entry['psnr']:.2f} (Fixative {matched_psnr:.2f})")
        if index == 0:
            ladder = time_to_match(image, original, style, methods["naive"], config, purify, log)
        paintings[name] = {"methods": methods}
        if save is not None:
            save({"style": style, "paintings": paintings, "ladder": ladder, "previews": previews})
    consistency = run_consistency(config, paintings, style, log)
    return {"style": style, "paintings": paintings, "ladder": ladder, "consistency": consistency,
            "previews": previews, "purifications": list(purify)}


def time_to_match(image: np.ndarray, original: np.ndarray, style: str, naive: dict, config: BenchConfig,
                  purify: dict, log: Log) -> dict:
    """Fewest Fixative steps (quality fast) whose robust f reaches the naive baseline's, and the time."""
    tries = []
    reached = None
    for steps in config.ladder:
        _, protected, seconds = run_fixative(image, fixative_options(style, "default", "fast", steps))
        robust = measure(original, protected, style, purify, with_shift=False)["robust_f"]
        tries.append({"steps": steps, "seconds": round(seconds, 3), "robust_f": robust})
        log(f"ladder: {steps} steps, {seconds:.1f}s, robust f {robust:.3f} (naive {naive['robust_f']:.3f})")
        if robust >= naive["robust_f"]:
            reached = tries[-1]
            break
    return {"naive_robust_f": naive["robust_f"], "naive_seconds": naive["seconds"], "tries": tries,
            "reached": reached is not None,
            "seconds": reached["seconds"] if reached else tries[-1]["seconds"],
            "ratio": round((reached["seconds"] if reached else tries[-1]["seconds"]) / naive["seconds"], 4)}


def run_consistency(config: BenchConfig, paintings: dict, style: str, log: Log) -> dict:
    """Agreement of the latent-shift directions of three paintings protected toward one style."""
    out: dict[str, dict] = {}
    if config.consistency_paintings:
        vectors = []
        for name in config.consistency_paintings:
            image = load_painting(name, config.consistency_side)
            options = fixative_options(style, "default", config.quality, config.fixative_steps)
            _, protected, _ = run_fixative(image, options)
            vectors.append(channel_shift(image.astype(np.float32) / 255, protected))
        out["fixative-default"] = {"paintings": list(config.consistency_paintings),
                                   **cosine_agreement(vectors)}
    else:
        names = list(paintings)
        for method in paintings[names[0]]["methods"]:
            having = [n for n in names if method in paintings[n]["methods"]]
            if len(having) >= 3:
                vectors = [paintings[n]["methods"][method]["shift_vector"] for n in having]
                out[method] = {"paintings": having, **cosine_agreement(vectors)}
    for method, agreement in out.items():
        log(f"consistency {method}: mean cosine {agreement['mean']:.3f}")
    return out


def save_small_png(image, path: Path, limit: int = 190_000) -> None:  # noqa: ANN001 - PIL image
    """Save as an adaptive-palette PNG, shrinking until the file is under ``limit`` bytes."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
        if path.stat().st_size <= limit or image.height < 64:
            return
        image = image.resize((int(image.width * 0.85), int(image.height * 0.85)), Image.Resampling.LANCZOS)
