"""Runs inside a real Krita window (``krita`` under Xvfb), loaded by a tiny test plugin.

kritarunner has no window, so no Edit › Undo (``openWindow`` crashes it); this driver checks
what the artist gets: after each protection, how many entries Krita's undo history (the
History docker's model) gained, and whether one Edit › Undo restores the document exactly,
Redo protects again, and Undo once more restores it. Cases: a paint layer, a group with a
blending mode, a vector layer with shapes, the visible image. Writes ``verdict.json``, then
leaves with ``os._exit`` (Krita 5.2+ may crash while quitting after Python ran).
"""

import hashlib
import json
import os
import time
import traceback

from krita import Krita

SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="96" height="72" viewBox="0 0 96 72">'
       '<rect x="12" y="10" width="50" height="36" fill="#c83c28" stroke="#1e3c8c" stroke-width="3"/>'
       '<ellipse cx="60" cy="40" rx="22" ry="16" fill="#28a050" fill-opacity="0.6"/></svg>')


def _config():
    with open(os.environ["FIXATIVE_KRITA_DRIVER"]) as handle:
        return json.load(handle)


def _pump(document=None, seconds=0.0):
    from fixative_krita.qt import process_events

    deadline = time.monotonic() + seconds
    while True:
        process_events()
        if document is not None:
            document.waitForDone()
        if time.monotonic() >= deadline:
            return
        time.sleep(0.02)


def _history(app):
    """The entries of the History docker's undo model (the first row is '<empty>')."""
    from fixative_krita.qt import QtWidgets

    for view in app.activeWindow().qwindow().findChildren(QtWidgets.QAbstractItemView):
        model = view.model()
        if model is not None and model.metaObject().className() in ("KisUndoModel", "KUndo2Model"):
            return [model.data(model.index(row, 0)) for row in range(model.rowCount())]
    return None


def _tree(node):
    return [[child.name(), child.type(), child.visible(), child.opacity(), child.blendingMode(),
             _tree(child)] for child in node.childNodes()]


def _state(document):
    """Layer tree with properties, and a hash of the composed image."""
    document.refreshProjection()
    _pump(document, 0.1)
    pixels = bytes(document.pixelData(0, 0, document.width(), document.height()))
    return {"tree": _tree(document.rootNode()), "pixels": hashlib.sha256(pixels).hexdigest()}


def _trigger(app, document, name):
    action = app.action(name)
    text = action.text()
    action.trigger()
    _pump(document, 1.0)  # the undo runs as a stroke; the plug-in's watcher ticks every 200 ms
    return text


def _new_document(app, config, name):
    from fixative_krita.qt import QByteArray

    width, height = config["doc_size"]
    document = app.createDocument(width, height, name, "RGBA", "U8", "sRGB-elle-V2-srgbtrc.icc", 72.0)
    app.activeWindow().addView(document)
    app.setActiveDocument(document)
    x, y, w, h = config["layer_box"]
    with open(config["rgba_path"], "rb") as handle:
        rgba = handle.read()
    bgra = bytearray(rgba)
    bgra[0::4], bgra[2::4] = rgba[2::4], rgba[0::4]
    node = document.createNode("Paint", "paintlayer")
    document.rootNode().addChildNode(node, None)
    node.setPixelData(QByteArray(bytes(bgra)), x, y, w, h)
    _pump(document, 0.2)
    return document, node


def _undo_round(app, document, protect):
    """Protect, then Undo, Redo, Undo through Krita's own actions; what each step left."""
    before = _state(document)
    rows_before = _history(app)
    new = protect()
    record = {"new_type": new.type(), "new_name": new.name(), "rows_before": rows_before,
              "rows_after": _history(app), "protected": _state(document)}
    record["undo_text"] = _trigger(app, document, "edit_undo")
    after_undo = _state(document)
    record["undo_restores"] = after_undo == before
    record["after_undo"] = after_undo["tree"]
    record["redo_text"] = _trigger(app, document, "edit_redo")
    record["redo_reprotects"] = _state(document) == record["protected"]
    _trigger(app, document, "edit_undo")
    record["second_undo_restores"] = _state(document) == before
    record["before"] = before["tree"]
    record["protected"] = record["protected"]["tree"]
    return record


