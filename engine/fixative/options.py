"""The one validated options object shared by the core, the CLI, the engine API and batch jobs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Mode = Literal["style", "poison", "both"]
Intensity = Literal["low", "default", "high"]
Quality = Literal["fast", "default", "max"]
Robustness = Literal["off", "standard", "strong"]
Device = Literal["auto", "cpu", "cuda", "mps"]

DEFAULT_MODELS = ["taef2"]


class ProtectOptions(BaseModel):
    """What the artist chooses. Unknown fields are an error, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = Field("style", description="style = style cloak (Glaze-like), "
                       "poison = concept poison (Nightshade-like), both = one optimisation with both terms")
    intensity: Intensity = Field("default", description="perturbation budget (fixative.budget.BUDGETS)")
    quality: Quality = Field("default", description="search effort: steps and samples per step")
    robustness: Robustness = Field("standard", description="optimise through JPEG, resizing, blur, noise")
    target_style: str = Field("auto", description="built-in style name, or 'auto'; a user style image "
                              "is passed to protect() separately")
    concept: str | None = Field(None, max_length=200, description="what the artwork shows (poison mode)")
    target_concept: str | None = Field(None, max_length=200,
                                       description="the concept the encoder should see instead (poison)")
    models: list[str] = Field(default_factory=lambda: list(DEFAULT_MODELS), min_length=1, max_length=8,
                              description="image encoders to attack; several make an ensemble")
    device: Device = "auto"
    seed: int = Field(0, ge=0, le=2**31 - 1)
    steps: int | None = Field(None, ge=1, le=2000, description="override the quality's step count")
    pipeline: str | None = Field(None, description="diffusers pipeline (repo id or folder) used to "
                                 "render style targets (img2img) and poison anchors (text-to-image)")

    @field_validator("models", mode="before")
    @classmethod
    def _split_models(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: list[str]) -> list[str]:
        from fixative.models.registry import check_model_name

        for name in value:
            check_model_name(name)
        return value

    @field_validator("target_style")
    @classmethod
    def _strip_style(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("target_style must not be empty; use 'auto'")
        return value

    @field_validator("target_style", "concept", "target_concept", "pipeline", "models")
    @classmethod
    def _valid_unicode(cls, value: object) -> object:
        """A lone surrogate (JSON "\\ud800") is not text: refuse it here, not when it is printed."""
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueError("must be valid Unicode text (it contains a lone surrogate)") from None
        return value
