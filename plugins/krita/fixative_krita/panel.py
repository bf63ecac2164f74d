"""The "Protect for Web" panel: options, Protect/Cancel, progress, engine status, preview.

It is a plain QWidget (the Krita dock wraps it) so tests drive it with a fake ``krita``.
Engine calls run on worker threads; results come back through QTimer polling on the GUI thread.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

from . import settings
from ._common import fixative_client, fixative_options, fixative_plugin
from .job import LayerError, ProtectJob, read_visible_image
from .qt import QImage, QPixmap, Qt, QTimer, QtWidgets

CHOOSE_IMAGE = "Choose image…"
KEEP_ORIGINAL_LABEL = "Keep original visible"
KEEP_ORIGINAL_TIP = ("Off (default): the original layer is hidden and renamed 'NAME (original)' and the "
                     "protected copy takes its place, so the picture looks the same. On: both stay visible.")
AUTO_STYLE = "Auto (far from yours)"
# Fields the panel's own logic reads; their widgets are also attributes (``panel.mode``).
NAMED_FIELDS = ("mode", "intensity", "quality", "robustness", "target_style", "concept",
                "target_concept")
format_eta = fixative_plugin.format_eta


def run_in_background(function: Callable[[], Any], on_result: Callable[[Any, Exception | None], None],
                      parent: Any = None) -> QTimer:
    """Call ``function`` on a thread; ``on_result(value, error)`` runs later on the GUI thread."""
    answers: queue.Queue = queue.Queue()

    def work() -> None:
        try:
            answers.put((function(), None))
        except Exception as exc:  # noqa: BLE001 - handed to the GUI thread
            answers.put((None, exc))

    timer = QTimer(parent)
    timer.setInterval(50)

    def check() -> None:
        try:
            value, error = answers.get_nowait()
        except queue.Empty:
            return
        timer.stop()
        on_result(value, error)

    timer.timeout.connect(check)
    timer.start()
    threading.Thread(target=work, name="fixative-call", daemon=True).start()
    return timer


class ProtectPanel(QtWidgets.QWidget):
    """``target()`` returns ``(document, node)`` to protect (the active ones in Krita).

    The option widgets come from the engine's option schema: the cached or shipped one at
    first (no waiting for the engine when Krita opens), the engine's own once connected.
    """

    def __init__(self, target: Callable[[], tuple[Any, Any]],
                 client_factory: Callable[[], Any] = fixative_client.FixativeClient,
                 parent: Any = None, schema: dict | None = None) -> None:
        super().__init__(parent)
        self.target = target
        self.client_factory = client_factory
        self.schema = schema or fixative_options.load_schema(ask_engine=False)
        self.fields: dict[str, Any] = {}
        self.form_box: Any = None
        self.job: ProtectJob | None = None
        self.info: dict | None = None
        self.style_image: bytes | None = None
        self.style_image_name: str | None = None
        self.last_error: str | None = None
        self._calls: list[QTimer] = []
        self._engine_asked = False
        self._restoring = True
        self._build()
        self.restore_settings()
        self._restoring = False
        self._update_enabled()
        self._set_running(False)

    # -- building --------------------------------------------------------------------------
    def _field_widget(self, field: dict, parent: Any) -> Any:
        """The editing widget for one schema field (the target style has its own combo)."""
        kind, default = field["kind"], field.get("default")
        if field["name"] == "target_style":
            widget = QtWidgets.QComboBox(parent)
            widget.addItem(AUTO_STYLE, "auto")
            widget.addItem(CHOOSE_IMAGE, CHOOSE_IMAGE)
            widget.activated.connect(self._style_chosen)
        elif kind == "choice":
            widget = QtWidgets.QComboBox(parent)
            for index, choice in enumerate(field["choices"]):
                widget.addItem(choice.get("label") or str(choice["value"]), choice["value"])
                widget.setItemData(index, choice.get("help") or "", Qt.ItemDataRole.ToolTipRole)
            widget.setCurrentIndex(fixative_options.index_of_choice(field, default))
            widget.currentIndexChanged.connect(self._update_enabled)
        elif kind == "integer":
            widget = QtWidgets.QSpinBox(parent)
            low, high = field.get("minimum"), field.get("maximum")
            widget.setRange(-2**31 if low is None else int(low), 2**31 - 1 if high is None else int(high))
            widget.setValue(int(default or 0))
        elif kind == "boolean":
            widget = QtWidgets.QCheckBox(parent)
            widget.setChecked(bool(default))
            widget.toggled.connect(self._update_enabled)
        else:  # text, or a list as comma-separated text
            widget = QtWidgets.QLineEdit(parent)
            widget.setText(",".join(default) if isinstance(default, list) else (default or ""))
            widget.setPlaceholderText(field.get("help") or "")
            if field.get("suggestions"):
                widget.setCompleter(QtWidgets.QCompleter(list(field["suggestions"]), widget))
        widget.setToolTip(field.get("help") or "")
        return widget

    def _build_fields(self) -> Any:
        """A widget holding one labelled row per dialog field of ``self.schema``."""
        box = QtWidgets.QWidget(self)
        form = QtWidgets.QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        self.fields = {}
        for field in fixative_options.dialog_fields(self.schema):
            widget = self._field_widget(field, box)
            form.addRow(fixative_options.label_of(field), widget)
            self.fields[field["name"]] = widget
            if field["name"] in NAMED_FIELDS:
                setattr(self, field["name"], widget)
        return box

    def set_schema(self, schema: dict) -> None:
        """Rebuild the option widgets for another schema, keeping the values still allowed."""
        if schema == self.schema:
            return
        kept = self.values()
        self.schema = schema
        old, self.form_box = self.form_box, self._build_fields()
        self.layout().insertWidget(0, self.form_box)
        self.layout().removeWidget(old)
        old.setParent(None)
        old.deleteLater()
        for name, value in kept.items():
            self._set_value(name, value)
        self._update_enabled()

    def _build(self) -> None:
        self.form_box = self._build_fields()

        self.keep_original = QtWidgets.QCheckBox(KEEP_ORIGINAL_LABEL, self)
        self.keep_original.setToolTip(KEEP_ORIGINAL_TIP)
        self.keep_original.toggled.connect(self._update_enabled)
        self.protect_button = QtWidgets.QPushButton("Protect layer", self)
        self.protect_visible_button = QtWidgets.QPushButton("Protect visible image", self)
        self.protect_visible_button.setToolTip("Adds the whole picture as shown, merged, as one protected "
                                               "layer on top (the 'before posting' case).")
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.protect_button)
        buttons.addWidget(self.protect_visible_button)
        buttons.addWidget(self.cancel_button)

        self.progress = QtWidgets.QProgressBar(self)
        self.progress.setRange(0, 1000)
        self.progress.setTextVisible(False)
        self.stage = QtWidgets.QLabel("", self)
        self.status = QtWidgets.QLabel("Engine: not connected", self)
        self.status.setWordWrap(True)
        self.preview = QtWidgets.QLabel(self)
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setMinimumHeight(80)
        self.preview.setToolTip("before | after | what the AI's encoder sees")

        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.form_box)
        layout.addWidget(self.keep_original)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage)
        layout.addWidget(self.status)
        layout.addWidget(self.preview)
        layout.addStretch(1)

        self.protect_button.clicked.connect(lambda: self.protect())
        self.protect_visible_button.clicked.connect(lambda: self.protect(visible_image=True))
        self.cancel_button.clicked.connect(self.cancel)

    # -- remembered settings -------------------------------------------------------------------
    def restore_settings(self) -> None:
        """The choices of the last session (Krita's settings), where the schema still allows them."""
        saved = settings.load()
        for name, value in saved.items():
            if name in self.fields and name != "target_style":
                self._set_value(name, value)
        self.keep_original.setChecked(bool(saved.get("keep_original_visible", False)))

    def save_settings(self) -> None:
        if self._restoring:
            return
        values = {name: value for name, value in self.values().items() if name != "target_style"}
        values["keep_original_visible"] = self.keep_original.isChecked()
        settings.save(values)

    # -- start-up: the engine starts when the panel is first shown, not when Krita starts --------
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.ensure_engine()

    def ensure_engine(self) -> None:
        """Start (or find) the engine once, in the background, saying so."""
        if not self._engine_asked:
            self._engine_asked = True
            self.connect_engine(start=True)

    # -- engine status ---------------------------------------------------------------------
    def set_status(self, text: str) -> None:
        self.status.setText(f"Engine: {text}")

    def connect_engine(self, start: bool = True) -> None:
        """Connect (or start the engine) in the background, then fill the style list."""
        self.set_status("starting engine…" if start else "looking for the engine…")
        client = self.client_factory()
        self._calls.append(run_in_background(lambda: client.connect(start=start),
                                             self._connected, self))

    def _connected(self, info: dict | None, error: Exception | None) -> None:
        if error is not None:
            self._show_error(error)
            return
        self.info = info
        if fixative_options.is_schema(info.get("options_schema")):
            self.set_schema(info["options_schema"])
        self.set_status("connected ({}, {})".format(info.get("version", "?"), info.get("device", "?")))
        current = self.target_style.currentData()
        self.target_style.clear()
        self.target_style.addItem(AUTO_STYLE, "auto")
        for name in info.get("styles", []):
            self.target_style.addItem(name.replace("_", " ").capitalize(), name)
        self.target_style.addItem(CHOOSE_IMAGE, CHOOSE_IMAGE)
        if self.style_image_name:
            self._add_style_file_item()
        index = self.target_style.findData(current)
        self.target_style.setCurrentIndex(max(index, 0))

    def _show_error(self, error: Exception) -> None:
        if isinstance(error, fixative_client.EngineNotInstalled):
            self.set_status(f"not installed. {error}")
        elif isinstance(error, fixative_client.EngineUnreachable):
            self.set_status(f"not reachable. {error}")
        else:
            self.status.setText(str(error))
        self.last_error = str(error)

    # -- options -----------------------------------------------------------------------------
    def _value(self, field: dict) -> Any:
        widget = self.fields[field["name"]]
        if isinstance(widget, QtWidgets.QComboBox):
            return widget.currentData()
        if isinstance(widget, QtWidgets.QSpinBox):
            return widget.value()
        if isinstance(widget, QtWidgets.QCheckBox):
            return widget.isChecked()
        return widget.text()

    def _set_value(self, name: str, value: Any) -> None:
        widget = self.fields.get(name)
        if widget is None or value is None:
            return
        if isinstance(widget, QtWidgets.QComboBox):
            index = widget.findData(value)
            if index >= 0:
                widget.setCurrentIndex(index)
        elif isinstance(widget, QtWidgets.QSpinBox):
            widget.setValue(int(value))
        elif isinstance(widget, QtWidgets.QCheckBox):
            widget.setChecked(bool(value))
        else:
            widget.setText(str(value))

    def values(self) -> dict:
        """Every dialog field's current value, by option name (before any checking)."""
        return {field["name"]: self._value(field)
                for field in fixative_options.dialog_fields(self.schema)}

    def _update_enabled(self) -> None:
        values = self.values()
        for field in fixative_options.dialog_fields(self.schema):
            self.fields[field["name"]].setEnabled(fixative_options.field_enabled(field, values))
        if hasattr(self, "keep_original"):
            self.save_settings()

    def _add_style_file_item(self) -> None:
        label = f"Image: {self.style_image_name}"
        index = self.target_style.findData("file")
        if index < 0:
            self.target_style.insertItem(self.target_style.count() - 1, label, "file")
        else:
            self.target_style.setItemText(index, label)

    def choose_style_file(self) -> str | None:
        """Ask for a style reference image (tests replace this)."""
        path, _filter = QtWidgets.QFileDialog.getOpenFileName(
            self, "Target style image", "", "Images (*.png *.jpg *.jpeg *.tif *.tiff)")
        return path or None

    def _style_chosen(self, index: int) -> None:
        if self.target_style.itemData(index) != CHOOSE_IMAGE:
            return
        path = self.choose_style_file()
        if path:
            try:
                with open(path, "rb") as handle:
                    self.style_image = handle.read()
            except OSError as exc:
                self.status.setText(f"Could not read {path}: {exc.strerror}")
                self.target_style.setCurrentIndex(0)
                return
            self.style_image_name = os.path.basename(path)
            self._add_style_file_item()
            self.target_style.setCurrentIndex(self.target_style.findData("file"))
        else:
            self.target_style.setCurrentIndex(0)

    def options(self) -> dict:
        """The engine options chosen in the panel (checked against the schema)."""
        values = self.values()
        if values.get("target_style") in ("file", CHOOSE_IMAGE, None):
            values.pop("target_style", None)  # a style image travels as a file instead
        return fixative_options.build_options(self.schema, values)

    def validate(self, options: dict) -> str | None:
        if options.get("mode") in ("poison", "both") and not options.get("target_concept"):
            return "Poison needs a target concept: what AI should see instead."
        return None

    # -- running -----------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.protect_button.setEnabled(not running)
        self.protect_visible_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def protect(self, visible_image: bool = False) -> ProtectJob | None:
        """Start protecting the target layer (or the visible image); returns the job (None when
        refused at once)."""
        if self.job is not None and not self.job.finished:
            return self.job
        try:
            options = self.options()
        except fixative_options.OptionsError as exc:
            options, problem = {}, str(exc)
        else:
            problem = self.validate(options)
        if problem:
            self.status.setText(problem)
            self.last_error = problem
            return None
        document, node = self.target()
        style = self.style_image if self.target_style.currentData() == "file" else None
        self.save_settings()
        extra: dict = {"keep_original_visible": self.keep_original.isChecked()}
        if visible_image:
            from .job import add_visible_image_layer

            extra["apply_result"] = lambda job, raw: add_visible_image_layer(job.document, job.snapshot, raw)
        self.job = ProtectJob(document, None if visible_image else node, options,
                              client=self.client_factory(), style_image=style, on_status=self.set_status,
                              on_progress=self._progressed, on_done=self._done, **extra)
        try:
            self.job.start(read_visible_image(document) if visible_image else None)
        except LayerError as exc:
            self.job = None
            self.status.setText(str(exc))
            self.last_error = str(exc)
            return None
        self.last_error = None
        self.preview.clear()
        self.progress.setValue(0)
        self.stage.setText("starting…")
        if self.info is None:
            self._engine_asked = True  # the job starts the engine itself
            self.set_status("starting engine…")
        self._set_running(True)
        return self.job

    def cancel(self) -> None:
        if self.job is not None and not self.job.finished:
            self.stage.setText("cancelling…")
            self.job.cancel()

    def _progressed(self, fraction: float, stage: str, eta_s: float | None) -> None:
        if self.status.text() != "Engine: connected, working":
            self.set_status("connected, working")
        self.progress.setValue(int(round(max(0.0, min(1.0, fraction)) * 1000)))
        self.stage.setText(f"{round(fraction * 100)}% — {fixative_plugin.progress_text(stage, eta_s)}")

    def _done(self, job: ProtectJob) -> None:
        self._set_running(False)
        if job.state == "done":
            self.progress.setValue(1000)
            name = job.result_node.name() if hasattr(job.result_node, "name") else "protected layer"
            self.stage.setText(fixative_plugin.done_text(name, job.report))
            self.set_status("connected")
            if job.preview_png:
                self.show_preview(job.preview_png)
        elif job.state == "cancelled":
            self.progress.setValue(0)
            self.stage.setText(str(job.error) if job.error and not isinstance(
                job.error, fixative_client.Cancelled) else "cancelled")
        else:
            self.progress.setValue(0)
            self.stage.setText("failed")
            self._show_error(job.error or fixative_client.FixativeClientError("Failed."))
            if not self.isVisible():  # started from the menu with the dock hidden: say it aloud
                QtWidgets.QMessageBox.warning(self.window(), "Fixative", self.last_error or "Failed.")

    def show_preview(self, png: bytes) -> None:
        image = QImage.fromData(png, "PNG")
        if image.isNull():
            return
        width = max(self.preview.width(), 240)
        self.preview.setPixmap(QPixmap.fromImage(image).scaledToWidth(
            width, Qt.TransformationMode.SmoothTransformation))

