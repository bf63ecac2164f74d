"""What a mimic's model sees: the AI's-eye metric, defined once (see docs/metric.md).

A mimic resizes the artist's files to its training size (often re-encoding them to JPEG), encodes
them with the model's VAE encoder E and fine-tunes on those latents; the fine-tuned model then draws
something like D(E(P(x))), the *AI's-eye view* of x after the preprocessing P. A cloak protects
exactly as much as it changes that view, so for each preprocessing P and encoder E we report:

- **AI's-eye change**: PSNR and SSIM between D(E(P(x))) and D(E(P(x′))) (encoders with a decoder);
- **gain over noise** (dB): the AI's-eye PSNR of a Gaussian-noise copy x_noise with exactly the
  cloak's file PSNR (fixed seed) minus the cloak's AI's-eye PSNR. 0 dB: the model notices the cloak
  no more than any change of that size; +8 dB: the cloak is 8 dB "louder" to the model;
- **latent shift ratio** ‖E(P(x′)) − E(P(x))‖ / ‖E(P(x_noise)) − E(P(x))‖ for every encoder,
  with or without a decoder, including encoders the cloak was never optimised against (transfer).

Preprocessing uses real codecs (Pillow JPEG) and antialiased resampling, never the optimiser's
differentiable stand-ins.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFilter

from fixative.metrics import psnr_torch, ssim_torch
from fixative.models.base import ImageEncoder

Preprocess = Callable[[np.ndarray], np.ndarray]
"""float RGB (H, W, 3) in [0, 1] → float RGB (h, w, 3); deterministic (fixed seeds inside)."""

SIZE_MULTIPLE = 32
"""Preprocessed sizes are multiples of this, so every encoder (f8 and f32) sees the same pixels."""
NOISE_SEED = 1234
"""Seed of the equal-PSNR noise control (and of the noise in the 'noise+resample' preprocessing)."""


def resize_long_side(image: np.ndarray, long_side: int) -> np.ndarray:
    """Antialiased bilinear downscale so the long side is at most ``long_side`` (sides rounded to 32).

    Smaller files are not upscaled: an upscale adds nothing a cloak could be asked to survive, and
    it would make measuring a thumbnail cost as much as measuring a 512² image."""
    h, w = image.shape[:2]
    size = resized_size(h, w, long_side)
    if size == (h, w):
        return image
    tensor = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    out = F.interpolate(tensor, size=size, mode="bilinear", antialias=True, align_corners=False)
    return out[0].permute(1, 2, 0).clamp(0, 1).numpy()


def resized_size(height: int, width: int, long_side: int) -> tuple[int, int]:
    """(h, w) that ``resize_long_side`` gives an image of this size."""
    scale = min(1.0, long_side / max(height, width))
    return (max(SIZE_MULTIPLE, round(height * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE),
            max(SIZE_MULTIPLE, round(width * scale / SIZE_MULTIPLE) * SIZE_MULTIPLE))


def to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def real_jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """A real JPEG round trip (Pillow, 4:2:0 as platforms use)."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32) / 255


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    blurred = Image.fromarray(to_uint8(image)).filter(ImageFilter.GaussianBlur(sigma))
    return np.asarray(blurred, dtype=np.float32) / 255


