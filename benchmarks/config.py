"""The two benchmark sizes: ``full`` for people and the docs, ``small`` for CI (same code, toy sizes)."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.data import ALL_PURIFICATIONS

STARRY, WAVE, SCREAM, UDNIE = ("starry_night_van_gogh_1889.jpg", "great_wave_hokusai_1831.jpg",
                               "the_scream_munch_1893.jpg", "udnie_picabia_1913.jpg")


@dataclass(frozen=True)
class BenchConfig:
    size: str
    paintings: tuple[str, ...]
    side: int
    """Paintings are centred squares of this side (pixels)."""
    purifications: tuple[str, ...]
    quality: str
    """Fixative's quality for the strength runs."""
    fixative_steps: int | None
    """Step override for the strength runs (None = the quality's own)."""
    intensities: tuple[str, ...]
    """Intensities run on the first painting ('default' runs on every painting)."""
    baseline_steps: int
    ladder: tuple[int, ...]
    """Step counts tried (quality fast) to find how long Fixative needs to match the naive baseline."""
    consistency_paintings: tuple[str, ...]
    """Empty: reuse the strength runs (needs ≥ 3 paintings); else extra Fixative-only runs."""
    consistency_side: int
    sweep_sides: tuple[int, ...]
    sweep_quality: str
    sweep_steps: int | None
    sweep_purifications: tuple[str, ...]
    sweep_timeout_s: float
    mimic_side: int = 1024
    """Side of the squares the AI's-eye section measures (above 512, so resizing to 512 is a real downscale)."""
    ceiling_steps: int = 100
    """Steps of the white-box ceiling attack in the AI's-eye section."""


CONFIGS: dict[str, BenchConfig] = {
    "full": BenchConfig(
        size="full", paintings=(STARRY, WAVE, SCREAM), side=512, purifications=tuple(ALL_PURIFICATIONS),
        quality="default", fixative_steps=None, intensities=("low", "default", "high"), baseline_steps=20,
        ladder=(3, 6, 9, 12, 18, 24), consistency_paintings=(), consistency_side=512,
        sweep_sides=(256, 512, 1024, 2048, 4096), sweep_quality="fast", sweep_steps=None,
        sweep_purifications=("jpeg75", "resize0.5", "noise0.05+resample"), sweep_timeout_s=1800,
    ),
    "small": BenchConfig(
        size="small", paintings=(STARRY,), side=128, purifications=("jpeg75", "resize0.5"),
        quality="fast", fixative_steps=6, intensities=("low", "default", "high"), baseline_steps=4,
        ladder=(2, 4), consistency_paintings=(STARRY, WAVE, UDNIE), consistency_side=64,
        sweep_sides=(64, 128), sweep_quality="fast", sweep_steps=2,
        sweep_purifications=("jpeg75", "resize0.5"), sweep_timeout_s=300, mimic_side=96, ceiling_steps=2,
    ),
}
