"""protect(): the one pure core every front end calls (CLI, engine server, batch, plug-ins via server).

Algorithm, in words:
1. Pick the target(s): what the encoder should see (``fixative.targets``).
2. Optimise a full-resolution perturbation δ with Adam. Each step draws views the way a mimic's
   pipeline would see the image (native crops and resizes to training buckets, ``fixative.views``),
   passes them through sampled lossy purifications (JPEG, resize, blur, noise,
   ``fixative.transforms``, then a real JPEG: on every view by default, as platforms re-encode what
   they host) and moves every encoder's latent: toward its target latent and away from the clean
   view's latent (``fixative.objectives``: the mimic's model learns what the latent shows, so the
   push is what protects). Half of the push is measured on the decoded view D(E(·)), what a model
   trained on the latents draws, so it moves the latent where the decoder renders the change. Each
   model's terms are normalised by its starting distance, so ensembles weigh models equally.
   Forward passes run under bf16 autocast where the CPU has native bf16 (``fixative.autocast``).
   The gradient is smoothed slightly before the Adam step, which favours a perturbation with
   more low-frequency content: that part survives downscaling and noise (``fixative.optimizer``).
3. After each step δ is clipped to the perceptual budget (texture-masked L∞, PSNR floor), at the end
   shrunk as little as the SSIM/PSNR floors allow, also after rounding to the output's depth (``fixative.budget``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch

from fixative import mimicry
from fixative.autocast import autocast_context, use_cpu_autocast
from fixative.budget import BUDGETS, Budget, allowed_change, enforce_floors, round_within_floor
from fixative.device import pick_device
from fixative.errors import BadImage, BadOptions, Cancelled
from fixative.metrics import closing_fraction, lpips_distance, psnr_torch, ssim_torch
from fixative.models.base import ImageEncoder
from fixative.models.registry import load_encoder
from fixative.objectives import (
    Objective,
    current_objective,
    decoded_push_loss,
    maybe_real_jpeg,
    push_loss,
)
from fixative.optimizer import PerturbationOptimizer
from fixative.options import ProtectOptions, Quality
from fixative.pixels import MIN_SIDE, Pixels
from fixative.result import Progress, ProtectResult, ProtectStats
from fixative.targets import (
    ImageTarget,
    LatentCache,
    StyleStatsTarget,
    Target,
    encode,
    pick_auto_style,
)
from fixative.transforms import ROBUSTNESS, Purification, apply_chain
from fixative.views import TRAINING_AREAS, View, ViewSampler, whole_view

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SearchPlan:
    steps: int
    """Minimum steps; large images get more, so every scale's pixels are visited ``passes`` times."""
    passes: float
    views_per_step: int
    view_px_cpu: int
    view_px_gpu: int
    latent_warmup_steps: int = 0
    """Steps run first, before the sampled views, on the whole image at the 512 training bucket through
    real JPEG, pushing the latent only (no decoded push, no purification chain): what the latent-shift
    ceiling does. They raise the TAEF2 latent shift after JPEG at 512 and cost the gains at 1024, so no
    quality uses them: the benchmark's frontier measures the trade (docs/metric.md, "Buying latent shift
    with warm-up steps")."""

    def steps_for(self, sampler: ViewSampler) -> int:
        sampled = max(self.steps, math.ceil(self.passes * sampler.views_for_one_pass() / self.views_per_step))
        return self.latent_warmup_steps + sampled


QUALITY: dict[Quality, SearchPlan] = {
    "fast": SearchPlan(steps=12, passes=1, views_per_step=1, view_px_cpu=256, view_px_gpu=512),
    "default": SearchPlan(steps=24, passes=2, views_per_step=2, view_px_cpu=256, view_px_gpu=768),
    "max": SearchPlan(steps=100, passes=5, views_per_step=3, view_px_cpu=384, view_px_gpu=1024),
}
LARGE_FILE_SIDE = 768
"""A file longer than this is downscaled by a mimic training at 512 (and bucketed at 1024)."""
LARGE_FILE_QUALITY: dict[Quality, SearchPlan] = {
    "default": replace(QUALITY["default"], steps=30, views_per_step=1, view_px_cpu=512),
}
"""On CPU, large files get 30 steps of one 512² view instead of two 256² ones: twice the pixels per
step, and the 512 training bucket seen whole. Measured on the 1024² benchmark paintings over three
seeds: +0.25 dB after resize to 512 + JPEG 75 and +0.3–0.5 dB at 1024, in twice the time
(docs/metric.md). Files up to 768 px keep the quality's own plan, 24 steps since the decoded push
doubled a step's cost (a 512² protect stays within the 30 s speed target)."""


