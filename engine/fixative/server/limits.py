"""Checks the engine applies to what arrives over HTTP, kept apart from the job code.

Each function answers one question about untrusted input and raises a FixativeError (a 4xx) when the
answer is no; none of them decodes an image or touches the filesystem.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fixative.errors import BadImage, BadOptions, FixativeError, UnknownModel, UnknownStyle
from fixative.pixels import MIN_SIDE

MAX_OPTIONS_CHARS = 64 * 1024
"""The options JSON is a handful of short fields; anything longer is not a real client."""
MAX_OPTIONS_DEPTH = 4
"""Object → list → string is as deep as ProtectOptions goes; deeper nesting is refused before parsing."""
MAX_OPTION_STRING = 1000
MAX_ECHO_CHARS = 300
"""Longest piece of client text repeated back in a job's status or an error message."""
MULTIPART_OVERHEAD = 16 * 1024 * 1024
"""Body allowance on top of the largest image: form framing, options, a style image and an anchor."""


def parse_options_text(text: str) -> Any:
    """JSON text → Python values, refusing what would make the parser or the validator misbehave:
    deep nesting (RecursionError), huge texts, and strings that are not valid Unicode."""
    import json

    if len(text) > MAX_OPTIONS_CHARS:
        raise BadOptions(f"options is {len(text):,} characters long; at most {MAX_OPTIONS_CHARS:,}.")
    if _nesting(text) > MAX_OPTIONS_DEPTH:
        raise BadOptions(f"options is nested more than {MAX_OPTIONS_DEPTH} levels deep.")
    try:
        values = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadOptions(f"options is not valid JSON: {echo(str(exc))}") from exc
    check_strings(values)
    return values


def _nesting(text: str) -> int:
    """Deepest bracket nesting outside JSON strings (a cheap scan; json.loads recurses per level)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def check_strings(value: Any, where: str = "options") -> None:
    """Every string (and key) must be encodable text of sane length: a lone surrogate such as
    ``"\\ud800"`` would be accepted now and make every later answer about the job unserialisable."""
    if isinstance(value, str):
        if not is_valid_text(value):
            raise BadOptions(f"{where} contains text that is not valid Unicode (a lone surrogate).")
        if len(value) > MAX_OPTION_STRING:
            raise BadOptions(f"{where} is {len(value):,} characters long; at most {MAX_OPTION_STRING:,}.")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not is_valid_text(str(key)):
                raise BadOptions(f"{where} has a key that is not valid Unicode (a lone surrogate).")
            check_strings(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            check_strings(item, f"{where}[{index}]")


def is_valid_text(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def echo(text: str, limit: int = MAX_ECHO_CHARS) -> str:
    """Client-supplied text made safe to repeat: valid UTF-8, at most ``limit`` characters."""
    text = text.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def model_names(raw: Any) -> list[str]:
    """The model names in a raw ``models`` value (a list, or one comma-separated string)."""
    if isinstance(raw, str):
        raw = raw.split(",")
    return [name.strip() for name in raw if isinstance(name, str) and name.strip()] if isinstance(raw, list) else []


def check_models(models: Iterable[str], allowed_extra: Iterable[str] = ()) -> None:
    """Over HTTP only names the engine already knows: registry names and the models configured with
    ``fixative serve --allow-model``. No ``vae:<path or repo>``: a job must not read local folders
    or make the engine download a repository, and the answer never reveals anything about the disk."""
    from fixative.models.registry import DIFFUSERS_ALIASES, TAE_MODELS

    known = [*TAE_MODELS, *DIFFUSERS_ALIASES]
    extra = list(allowed_extra)
    for name in models:
        if name in TAE_MODELS or name in DIFFUSERS_ALIASES or name in extra:
            continue
        shown = "a 'vae:' model" if name.startswith("vae:") else f"model {echo(name, 60)!r}"
        raise UnknownModel(f"{shown} is not available through the engine API; choose one of "
                           f"{', '.join(known + extra)} (other models: 'fixative serve --allow-model NAME').")


def check_style(target_style: str, *, mode: str, has_style_image: bool, has_pipeline: bool) -> None:
    """An unknown built-in style is a 422 now rather than a failed job later. With a pipeline the
    style is a free-text prompt; with a style image it is not used."""
    if mode not in ("style", "both") or has_style_image or has_pipeline or target_style == "auto":
        return
    from fixative.targets.styles import builtin_style_names

    names = builtin_style_names()
    if target_style not in names:
        raise UnknownStyle(f"unknown target_style {echo(target_style, 60)!r}; use 'auto' or one of "
                           f"{', '.join(names)} (or send a style_image).")


def default_body_limit(max_pixels: int) -> int:
    """The largest upload the pixel limit allows: an uncompressed 16-bit RGBA image (TIFF; a stored
    PNG adds a filter byte per row and 5 bytes per 64 KiB block), plus room for the form."""
    raw = max_pixels * 8
    return raw + raw // 100 + MULTIPART_OVERHEAD


class NothingToProtect(FixativeError):
    """The optimisation could not change the image (e.g. pure black or white): say so, no silent "done"."""

    code = "nothing_to_protect"
    http_status = 422


def check_protectable_size(width: int, height: int) -> None:
    if min(width, height) < MIN_SIDE:
        raise BadImage(f"The image is {width}×{height} pixels; the engine protects images of at least "
                       f"{MIN_SIDE} pixels on each side.")


def check_changed(psnr: float | None, linf: float | None) -> None:
    """After protect(): an unchanged image (infinite PSNR) or undefined statistics (NaN) is a failure
    the artist must see, not a "done" with PSNR null and the same pixels."""
    import math

    if psnr is None or linf is None or not math.isfinite(psnr) or not math.isfinite(linf) or linf == 0:
        raise NothingToProtect("The image is too flat (a single colour at the edge of the range) or too small "
                               "to carry a protection; nothing was changed.")
