"""Fixative: imperceptible, robust perturbations that make image encoders see another style/concept.

The one entry point is :func:`protect`; everything else (CLI, engine server, batch) calls it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from fixative.options import ProtectOptions  # noqa: E402
from fixative.result import Progress, ProtectResult, ProtectStats  # noqa: E402

if TYPE_CHECKING:
    from fixative.core import protect

__all__ = ["protect", "ProtectOptions", "ProtectResult", "ProtectStats", "Progress", "__version__"]


def __getattr__(name: str) -> Any:
    # protect() pulls in torch; keep `import fixative` light for the CLI's --help and the server's startup.
    if name == "protect":
        from fixative.core import protect

        return protect
    raise AttributeError(name)