def search_plan(quality: Quality, height: int, width: int, on_cpu: bool) -> SearchPlan:
    """The search plan for an image: the quality's, or on CPU its large-file plan when it has one."""
    if on_cpu and max(height, width) > LARGE_FILE_SIDE and quality in LARGE_FILE_QUALITY:
        return LARGE_FILE_QUALITY[quality]
    return QUALITY[quality]


DECODED_CACHE_VIEWS = 32
"""Decoded clean views kept (a large file's default pass has 5 distinct views, a 4096² one more)."""
MAIN_VIEW_AREA = 512 * 512
"""Closing fractions in the stats are measured on the whole image scaled to at most this area."""
STRONG_VIEW_JITTER = 0.1
"""Strong robustness splits each view scale into 0.9× and 1.1× of it (a mimic's resize targets vary)."""


def _as_float_image(image: Any) -> np.ndarray:
    return Pixels.from_input(image).colour


def build_targets(options: ProtectOptions, pixels: Pixels, model: ImageEncoder, artwork: torch.Tensor,
                  main_view: View, style_image: Any | None, anchor_images: list[Any] | None,
                  device: torch.device) -> list[tuple[str, Target]]:
    """(label, target) pairs for the mode: 'style', 'poison' or both."""
    targets: list[tuple[str, Target]] = []
    if options.mode in ("style", "both"):
        if style_image is not None:
            targets.append(("style", StyleStatsTarget(_as_float_image(style_image), "user style image")))
        elif options.pipeline:
            from fixative.targets.diffusion import img2img_target

            style = options.target_style if options.target_style != "auto" else "a distant art movement"
            rendered = img2img_target(options.pipeline, pixels.colour, style, options.seed, str(device))
            targets.append(("style", ImageTarget(rendered, f"img2img:{style}", pixels.height, pixels.width)))
        else:
            name = options.target_style
            if name == "auto":
                name, _ = pick_auto_style(model, artwork, main_view)
            targets.append(("style", StyleStatsTarget.builtin_style(name)))
    if options.mode in ("poison", "both"):
        if anchor_images:
            pick = np.random.default_rng(options.seed).integers(0, len(anchor_images))
            anchor = _as_float_image(anchor_images[int(pick)])
            label = f"anchor:{options.target_concept or 'image'}"
            targets.append(("poison", ImageTarget(anchor, label, pixels.height, pixels.width)))
        elif options.pipeline and options.target_concept:
            from fixative.targets.diffusion import text2image_anchor

            anchor = text2image_anchor(options.pipeline, options.target_concept, options.seed,
                                       pixels.height, pixels.width, str(device))
            targets.append(("poison", ImageTarget(anchor, f"text2image:{options.target_concept}",
                                                  pixels.height, pixels.width)))
        else:
            raise BadOptions("poison mode needs an anchor image of the target concept (--anchor) or a "
                             "diffusers text-to-image pipeline (--pipeline) plus --target-concept")
    return targets


REPORT_TIME_RATIO = {True: 1.1, False: 0.55}
"""Seconds the float32 AI's-eye report spends per measured pixel (``mimicry.measured_pixels``), as a
multiple of an optimisation step's seconds per view pixel, with bf16 autocast steps (True) or not.
Measured on a 2-core AVX512-BF16 CPU, default protect of a 512² painting: 2.4 against bf16 steps,
1.35 against float32 steps (docs/metric.md, "What the report costs"); since the decoded push about
doubled a step's cost per view pixel, the full benchmark's times (512² protect 19.5 s bf16 / 35.6 s
fp32 for 24 steps, report 9.3 s) scale them to 1.1 and 0.55.
Only the ETA and the progress bar's split use it; the report's own progress corrects it, as it must on
a GPU, where the steps are fast and the report still runs on the CPU (``mimicry.available_models``)."""
OPTIMISE_START, OPTIMISE_SPAN = 0.05, 0.87
"""The progress bar: the optimisation runs from 5% over 87% of the bar, less the report's share."""


