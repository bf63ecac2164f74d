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

from . import colour, pixels
from ._common import fixative_client, fixative_pixels, fixative_plugin
from .qt import QByteArray, QTimer, process_events

FixativeClientError = fixative_client.FixativeClientError
SRGB_PROFILE = colour.SRGB_PROFILE
POLL_INTERVAL_MS = 60
# Layers whose own pixels are protected (their masks are copied along with the layer).
PIXEL_LAYERS = ("paintlayer",)
# Layers without editable pixels of their own: their masks-applied projection is protected and
# the result becomes a paint layer in their place.
MERGED_LAYERS = ("grouplayer", "vectorlayer", "filelayer", "clonelayer", "filllayer")
# Layer properties the protected copy carries over (getter, setter).
CARRIED_PROPERTIES = (("opacity", "setOpacity"), ("blendingMode", "setBlendingMode"),
                      ("inheritAlpha", "setInheritAlpha"), ("alphaLocked", "setAlphaLocked"),
                      ("visible", "setVisible"), ("locked", "setLocked"))
VISIBLE_IMAGE_NAME = "Visible image"


class LayerError(fixative_plugin.PluginError):
    """The layer or document cannot be protected as it is; the message says what to do."""


@dataclass
class LayerSnapshot:
    """The pixels sent to the engine and where they came from (read on the GUI thread).

    ``x, y, width, height``: the area sent (the layer inside the image, or the selection's
    bounding box). ``raw`` is RGBA in ``depth`` / ``profile``. When the source is in another
    colour space, ``source_space`` and ``source_raw`` hold its own pixels of that area, and the
    engine's change is converted back and added to them (``converted_from`` says from what).
    ``merged``: the pixels are a projection (group, vector layer, visible image); ``full_box`` /
    ``full_raw`` then hold the whole projection, which the new paint layer gets first.
    """

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
    source_space: tuple | None = None
    source_raw: bytes | None = None
    merged: bool = False
    full_box: tuple | None = None
    full_raw: bytes | None = None


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


def _rect_tuple(rect: Any) -> tuple[int, int, int, int]:
    return (rect.x(), rect.y(), rect.width(), rect.height())


def selection_box(document: Any) -> Any:
    """The bounding box of the document's active selection as a QRect, or None without one."""
    from .qt import QtCore

    selection = document.selection() if hasattr(document, "selection") else None
    if selection is None or selection.width() <= 0 or selection.height() <= 0:
        return None
    return QtCore.QRect(selection.x(), selection.y(), selection.width(), selection.height())


def _sub_area(raw: bytes, full: tuple, area: tuple, pixel_bytes: int) -> bytes:
    """The rows of ``area`` cut out of ``raw``, which covers ``full`` (both x, y, w, h)."""
    fx, fy, fw, _fh = full
    x, y, w, h = area
    rows = []
    for row in range(y - fy, y - fy + h):
        start = (row * fw + (x - fx)) * pixel_bytes
        rows.append(raw[start:start + w * pixel_bytes])
    return b"".join(rows)


def _pixel_bytes(model: str, depth: str) -> int:
    channels = {"GRAYA": 2, "CMYKA": 5}.get(model, 4)
    return channels * pixels.sample_bytes(depth)