def _scenarios(app, config, verdict, out):
    import fixative_krita

    options = config["options"]

    def paint():
        document, node = _new_document(app, config, "paint")
        return _undo_round(app, document, lambda: fixative_krita.protect_layer(document, node, options))

    def group(blending):
        def run():
            document, node = _new_document(app, config, f"group-{blending}")
            group_layer = document.createNode("Group", "grouplayer")
            document.rootNode().addChildNode(group_layer, node)
            inner = document.createNode("Inner", "paintlayer")
            group_layer.addChildNode(inner, None)
            inner.setPixelData(node.pixelData(*config["layer_box"]), *config["layer_box"])
            group_layer.setBlendingMode(blending)
            _pump(document, 0.2)
            return _undo_round(app, document,
                               lambda: fixative_krita.protect_layer(document, group_layer, options))
        return run

    def vector():
        document, _node = _new_document(app, config, "vector")
        layer = document.createVectorLayer("Shapes")
        document.rootNode().addChildNode(layer, None)
        shapes = layer.addShapesFromSvg(SVG)
        _pump(document, 0.5)
        box = layer.bounds()
        result = {"shapes": len(shapes), "bounds": [box.x(), box.y(), box.width(), box.height()]}

        def protect():
            new = fixative_krita.protect_layer(document, layer, options)
            rect = new.bounds()
            result["new_bounds"] = [rect.x(), rect.y(), rect.width(), rect.height()]
            projection = bytes(layer.projectionPixelData(rect.x(), rect.y(), rect.width(), rect.height()))
            pixels = bytes(new.pixelData(rect.x(), rect.y(), rect.width(), rect.height()))
            result["changed_bytes"] = sum(1 for a, b in zip(projection, pixels, strict=True) if a != b)
            result["alpha_equal"] = projection[3::4] == pixels[3::4]
            return new

        result.update(_undo_round(app, document, protect))
        return result

    def visible_image():
        document, _node = _new_document(app, config, "visible")
        return _undo_round(app, document, lambda: fixative_krita.protect_visible_image(document, options))

    for name, function in (("paint", paint), ("group_normal", group("normal")),
                           ("group_multiply", group("multiply")), ("vector", vector),
                           ("visible_image", visible_image)):
        verdict["running"] = name
        _write(out, verdict, "progress.json")
        try:
            verdict[name] = function()
        except Exception:  # noqa: BLE001 - reported in the verdict
            verdict[name] = {"error": traceback.format_exc()}
        verdict.pop("running")


def _write(out, verdict, name="verdict.json"):
    with open(os.path.join(out, name), "w") as handle:
        json.dump(verdict, handle, indent=1)


def run():
    config = _config()
    out = config["out"]
    verdict = {"version": Krita.instance().version()}
    try:
        app = Krita.instance()
        verdict["window"] = app.activeWindow() is not None
        import fixative_krita

        verdict["plugin_loaded"] = bool(fixative_krita.DOCK_ID)
        _scenarios(app, config, verdict, out)
    except Exception:  # noqa: BLE001 - everything must end up in the verdict
        verdict["error"] = traceback.format_exc()
    verdict["finished"] = True
    _write(out, verdict)
    os._exit(0)


def install():
    """Called by the test plugin: run once the first window exists (and Krita settled)."""
    from fixative_krita.qt import QTimer

    _write(_config()["out"], {"loaded": True}, "progress.json")
    Krita.instance().notifier().windowCreated.connect(lambda: QTimer.singleShot(2000, run))
    QTimer.singleShot(240000, lambda: os._exit(3))
