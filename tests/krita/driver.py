"""Runs inside real Krita: ``kritarunner -s driver -f main`` (kritarunner always exits 0).

Configuration comes from the JSON file named by ``FIXATIVE_KRITA_DRIVER``; the verdict (what
happened, plus raw layer bytes in files) goes to ``<out>/verdict.json`` for the pytest side to
judge. Scenarios: protect an RGBA U8 and an RGBA U16 layer through ``protect_layer``, then stop
the engine and check the clear error and the unchanged document.
"""

import json
import os
import signal
import time
import traceback


def _layer_names(document):
    return [child.name() for child in document.rootNode().childNodes()]


def _bounds(node):
    rect = node.bounds()
    return [rect.x(), rect.y(), rect.width(), rect.height()]


def _make_document(app, config, depth):
    """A document with a painted layer at an offset, from the RGBA8 bytes pytest wrote."""
    from fixative_krita.qt import QByteArray

    width, height = config["doc_size"]
    x, y, w, h = config["layer_box"]
    with open(config["rgba_path"], "rb") as handle:
        rgba = handle.read()
    document = app.createDocument(width, height, f"fixative-{depth}", "RGBA", depth,
                                  "sRGB-elle-V2-srgbtrc.icc", 72.0)  # default U16 may be linear
    node = document.createNode("Paint", "paintlayer")
    document.rootNode().addChildNode(node, None)
    bgra = bytearray(rgba)
    bgra[0::4], bgra[2::4] = rgba[2::4], rgba[0::4]
    if depth == "U16":  # 16-bit values v*257 + (v % 7): the low byte carries information too
        samples = bytearray()
        for value in bgra:
            samples += ((value * 257 + value % 7) & 0xFFFF).to_bytes(2, "little")
        bgra = samples
    node.setPixelData(QByteArray(bytes(bgra)), x, y, w, h)
    document.refreshProjection()
    return document, node


def _protect(app, config, depth, out):
    import fixative_krita

    document, node = _make_document(app, config, depth)
    box = _bounds(node)
    before = bytes(node.pixelData(*box))
    started = time.time()
    new = fixative_krita.protect_layer(document, node, config["options"])
    record = {
        "seconds": time.time() - started,
        "names": _layer_names(document),
        "source_bounds": box,
        "new_bounds": _bounds(new),
        "new_name": new.name(),
        "new_depth": new.colorDepth(),
        "new_model": new.colorModel(),
        "new_profile": new.colorProfile(),
        "source_unchanged": bytes(node.pixelData(*box)) == before,
    }
    for name, data in (("before", before), ("after", bytes(new.pixelData(*box)))):
        path = os.path.join(out, f"{depth}-{name}.raw")
        with open(path, "wb") as handle:
            handle.write(data)
    return record


def _stop_engine(state_dir):
    """SIGTERM the engine, then wait until it no longer answers (a zombie still has its pid)."""
    import urllib.request

    with open(os.path.join(state_dir, "engine.json")) as handle:
        found = json.load(handle)
    os.kill(found["pid"], signal.SIGTERM)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            opener.open(found["url"] + "/v1/health", timeout=1).close()
        except OSError:
            return True
        time.sleep(0.2)
    return False


def _engine_stopped(app, config, out):
    import fixative_krita

    record = {"stopped": _stop_engine(os.path.join(config["home"], "state"))}
    document, node = _make_document(app, config, "U8")
    names_before = _layer_names(document)
    pixels_before = bytes(node.pixelData(*_bounds(node)))
    for case, command in (("not_installed", None),
                          ("start_fails", [config["python"], "-c", "import sys; sys.exit(3)"])):
        plugin_json = os.path.join(config["home"], "config", "plugin.json")
        if command is None:
            if os.path.exists(plugin_json):
                os.remove(plugin_json)
        else:
            os.makedirs(os.path.dirname(plugin_json), exist_ok=True)
            with open(plugin_json, "w") as handle:
                json.dump({"engine_command": command}, handle)
        try:
            fixative_krita.protect_layer(document, node, config["options"])
            record[case] = {"error": None}
        except fixative_krita.FixativeClientError as exc:
            record[case] = {"error": type(exc).__name__, "message": str(exc)}
    record["names_unchanged"] = _layer_names(document) == names_before
    record["pixels_unchanged"] = bytes(node.pixelData(*_bounds(node))) == pixels_before
    return record


def _gray(app, config):
    """A grayscale layer is converted on a copy: the result is RGBA, the source stays gray."""
    import fixative_krita

    document, node = _make_document(app, config, "U8")
    converted = node.setColorSpace("GRAYA", "U8", "Gray-D50-elle-V2-srgbtrc.icc")
    box = _bounds(node)
    before = bytes(node.pixelData(*box))
    new = fixative_krita.protect_layer(document, node, config["options"])
    return {"converted": converted, "source_model": node.colorModel(),
            "source_unchanged": bytes(node.pixelData(*box)) == before,
            "new_model": new.colorModel(), "new_bounds": _bounds(new), "source_bounds": box,
            "names": _layer_names(document)}