def read_layer(document: Any, node: Any, use_selection: bool = True) -> LayerSnapshot:
    """The layer's pixels inside the image (or the active selection's box) as sRGB RGBA.

    Paint layers give their own pixels; groups, vector, file, clone and fill layers give their
    projection (masks applied). Other colour spaces are converted by Krita in a scratch document.
    """
    if document is None:
        raise LayerError("Open a document first: Fixative protects a layer of the open image.")
    if node is None:
        raise LayerError("Select a layer to protect.")
    kind = node.type()
    if kind not in PIXEL_LAYERS + MERGED_LAYERS:
        raise LayerError(f"Fixative protects layers, not a {kind or 'node of this kind'} ('{node.name()}'); "
                         "select the layer itself.")
    merged = kind in MERGED_LAYERS
    image = _image_rect(document)
    bounds = (node.bounds() if not merged else _projection_bounds(node, image)).intersected(image)
    if bounds.isEmpty():
        raise LayerError(f"Layer '{node.name()}' has no pixels inside the image: nothing to protect.")
    full = bounds
    box = selection_box(document) if use_selection else None
    if box is not None:
        bounds = bounds.intersected(box)
        if bounds.isEmpty():
            raise LayerError(f"The selection does not touch layer '{node.name()}': select part of it, "
                             "or deselect (Select › Deselect) to protect the whole layer.")
    space = _space_of(document if merged else node)
    read = (lambda rect: node.projectionPixelData(*_rect_tuple(rect))) if merged else \
        (lambda rect: node.pixelData(*_rect_tuple(rect)))
    full_raw = bytes(read(full)) if merged else None
    if merged and not full_raw.strip(b"\0"):
        raise LayerError(f"Layer '{node.name()}' has no pixels inside the image: nothing to protect.")
    raw = _sub_area(full_raw, _rect_tuple(full), _rect_tuple(bounds), _pixel_bytes(*space[:2])) \
        if merged else bytes(read(bounds))
    return snapshot_of(raw, bounds, space, node.name(), merged,
                       _rect_tuple(full) if merged else None, full_raw)


def _projection_bounds(node: Any, image: Any) -> Any:
    """Groups and vector layers report their content's bounds; fall back to the whole image."""
    rect = node.bounds()
    return rect if rect is not None and not rect.isEmpty() else image


def _space_of(owner: Any) -> tuple[str, str, str]:
    return (owner.colorModel(), owner.colorDepth(), owner.colorProfile())


def snapshot_of(raw: bytes, bounds: Any, space: tuple, name: str, merged: bool = False,
                full_box: tuple | None = None, full_raw: bytes | None = None) -> LayerSnapshot:
    """A LayerSnapshot of ``raw`` pixels in colour space ``space``, converted for the engine."""
    model, depth, profile = space
    if depth not in pixels.DEPTHS:
        raise LayerError(f"Fixative cannot read {depth} layers ('{name}'); convert the layer to 8- or 16-bit "
                         "integer or 16/32-bit float (Image › Convert Layer Color Space).")
    expected = bounds.width() * bounds.height() * _pixel_bytes(model, depth)
    if len(raw) != expected:
        raise LayerError(f"Krita returned {len(raw)} bytes for layer '{name}', expected {expected}; "
                         "the layer format is not supported.")
    x, y, width, height = _rect_tuple(bounds)
    if not colour.needs_conversion(model, depth, profile):
        return LayerSnapshot(x, y, width, height, depth, model, profile, raw,
                             depth in ("F16", "F32") and pixels.is_linear_profile(profile),
                             merged=merged, full_box=full_box, full_raw=full_raw)
    target = colour.engine_space(depth)
    try:
        (converted,) = colour.convert_pixels([raw], width, height, space, target)
    except ValueError as exc:
        raise LayerError(f"Could not convert layer '{name}' ({model} {depth}, {profile}) to sRGB: {exc} "
                         "Convert it yourself (Image › Convert Layer Color Space) and try again.") from None
    return LayerSnapshot(x, y, width, height, target[1], "RGBA", target[2], converted, False,
                         converted_from=f"{model} {depth} {profile}", source_space=tuple(space),
                         source_raw=raw, merged=merged, full_box=full_box, full_raw=full_raw)


