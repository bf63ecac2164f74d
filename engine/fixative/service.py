"""The use case every front end shares: decode → protect() → encode with the artist's metadata choices.

The CLI (`fixative protect`), the engine server's jobs and batch workers call these functions, so
the same options give the same pixels and the same metadata whichever door a file came through:
ICC profile and EXIF kept (GPS dropped with ``strip_location``), the XMP "Data Mining: prohibited"
field and the signed C2PA "not for AI training" credentials (fixative.provenance) written unless
``optout_metadata`` is off, the bit depth of the input kept.

Heavy imports (torch, the core) happen inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fixative.options import ProtectOptions
from fixative.result import Progress, ProtectResult

if TYPE_CHECKING:
    import torch

    from fixative.imageio import LoadedImage

OptionsLike = ProtectOptions | dict[str, Any] | None


@dataclass
class Protected:
    """An encoded protected image: the file's bytes, their format, and protect()'s result."""

    data: bytes
    format: str
    result: ProtectResult


def pick_device(requested: str = "auto") -> tuple[torch.device, torch.dtype]:
    """The device and dtype protect() will use for ``requested`` (see fixative.device)."""
    from fixative.device import pick_device as pick

    return pick(requested)


def device_name(requested: str = "auto") -> str:
    """'cuda', 'mps' or 'cpu': where jobs with this device option run."""
    return pick_device(requested)[0].type


def warm_up(options: OptionsLike = None) -> str:
    """Load the encoders protect() will use for ``options`` (default: the default set), once per process.

    Loads them with exactly protect()'s arguments so the model cache entry is shared; a missing
    weight file fails here, at start, with one clear error. Returns the device name."""
    from fixative.models.registry import load_encoder

    options = ProtectOptions.coerce(options)
    device, dtype = pick_device(options.device)
    for name in options.models:
        load_encoder(name, str(device), dtype)
    return device.type


def protect_image(loaded: LoadedImage, options: OptionsLike = None, *, fmt: str | None = None,
                  style_image: Any | None = None, anchor_images: list[Any] | None = None,
                  progress: Callable[[Progress], None] | None = None,
                  cancel: Callable[[], bool] | None = None, credentials: bool | None = None) -> Protected:
    """Protect a decoded image and encode it as ``fmt`` (default: the format it came in).

    ``credentials``: sign C2PA 'not for AI training' credentials into the file (default: with the
    opt-out metadata; the engine asks only for exports, since a layer round trip drops them)."""
    from fixative.core import protect

    options = ProtectOptions.coerce(options)
    result = protect(loaded.array, options, style_image=style_image, anchor_images=anchor_images,
                     progress=progress, cancel=cancel)
    fmt = fmt or str(loaded.format).upper()
    data = encode_result(result, loaded, fmt, options, credentials=credentials)
    return Protected(data=data, format=fmt, result=result)


def protect_bytes(source: bytes | Path, options: OptionsLike = None, *, fmt: str | None = None,
                  max_pixels: int | None = None, style_image: Any | None = None,
                  anchor_images: list[Any] | None = None, progress: Callable[[Progress], None] | None = None,
                  cancel: Callable[[], bool] | None = None, credentials: bool | None = None) -> Protected:
    """Decode ``source`` (bytes or a path), protect it, encode it as ``fmt`` (default: its own format).

    Images over ``max_pixels`` (default: fixative.imageio's) are refused before they are decoded.
    ``credentials`` as for protect_image."""
    from fixative.imageio import DEFAULT_MAX_PIXELS, load_image

    loaded = load_image(source, max_pixels=int(max_pixels or DEFAULT_MAX_PIXELS))
    return protect_image(loaded, options, fmt=fmt, style_image=style_image, anchor_images=anchor_images,
                         progress=progress, cancel=cancel, credentials=credentials)


def protect_file(source: Path, destination: Path, options: OptionsLike = None, *,
                 max_pixels: int | None = None, style_image: Any | None = None,
                 anchor_images: list[Any] | None = None,
                 progress: Callable[[Progress], None] | None = None) -> ProtectResult:
    """Protect ``source`` into ``destination`` (format from its suffix), written atomically."""
    from fixative.imageio import format_for_path, write_atomic

    protected = protect_bytes(source, options, fmt=format_for_path(destination), max_pixels=max_pixels,
                              style_image=style_image, anchor_images=anchor_images, progress=progress)
    write_atomic(destination, protected.data, protect_inputs=(Path(source),))
    return protected.result


def encode_result(result: ProtectResult, loaded: LoadedImage, fmt: str, options: ProtectOptions, *,
                  credentials: bool | None = None) -> bytes:
    """Encode with the input's ICC profile and EXIF, the opt-out XMP and the poison caption as chosen,
    then sign the C2PA credentials last, over the final bytes (``credentials`` None: with the XMP)."""
    import numpy as np

    from fixative import __version__
    from fixative.imageio import encode_image, strip_gps, xmp_packet
    from fixative.provenance import add_optout_credentials

    stats = result.stats
    exif = strip_gps(loaded.exif) if options.strip_location else loaded.exif
    caption = stats.concept if stats.mode in ("poison", "both") else None
    xmp = xmp_packet(caption, options.optout_metadata) if options.optout_metadata or caption else None
    info = {"version": __version__, "mode": stats.mode, "target": stats.target, "models": stats.models,
            "concept": stats.concept}
    data = encode_image(np.asarray(result.image), fmt, icc=loaded.icc, exif=exif, xmp=xmp, info=info)
    sign = options.optout_metadata if credentials is None else credentials
    return add_optout_credentials(data, fmt, enabled=sign)
