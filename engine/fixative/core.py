"""protect(): the one pure core every front end calls (CLI, engine server, batch, plug-ins via server).

Algorithm, in words:
1. Pick the target(s): what the encoder should see (``fixative.targets``).
2. Optimise a full-resolution perturbation δ with Adam. Each step draws views the way a mimic's
   pipeline would see the image (native crops and resizes to training buckets, ``fixative.views``),
   passes them through sampled lossy purifications (JPEG, resize, blur, noise,
   ``fixative.transforms``) and pulls every encoder's latent toward its target latent. Each
   model's loss is normalised by its starting distance, so ensembles weigh models equally.
   The gradient is smoothed slightly before the Adam step, which favours a perturbation with
   more low-frequency content: that part survives downscaling and noise (see GRADIENT_SMOOTHING).
3. After each step δ is clipped to the perceptual budget (texture-masked L∞), at the end shrunk
   until the SSIM/PSNR floors hold (``fixative.budget``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import torch
from pydantic import ValidationError

from fixative import mimicry  # mimic hook (issue 13)
from fixative.autocast import autocast_context, use_cpu_autocast  # mimic hook (issue 13)
from fixative.budget import BUDGETS, allowed_change, enforce_floors
from fixative.errors import BadOptions, Cancelled
from fixative.metrics import closing_fraction, lpips_distance, psnr_torch, ssim_torch
from fixative.models.base import ImageEncoder
from fixative.models.registry import load_encoder
from fixative.objectives import current_objective, maybe_real_jpeg, push_loss  # mimic hook
from fixative.options import ProtectOptions
from fixative.pixels import Pixels
from fixative.result import Progress, ProtectResult, ProtectStats
from fixative.targets import (
    ImageTarget,
    LatentCache,
    StyleStatsTarget,
    Target,
    encode,
    pick_auto_style,
)
from fixative.transforms import ROBUSTNESS, apply_chain, gaussian_blur
from fixative.views import View, ViewSampler, whole_view

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True)
class SearchPlan:
    steps: int
    """Minimum steps; large images get more, so every scale's pixels are visited ``passes`` times."""
    passes: float
    views_per_step: int
    view_px_cpu: int
    view_px_gpu: int

    def steps_for(self, sampler: ViewSampler) -> int:
        return max(self.steps, math.ceil(self.passes * sampler.views_for_one_pass() / self.views_per_step))


QUALITY: dict[str, SearchPlan] = {
    "fast": SearchPlan(steps=12, passes=1, views_per_step=1, view_px_cpu=256, view_px_gpu=512),
    "default": SearchPlan(steps=30, passes=2, views_per_step=2, view_px_cpu=256, view_px_gpu=768),
    "max": SearchPlan(steps=100, passes=5, views_per_step=3, view_px_cpu=384, view_px_gpu=1024),
}
MAIN_VIEW_AREA = 512 * 512
"""Closing fractions in the stats are measured on the whole image scaled to at most this area."""
GRADIENT_SMOOTHING = 1.0
"""Gaussian σ (pixels) applied to each step's gradient. Smoothing the gradient (as translation-
invariant attacks do for transfer) steers budget away from pixel-level noise that a 0.5x resize or
added noise erases. Measured on 512² crops with TAEF2 at matched PSNR: robust f (the minimum over
JPEG, resize, noise and blur) 0.075 → 0.084 (Starry Night), 0.094 → 0.111 (The Great Wave);
σ = 1.5 and 2 were worse than none."""


def pick_device(requested: str) -> tuple[torch.device, torch.dtype]:
    """auto: CUDA → MPS → CPU; bf16 on CUDA, fp16 on MPS, fp32 on CPU."""
    if requested in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), torch.bfloat16
    if requested in ("auto", "mps") and getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps"), torch.float16
    if requested not in ("auto", "cpu"):
        raise BadOptions(f"device '{requested}' is not available on this machine; use auto or cpu")
    return torch.device("cpu"), torch.float32


def _as_options(options: ProtectOptions | dict | None) -> ProtectOptions:
    if options is None:
        return ProtectOptions()
    if isinstance(options, ProtectOptions):
        return options
    try:
        return ProtectOptions(**options)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "options"
        raise BadOptions(f"invalid option {where}: {first.get('msg')}") from exc


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