def _smooth(old: float | None, new: float) -> float:
    return new if old is None else 0.7 * old + 0.3 * new


class _Clock:
    """Progress with an ETA over the whole run: the optimisation's steps and the AI's-eye report after
    them (as long as the optimisation on a 512² file), so the bar does not sit at the end while it runs."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.step_seconds: float | None = None
        self.seconds_per_pixel: float | None = None
        self.steps_timed = 0
        self.report_pixels, self.report_ratio = 0, 1.0
        self.optimise_share = 1.0
        """The optimisation's share of the bar after loading; fixed after the first step."""

    def expect_report(self, pixels: int, ratio: float) -> None:
        """The report will measure ``pixels`` (mimicry.measured_pixels) at ``ratio`` (REPORT_TIME_RATIO)."""
        self.report_pixels, self.report_ratio = pixels, ratio

    def report(self, fraction: float, stage: str, eta: float | None = None) -> None:
        if self.callback is not None:
            self.callback(Progress(fraction=min(1.0, max(0.0, fraction)), stage=stage, eta_s=eta))

    def report_estimate(self) -> float | None:
        """Seconds the AI's-eye report will take, from the steps' measured speed."""
        if self.seconds_per_pixel is None:
            return None
        return self.seconds_per_pixel * self.report_pixels * self.report_ratio

    def tick(self, seconds: float, pixels: int, steps: int) -> None:
        """One optimisation step took ``seconds`` for ``pixels`` view pixels (of ``steps`` in all)."""
        self.steps_timed += 1
        if self.steps_timed == 2:  # the first step warms the kernels up (several times slower): forget it
            self.step_seconds = self.seconds_per_pixel = None
        self.step_seconds = _smooth(self.step_seconds, seconds)
        self.seconds_per_pixel = _smooth(self.seconds_per_pixel, seconds / max(1, pixels))
        if self.steps_timed == 1:  # once, so the bar never moves backwards; a ratio of times, so the
            optimise = steps * self.step_seconds  # warm-up's slowness cancels out of it
            self.optimise_share = optimise / (optimise + (self.report_estimate() or 0.0))

    def optimising(self, step: int, steps: int, stage: str) -> None:
        eta = (steps - step) * (self.step_seconds or 0.0) + (self.report_estimate() or 0.0)
        self.report(OPTIMISE_START + (self.optimise_end - OPTIMISE_START) * step / steps, stage, eta)

    @property
    def optimise_end(self) -> float:
        return OPTIMISE_START + OPTIMISE_SPAN * self.optimise_share

    def measuring(self, stage: str, offset: float) -> None:
        """A short stage between the optimisation and the report (budget check, stats)."""
        self.report(self.optimise_end + offset, stage, self.report_estimate())

    def reporting(self) -> Callable[[float], None]:
        """The report's progress callback: its share of the bar, and an ETA from its own speed."""
        start, low, stage = time.perf_counter(), self.optimise_end + 0.04, "measuring what a mimic's model sees"
        self.report(low, stage, self.report_estimate())

        def on_progress(done: float) -> None:
            spent = time.perf_counter() - start
            self.report(low + (0.99 - low) * done, stage, spent * (1 - done) / done if done > 0 else None)
        return on_progress


