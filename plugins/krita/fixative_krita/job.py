"""One protection run: read a layer, let the engine work, add the result as a new layer.

Krita's API is only touched on the GUI thread (``start`` and the timer callback); the worker
thread does HTTP and pure-Python pixel work, and talks back through a queue that a QTimer
drains. So the UI never freezes, and a script can still wait by pumping the event loop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import pixels
from ._common import fixative_client, fixative_plugin
from .qt import QByteArray, QTimer, process_events

FixativeClientError = fixative_client.FixativeClientError
SRGB_PROFILE = "sRGB-elle-V2-srgbtrc.icc"
CONVERTIBLE_MODELS = ("GRAYA", "CMYKA", "LABA", "XYZA", "YCbCrA")
POLL_INTERVAL_MS = 60


class LayerError(fixative_plugin.PluginError):
    """The layer or document cannot be protected as it is; the message says what to do."""


@dataclass
class LayerSnapshot:
    """The pixels sent to the engine and where they came from (read on the GUI thread)."""

    x: int
    y: int
    width: int
    height: int
    depth: str
    model: str
    profile: str
    raw: bytes
    linear: bool
    converted_from: str | None = None


def _krita():
    from krita import Krita  # only importable inside Krita (or the tests' fake module)

    return Krita.instance()


def document_is_open(document: Any) -> bool:
    """False once Krita closed the document (libkis then answers with empty values)."""
    try:
        if document is None or document.rootNode() is None:
            return False
        open_documents = _krita().documents()
    except (RuntimeError, AttributeError):
        return False
    return any(_same_document(candidate, document) for candidate in open_documents)


def _same_document(first: Any, second: Any) -> bool:
    try:
        if first == second:
            return True
    except TypeError:
        pass
    name = first.fileName() if hasattr(first, "fileName") else None
    return bool(name) and name == second.fileName() and first.rootNode() is not None


def node_is_in_document(node: Any) -> bool:
    try:
        return node is not None and node.parentNode() is not None
    except RuntimeError:
        return False


def read_layer(document: Any, node: Any) -> LayerSnapshot:
    """The layer's pixels inside the image bounds, as RGBA; other colour models on a copy."""
    if document is None:
        raise LayerError("Open a document first: Fixative protects a layer of the open image.")
    if node is None:
        raise LayerError("Select a paint layer to protect.")
    if node.type() != "paintlayer":
        raise LayerError(f"Fixative protects paint layers; '{node.name()}' is a {node.type()}. Convert it to a paint "
                         "layer (Layer › Convert) or select another layer.")
    bounds = node.bounds().intersected(_image_rect(document))
    if bounds.isEmpty():
        raise LayerError(f"Layer '{node.name()}' has no pixels inside the image: nothing to protect.")
    depth, model = node.colorDepth(), node.colorModel()
    try:
        pixels.check_depth(depth)
    except pixels.PixelError as exc:
        raise LayerError(str(exc)) from None
    source, converted_from = node, None
    if model != "RGBA":
        if model not in CONVERTIBLE_MODELS:
            raise LayerError(f"Fixative cannot read {model} layers; convert the layer to RGB "
                             "(Image › Convert Layer Color Space).")
        source = node.duplicate()  # convert a detached copy: the artist's layer is never touched
        if source is None or not source.setColorSpace("RGBA", depth, SRGB_PROFILE):
            raise LayerError(f"Could not convert the {model} layer '{node.name()}' to RGB; convert it yourself "
                             "(Image › Convert Layer Color Space) and try again.")
        converted_from = model
    profile = source.colorProfile()
    raw = bytes(source.pixelData(bounds.x(), bounds.y(), bounds.width(), bounds.height()))
    expected = bounds.width() * bounds.height() * pixels.bytes_per_pixel(depth)
    if len(raw) != expected:
        raise LayerError(f"Krita returned {len(raw)} bytes for layer '{node.name()}', expected "
                         f"{expected}; the layer format is not supported.")
    return LayerSnapshot(bounds.x(), bounds.y(), bounds.width(), bounds.height(), depth,
                         source.colorModel(), profile, raw,
                         depth in ("F16", "F32") and pixels.is_linear_profile(profile),
                         converted_from)