class _Clock:
    """Progress with a smoothed ETA."""

    def __init__(self, callback: ProgressCallback | None) -> None:
        self.callback = callback
        self.start = time.perf_counter()
        self.step_seconds: float | None = None

    def report(self, fraction: float, stage: str, remaining_steps: int | None = None) -> None:
        if self.callback is None:
            return
        eta = None if remaining_steps is None or self.step_seconds is None else remaining_steps * self.step_seconds
        self.callback(Progress(fraction=min(1.0, max(0.0, fraction)), stage=stage, eta_s=eta))

    def tick(self, seconds: float) -> None:
        self.step_seconds = seconds if self.step_seconds is None else 0.7 * self.step_seconds + 0.3 * seconds


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
    options = _as_options(options)
    clock = _Clock(progress)
    cancelled = cancel or (lambda: False)
    pixels = Pixels.from_input(image)
    clock.report(0.0, "loading models")
    device, dtype = pick_device(options.device)
    models = [load_encoder(name, str(device), dtype) for name in options.models]
    multiple = max(m.downscale for m in models)
    plan = QUALITY[options.quality]
    view_px = plan.view_px_cpu if device.type == "cpu" else plan.view_px_gpu
    budget = BUDGETS[options.intensity]
    robustness = ROBUSTNESS[options.robustness]
    jitter = 0.1 if options.robustness == "strong" else 0.0
    sampler = ViewSampler(pixels.height, pixels.width, view_px, multiple, jitter, seed=options.seed)
    steps = options.steps or plan.steps_for(sampler)
    rng = np.random.default_rng(options.seed)
    torch.manual_seed(options.seed)
    noise_generator = torch.Generator().manual_seed(options.seed)
    # --- mimic hook (issue 13): bf16 autocast where the CPU runs it natively; the objective ---
    bf16 = use_cpu_autocast(device, dtype)
    objective = current_objective()
    jpeg_rng = np.random.default_rng(options.seed + 1)  # own stream: the view sequence stays as before
    # --- end mimic hook ---

    h, w, c = pixels.height, pixels.width, pixels.channels
    artwork = torch.from_numpy(pixels.colour).permute(2, 0, 1)[None].contiguous().to(device)
    main_view = whole_view(h, w, MAIN_VIEW_AREA, multiple)
    clock.report(0.02, "choosing the target")
    targets = build_targets(options, pixels, models[0], artwork, main_view, style_image, anchor_images, device)
    if cancelled():
        raise Cancelled("protection was cancelled")

    # Starting distances normalise each (model, target) loss term to 1.
    start_distance: dict[tuple[str, str], float] = {}
    clean_main = main_view.render(artwork)
    with torch.no_grad():  # the main view's clean latent is encoded once per model and reused
        clean_main_latent = {model.name: encode(model, clean_main) for model in models}
        for model in models:
            clean_latent = clean_main_latent[model.name]
            for label, target in targets:
                target.prepare(model, artwork, main_view, clean_latent)
                goal = target.latent(model, main_view, clean_main, clean_latent)
                start_distance[(model.name, label)] = max(float(((clean_latent - goal) ** 2).mean()), 1e-8)

    # Clean latents of views, encoded once per model (tilings revisit crops on every pass). A crop is
    # encoded on its own: slicing the whole image's latent would ask the perturbation to undo the
    # crop's border effects (measured 3x worse at the 1024² bucket). A 256² view's latent is 128 KiB.
    clean_latents = LatentCache(512)
    limit = allowed_change(artwork, budget)  # (1, 1, H, W)
    max_mse = 10 ** (-budget.min_psnr / 10)
    delta = torch.zeros_like(artwork)
    grad = torch.zeros_like(artwork)
    adam_m = torch.zeros_like(artwork)
    adam_v = torch.zeros_like(artwork)
    lr_peak, lr_floor = budget.eps / 2, budget.eps / 10
    squares = 0.0  # running sum of delta², so the PSNR check costs the region, not the image
    step = 0
    for step in range(1, steps + 1):
        if cancelled():
            raise Cancelled("protection was cancelled")
        step_start = time.perf_counter()
        union = [h, w, 0, 0]
        step_loss = 0.0
        for _ in range(plan.views_per_step):
            view = sampler.sample(rng)
            chain = robustness.sample(rng)
            box = (slice(None), slice(None), slice(view.top, view.bottom), slice(view.left, view.right))
            local = View(0, 0, view.bottom - view.top, view.right - view.left, view.out_h, view.out_w)
            piece = delta[box].detach().clone().requires_grad_(True)
            clean = artwork[box]
            with autocast_context(bf16):  # mimic hook (issue 13): the block below was not indented before
                seen = apply_chain(local.render((clean + piece).clamp(0, 1)), chain, noise_generator)
                seen = maybe_real_jpeg(seen, objective, jpeg_rng)  # mimic hook (issue 13)
                clean_view = local.render(clean)
                loss = torch.zeros((), device=device)
                for model in models:
                    latent = encode(model, seen)
                    with torch.no_grad():
                        clean_latent = clean_latents.get((model.name, view.key), partial(encode, model, clean_view))
                    for label, target in targets:
                        goal = target.latent(model, view, clean_view, clean_latent)
                        loss = loss + objective.target_weight * ((latent - goal) ** 2).mean() / start_distance[(model.name, label)]
                        # mimic hook (issue 13): push the mimic's latent away from the clean one
                        loss = loss + objective.push_weight * push_loss(latent, clean_latent,
                                                                        start_distance[(model.name, label)])
                loss = loss / (len(models) * len(targets))
            loss.backward()
            grad[box] += piece.grad
            step_loss += float(loss.detach()) / plan.views_per_step
            union = [min(union[0], view.top), min(union[1], view.left),
                     max(union[2], view.bottom), max(union[3], view.right)]
        # Adam on the region the views touched; untouched pixels keep their state (lazy Adam).
        lr = lr_floor + 0.5 * (lr_peak - lr_floor) * (1 + math.cos(math.pi * (step - 1) / max(1, steps - 1)))
        region = (slice(None), slice(None), slice(union[0], union[2]), slice(union[1], union[3]))
        g = grad[region]
        if GRADIENT_SMOOTHING > 0:
            g.copy_(gaussian_blur(g, GRADIENT_SMOOTHING))
        adam_m[region].mul_(0.9).add_(g, alpha=0.1)
        adam_v[region].mul_(0.99).addcmul_(g, g, value=0.01)
        m_hat = adam_m[region] / (1 - 0.9**step)
        v_hat = adam_v[region] / (1 - 0.99**step)
        d = delta[region]
        region_squares = float((d**2).sum(dtype=torch.float64))
        d.sub_(lr * m_hat / (v_hat.sqrt() + 1e-12))
        bound = limit[region]
        torch.maximum(torch.minimum(d, bound), -bound, out=d)
        d.copy_((artwork[region] + d).clamp(0, 1) - artwork[region])
        g.zero_()
        squares += float((d**2).sum(dtype=torch.float64)) - region_squares  # only the region changed
        if squares / delta.numel() > max_mse:  # stay inside the PSNR floor while optimising, not only at the end
            factor = math.sqrt(max_mse * delta.numel() / squares)
            delta.mul_(factor)
            squares *= factor**2
        clock.tick(time.perf_counter() - step_start)
        clock.report(0.05 + 0.85 * step / steps, f"optimising (step {step}/{steps}, loss {step_loss:.3f})",
                     steps - step)

    clock.report(0.92, "checking the perceptual budget")
    delta, _ = enforce_floors(artwork, delta, budget)
    for _ in range(8):  # rounding to the output's integer depth adds error: keep the PSNR floor after it
        protected_float = pixels.restored_float((artwork + delta).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy())
        mse = float(np.mean((protected_float - pixels.colour) ** 2, dtype=np.float64))
        if mse == 0 or 10 * math.log10(1.0 / mse) >= budget.min_psnr:
            break
        delta = delta * 0.95
    protected_tensor = torch.from_numpy(protected_float).permute(2, 0, 1)[None].to(device)

    clock.report(0.95, "measuring the protection")
    closing: dict[str, float] = {}
    with torch.no_grad():
        adv_main = main_view.render(protected_tensor)
        for model in models:
            clean_latent = clean_main_latent[model.name]
            adv_latent = encode(model, adv_main)
            for label, target in targets:
                key = model.name if len(targets) == 1 else f"{model.name}:{label}"
                goal = target.latent(model, main_view, clean_main, clean_latent)
                closing[key] = round(closing_fraction(adv_latent, clean_latent, goal), 4)

    original_cpu = artwork.cpu()
    protected_cpu = protected_tensor.cpu()
    stats = ProtectStats(
        mode=options.mode, steps=step, seconds=round(time.perf_counter() - started, 3),
        device=str(device), dtype="bfloat16 (autocast)" if bf16 else str(dtype).replace("torch.", ""),  # mimic hook
        models=[m.name for m in models],
        width=w, height=h, psnr=round(psnr_torch(original_cpu, protected_cpu), 3),
        ssim=round(ssim_torch(original_cpu, protected_cpu), 5),
        lpips=lpips_distance(original_cpu[:, :3] if c == 3 else original_cpu.expand(-1, 3, -1, -1),
                             protected_cpu[:, :3] if c == 3 else protected_cpu.expand(-1, 3, -1, -1)),
        linf=round(float((protected_cpu - original_cpu).abs().max()) * 255, 3),
        budget=budget.describe(), closing=closing,
        target=" + ".join(t.description for _, t in targets),
        concept=options.concept, target_concept=options.target_concept,
        options=options.model_dump(),
    )
    # --- mimic hook (issue 13): what a person sees / what the model sees, in the report ---
    clock.report(0.97, "measuring what a mimic's model sees")
    stats.mimicry, stats.summary = mimicry.report_for(pixels.colour, protected_float, options.models)
    # --- end mimic hook ---
    result = ProtectResult(image=pixels.restore(protected_float), stats=stats,
                           original_rgb=pixels.colour, protected_rgb=protected_float)
    result.renderer = _Renderer(models, targets, artwork, protected_tensor, main_view)
    clock.report(1.0, "done", 0)
    return result


class _Renderer:
    """Draws the target and the "AI's-eye view" on request (they need a decoder and cost a pass)."""

    def __init__(self, models: list[ImageEncoder], targets: list[tuple[str, Target]], artwork: torch.Tensor,
                 protected: torch.Tensor, main_view: View) -> None:
        self.model = next((m for m in models if m.has_decoder), None)
        self.first_model = models[0]
        self.targets, self.artwork, self.protected, self.main_view = targets, artwork, protected, main_view

    @torch.no_grad()
    def ai_view(self, which: str = "protected", preprocess: str = "resize512") -> np.ndarray | None:
        """D(E(P(x))) at training size (mimic hook, issue 13: fixative.mimicry defines P)."""
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
