"""Finds the shared stdlib plug-in layer (client, PNG, option schema, texts).

The installer copies the ``plugins/common`` files (with the client's folder rules,
``fixative_locations.py``) into this package; in the source tree they live in ``plugins/common``,
two folders up. They import each other by their plain names (as in GIMP), so their folder goes on
``sys.path`` and they are imported only that way: one copy of each module, so one set of error
classes.
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_SOURCE_TREE = os.path.normpath(os.path.join(_HERE, os.pardir, os.pardir, "common"))

for _folder in (_HERE, _SOURCE_TREE):
    if os.path.isfile(os.path.join(_folder, "fixative_client.py")):
        if _folder not in sys.path:
            sys.path.insert(0, _folder)
        break
else:
    raise ImportError("fixative_client.py is missing next to the Fixative Krita plugin; "
                      "reinstall it with the Fixative installer.")

import fixative_client  # noqa: E402
import fixative_options  # noqa: E402
import fixative_pixels  # noqa: E402
import fixative_plugin  # noqa: E402
import fixative_png  # noqa: E402

__all__ = ["fixative_client", "fixative_options", "fixative_pixels", "fixative_plugin", "fixative_png"]
