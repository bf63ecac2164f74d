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

from ._common import fixative_client
from .job import LayerError, ProtectJob
from .qt import QImage, QPixmap, Qt, QTimer, QtWidgets

CHOOSE_IMAGE = "Choose image…"
MODES = [("style", "Style cloak (against mimicry)"), ("poison", "Concept poison"),
         ("both", "Style cloak + poison")]
LEVELS = {"intensity": ["low", "default", "high"], "quality": ["fast", "default", "max"],
          "robustness": ["off", "standard", "strong"]}


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


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"about {seconds} s left"
    return f"about {seconds // 60} min {seconds % 60:02d} s left"


class ProtectPanel(QtWidgets.QWidget):
    """``target()`` returns ``(document, node)`` to protect (the active ones in Krita)."""

    def __init__(self, target: Callable[[], tuple[Any, Any]],
                 client_factory: Callable[[], Any] = fixative_client.FixativeClient,
                 parent: Any = None) -> None:
        super().__init__(parent)
        self.target = target
        self.client_factory = client_factory
        self.job: ProtectJob | None = None
        self.info: dict | None = None
        self.style_image: bytes | None = None
        self.style_image_name: str | None = None
        self.last_error: str | None = None
        self._calls: list[QTimer] = []
        self._build()
        self._update_mode()
        self._set_running(False)

    # -- building --------------------------------------------------------------------------
    def _combo(self, items: list[tuple[str, str]]) -> QtWidgets.QComboBox:
        combo = QtWidgets.QComboBox(self)
        for value, label in items:
            combo.addItem(label, value)
        return combo

    def _build(self) -> None:
        form = QtWidgets.QFormLayout()
        self.mode = self._combo(MODES)
        self.intensity = self._combo([(v, v.capitalize()) for v in LEVELS["intensity"]])
        self.quality = self._combo([(v, v.capitalize()) for v in LEVELS["quality"]])
        self.robustness = self._combo([(v, v.capitalize()) for v in LEVELS["robustness"]])
        for combo in (self.intensity, self.quality, self.robustness):
            combo.setCurrentIndex(1)
        self.target_style = self._combo([("auto", "Auto (far from yours)")])
        self.target_style.addItem(CHOOSE_IMAGE, CHOOSE_IMAGE)
        self.concept = QtWidgets.QLineEdit(self)
        self.concept.setPlaceholderText("what the artwork shows, e.g. cat")
        self.target_concept = QtWidgets.QLineEdit(self)
        self.target_concept.setPlaceholderText("what AI should see instead, e.g. dog")
        form.addRow("Mode", self.mode)
        form.addRow("Intensity", self.intensity)
        form.addRow("Quality", self.quality)
        form.addRow("Robustness", self.robustness)
        form.addRow("Target style", self.target_style)
        form.addRow("Concept", self.concept)
        form.addRow("Target concept", self.target_concept)

        self.protect_button = QtWidgets.QPushButton("Protect layer", self)
        self.cancel_button = QtWidgets.QPushButton("Cancel", self)
        buttons = QtWidgets.QHBoxLayout()
        buttons.addWidget(self.protect_button)
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
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.stage)
        layout.addWidget(self.status)
        layout.addWidget(self.preview)
        layout.addStretch(1)

        self.mode.currentIndexChanged.connect(self._update_mode)
        self.target_style.activated.connect(self._style_chosen)
        self.protect_button.clicked.connect(self.protect)
        self.cancel_button.clicked.connect(self.cancel)

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
        self.set_status("connected ({}, {})".format(info.get("version", "?"), info.get("device", "?")))
        current = self.target_style.currentData()
        self.target_style.clear()
        self.target_style.addItem("Auto (far from yours)", "auto")
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
    def _update_mode(self) -> None:
        poison = self.mode.currentData() in ("poison", "both")
        self.concept.setEnabled(poison)
        self.target_concept.setEnabled(poison)

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
        """The engine options chosen in the panel (engine names, docs/engine-api.md)."""
        options = {"mode": self.mode.currentData(), "intensity": self.intensity.currentData(),
                   "quality": self.quality.currentData(),
                   "robustness": self.robustness.currentData()}
        style = self.target_style.currentData()
        if style not in ("file", CHOOSE_IMAGE, None):
            options["target_style"] = style
        if options["mode"] in ("poison", "both"):
            for key, field in (("concept", self.concept), ("target_concept", self.target_concept)):
                text = field.text().strip()
                if text:
                    options[key] = text
        return options

    def validate(self, options: dict) -> str | None:
        if options["mode"] in ("poison", "both") and not options.get("target_concept"):
            return "Poison needs a target concept: what AI should see instead."
        return None

    # -- running -----------------------------------------------------------------------------
    def _set_running(self, running: bool) -> None:
        self.protect_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)

    def protect(self) -> ProtectJob | None:
        """Start protecting the target layer; returns the job (None when refused at once)."""
        if self.job is not None and not self.job.finished:
            return self.job
        options = self.options()
        problem = self.validate(options)
        if problem:
            self.status.setText(problem)
            self.last_error = problem
            return None
        document, node = self.target()
        style = self.style_image if self.target_style.currentData() == "file" else None
        self.job = ProtectJob(document, node, options, client=self.client_factory(),
                              style_image=style, on_status=self.set_status,
                              on_progress=self._progressed, on_done=self._done)
        try:
            self.job.start()
        except LayerError as exc:
            self.job = None
            self.status.setText(str(exc))
            self.last_error = str(exc)
            return None
        self.last_error = None
        self.preview.clear()
        self.progress.setValue(0)
        self.stage.setText("starting…")
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
        parts = [stage or "working", f"{round(fraction * 100)}%", format_eta(eta_s)]
        self.stage.setText(" — ".join(part for part in parts if part))

    def _done(self, job: ProtectJob) -> None:
        self._set_running(False)
        if job.state == "done":
            self.progress.setValue(1000)
            report = job.report or {}
            details = ", ".join(f"{key} {_short(report[key])}" for key in ("psnr", "seconds")
                                if key in report)
            self.stage.setText("done — added '{}'{}".format(job.result_node.name() if hasattr(
                job.result_node, "name") else "protected layer", f" ({details})" if details else ""))
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

    def show_preview(self, png: bytes) -> None:
        image = QImage.fromData(png, "PNG")
        if image.isNull():
            return
        width = max(self.preview.width(), 240)
        self.preview.setPixmap(QPixmap.fromImage(image).scaledToWidth(
            width, Qt.TransformationMode.SmoothTransformation))


def _short(value: Any) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)
