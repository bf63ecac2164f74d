#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""GIMP 2.10 plug-in: Filters > Protect for Web... protects the active layer with the Fixative engine.

GIMP 2.10 runs Python 2.7 with no numpy, so the layer travels through temporary PNG files
(file-png-save out, gimp-file-load-layer back in) and the stdlib client talks to the local
engine. Same procedure name and arguments as the GIMP 3 plug-in. Kept Python 2/3 compatible so
the tests can run it under Python 3 with a stand-in gimpfu.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import sys
import tempfile

from gimpfu import (INDEXED, PF_DRAWABLE, PF_IMAGE, PF_OPTION, PF_STRING, PF_TOGGLE, gimp, main,
                    pdb, register)
from gimpfu import error as GimpFuError

PROCEDURE_NAME = "python-fu-fixative-protect"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

# (engine value, label) per choice; GIMP 2 passes the index of the chosen label.
MODES = [("style", "Style cloak (Glaze-like)"), ("poison", "Concept poison (Nightshade-like)"),
         ("both", "Both")]
INTENSITIES = [("low", "Low"), ("default", "Default"), ("high", "High")]
QUALITIES = [("fast", "Fast"), ("default", "Default"), ("max", "Maximum")]
ROBUSTNESS = [("off", "Off"), ("standard", "Standard"), ("strong", "Strong")]

# gimpfu calls on_run only before its interactive dialog: that is how we learn the run mode.
_RUN = {"interactive": False}


class PluginError(Exception):
    """A problem the artist can act on; its text is shown as-is."""


