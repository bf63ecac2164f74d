"""``POST /v1/credentials``: sign an encoded image with this engine user's content credentials.

For plug-ins that encode the final file themselves (Krita's Export Protected writes JPEG/WebP
with Qt) and have no C2PA library: they upload the finished bytes, the engine adds the signed
"not for AI training" manifest with its own identity (``fixative identity``) and sends them back.
No key or certificate is ever accepted over HTTP.
"""

from __future__ import annotations

from fixative.errors import BadImage
from fixative.provenance import MEDIA_TYPES

SIGNABLE_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})


def sign_upload(data: bytes, max_pixels: int) -> tuple[bytes, str]:
    """(signed bytes, media type). The header is checked first; the pixels are never decoded."""
    from fixative.imageio import check_pixels, probe
    from fixative.provenance import add_optout_credentials

    if not data:
        raise BadImage("The image upload is empty.")
    fmt, width, height = probe(data)
    if fmt not in SIGNABLE_FORMATS:
        raise BadImage(f"The image is {fmt}; send the finished PNG, JPEG or WebP file.")
    check_pixels(width, height, max_pixels)
    return add_optout_credentials(data, fmt), MEDIA_TYPES[fmt]
