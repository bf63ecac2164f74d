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
    from fixative.imageio import inspect_header
    from fixative.provenance import add_optout_credentials

    if not data:
        raise BadImage("The image upload is empty.")
    header = inspect_header(data, max_pixels=max_pixels, formats=SIGNABLE_FORMATS, what="file to sign")
    return add_optout_credentials(data, header.format), MEDIA_TYPES[header.format]