def _panel():
    """The dock's panel built inside Krita: its option rows come from the option schema."""
    from fixative_krita.panel import ProtectPanel

    panel = ProtectPanel(lambda: (None, None))
    form = panel.form_box.layout()
    record = {"labels": [form.labelForField(widget).text() for widget in panel.fields.values()],
              "widgets": {name: type(widget).__name__ for name, widget in panel.fields.items()}}
    if "dummy_count" in panel.fields:
        panel.fields["dummy_count"].setValue(7)
    record["options"] = panel.options()
    panel.deleteLater()
    return record


def _exports(app, config, out):
    """Export Protected (flattened image, credentials on) to each file name in config["exports"]."""
    import fixative_krita

    document, _ = _make_document(app, config, "U8")
    written = {}
    for name in config["exports"]:
        job = fixative_krita.export_protected(document, os.path.join(out, name), config["options"], wait=False)
        job.wait()
        written[name] = {"state": job.state, "notes": job.notes,
                         "error": str(job.error) if job.error is not None else None}
    return written


def _node_record(node):
    return {"name": node.name(), "type": node.type(), "visible": node.visible(), "opacity": node.opacity(),
            "blending": node.blendingMode(), "inherit_alpha": node.inheritAlpha(), "locked": node.locked(),
            "alpha_locked": node.alphaLocked(), "masks": [child.type() for child in node.childNodes()],
            "space": [node.colorModel(), node.colorDepth(), node.colorProfile()]}


def _try(record, name, function):
    """One sub-scenario: its result or its traceback, so one failure does not hide the others."""
    record["running"] = name  # if Krita crashes, progress.json says where
    _progress(record)
    try:
        record[name] = function()
    except Exception:  # noqa: BLE001 - reported in the verdict
        record[name] = {"error": traceback.format_exc()}
    record.pop("running")
    _progress(record)


def _progress(record):
    out = json.load(open(os.environ["FIXATIVE_KRITA_DRIVER"]))["out"]
    with open(os.path.join(out, "progress.json"), "w") as handle:
        json.dump(record, handle, indent=1)


