"""Every option the artist can set, described once: type, default, allowed values, label and help.

``ProtectOptions`` is the one validated options object shared by the core, the CLI, the engine
API and batch jobs. Each field also carries what a front end needs to show it (``_ui``): the CLI
builds its flags from it (``fixative.commands._options``), the engine publishes it as SCHEMA on
``/v1/info`` and in ``options-schema.json``, and the plug-ins build their dialogs from that. So a
new option is one new field here (plus the code that uses it).

SCHEMA (``options_schema()``, the contract in docs/engine-api.md):
``{"version": 1, "fields": [{"name", "kind", "label", "help", "default", "dialog", ...}, ...]}``.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from fixative.errors import BadOptions

SCHEMA_VERSION = 1
DEFAULT_MODEL = "taef2"
"""The encoder attacked when none is named (see fixative.models.registry for why)."""
DEFAULT_MODELS = [DEFAULT_MODEL]

Mode = Literal["style", "poison", "both"]
Intensity = Literal["low", "default", "high"]
Quality = Literal["fast", "default", "max"]
Robustness = Literal["off", "standard", "strong"]
Device = Literal["auto", "cpu", "cuda", "mps"]
AiReport = Literal["summary", "full", "off"]

POISON_MODES = ["poison", "both"]
STYLE_MODES = ["style", "both"]


def _ui(default: Any = None, *, label: str, help: str, choices: list[tuple[str, str, str]] | None = None,
        dialog: bool = True, enabled_when: dict[str, list[str]] | None = None, suggestions: str | None = None,
        default_factory: Any = None, **constraints: Any) -> Any:
    """A pydantic Field carrying what a dialog or --help shows.

    ``choices``: (value, label, help) per allowed value, in menu order. ``suggestions`` names a
    provider in ``_SUGGESTIONS`` (looked up lazily: listing styles or models imports torch).
    """
    extra: dict[str, Any] = {"label": label, "dialog": dialog}
    if choices is not None:
        extra["choices"] = [{"value": value, "label": text, "help": line} for value, text, line in choices]
    if enabled_when is not None:
        extra["enabled_when"] = enabled_when
    if suggestions is not None:
        extra["suggestions"] = suggestions
    if default_factory is not None:
        return Field(default_factory=default_factory, description=help, json_schema_extra=extra, **constraints)
    return Field(default, description=help, json_schema_extra=extra, **constraints)


class ProtectOptions(BaseModel):
    """What the artist chooses. Unknown fields are an error, so typos never pass silently.

    Fields are in dialog order. ``strip_location`` and ``optout_metadata`` only matter when a file
    is written (fixative.service); protect() on pixels ignores them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Mode = _ui("style", label="Mode", help="What AI image encoders should be fooled about", choices=[
        ("style", "Style cloak", "Encoders see your artwork disrupted, leaning toward another style (Glaze-like)"),
        ("poison", "Concept poison", "Encoders see another concept; needs an anchor image or a "
                                     "diffusers pipeline (Nightshade-like)"),
        ("both", "Both", "Style cloak and concept poison in one optimisation"),
    ])
    intensity: Intensity = _ui("default", label="Intensity", help="How much the pixels may change: "
                               "more change, more protection", choices=[
        # The measured halves come from the full benchmark (Starry Night, 1024²; tests/test_ladder_numbers.py).
        ("low", "Low", "Smallest change (≤ 4/255, PSNR ≥ 40 dB). Measured: file PSNR 40.1 dB; model: +15.5 dB "
                       "after resize to 512, +4.7 dB after JPEG 75"),
        ("default", "Default", "≤ 8/255 in busy areas, a quarter of that in flat colour, PSNR ≥ 35.5 dB. Measured: "
                               "file PSNR 35.5 dB; model: +15.5 dB after resize to 512, +5.7 dB after JPEG 75"),
        ("high", "High", "≤ 12/255, PSNR ≥ 32 dB, may show in flat colour. Measured: file PSNR 32.4 dB; model: "
                         "+15.1 dB after resize to 512, +6.5 dB after JPEG 75"),
    ])
    quality: Quality = _ui("default", label="Quality", help="Search effort: more steps and views per step "
                           "take longer and protect better", choices=[
        ("fast", "Fast", "Quick search (at least 12 steps of one view): previews and small images"),
        ("default", "Default", "At least 24 steps of two views (on a CPU, files over 768 pixels get 30 "
                               "steps of one 512² view): about 20 s for a "
                               "512² crop on a 2-core CPU with bf16 (35 s in fp32), seconds on a GPU"),
        ("max", "Maximum", "Longest search (at least 100 steps of three views), for large files. "
                           "Measured: 4.4× the default's time; model: +6.0 dB after resize to 512 + JPEG 75, +8.9 dB at 1024"),
    ])
    robustness: Robustness = _ui("standard", label="Robustness", help="Optimise through JPEG, resizing, "
                                 "blur and noise so the protection survives re-processing", choices=[
        ("off", "Off", "Optimise for the image exactly as it is: any JPEG or resize weakens it"),
        ("standard", "Standard", "Three views in four pass through JPEG (quality 50–95), a resize to "
                                 "0.5–1×, blur or noise; then every view through a real JPEG (60–90)"),
        ("strong", "Strong", "Every view passes through up to two of them, harder (JPEG down to 30, "
                             "resize to 0.35×), then a real JPEG"),
    ])
    target_style: str = _ui("auto", label="Target style", help="The style the cloak leans toward: a built-in "
                            "style (fixative styles list), or auto (one at a medium distance from yours)",
                            enabled_when={"mode": STYLE_MODES}, suggestions="target_style")
    concept: str | None = _ui(None, label="Concept", help="What the artwork shows, e.g. cat (poison mode; "
                              "written to the caption)", enabled_when={"mode": POISON_MODES}, max_length=200)
    target_concept: str | None = _ui(None, label="Target concept", help="What encoders should see instead, "
                                     "e.g. dog (poison mode)", enabled_when={"mode": POISON_MODES},
                                     max_length=200)
    models: list[str] = _ui(label="Models", help="Image encoders to attack, comma-separated (fixative models "
                            "list); several make an ensemble", default_factory=lambda: list(DEFAULT_MODELS),
                            dialog=False, suggestions="models", min_length=1, max_length=8)
    device: Device = _ui("auto", label="Device", help="Where to compute", dialog=False, choices=[
        ("auto", "Auto", "CUDA, then Apple MPS, then CPU"),
        ("cpu", "CPU", "The processor: slowest, always there"),
        ("cuda", "CUDA", "An NVIDIA GPU: seconds instead of minutes"),
        ("mps", "Apple GPU", "Apple silicon's GPU (MPS)"),
    ])
    seed: int = _ui(0, label="Seed", help="Random seed: the same seed and options give the same result",
                    dialog=False, ge=0, le=2**31 - 1)
    steps: int | None = _ui(None, label="Steps", help="Override the quality's step count", dialog=False,
                            ge=1, le=2000)
    pipeline: str | None = _ui(None, label="Pipeline", help="Diffusers pipeline (repo id or folder) for "
                               "img2img style targets and text-to-image poison anchors", dialog=False)
    ai_report: AiReport = _ui("summary", label="AI's-eye report", help="What each run then measures of what "
                              "a mimic's model sees (docs/metric.md): summary (resize to 512, and + JPEG 75; "
                              "the result line), full (also the 1024 training size for files over 512 px: about "
                              "5x the summary's time on a 1024² file) or off",
                              dialog=False, choices=[
        # Times: a 2-core CPU with TAEF2 and TAESana on disk (docs/metric.md, "What the report costs").
        ("summary", "Summary", "Resize to 512, then also JPEG 75: the result line's numbers (about 12 s)"),
        ("full", "Full", "Also resize to 1024 and 1024 + JPEG 75, for files over 512 pixels (a 1024² "
                         "file: about 60 s instead of 12)"),
        ("off", "Off", "Measure nothing"),
    ])
    strip_location: bool = _ui(False, label="Strip location", help="Drop GPS data from EXIF when writing "
                               "the file", dialog=False)
    optout_metadata: bool = _ui(True, label="Opt-out metadata", help="Write the XMP 'Data Mining: "
                                "prohibited' field and signed C2PA 'not for AI training' credentials "
                                "into the file", dialog=False)

    @classmethod
    def coerce(cls, options: ProtectOptions | dict[str, Any] | None) -> ProtectOptions:
        """Options from a dict (or None for the defaults); a bad one is one clear BadOptions."""
        if options is None:
            return cls()
        if isinstance(options, ProtectOptions):
            return options
        try:
            return cls(**options)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ())) or "options"
            raise BadOptions(f"invalid option {where}: {first.get('msg')}") from exc

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


