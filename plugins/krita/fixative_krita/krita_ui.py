"""Krita glue: the Protect for Web dock and the two actions (Tools › Scripts)."""

from __future__ import annotations

from typing import Any

from krita import DockWidget, Extension, Krita

from .export import FORMATS, export_protected
from .export_dialog import ask_export_path
from .job import LayerError, ProtectJob, protect_layer
from .panel import ProtectPanel
from .qt import QtWidgets

DOCK_TITLE = "Protect for Web"
DOCK_ID = "fixative_protect_dock"
_panels: list[ProtectPanel] = []


def active_target() -> tuple[Any, Any]:
    document = Krita.instance().activeDocument()
    return document, (document.activeNode() if document is not None else None)


def current_panel() -> ProtectPanel | None:
    """The dock's panel of the active window, if the dock was ever shown."""
    alive = []
    for panel in _panels:
        try:
            panel.isVisible()
        except RuntimeError:  # its window was closed
            continue
        alive.append(panel)
    _panels[:] = alive
    return next((panel for panel in alive if panel.isVisible()), alive[0] if alive else None)


class ProtectDock(DockWidget):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(DOCK_TITLE)
        self.panel = ProtectPanel(active_target, parent=self)
        self.setWidget(self.panel)
        _panels.append(self.panel)
        # No engine start here: Krita creates dockers when a window opens. The panel starts it
        # when first shown (or on the first Protect), saying "starting engine…".

    def canvasChanged(self, canvas: Any) -> None:  # required by DockWidget
        pass


def show_dock() -> bool:
    """Show and raise the Protect for Web dock of the active window (the menu action's feedback)."""
    window = Krita.instance().activeWindow()
    if window is None:
        return False
    for dock in window.dockers():
        if dock.objectName() == DOCK_ID or dock.windowTitle() == DOCK_TITLE:
            dock.show()
            dock.raise_()
            return True
    return False


def _message(text: str, title: str = "Fixative") -> None:
    window = Krita.instance().activeWindow()
    QtWidgets.QMessageBox.information(window.qwindow() if window else None, title, text)


class FixativeExtension(Extension):
    def __init__(self, parent: Any) -> None:
        super().__init__(parent)
        self._jobs: list[ProtectJob] = []

    def setup(self) -> None:
        pass

    def createActions(self, window: Any) -> None:
        protect = window.createAction("fixative_protect_layer", "Protect Layer for Web",
                                      "tools/scripts")
        protect.triggered.connect(self.protect_layer)
        export = window.createAction("fixative_export_protected", "Export Protected for Web…",
                                     "tools/scripts")
        export.triggered.connect(self.export_protected)
        # No undo command of our own: Edit › Undo undoes a protection (job.sync_protections).

    def _options(self) -> dict:
        panel = current_panel()
        return panel.options() if panel is not None else {}

    def protect_layer(self) -> None:
        show_dock()
        panel = current_panel()
        if panel is not None:  # the dock shows progress, preview and errors
            panel.protect()
            if panel.last_error:
                _message(panel.last_error)
            return
        document, node = active_target()
        try:
            job = protect_layer(document, node, {}, wait=False, on_done=self._finished)
        except LayerError as exc:
            _message(str(exc))
            return
        self._jobs.append(job)

    def export_protected(self) -> None:
        document = Krita.instance().activeDocument()
        if document is None:
            _message("Open an image first.")
            return
        window = Krita.instance().activeWindow()
        chosen = ask_export_path(window.qwindow() if window else None)
        if chosen is None:
            return
        path, credentials = chosen
        if not any(path.lower().endswith(extension) for extension in FORMATS):
            path += ".png"
        try:
            job = export_protected(document, path, self._options(), wait=False,
                                   credentials=credentials, on_done=self._finished)
        except LayerError as exc:
            _message(str(exc))
            return
        self._jobs.append(job)

    def _finished(self, job: ProtectJob) -> None:
        if job in self._jobs:
            self._jobs.remove(job)
        if job.state == "done":
            where = job.result_node if isinstance(job.result_node, str) else None
            text = (f"Protected image saved to {where}." if where else
                    f"Added the protected layer '{job.result_node.name()}'.")
            _message("\n\n".join([text, *job.notes]))
        elif job.error is not None:
            _message(str(job.error))