def protect(image: Any, options: ProtectOptions | dict | None = None, *, style_image: Any | None = None,
            anchor_images: list[Any] | None = None, progress: ProgressCallback | None = None,
            cancel: Callable[[], bool] | None = None) -> ProtectResult:
    """Return a protected copy of ``image`` (same type, size, mode, dtype; alpha bit-exact).

    ``style_image``: a user style reference (style mode). ``anchor_images``: images of the target
    concept (poison mode). ``progress`` gets Progress(fraction, stage, eta_s); when ``cancel()``
    returns True, raises :class:`fixative.errors.Cancelled` within one step. Pure: no file I/O
    except loading model weights once per process.
    """
    started = time.perf_counter()
    clock = _Clock(progress)
    clock.report(0.0, "loading models")
    options = ProtectOptions.coerce(options)
    cancelled = cancel or (lambda: False)
    pixels = Pixels.from_input(image)
    if min(pixels.height, pixels.width) < MIN_SIDE:
        raise BadImage(f"The image is {pixels.width}×{pixels.height} pixels; Fixative protects images of at "
                       f"least {MIN_SIDE} pixels on each side.")
    device, dtype = pick_device(options.device)
    bf16 = use_cpu_autocast(device, dtype)
    report_pixels = mimicry.report_pixels(pixels.height, pixels.width, options.ai_report)
    clock.expect_report(report_pixels, REPORT_TIME_RATIO[bf16])
    models = [load_encoder(name, str(device), dtype) for name in options.models]
    multiple = max(m.downscale for m in models)
    plan = search_plan(options.quality, pixels.height, pixels.width, on_cpu=device.type == "cpu")
    budget, robustness = BUDGETS[options.intensity], ROBUSTNESS[options.robustness]
    jitter = STRONG_VIEW_JITTER if options.robustness == "strong" else 0.0
    view_px = plan.view_px_cpu if device.type == "cpu" else plan.view_px_gpu
    sampler = ViewSampler(pixels.height, pixels.width, view_px, multiple, jitter, seed=options.seed)
    steps = options.steps or plan.steps_for(sampler)
    rng = np.random.default_rng(options.seed)
    torch.manual_seed(options.seed)
    noise_generator = torch.Generator().manual_seed(options.seed)

    artwork = torch.from_numpy(pixels.colour).permute(2, 0, 1)[None].contiguous().to(device)
    main_view = whole_view(pixels.height, pixels.width, MAIN_VIEW_AREA, multiple)
    clock.report(0.02, "choosing the target")
    targets = build_targets(options, pixels, models[0], artwork, main_view, style_image, anchor_images, device)
    if cancelled():
        raise Cancelled("protection was cancelled")
    weights = current_objective()
    if options.robustness == "off":  # the image exactly as it is: no re-encode either
        weights = replace(weights, real_jpeg_probability=0.0)
    objective = _Objective(models, targets, artwork, main_view, weights, bf16,
                           jpeg_rng=np.random.default_rng(options.seed + 1))  # own stream: views stay as before
    optimizer = PerturbationOptimizer(artwork, allowed_change(artwork, budget), budget, steps)
    warmup = min(plan.latent_warmup_steps, steps)
    bucket = whole_view(pixels.height, pixels.width, TRAINING_AREAS[0], multiple)
    for step in range(1, steps + 1):
        if cancelled():
            raise Cancelled("protection was cancelled")
        step_start = time.perf_counter()
        if step <= warmup:
            drawn = [(bucket, [], True)]
        else:
            drawn = [(sampler.sample(rng), robustness.sample(rng), False) for _ in range(plan.views_per_step)]
        step_loss = sum(objective.add_gradient(optimizer, view, chain, noise_generator, latent_only=latent_only)
                        for view, chain, latent_only in drawn) / len(drawn)
        views = [view for view, _, _ in drawn]
        optimizer.step(step, _covering_region(views))
        clock.tick(time.perf_counter() - step_start, sum(v.out_h * v.out_w for v in views), steps)
        clock.optimising(step, steps, f"optimising (step {step}/{steps}, loss {step_loss:.3f})")

    clock.measuring("checking the perceptual budget", 0.0)
    delta, _ = enforce_floors(artwork, optimizer.delta, budget)
    protected_float = round_within_floor(
        pixels.colour, delta, budget,
        lambda d: pixels.restored_float((artwork + d).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()))
    protected_tensor = torch.from_numpy(protected_float).permute(2, 0, 1)[None].to(device)

    clock.measuring("measuring the protection", 0.02)
    stats = _stats(options, pixels, artwork, protected_tensor, objective, budget, started,
                   steps=steps, device=device, dtype=dtype)
    if report_pixels:
        stats.mimicry, stats.summary = mimicry.report_for(pixels.colour, protected_float, options.models,
                                                          options.ai_report, clock.reporting())
    result = ProtectResult(image=pixels.restore(protected_float), stats=stats,
                           original_rgb=pixels.colour, protected_rgb=protected_float)
    result.renderer = _Renderer(models, targets, artwork, protected_tensor, main_view)
    clock.report(1.0, "done", 0.0)
    return result