def _noise_resample(image: np.ndarray, sigma: float = 0.05) -> np.ndarray:
    """Gaussian noise, 0.5x down and back up: the cheap half of "noisy upscaling"."""
    noise = np.random.default_rng(NOISE_SEED).normal(0, sigma, image.shape).astype(np.float32)
    noisy = np.clip(image + noise, 0, 1)
    h, w = image.shape[:2]
    tensor = torch.from_numpy(noisy).permute(2, 0, 1)[None]
    small = F.interpolate(tensor, size=(max(8, h // 2), max(8, w // 2)), mode="bilinear", antialias=True)
    back = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return back[0].permute(1, 2, 0).clamp(0, 1).numpy()


def _chain(*steps: Preprocess) -> Preprocess:
    def run(image: np.ndarray) -> np.ndarray:
        for step in steps:
            image = step(image)
        return image
    return run


def _at(long_side: int) -> Preprocess:
    return lambda image: resize_long_side(image, long_side)


def _jpeg(quality: int) -> Preprocess:
    return lambda image: real_jpeg(image, quality)


PREPROCESSING: dict[str, Preprocess] = {
    "resize512": _at(512),
    "resize512+jpeg75": _chain(_at(512), _jpeg(75)),
    "resize1024": _at(1024),
    "resize1024+jpeg75": _chain(_at(1024), _jpeg(75)),
    "noise+resample+resize512": _chain(_noise_resample, _at(512)),
    "blur1+resize512": _chain(lambda image: _blur(image, 1.0), _at(512)),
}
"""The mimic's preprocessing set P. 'resize1024*' is measured only for files whose long side is
above 512 (a 1024 bucket on a small file is an upscale, which no cloak can be asked to survive)."""
HEADLINE = ("resize512", "resize512+jpeg75")
"""The two numbers a person sees first: what survives the training resize, and resize + JPEG 75."""
REPORT_ENV = "FIXATIVE_MIMIC_REPORT"
"""``off`` skips the protect report whatever the options say (the benchmarks time the optimisation)."""
REPORT_SETS: dict[str, tuple[str, ...]] = {
    "summary": HEADLINE,
    "full": (*HEADLINE, "resize1024", "resize1024+jpeg75"),
    "off": (),
}
"""What the protect report measures at each ``ai_report`` level (the benchmarks and `evaluate` use all
of P). The summary is what the plug-ins show; the 1024 pair costs four times the summary on a 1024²
file, so it is measured only when asked for."""


def preprocessing_for(height: int, width: int, names: tuple[str, ...] | list[str] | None = None) -> list[str]:
    names = list(names or PREPROCESSING)
    unknown = [n for n in names if n not in PREPROCESSING]
    if unknown:
        raise ValueError(f"unknown preprocessing {unknown}; known: {', '.join(PREPROCESSING)}")
    return [n for n in names if not (n.startswith("resize1024") and max(height, width) <= 512)]


def measured_pixels(height: int, width: int, names: tuple[str, ...] | list[str] | None = None) -> list[int]:
    """Per preprocessing measured on a file of this size: the pixels each encoder (and decoder) sees,
    three images (original, cloak, noise control) at the training size. The report's time goes with it."""
    return [3 * math.prod(resized_size(height, width, 1024 if "resize1024" in name else 512))
            for name in preprocessing_for(height, width, names)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR for images in [0, 1]; float32 differences summed in float64 (no float64 image copies)."""
    difference = np.subtract(a, b, dtype=np.float32)
    np.square(difference, out=difference)
    mse = float(np.mean(difference, dtype=np.float64))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def equal_psnr_noise(original: np.ndarray, protected: np.ndarray, seed: int = NOISE_SEED) -> tuple[np.ndarray, float]:
    """x + σ·N(0, 1) (fixed seed, clipped to [0, 1]) whose PSNR to x equals the cloak's PSNR.

    σ is found by bisection because clipping makes the PSNR a nonlinear function of σ.
    Returns (noisy image, σ); identical images give σ = 0 and an identical copy."""
    wanted = psnr(original, protected)
    if math.isinf(wanted):
        return original.copy(), 0.0
    unit = np.random.default_rng(seed).standard_normal(original.shape, dtype=np.float32)
    buffer = np.empty_like(unit)  # one reused buffer: a 4096² image needs no per-iteration copies

    def noisy(sigma: float) -> np.ndarray:
        np.multiply(unit, sigma, out=buffer)
        np.add(buffer, original, out=buffer)
        return np.clip(buffer, 0, 1, out=buffer)

    low, high = 0.0, 1.0
    while psnr(original, noisy(high)) > wanted and high < 64:
        high *= 2
    for _ in range(24):
        mid = 0.5 * (low + high)
        if psnr(original, noisy(mid)) > wanted:
            low = mid
        else:
            high = mid
    sigma = 0.5 * (low + high)
    return noisy(sigma).copy(), sigma


@dataclass
class MimicRow:
    """One (preprocessing, encoder) measurement."""

    preprocess: str
    model: str
    held_out: bool
    """True when the cloak was not optimised against this encoder (a transfer check)."""
    shift_ratio: float
    """‖E(P(x′))−E(P(x))‖ / ‖E(P(x_noise))−E(P(x))‖."""
    cloak_shift: float = 0.0
    """‖E(P(x′))−E(P(x))‖ as a fraction of ‖E(P(x))‖: how far the cloak moves the latent."""
    noise_shift: float = 0.0
    """‖E(P(x_noise))−E(P(x))‖ as a fraction of ‖E(P(x))‖: the yardstick. JPEG re-quantises any small
    change into blockwise rounding flips, so after JPEG equal noise moves the latent 2–4x further than
    after the resize alone, while the cloak's shift survives (docs/metric.md, "The yardstick after JPEG")."""
    ai_psnr: float | None = None
    """PSNR(D(E(P(x))), D(E(P(x′)))); None without a decoder; inf when the views are identical."""
    ai_ssim: float | None = None
    noise_psnr: float | None = None
    noise_ssim: float | None = None
    gain_db: float | None = None
    """noise_psnr − ai_psnr: how much louder the cloak is to the model than noise of its size."""


@dataclass
class MimicReport:
    """Every number of the metric for one (original, protected) pair."""

    file_psnr: float
    file_ssim: float
    noise_sigma: float
    rows: list[MimicRow] = field(default_factory=list)

    def row(self, preprocess: str, model: str | None = None) -> MimicRow | None:
        """The row for ``preprocess`` and ``model`` (default: the first encoder with a decoder)."""
        for row in self.rows:
            if row.preprocess == preprocess and (row.model == model if model else row.gain_db is not None):
                return row
        return None

    def gain(self, preprocess: str, model: str | None = None) -> float | None:
        row = self.row(preprocess, model)
        return None if row is None else row.gain_db

    def summary(self) -> str:
        """One line: what a person sees, what the model sees (the plug-ins show it)."""
        person = f"A person sees: file PSNR {_db(self.file_psnr)}, SSIM {self.file_ssim:.3f}."
        parts = []
        for name, label in (("resize512", "after resize to 512"), ("resize512+jpeg75", "after resize + JPEG 75")):
            gain = self.gain(name)
            if gain is not None:
                parts.append(f"{gain:+.1f} dB {label}")
        model_line = "The model sees the cloak " + (", ".join(parts) + " louder than equal noise" if parts else
                                                     "(no decoder for the AI's-eye view)")
        shifts = [r for r in self.rows if r.preprocess == "resize512+jpeg75"]
        if shifts:
            model_line += "; latent shift vs noise " + ", ".join(
                f"{r.model}{' (held out)' if r.held_out else ''} {r.shift_ratio:.1f}x" for r in shifts)
        return f"{person} {model_line}."

    def table(self) -> str:
        rows = ["| preprocessing | encoder | gain over noise | AI's-eye PSNR (cloak / noise) | AI's-eye SSIM (cloak / noise) "
                "| latent shift vs noise (cloak / noise, % of the latent) |",
                "|---|---|---|---|---|---|"]
        for r in self.rows:
            model = f"{r.model} (held out)" if r.held_out else r.model
            if r.gain_db is None:
                rows.append(f"| {r.preprocess} | {model} | – | – | – | {_shift(r)} |")
            else:
                rows.append(f"| {r.preprocess} | {model} | **{r.gain_db:+.2f} dB** | {_db(r.ai_psnr)} / "
                            f"{_db(r.noise_psnr)} | {r.ai_ssim:.4f} / {r.noise_ssim:.4f} | {_shift(r)} |")
        return "\n".join(rows) + (f"\n\nFile: PSNR {_db(self.file_psnr)}, SSIM {self.file_ssim:.4f}; "
                                  f"noise control σ = {self.noise_sigma * 255:.2f}/255 (seed {NOISE_SEED}).")

    def as_dict(self) -> dict:
        """JSON-safe: infinite PSNRs (identical images) become None."""
        return _finite({"file_psnr": self.file_psnr, "file_ssim": self.file_ssim, "noise_sigma": self.noise_sigma,
                        "summary": self.summary(), "rows": [asdict(r) for r in self.rows]})


def _shift(row: MimicRow) -> str:
    return f"{row.shift_ratio:.2f}x ({row.cloak_shift * 100:.1f} % / {row.noise_shift * 100:.1f} %)"


def _db(value: float | None) -> str:
    if value is None:
        return "–"
    return "∞ dB" if math.isinf(value) else f"{value:.2f} dB"


def _finite(value):  # noqa: ANN001, ANN202 - JSON-like tree
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _tensor(image: np.ndarray, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].to(device=device, dtype=dtype)


@torch.no_grad()
def encode_image(model: ImageEncoder, image: np.ndarray) -> torch.Tensor:
    parameter = next(model.parameters())
    return model.encode(_tensor(image, parameter.dtype, parameter.device)).float()


@torch.no_grad()
def decode_latent(model: ImageEncoder, latent: torch.Tensor) -> torch.Tensor:
    dtype = next(model.parameters()).dtype
    return model.decode(latent.to(dtype)).float().clamp(0, 1).cpu()


def ai_eye_view(model: ImageEncoder, image: np.ndarray, preprocess: str = "resize512") -> np.ndarray:
    """D(E(P(x))) as float RGB (h, w, 3): what a model fine-tuned on this file would draw."""
    latent = encode_image(model, PREPROCESSING[preprocess](_rgb(image)))
    return decode_latent(model, latent)[0].permute(1, 2, 0).numpy()


def _rgb(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] < 3:
        return np.repeat(image[..., :1], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def measure(original: np.ndarray, protected: np.ndarray, models: list[ImageEncoder],
            held_out: set[str] | frozenset[str] = frozenset(), preprocess: list[str] | tuple[str, ...] | None = None,
            on_progress: Callable[[float], None] | None = None) -> MimicReport:
    """The AI's-eye metric of ``protected`` vs ``original`` (float RGB (H, W, 3) in [0, 1]).

    ``models``: loaded encoders (those with a decoder also give the AI's-eye PSNR/SSIM and gain);
    ``held_out``: names of encoders the cloak was not optimised against (reported as such);
    ``on_progress(fraction)`` after each preprocessing, the fraction of ``measured_pixels`` done."""
    original, protected = _rgb(original), _rgb(protected)
    if original.shape != protected.shape:
        raise ValueError(f"image sizes differ: {original.shape} vs {protected.shape}")
    noisy, sigma = equal_psnr_noise(original, protected)
    a, b = torch.from_numpy(original).permute(2, 0, 1)[None], torch.from_numpy(protected).permute(2, 0, 1)[None]
    report = MimicReport(file_psnr=round(psnr(original, protected), 3), file_ssim=round(ssim_torch(a, b), 5),
                         noise_sigma=round(sigma, 6))
    h, w = original.shape[:2]
    names = preprocessing_for(h, w, preprocess)
    pixels = measured_pixels(h, w, names)
    for index, name in enumerate(names):
        seen = [PREPROCESSING[name](image) for image in (original, protected, noisy)]
        for model in models:
            clean, cloaked, control = (encode_image(model, image) for image in seen)
            moved, moved_by_noise, size = (float((cloaked - clean).norm()), float((control - clean).norm()),
                                           max(float(clean.norm()), 1e-12))
            row = MimicRow(name, model.name, model.name in held_out, round(_ratio(moved, moved_by_noise), 4),
                           cloak_shift=round(moved / size, 5), noise_shift=round(moved_by_noise / size, 5))
            if model.has_decoder:
                clean_view, cloaked_view, control_view = (decode_latent(model, z) for z in (clean, cloaked, control))
                row.ai_psnr = _round(psnr_torch(clean_view, cloaked_view))
                row.noise_psnr = _round(psnr_torch(clean_view, control_view))
                row.ai_ssim = round(ssim_torch(clean_view, cloaked_view), 5)
                row.noise_ssim = round(ssim_torch(clean_view, control_view), 5)
                row.gain_db = _round(gain_db(row.noise_psnr, row.ai_psnr))
            report.rows.append(row)
        if on_progress is not None:
            on_progress(sum(pixels[:index + 1]) / sum(pixels))
    return report


def gain_db(noise_psnr: float, cloak_psnr: float) -> float:
    """noise − cloak AI's-eye PSNR; both infinite (nothing changed at all) counts as 0 dB."""
    if math.isinf(noise_psnr) and math.isinf(cloak_psnr):
        return 0.0
    return noise_psnr - cloak_psnr


def _ratio(numerator: float, denominator: float) -> float:
    if numerator == 0:
        return 0.0
    return math.inf if denominator == 0 else numerator / denominator


def _round(value: float) -> float:
    return value if math.isinf(value) else round(value, 3)


def available_models(optimised: list[str], device: str = "cpu", dtype: torch.dtype = torch.float32,
                     ) -> tuple[list[ImageEncoder], set[str]]:
    """The optimised encoders plus every TAE encoder whose weights are already on disk (held out).

    Never downloads: a held-out check must not make a protect run wait for the network."""
    from fixative.models.registry import TAE_MODELS, load_encoder
    from fixative.models.weights import find_weight

    models = [load_encoder(name, device, dtype) for name in optimised]
    held_out: set[str] = set()
    for name, spec in TAE_MODELS.items():
        if name in optimised:
            continue
        try:
            find_weight(spec.weight("encoder"), download=False)
        except Exception:  # not on disk: nothing to check against
            continue
        models.append(load_encoder(name, device, dtype, download=False))
        held_out.add(name)
    return models, held_out


def report_enabled(level: str) -> bool:
    """Whether the protect report at ``level`` measures anything (``FIXATIVE_MIMIC_REPORT=off`` overrides)."""
    import os

    if level not in REPORT_SETS:
        raise ValueError(f"unknown report level {level!r}; known: {', '.join(REPORT_SETS)}")
    return bool(REPORT_SETS[level]) and os.environ.get(REPORT_ENV, "").strip().lower() not in ("off", "0", "no")


def report_pixels(height: int, width: int, level: str) -> int:
    """The pixels the protect report at ``level`` will measure on a file of this size (0: no report);
    what its time goes with (``measured_pixels``)."""
    return sum(measured_pixels(height, width, REPORT_SETS[level])) if report_enabled(level) else 0


def report_for(original: np.ndarray, protected: np.ndarray, optimised: list[str], level: str = "summary",
               on_progress: Callable[[float], None] | None = None) -> tuple[dict | None, str | None]:
    """(JSON-safe metric, one-line summary) for the protect report: REPORT_SETS[level], every encoder on disk.

    A failure here must never lose a finished protection: it is reported in the summary instead.
    ``level`` "off" or ``FIXATIVE_MIMIC_REPORT=off`` skips it (the summary costs about six decoder
    passes at the training size)."""
    if not report_enabled(level):
        return None, None
    try:
        models, held_out = available_models(optimised)
        report = measure(original, protected, models, held_out, REPORT_SETS[level], on_progress)
    except Exception as exc:  # noqa: BLE001 - the report is optional, the protected image is not
        return None, f"AI's-eye metric unavailable: {type(exc).__name__}: {exc}"
    return report.as_dict(), report.summary()