def result_in_source_space(snapshot: LayerSnapshot, raw: bytes) -> bytes:
    """The engine's result as pixels of the source's own colour space (unchanged pixels identical)."""
    if snapshot.source_space is None:
        return raw
    back_result, back_sent = colour.convert_pixels([raw, snapshot.raw], snapshot.width, snapshot.height,
                                                   (snapshot.model, snapshot.depth, snapshot.profile),
                                                   snapshot.source_space)
    model, depth = snapshot.source_space[:2]
    return fixative_pixels.add_difference(snapshot.source_raw, back_sent, back_result, depth,
                                          _pixel_bytes(model, depth) // pixels.sample_bytes(depth))


def _image_rect(document: Any):
    from .qt import QtCore

    return QtCore.QRect(0, 0, document.width(), document.height())


@dataclass
class Protection:
    """One protection, so the original can follow its protected copy through Edit › Undo / Redo
    (``sync_protections``) and ``undo_protection`` can put it back in one step from a script."""

    document: Any
    protected: Any
    original: Any = None
    original_name: str = ""
    original_visible: bool = True
    hidden_name: str = ""  # the original's name while its copy is in the document
    present: bool = True  # whether the copy was in the document at the last look


HISTORY: list[Protection] = []
SYNC_INTERVAL_MS = 200
_sync_timer: list[Any] = []  # the one watcher QTimer, made on the GUI thread when first needed


def _restore_original(record: Protection) -> bool:
    """The original back as it was, if it still looks the way the protection left it."""
    original = record.original
    if not node_is_in_document(original) or original.name() != record.hidden_name or original.visible():
        return False
    original.setName(record.original_name)
    original.setVisible(record.original_visible)
    return True


def _hide_original(record: Protection) -> bool:
    """Hide and rename the original again (Redo), if the artist left it as the undo gave it back."""
    original = record.original
    if (not node_is_in_document(original) or original.name() != record.original_name
            or original.visible() != record.original_visible):
        return False
    original.setVisible(False)
    original.setName(record.hidden_name)
    return True


def sync_protections() -> int:
    """Keep each hidden original in step with its protected copy; returns how many changed.

    A protection is one step on Krita's undo stack: ``addChildNode`` of the copy ("Add Layer";
    libkis runs it as an undoable command). libkis changes names and visibility directly
    (``KisNode::setName`` / ``setVisible``, no undo command) and scripts cannot group undo steps,
    so hiding the original cannot be part of that step. This watcher does it instead: when the
    copy leaves the document (Edit › Undo, or the artist deletes it) the original gets its name
    and visibility back; when the copy returns (Edit › Redo) the original is hidden again.
    """
    changed = 0
    for record in list(HISTORY):
        if record.original is None:
            continue
        if not document_is_open(record.document):
            HISTORY.remove(record)
            continue
        present = node_is_in_document(record.protected)
        if present == record.present:
            continue
        record.present = present
        if _hide_original(record) if present else _restore_original(record):
            record.document.refreshProjection()
            changed += 1
    if not any(record.original is not None for record in HISTORY) and _sync_timer:
        _sync_timer[0].stop()
    return changed


def _watch(record: Protection) -> None:
    """Remember ``record`` and make sure the watcher runs (GUI thread: Krita's event loop)."""
    HISTORY.append(record)
    if record.original is None:
        return
    if not _sync_timer:
        timer = QTimer()
        timer.setInterval(SYNC_INTERVAL_MS)
        timer.timeout.connect(sync_protections)
        _sync_timer.append(timer)
    if not _sync_timer[0].isActive():
        _sync_timer[0].start()


def add_result_layer(document: Any, source: Any, snapshot: LayerSnapshot, raw: bytes,
                     keep_original_visible: bool = False) -> Any:
    """The protected copy 'NAME (protected)' right above ``source``, in its place.

    A paint layer is duplicated (its opacity, blending mode, inherit alpha, locks, visibility and
    masks come along) and the protected pixels replace the duplicate's in the sent area only.
    Other layers become a paint layer with their projection and the same properties. Unless
    ``keep_original_visible``, the source is hidden and renamed 'NAME (original)', untouched.
    """
    name = source.name()
    out = result_in_source_space(snapshot, raw)
    if snapshot.merged:
        new_node = document.createNode(f"{name} (protected)", "paintlayer")
        for getter, setter in CARRIED_PROPERTIES:
            # Krita records a blending mode change as its own undo step: only when it differs.
            if hasattr(source, getter) and getter != "locked" and \
                    getattr(new_node, getter)() != getattr(source, getter)():
                getattr(new_node, setter)(getattr(source, getter)())
        new_node.setPixelData(QByteArray(snapshot.full_raw), *snapshot.full_box)
    else:
        new_node = source.duplicate()
        if new_node is None:
            raise LayerError(f"Krita could not copy layer '{name}'.")
        new_node.setName(f"{name} (protected)")
    new_node.setPixelData(QByteArray(out), snapshot.x, snapshot.y, snapshot.width, snapshot.height)
    if snapshot.merged and hasattr(source, "locked"):
        new_node.setLocked(source.locked())
    parent = source.parentNode()
    if parent is None or not parent.addChildNode(new_node, source):
        raise LayerError("Could not add the protected layer to the document.")
    record = Protection(document, new_node)
    if not keep_original_visible:
        record = Protection(document, new_node, source, name, source.visible(), f"{name} (original)")
        source.setVisible(False)
        source.setName(record.hidden_name)
    _watch(record)
    document.refreshProjection()
    return new_node


def add_visible_image_layer(document: Any, snapshot: LayerSnapshot, raw: bytes) -> Any:
    """The protected merged picture as one new top layer 'Visible image (protected)'."""
    new_node = document.createNode(f"{VISIBLE_IMAGE_NAME} (protected)", "paintlayer")
    new_node.setPixelData(QByteArray(snapshot.full_raw), *snapshot.full_box)
    new_node.setPixelData(QByteArray(result_in_source_space(snapshot, raw)), snapshot.x, snapshot.y,
                          snapshot.width, snapshot.height)
    if not document.rootNode().addChildNode(new_node, None):
        raise LayerError("Could not add the protected layer to the document.")
    _watch(Protection(document, new_node))
    document.refreshProjection()
    return new_node


def read_visible_image(document: Any, use_selection: bool = True) -> LayerSnapshot:
    """The whole picture as shown (all visible layers merged), or the selection's box of it."""
    if document is None:
        raise LayerError("Open a document first: Fixative protects the open image.")
    image = _image_rect(document)
    box = selection_box(document) if use_selection else None
    bounds = image.intersected(box) if box is not None else image
    if bounds.isEmpty():
        raise LayerError("The selection lies outside the image: nothing to protect.")
    space = _space_of(document)
    full_raw = bytes(document.pixelData(*_rect_tuple(image)))
    raw = _sub_area(full_raw, _rect_tuple(image), _rect_tuple(bounds), _pixel_bytes(*space[:2]))
    return snapshot_of(raw, bounds, space, VISIBLE_IMAGE_NAME, True, _rect_tuple(image), full_raw)


def _is_document(first: Any, second: Any) -> bool:
    """The very same document (libkis compares the wrapped KisDocument; file names may repeat)."""
    try:
        return first is second or bool(first == second)
    except TypeError:
        return False


def undo_protection(document: Any) -> bool:
    """Undo the last protection of ``document`` from a script: remove the protected layer, give
    the original back its name and visibility. False when there is nothing (left) to undo.

    In a Krita window, Edit › Undo does the same (see ``sync_protections``); scripts without a
    window (kritarunner) have no Edit › Undo, hence this function."""
    for index in range(len(HISTORY) - 1, -1, -1):
        record = HISTORY[index]
        if not _is_document(record.document, document):
            continue
        del HISTORY[index]
        if not node_is_in_document(record.protected):
            return False
        record.protected.remove()
        if record.original is not None and node_is_in_document(record.original):
            record.original.setName(record.original_name)
            record.original.setVisible(record.original_visible)
        document.refreshProjection()
        return True
    return False


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
                 apply_result: Callable[[ProtectJob, bytes], Any] | None = None,
                 keep_original_visible: bool = False, use_selection: bool = True) -> None:
        self.document, self.node, self.options = document, node, dict(options or {})
        self.keep_original_visible, self.use_selection = keep_original_visible, use_selection
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
        self.snapshot = snapshot or read_layer(self.document, self.node, self.use_selection)
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
        except (FixativeClientError, ValueError) as exc:  # ValueError: a colour conversion failed
            self._finish("failed", exc)
            return
        self._finish("done", None)

    def _add_layer(self, job: ProtectJob, raw: bytes) -> Any:
        if not node_is_in_document(self.node):
            raise LayerError("The source layer was deleted during the protection; the result "
                             "was discarded.")
        return add_result_layer(self.document, self.node, self.snapshot, raw,
                                self.keep_original_visible)

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


def protect_visible_image(document: Any, options: dict, wait: bool = True,
                          use_selection: bool = True, **kwargs: Any) -> Any:
    """Protect the picture as shown (all visible layers merged) as one new top layer, the
    "before posting" case; the layers themselves stay as they are. Returns the layer (or the job)."""
    def add(job: ProtectJob, raw: bytes) -> Any:
        return add_visible_image_layer(job.document, job.snapshot, raw)

    job = ProtectJob(document, None, options, apply_result=add, **kwargs)
    job.start(read_visible_image(document, use_selection))
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