class _Objective:
    """The loss over views of the artwork: for each (model, target) pair, the latent distance to its
    goal (weighted by ``weights.pull_weight(label)``) minus the distance from the clean view's latent
    (``weights.push_weight``; fixative.objectives).

    Each pair's terms are divided by its distance at the start (on the main view), so every model and
    target weighs the same in an ensemble.
    """

    def __init__(self, models: list[ImageEncoder], targets: list[tuple[str, Target]], artwork: torch.Tensor,
                 main_view: View, weights: Objective, bf16: bool, jpeg_rng: np.random.Generator) -> None:
        self.models, self.targets, self.artwork, self.main_view = models, targets, artwork, main_view
        self.weights, self.bf16, self.jpeg_rng = weights, bf16, jpeg_rng
        self.start_distance: dict[tuple[str, str], float] = {}
        self.clean_main = main_view.render(artwork)
        with torch.no_grad():  # the main view's clean latent is encoded once per model and reused
            self.clean_main_latent = {model.name: encode(model, self.clean_main) for model in models}
            for model in models:
                clean_latent = self.clean_main_latent[model.name]
                for label, target in targets:
                    target.prepare(model, artwork, main_view, clean_latent)
                    goal = target.latent(model, main_view, self.clean_main, clean_latent)
                    self.start_distance[(model.name, label)] = max(float(((clean_latent - goal) ** 2).mean()), 1e-8)
        # Clean latents of views, encoded once per model (tilings revisit crops on every pass). A crop is
        # encoded on its own: slicing the whole image's latent would ask the perturbation to undo the
        # crop's border effects (measured 3x worse at the 1024² bucket). A 256² view's latent is 128 KiB.
        self.clean_latents = LatentCache(512)
        self.clean_decoded = LatentCache(DECODED_CACHE_VIEWS)
        """Decoded clean views (the decoded push's reference), fewer: a 512² one takes 3 MiB."""

    def add_gradient(self, optimizer: PerturbationOptimizer, view: View, chain: list[Purification],
                     noise_generator: torch.Generator, latent_only: bool = False) -> float:
        """Add the loss gradient of one purified view to ``optimizer.grad``; returns the loss.
        ``latent_only``: the whole push on the latent, none on the decoded view."""
        box = (slice(None), slice(None), slice(view.top, view.bottom), slice(view.left, view.right))
        local = View(0, 0, view.bottom - view.top, view.right - view.left, view.out_h, view.out_w)
        piece = optimizer.delta[box].detach().clone().requires_grad_(True)
        clean = self.artwork[box]
        with autocast_context(self.bf16):
            seen = apply_chain(local.render((clean + piece).clamp(0, 1)), chain, noise_generator)
            seen = maybe_real_jpeg(seen, self.weights, self.jpeg_rng)
            clean_view = local.render(clean)
            loss = torch.zeros((), device=self.artwork.device)
            for model in self.models:
                latent = encode(model, seen)
                with torch.no_grad():
                    clean_latent = self.clean_latents.get((model.name, view.key), partial(encode, model, clean_view))
                decoded_share = self.weights.decoded_push_share if model.has_decoder and not latent_only else 0.0
                if decoded_share > 0:
                    decoded = _decode(model, latent)
                    with torch.no_grad():
                        clean_decoded = self.clean_decoded.get((model.name, view.key),
                                                               partial(_decode, model, clean_latent))
                for label, target in self.targets:
                    goal = target.latent(model, view, clean_view, clean_latent)
                    scale = self.start_distance[(model.name, label)]
                    loss = loss + self.weights.pull_weight(label) * ((latent - goal) ** 2).mean() / scale
                    push = push_loss(latent, clean_latent, scale)
                    if decoded_share > 0:
                        push = (1 - decoded_share) * push + decoded_share * decoded_push_loss(push, decoded,
                                                                                              clean_decoded)
                    loss = loss + self.weights.push_weight * push
            loss = loss / (len(self.models) * len(self.targets))
        loss.backward()
        optimizer.grad[box] += piece.grad
        return float(loss.detach())

    @torch.no_grad()
    def closing(self, protected: torch.Tensor) -> dict[str, float]:
        """Closing fraction per model (and target, when there are two) on the main view."""
        closing: dict[str, float] = {}
        adv_main = self.main_view.render(protected)
        for model in self.models:
            clean_latent = self.clean_main_latent[model.name]
            adv_latent = encode(model, adv_main)
            for label, target in self.targets:
                key = model.name if len(self.targets) == 1 else f"{model.name}:{label}"
                goal = target.latent(model, self.main_view, self.clean_main, clean_latent)
                closing[key] = round(closing_fraction(adv_latent, clean_latent, goal), 4)
        return closing


