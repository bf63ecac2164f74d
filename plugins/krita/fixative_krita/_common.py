"""Finds the shared stdlib client and PNG modules.

The installer copies ``fixative_client.py`` and ``fixative_png.py`` (with the client's folder rules,
``fixative_locations.py``) into this package; in the source tree they live in ``plugins/common``,
two folders up.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))

try:
    from . import fixative_client, fixative_png  # type: ignore[attr-defined]
except ImportError:
    _SOURCE_TREE = os.path.normpath(os.path.join(_HERE, os.pardir, os.pardir, "common"))
    if not os.path.isfile(os.path.join(_SOURCE_TREE, "fixative_client.py")):
        raise ImportError("fixative_client.py is missing next to the Fixative Krita plugin; "
                          "reinstall it with the Fixative installer.") from None
    if _SOURCE_TREE not in sys.path:
        sys.path.append(_SOURCE_TREE)
    import fixative_client  # type: ignore[no-redef]
    import fixative_png  # type: ignore[no-redef]

__all__ = ["fixative_client", "fixative_png"]