def _image_rect(document: Any):
    from .qt import QtCore

    return QtCore.QRect(0, 0, document.width(), document.height())


def add_result_layer(document: Any, source: Any, snapshot: LayerSnapshot, raw: bytes) -> Any:
    """A new paint layer 'NAME (protected)' right above ``source``, added as one undo step."""
    name = f"{source.name()} (protected)"
    new_node = document.createNode(name, "paintlayer")
    if (new_node.colorModel(), new_node.colorDepth(), new_node.colorProfile()) != (
            snapshot.model, snapshot.depth, snapshot.profile):
        new_node.setColorSpace(snapshot.model, snapshot.depth, snapshot.profile)
    new_node.setPixelData(QByteArray(raw), snapshot.x, snapshot.y, snapshot.width, snapshot.height)
    parent = source.parentNode()
    if parent is None or not parent.addChildNode(new_node, source):
        raise LayerError("Could not add the protected layer to the document.")
    document.refreshProjection()
    return new_node


class ProtectJob:
    """Runs one protection without blocking the GUI; callbacks fire on the GUI thread.

    ``on_status(text)``, ``on_progress(fraction, stage, eta_s)``, ``on_done(job)``: ``job.state``
    is then 'done' (``job.result_node``), 'failed' (``job.error``) or 'cancelled'.
    """

    def __init__(self, document: Any, node: Any, options: dict, client: Any = None,
                 style_image: bytes | None = None, anchor: bytes | None = None,
                 on_status: Callable[[str], None] | None = None,
                 on_progress: Callable[[float, str, float | None], None] | None = None,
                 on_done: Callable[[ProtectJob], None] | None = None,
                 apply_result: Callable[[ProtectJob, bytes], Any] | None = None) -> None:
        self.document, self.node, self.options = document, node, dict(options or {})
        self.client = client or fixative_client.FixativeClient()
        self.style_image, self.anchor = style_image, anchor
        self.on_status, self.on_progress, self.on_done = on_status, on_progress, on_done
        self.apply_result = apply_result or self._add_layer
        self.state = "new"
        self.error: Exception | None = None
        self.result_node: Any = None
        self.result_raw: bytes | None = None
        self.result_samples: bytes | None = None  # the engine's PNG samples (R,G,B,A)
        self.result_bit_depth = 8
        self.preview_png: bytes | None = None
        self.report: dict = {}
        self.notes: list[str] = []  # things the artist should know about a successful run
        self.snapshot: LayerSnapshot | None = None
        self._events: queue.Queue = queue.Queue()
        self._cancel = threading.Event()
        self._timer: QTimer | None = None
        self._thread: threading.Thread | None = None

    # -- GUI thread -----------------------------------------------------------------------
    def start(self, snapshot: LayerSnapshot | None = None) -> ProtectJob:
        """Reads the pixels now (GUI thread) and starts the worker; raises LayerError at once."""
        self.snapshot = snapshot or read_layer(self.document, self.node)
        self.state = "running"
        self._timer = QTimer()
        self._timer.setInterval(POLL_INTERVAL_MS)
        self._timer.timeout.connect(self._drain)
        self._timer.start()
        self._thread = threading.Thread(target=self._work, name="fixative-job", daemon=True)
        self._thread.start()
        return self

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    def wait(self, timeout: float | None = None) -> ProtectJob:
        """Block a script until the job ends while the Qt event loop keeps turning."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.finished:
            if deadline is not None and time.monotonic() > deadline:
                self.cancel()
                deadline = None  # let the cancel come through, then return
            process_events()
            if not self.finished:
                self._drain()  # also works where no event loop runs timers
                time.sleep(0.01)
        return self

    def _drain(self) -> None:
        if self.finished:
            return
        if self.document is not None and not document_is_open(self.document):
            self._cancel.set()  # the artist closed the image: drop the result safely
            self._finish("cancelled", LayerError("The document was closed; the protection was "
                                                 "discarded."))
            return
        while True:
            try:
                kind, payload = self._events.get_nowait()
            except queue.Empty:
                return
            if kind == "status" and self.on_status:
                self.on_status(payload)
            elif kind == "progress" and self.on_progress:
                self.on_progress(*payload)
            elif kind == "error":
                state = "cancelled" if isinstance(payload, fixative_client.Cancelled) else "failed"
                self._finish(state, payload)
                return
            elif kind == "done":
                self._apply(payload)
                return

    def _apply(self, raw: bytes) -> None:
        self.result_raw = raw
        try:
            self.result_node = self.apply_result(self, raw)
        except FixativeClientError as exc:
            self._finish("failed", exc)
            return
        self._finish("done", None)

    def _add_layer(self, job: ProtectJob, raw: bytes) -> Any:
        if not node_is_in_document(self.node):
            raise LayerError("The source layer was deleted during the protection; the result "
                             "was discarded.")
        return add_result_layer(self.document, self.node, self.snapshot, raw)

    def _finish(self, state: str, error: Exception | None) -> None:
        self.state, self.error = state, error
        if self._timer is not None:
            self._timer.stop()
        if self.on_done:
            self.on_done(self)

    # -- worker thread: no Krita calls here ------------------------------------------------
    def _work(self) -> None:
        try:
            self._events.put(("done", self._run_engine()))
        except FixativeClientError as exc:
            self._events.put(("error", exc))
        except Exception as exc:  # noqa: BLE001 - any surprise must reach the artist, not vanish
            self._events.put(("error", FixativeClientError(f"Fixative failed unexpectedly: {exc}")))

    def _run_engine(self) -> bytes:
        snapshot = self.snapshot
        encoded = pixels.krita_to_png(snapshot.raw, snapshot.depth, snapshot.linear)
        png = fixative_plugin.encode_layer(snapshot.width, snapshot.height, 4, encoded.bit_depth,
                                           encoded.samples, compress_level=3)
        client = self.client
        client.connect(start=True, on_status=lambda text: self._events.put(("status", text)))
        if self._cancel.is_set():
            raise fixative_client.Cancelled("Protection cancelled.")
        self._events.put(("status", "sending the layer to the engine…"))
        outcome = client.protect(png, self.options, style_image=self.style_image, anchor=self.anchor,
                                 should_cancel=self._cancel.is_set, fetch_preview=True,
                                 on_progress=lambda *values: self._events.put(("progress", values)))
        self.report, self.preview_png = outcome.report, outcome.preview
        samples = fixative_plugin.decode_result(outcome.result, snapshot.width, snapshot.height, 4,
                                                encoded.bit_depth)
        self.result_samples, self.result_bit_depth = samples, encoded.bit_depth
        try:
            return pixels.png_to_krita(samples, encoded, snapshot.raw, snapshot.depth,
                                       snapshot.linear)
        except pixels.PixelError as exc:
            raise fixative_plugin.PluginError(str(exc)) from None


def protect_layer(document: Any, node: Any, options: dict, wait: bool = True, **kwargs: Any) -> Any:
    """Protect ``node`` of ``document``; returns the new layer (``wait=True``) or the job.

    With ``wait=True`` this blocks while pumping Qt events and raises the job's error
    (a FixativeClientError subclass) if it did not succeed; the document is then unchanged.
    """
    job = ProtectJob(document, node, options, **kwargs).start()
    if not wait:
        return job
    job.wait()
    if job.state != "done":
        raise job.error or fixative_client.Cancelled("Protection cancelled.")
    return job.result_node


def protect_active_layer(options: dict, wait: bool = True, **kwargs: Any) -> Any:
    """``protect_layer`` on the active document and layer (None under kritarunner: no window)."""
    document = _krita().activeDocument()
    if document is None:
        raise LayerError("No active document: open an image in a Krita window first (scripts "
                         "without a window call protect_layer(document, node, options)).")
    return protect_layer(document, document.activeNode(), options, wait=wait, **kwargs)