def _decode(model: ImageEncoder, latent: torch.Tensor) -> torch.Tensor:
    """D(latent) as float32; the latent is cast to the model's dtype (bf16 / fp16 on a GPU), differentiably."""
    return model.decode(latent.to(next(model.parameters()).dtype)).float()


def _covering_region(views: list[View]) -> tuple[slice, slice, slice, slice]:
    """The smallest box holding every view: the region this step's optimiser update touches."""
    top, left = min(v.top for v in views), min(v.left for v in views)
    bottom, right = max(v.bottom for v in views), max(v.right for v in views)
    return (slice(None), slice(None), slice(top, bottom), slice(left, right))


def _stats(options: ProtectOptions, pixels: Pixels, artwork: torch.Tensor, protected: torch.Tensor,
           objective: _Objective, budget: Budget, started: float, *, steps: int, device: torch.device,
           dtype: torch.dtype) -> ProtectStats:
    """What the run did and how visible it is, measured on the final (rounded) pixels."""
    closing = objective.closing(protected)
    original_cpu, protected_cpu = artwork.cpu(), protected.cpu()
    as_rgb = (lambda x: x[:, :3]) if pixels.channels == 3 else (lambda x: x.expand(-1, 3, -1, -1))
    return ProtectStats(
        mode=options.mode, steps=steps, seconds=round(time.perf_counter() - started, 3),
        device=str(device), dtype="bfloat16 (autocast)" if objective.bf16 else str(dtype).replace("torch.", ""),
        models=[m.name for m in objective.models],
        width=pixels.width, height=pixels.height, psnr=round(psnr_torch(original_cpu, protected_cpu), 3),
        ssim=round(ssim_torch(original_cpu, protected_cpu), 5),
        lpips=lpips_distance(as_rgb(original_cpu), as_rgb(protected_cpu)),
        linf=round(float((protected_cpu - original_cpu).abs().max()) * 255, 3),
        budget=budget.describe(), closing=closing,
        target=" + ".join(t.description for _, t in objective.targets),
        concept=options.concept, target_concept=options.target_concept,
        options=options.model_dump(),
    )


class _Renderer:
    """Draws the target and the "AI's-eye view" on request (they need a decoder and cost a pass)."""

    def __init__(self, models: list[ImageEncoder], targets: list[tuple[str, Target]], artwork: torch.Tensor,
                 protected: torch.Tensor, main_view: View) -> None:
        self.model = next((m for m in models if m.has_decoder), None)
        self.first_model = models[0]
        self.targets, self.artwork, self.protected, self.main_view = targets, artwork, protected, main_view

    @torch.no_grad()
    def ai_view(self, which: str = "protected", preprocess: str = "resize512") -> np.ndarray | None:
        """D(E(P(x))) at training size: what a mimic's model learns from the file (fixative.mimicry)."""
        if self.model is None:
            return None
        image = self.protected if which == "protected" else self.artwork
        return mimicry.ai_eye_view(self.model, image[0].permute(1, 2, 0).cpu().numpy(), preprocess)

    def target_image(self) -> np.ndarray | None:
        _, target = self.targets[0]
        model = self.model if isinstance(target, StyleStatsTarget) else self.first_model
        if model is None:
            return None
        return target.render(model, self.artwork, self.main_view)