def choice_values(field: str) -> list[str]:
    """The allowed values of a choice option, in menu order (what the lookup tables are keyed by)."""
    return list(get_args(ProtectOptions.model_fields[field].annotation))


def _style_suggestions() -> list[str]:
    from fixative.targets import builtin_style_names

    return ["auto", *builtin_style_names()]


def _model_suggestions() -> list[str]:
    from fixative.models.registry import DIFFUSERS_ALIASES, TAE_MODELS

    return [*TAE_MODELS, *DIFFUSERS_ALIASES]


_SUGGESTIONS = {"target_style": _style_suggestions, "models": _model_suggestions}


_KINDS = {bool: "boolean", int: "integer", str: "text"}


def _kind(annotation: Any) -> str:
    """SCHEMA's kind for a field's type; ``X | None`` has X's kind."""
    if get_origin(annotation) in (Union, UnionType):
        (annotation,) = [arg for arg in get_args(annotation) if arg is not type(None)]
    if get_origin(annotation) is Literal:
        return "choice"
    if get_origin(annotation) is list:
        return "list"
    if annotation not in _KINDS:
        raise TypeError(f"no SCHEMA kind for options of type {annotation!r}")
    return _KINDS[annotation]


def option_fields(*, suggestions: bool = True) -> list[dict[str, Any]]:
    """SCHEMA's field list, in dialog order. ``suggestions=False`` skips the lookups that import torch
    (the CLI's --help does not need them)."""
    fields = []
    for name, info in ProtectOptions.model_fields.items():
        extra = dict(info.json_schema_extra or {})  # type: ignore[arg-type]
        entry: dict[str, Any] = {"name": name, "kind": _kind(info.annotation), "label": extra["label"],
                                 "help": info.description or "", "default": info.get_default(call_default_factory=True)}
        if "choices" in extra:
            entry["choices"] = extra["choices"]
        if suggestions and "suggestions" in extra:
            entry["suggestions"] = _SUGGESTIONS[extra["suggestions"]]()
        for constraint in info.metadata:
            if hasattr(constraint, "ge"):
                entry["minimum"] = constraint.ge
            if hasattr(constraint, "le"):
                entry["maximum"] = constraint.le
        entry["dialog"] = extra["dialog"]
        if "enabled_when" in extra:
            entry["enabled_when"] = extra["enabled_when"]
        fields.append(entry)
    return fields


def options_schema() -> dict[str, Any]:
    """SCHEMA: every option as front ends show it (published on /v1/info and by `fixative options-schema`)."""
    return {"version": SCHEMA_VERSION, "fields": option_fields()}