def _import_client():
    """The client sits beside this file once installed, in ../../common in the source tree."""
    for folder in (PLUGIN_DIR, os.path.normpath(os.path.join(PLUGIN_DIR, "..", "..", "common"))):
        if os.path.isfile(os.path.join(folder, "fixative_client.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            break
    try:
        import fixative_client
    except (ImportError, SyntaxError) as exc:
        raise PluginError("The Fixative plug-in is incomplete (%s): fixative_client.py must sit "
                          "beside fixative_protect.py. Run the Fixative installer again." % exc)
    return fixative_client


def _native(text):
    """GIMP 2's PDB wants byte strings under Python 2; Python 3 strings pass unchanged."""
    if sys.version_info[0] < 3 and not isinstance(text, str):
        return text.encode("utf-8")
    return text


def _choice(entries, index, what):
    try:
        index = int(index)
    except (TypeError, ValueError):
        index = -1
    if not 0 <= index < len(entries):
        raise PluginError("%s must be one of %s (an index from 0 to %d), not %r."
                          % (what, ", ".join(value for value, _label in entries),
                             len(entries) - 1, index))
    return entries[index][0]


def build_options(mode, intensity, quality, robustness, target_style, concept, target_concept):
    """Engine options (ProtectOptions field names) from the procedure's arguments."""
    options = {
        "mode": _choice(MODES, mode, "Mode"),
        "intensity": _choice(INTENSITIES, intensity, "Intensity"),
        "quality": _choice(QUALITIES, quality, "Quality"),
        "robustness": _choice(ROBUSTNESS, robustness, "Robustness"),
        "target_style": (target_style or "").strip() or "auto",
    }
    for field, text in (("concept", concept), ("target_concept", target_concept)):
        text = (text or "").strip()
        if text:
            options[field] = text
    return options


def check_target(image, drawable):
    if image.base_type == INDEXED or pdb.gimp_drawable_is_indexed(drawable):
        raise PluginError("Indexed-colour images cannot be protected. Convert the image with "
                          "Image > Mode > RGB (or Grayscale) first, then run Protect for Web again.")
    if not pdb.gimp_item_is_layer(drawable):
        raise PluginError("Select a layer to protect, not a channel or a layer mask.")
    if pdb.gimp_item_is_group(drawable):
        raise PluginError("Select a single layer to protect, not a layer group.")


class Progress(object):
    """GIMP's progress bar with the engine's stage text."""

    def __init__(self):
        self.last_text = None
        gimp.progress_init(_native("Fixative: connecting to the engine"))

    def say(self, text):
        text = _native("Fixative: %s" % text)
        if text != self.last_text:
            pdb.gimp_progress_set_text(text)
            self.last_text = text

    def job(self, fraction, stage, eta_s):
        text = stage or "protecting"
        if eta_s is not None and eta_s >= 1:
            text = "%s (about %d s left)" % (text, int(eta_s + 0.5))
        self.say(text)
        gimp.progress_update(max(0.0, min(1.0, float(fraction))))


def _place_result(image, drawable, path, new_layer):
    """Load the protected PNG as a layer above the source (or in its place), one undo step."""
    pdb.gimp_image_undo_group_start(image)
    try:
        layer = pdb.gimp_file_load_layer(image, path)
        if (layer.width, layer.height) != (drawable.width, drawable.height):
            pdb.gimp_item_delete(layer)
            raise PluginError("The Fixative engine sent back a %dx%d image for a %dx%d layer; "
                              "the image was not changed."
                              % (layer.width, layer.height, drawable.width, drawable.height))
        parent = pdb.gimp_item_get_parent(drawable)
        position = pdb.gimp_image_get_item_position(image, drawable)
        name = drawable.name
        pdb.gimp_image_insert_layer(image, layer, parent, position)
        offset_x, offset_y = drawable.offsets
        layer.set_offsets(offset_x, offset_y)
        layer.opacity = drawable.opacity
        layer.mode = drawable.mode
        layer.visible = drawable.visible
        if new_layer:
            layer.name = _native("%s (protected)" % name)
        else:
            pdb.gimp_image_remove_layer(image, drawable)
            layer.name = name
    finally:
        pdb.gimp_image_undo_group_end(image)
    return layer


def protect_layer(image, drawable, options, new_layer):
    """The whole job; raises PluginError or a client error with a clear message."""
    check_target(image, drawable)
    if not new_layer and drawable.mask is not None:
        raise PluginError("A layer with a mask can only be protected into a new layer in GIMP "
                          "2.10: turn on 'Result as a new layer'.")
    client_module = _import_client()
    progress = Progress()
    client = client_module.FixativeClient()
    info = client.connect(start=True, on_status=progress.say)
    max_pixels = (info.get("limits") or {}).get("max_pixels")
    if max_pixels and drawable.width * drawable.height > max_pixels:
        raise PluginError("This layer has %d pixels; the Fixative engine accepts at most %d. "
                          "Scale the image down first."
                          % (drawable.width * drawable.height, max_pixels))

    folder = tempfile.mkdtemp(prefix="fixative-gimp-")
    try:
        source_path = os.path.join(folder, "layer.png")
        result_path = os.path.join(folder, "protected.png")
        progress.say("reading the layer")
        # interlace, compression, bkgd, gama, offs, phys, time: plain, fast, no extra chunks.
        pdb.file_png_save(image, drawable, source_path, source_path, 0, 1, 0, 0, 0, 0, 0)
        with open(source_path, "rb") as handle:
            png = handle.read()
        result, _report = client.protect_bytes(png, options, on_progress=progress.job)
        progress.say("writing the protected layer")
        with open(result_path, "wb") as handle:
            handle.write(result)
        _place_result(image, drawable, result_path, new_layer)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    gimp.progress_update(1.0)
    gimp.displays_flush()


def _text(exc):
    """The exception's sentence without str(), which fails on non-ASCII text in Python 2."""
    message = getattr(exc, "message", None)
    return message if message else exc.args[0] if exc.args else repr(exc)


def _fail(message):
    """Tell the artist; batch callers also get an execution error, the dialog no traceback."""
    message = _native(message)
    gimp.message(message)
    if not _RUN["interactive"]:
        raise GimpFuError(message)


def fixative_protect(image, drawable, mode, intensity, quality, robustness, target_style, concept,
                     target_concept, new_layer):
    """The registered procedure: every failure ends in one clear message, never a traceback."""
    try:
        client_module = _import_client()
    except PluginError as exc:
        _fail("Fixative: %s" % _text(exc))
        return
    try:
        options = build_options(mode, intensity, quality, robustness, target_style, concept,
                                target_concept)
        protect_layer(image, drawable, options, bool(new_layer))
    except PluginError as exc:
        _fail("Fixative: %s" % _text(exc))
    except client_module.FixativeClientError as exc:
        _fail("Fixative: %s The image was not changed." % _text(exc))
    except GimpFuError:
        raise
    except Exception as exc:  # still a message, not gimpfu's traceback dialog
        import traceback
        traceback.print_exc()
        _fail("Fixative: unexpected error (%s: %s). The image was not changed."
              % (type(exc).__name__, _text(exc)))


def _mark_interactive():
    _RUN["interactive"] = True


register(
    PROCEDURE_NAME,
    "Protect the layer against AI style mimicry",
    "Adds imperceptible changes that mislead the image encoders AI models are trained through "
    "(style cloak and/or concept poison), using the local Fixative engine. The result is a new "
    "layer above the active one.",
    "Fixative contributors",
    "MIT License",
    "2025",
    "Protect for Web...",
    "RGB*, GRAY*",
    [
        (PF_IMAGE, "image", "Input image", None),
        (PF_DRAWABLE, "drawable", "Input drawable", None),
        (PF_OPTION, "mode", "Mode", 0, [label for _value, label in MODES]),
        (PF_OPTION, "intensity", "Intensity", 1, [label for _value, label in INTENSITIES]),
        (PF_OPTION, "quality", "Quality", 1, [label for _value, label in QUALITIES]),
        (PF_OPTION, "robustness", "Robustness", 1, [label for _value, label in ROBUSTNESS]),
        (PF_STRING, "target-style", "Target style (built-in name or auto)", "auto"),
        (PF_STRING, "concept", "Concept (what the artwork shows)", ""),
        (PF_STRING, "target-concept", "Target concept (what AI should see)", ""),
        (PF_TOGGLE, "new-layer", "Result as a new layer", True),
    ],
    [],
    fixative_protect,
    menu="<Image>/Filters",
    on_run=_mark_interactive,
)

main()