def _compositing(app, config, out):
    """Issue 14 items 1-4, 6, 10 in real Krita (fake engine: exact, fast)."""
    import fixative_krita
    from fixative_krita.qt import QByteArray
    from krita import Selection

    options = config["options"]
    record = {}
    documents_before = len(app.documents())

    def properties_and_masks():
        document, node = _make_document(app, config, "U8")
        node.setOpacity(128)
        node.setBlendingMode("multiply")
        node.setInheritAlpha(True)
        mask = document.createNode("Soft edge", "transparencymask")
        node.addChildNode(mask, None)
        box = _bounds(node)
        before = bytes(node.pixelData(*box))
        new = fixative_krita.protect_layer(document, node, options)
        result = {"new": _node_record(new), "source": _node_record(node), "names": _layer_names(document),
                  "source_unchanged": bytes(node.pixelData(*box)) == before}
        result["undone"] = fixative_krita.undo_protection(document)
        result["after_undo"] = {"names": _layer_names(document), "source": _node_record(node)}
        return result

    def keep_visible():
        document, node = _make_document(app, config, "U8")
        fixative_krita.protect_layer(document, node, options, keep_original_visible=True)
        return {"names": _layer_names(document), "source": _node_record(node)}

    def selection():
        document, node = _make_document(app, config, "U8")
        x, y, w, h = config["selection_box"]
        chosen = Selection()
        chosen.select(x, y, w, h, 255)
        document.setSelection(chosen)
        box = _bounds(node)
        new = fixative_krita.protect_layer(document, node, options)
        with open(os.path.join(out, "selection-before.raw"), "wb") as handle:
            handle.write(bytes(node.pixelData(*box)))
        with open(os.path.join(out, "selection-after.raw"), "wb") as handle:
            handle.write(bytes(new.pixelData(*box)))
        return {"box": box, "new_bounds": _bounds(new)}

    def group():
        document, node = _make_document(app, config, "U8")
        group = document.createNode("Group", "grouplayer")
        document.rootNode().addChildNode(group, node)
        inner = document.createNode("Inner", "paintlayer")
        group.addChildNode(inner, None)
        inner.setPixelData(node.pixelData(*_bounds(node)), *_bounds(node))
        node.setVisible(False)
        group.setOpacity(200)
        document.refreshProjection()
        document.waitForDone()
        new_group = fixative_krita.protect_layer(document, group, options)
        return {"group": _node_record(new_group), "group_source": _node_record(group),
                "names": _layer_names(document)}

    def vector():
        """An empty vector layer is accepted as a layer kind (projection path) and refused for
        having no pixels. (addShapesFromSvg crashes kritarunner 5.1.5: no canvas; vector layers
        with shapes are protected in a real window, gui_driver.py, on every Krita version.)"""
        document, _node = _make_document(app, config, "U8")
        vector = document.createVectorLayer("Shapes")
        document.rootNode().addChildNode(vector, None)
        try:
            fixative_krita.protect_layer(document, vector, options)
        except fixative_krita.LayerError as exc:
            return {"type": vector.type(), "layer_error": str(exc)}
        return {"type": vector.type(), "layer_error": None}

    def visible_image():
        document, node = _make_document(app, config, "U8")
        new = fixative_krita.protect_visible_image(document, options)
        return {"new": _node_record(new), "names": _layer_names(document), "bounds": _bounds(new),
                "source": _node_record(node)}

    def colour(model_depth_profile, name):
        def run():
            model, depth, profile = model_depth_profile
            width, height = config["doc_size"]
            document = app.createDocument(width, height, name, model, depth, profile, 72.0)
            node = document.createNode("Paint", "paintlayer")
            document.rootNode().addChildNode(node, None)
            x, y, w, h = config["layer_box"]
            size = {"U8": 1, "U16": 2, "F16": 2, "F32": 4}[depth]
            import struct
            if depth == "F32":
                values = [((i % 4 == 3) and 1.0) or (i % 97) / 80.0 for i in range(w * h * 4)]  # some > 1
                data = struct.pack(f"<{len(values)}f", *values)
            else:
                data = bytes((i * 7) % 251 for i in range(w * h * 4 * size))
                data = b"".join(data[i:i + 4 * size - size] + b"\xff" * size
                                for i in range(0, len(data), 4 * size))
            node.setPixelData(QByteArray(data), x, y, w, h)
            box = _bounds(node)
            before = bytes(node.pixelData(*box))
            new = fixative_krita.protect_layer(document, node, options)
            after = bytes(new.pixelData(*box))
            with open(os.path.join(out, f"{name}-before.raw"), "wb") as handle:
                handle.write(before)
            with open(os.path.join(out, f"{name}-after.raw"), "wb") as handle:
                handle.write(after)
            return {"new": _node_record(new), "source_unchanged": bytes(node.pixelData(*box)) == before,
                    "box": box, "changed_bytes": sum(1 for a, b in zip(before, after, strict=True) if a != b)}
        return run

    _try(record, "properties_and_masks", properties_and_masks)
    _try(record, "keep_visible", keep_visible)
    _try(record, "selection", selection)
    _try(record, "group", group)
    _try(record, "visible_image", visible_image)
    _try(record, "f32_linear", colour(("RGBA", "F32", "sRGB-elle-V2-g10.icc"), "f32_linear"))
    _try(record, "u16_rec2020", colour(("RGBA", "U16", "Rec2020-elle-V4-g10.icc"), "u16_rec2020"))
    from fixative_krita.qt import process_events

    process_events()  # Krita 5.2+ may finish closing a document in the event loop
    record["scratch_documents_left"] = [document.name() for document in app.documents()
                                        if document.name() == "fixative-colour"]
    record["documents"] = [len(app.documents()), documents_before]

    def settings():
        from fixative_krita import settings as panel_settings

        panel_settings.save({"intensity": "high", "keep_original_visible": True})
        return panel_settings.load()

    _try(record, "settings", settings)
    _try(record, "vector", vector)  # last: a crash here loses nothing else
    return record


def main(*_args):
    config_path = os.environ["FIXATIVE_KRITA_DRIVER"]
    with open(config_path) as handle:
        config = json.load(handle)
    out = config["out"]
    verdict = {"started": True}
    try:
        import fixative_krita
        from krita import Krita

        app = Krita.instance()
        verdict["registered_dock"] = bool(fixative_krita.DOCK_ID)
        verdict["active_document_is_none"] = app.activeDocument() is None
        for depth in config["depths"]:
            verdict[depth] = _protect(app, config, depth, out)
        if config.get("panel"):
            verdict["panel"] = _panel()
        if config.get("gray"):
            verdict["gray"] = _gray(app, config)
        if config.get("compositing"):
            verdict["compositing"] = _compositing(app, config, out)
        if config.get("exports"):
            verdict["exports"] = _exports(app, config, out)
        if config.get("engine_stopped"):
            verdict["engine_stopped"] = _engine_stopped(app, config, out)
    except Exception:  # noqa: BLE001 - everything must end up in the verdict
        verdict["error"] = traceback.format_exc()
    verdict["finished"] = True
    with open(os.path.join(out, "verdict.json"), "w") as handle:
        json.dump(verdict, handle, indent=1)
