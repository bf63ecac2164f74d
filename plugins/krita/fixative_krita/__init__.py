"""Fixative for Krita: protect a layer (or the flattened image) against AI style mimicry.

Scripting entry points (also usable under ``kritarunner``, where there is no active document):
``protect_layer(document, node, options, wait=True)`` and ``protect_active_layer(options)``;
``protect_visible_image(document, options)`` adds the merged picture as one protected layer;
``undo_protection(document)`` undoes the last protection in one step (scripts; in a window,
Edit › Undo does it, see ``sync_protections``);
``export_protected(document, path, options)`` saves a protected PNG/JPEG/WebP.
"""

from __future__ import annotations

import os

from ._common import fixative_client
from .export import export_protected
from .job import (
    LayerError,
    ProtectJob,
    protect_active_layer,
    protect_layer,
    protect_visible_image,
    sync_protections,
    undo_protection,
)

__all__ = ["protect_layer", "protect_active_layer", "protect_visible_image", "undo_protection",
           "sync_protections", "export_protected", "ProtectJob", "LayerError",
           "FixativeClientError", "DOCK_ID"]

FixativeClientError = fixative_client.FixativeClientError
DOCK_ID = "fixative_protect_dock"
DOCK_TITLE = "Protect for Web"

try:
    import krita as _krita_module
except ImportError:  # imported by plain Python (tests, docs): no registration
    _krita_module = None


def _register() -> None:
    from .krita_ui import FixativeExtension, ProtectDock

    app = _krita_module.Krita.instance()
    app.addExtension(FixativeExtension(app))
    base = _krita_module.DockWidgetFactoryBase
    dock_right = getattr(base, "DockRight", None) or base.DockPosition.DockRight
    app.addDockWidgetFactory(_krita_module.DockWidgetFactory(DOCK_ID, dock_right, ProtectDock))


if _krita_module is not None and not os.environ.get("FIXATIVE_KRITA_NO_REGISTER"):
    _register()
