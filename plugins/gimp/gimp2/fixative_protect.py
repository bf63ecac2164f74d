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
import signal
import sys
import tempfile

from gimpfu import (INDEXED, PF_DRAWABLE, PF_IMAGE, PF_INT, PF_OPTION, PF_STRING, PF_TOGGLE, gimp,
                    main, pdb, register)
from gimpfu import error as GimpFuError

PROCEDURE_NAME = "python-fu-fixative-protect"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))


def _add_common_to_path():
    """The shared files sit beside this file once installed, in ../../common in the source tree."""
    for folder in (PLUGIN_DIR, os.path.normpath(os.path.join(PLUGIN_DIR, "..", "..", "common"))):
        if os.path.isfile(os.path.join(folder, "fixative_client.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            return


_add_common_to_path()
try:
    import fixative_client
    import fixative_options
    import fixative_plugin
except (ImportError, SyntaxError) as _exc:  # pragma: no cover - a broken installation
    sys.stderr.write("The Fixative plug-in is incomplete (%s): fixative_client.py, "
                     "fixative_options.py and fixative_plugin.py must sit beside "
                     "fixative_protect.py. Run the Fixative installer again.\n" % (_exc,))
    raise

PluginError = fixative_plugin.PluginError

# gimpfu calls on_run only before its interactive dialog: that is how we learn the run mode.
_RUN = {"interactive": False}
# Set by SIGTERM (GIMP closing the plug-in) or request_cancel(); read while waiting for the job.
_CANCEL = {"requested": False}


def request_cancel(_signum=None, _frame=None):
    """Ask the running job to stop: the engine job is cancelled and the image left unchanged."""
    _CANCEL["requested"] = True


def _gtk():
    """PyGTK when GIMP 2.10 provides it (gimpfu's dialogs use it), else None."""
    try:
        import gtk  # noqa: F401 - Python 2 PyGTK, only inside GIMP 2.10
    except (ImportError, RuntimeError):
        return None
    return gtk


def keep_responding():
    """Called many times a second while the engine works: runs pending GTK events, so the
    plug-in's windows keep redrawing and answering, and says whether Cancel was asked for."""
    gtk = _gtk()
    if gtk is not None:
        while gtk.events_pending():
            gtk.main_iteration(False)
    return _CANCEL["requested"]


def _native(text):
    """GIMP 2's PDB wants byte strings under Python 2; Python 3 strings pass unchanged."""
    if sys.version_info[0] < 3 and not isinstance(text, str):
        return text.encode("utf-8")
    return text


def _param(field):
    """One gimpfu parameter tuple for a schema field (PF_OPTION passes the choice's index)."""
    name = _native(field["name"].replace("_", "-"))
    label = _native(fixative_options.label_of(field))
    kind, default = field["kind"], field.get("default")
    if kind == "choice":
        return (PF_OPTION, name, label, fixative_options.index_of_choice(field, default),
                [_native(text) for text in fixative_options.choice_labels(field)])
    if kind == "integer":
        return (PF_INT, name, label, int(default or 0))
    if kind == "boolean":
        return (PF_TOGGLE, name, label, bool(default))
    if kind == "list":
        default = ",".join(default or [])
    return (PF_STRING, name, label, _native(default or ""))


SCHEMA = fixative_options.load_schema()
LEADING_FIELDS, EXTRA_FIELDS = fixative_options.script_argument_fields(SCHEMA)
PARAMS = ([(PF_IMAGE, "image", "Input image", None),
           (PF_DRAWABLE, "drawable", "Input drawable", None)]
          + [_param(field) for field in LEADING_FIELDS]
          + [(PF_TOGGLE, "new-layer", "Result as a new layer", True)]
          + [_param(field) for field in EXTRA_FIELDS]
          + [(PF_TOGGLE, "keep-original-visible", "Keep the original visible", False)])


def build_options(*arguments):
    """Engine options (ProtectOptions field names) from the option arguments, in PARAMS order.

    ``arguments`` are the leading options, then the extra ones (new-layer left out).
    """
    fields = LEADING_FIELDS + EXTRA_FIELDS
    if len(arguments) != len(fields):
        raise PluginError("The procedure got %d option values but expects %d (%s). Restart GIMP "
                          "so that it registers the plug-in again."
                          % (len(arguments), len(fields),
                             ", ".join(field["name"] for field in fields)))
    values = {}
    for field, value in zip(fields, arguments):
        if field["kind"] == "choice":
            value = fixative_options.choice_from_index(field, value)
        elif field["kind"] == "text" and isinstance(value, bytes):
            value = value.decode("utf-8")
        values[field["name"]] = value
    return fixative_options.build_options(SCHEMA, values)


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
        self.say(fixative_plugin.progress_text(stage, eta_s))
        gimp.progress_update(max(0.0, min(1.0, float(fraction))))


ADD_SELECTION_MASK = 4
CHANNEL_OP_REPLACE = 2
MIN_SIDE = 16  # the engine's smallest accepted side, in pixels


def selected_region(image, drawable):
    """(x, y, width, height) in layer coordinates: the selection's bounding box on the layer,
    or the whole layer when nothing is selected. Pixels outside it are never touched."""
    if pdb.gimp_selection_is_empty(image):
        return 0, 0, drawable.width, drawable.height
    non_empty, x, y, width, height = pdb.gimp_drawable_mask_intersect(drawable)
    if not non_empty:
        raise PluginError("The selection does not touch this layer: select part of the layer "
                          "(or nothing, for the whole layer).")
    if min(width, height) < MIN_SIDE:
        raise PluginError("The selection covers only %dx%d pixels of this layer; the engine "
                          "needs at least %dx%d. Select a larger area."
                          % (width, height, MIN_SIDE, MIN_SIDE))
    return x, y, width, height


def _copy_mask(image, source, target):
    """Give ``target`` a copy of ``source``'s layer mask: the mask becomes the selection for a
    moment (ADD-SELECTION-MASK copies it exactly), then the artist's selection comes back."""
    saved = pdb.gimp_selection_save(image)
    try:
        pdb.gimp_image_select_item(image, CHANNEL_OP_REPLACE, source.mask)
        mask = pdb.gimp_layer_create_mask(target, ADD_SELECTION_MASK)
        pdb.gimp_layer_add_mask(target, mask)
        pdb.gimp_layer_set_apply_mask(target, pdb.gimp_layer_get_apply_mask(source))
    finally:
        pdb.gimp_image_select_item(image, CHANNEL_OP_REPLACE, saved)
        pdb.gimp_image_remove_channel(image, saved)


def _copy_properties(image, source, target):
    """What the artist set on the layer: offsets, opacity, mode, visibility, locks, mask."""
    offset_x, offset_y = source.offsets
    target.set_offsets(offset_x, offset_y)
    target.opacity = source.opacity
    target.mode = source.mode
    target.visible = source.visible
    pdb.gimp_layer_set_lock_alpha(target, pdb.gimp_layer_get_lock_alpha(source))
    pdb.gimp_item_set_lock_position(target, pdb.gimp_item_get_lock_position(source))
    pdb.gimp_item_set_lock_content(target, pdb.gimp_item_get_lock_content(source))
    if source.mask is not None:
        _copy_mask(image, source, target)


def _place_result(image, drawable, path, new_layer, keep_original_visible):
    """Load the protected PNG as a copy of the layer in its place, one undo step. By default the
    original is kept below it, hidden, as "NAME (original)"; in place, it is replaced."""
    pdb.gimp_image_undo_group_start(image)
    try:
        layer = pdb.gimp_file_load_layer(image, path)
        parent = pdb.gimp_item_get_parent(drawable)
        position = pdb.gimp_image_get_item_position(image, drawable)
        name = drawable.name
        pdb.gimp_image_insert_layer(image, layer, parent, position)
        _copy_properties(image, drawable, layer)
        if new_layer:
            layer.name = _native("%s (protected)" % name)
            if not keep_original_visible:
                drawable.name = _native("%s (original)" % name)
                drawable.visible = False
        else:
            pdb.gimp_image_remove_layer(image, drawable)
            layer.name = name
    finally:
        pdb.gimp_image_undo_group_end(image)
    return layer


def _crop_samples(samples, width, bytes_per_pixel, region):
    """The region's rows out of a layer's packed samples."""
    x, y, region_w, region_h = region
    stride = width * bytes_per_pixel
    return b"".join(samples[(y + row) * stride + x * bytes_per_pixel:
                            (y + row) * stride + (x + region_w) * bytes_per_pixel]
                    for row in range(region_h))


def _paste_samples(samples, width, bytes_per_pixel, region, patch):
    """The layer's samples with the region's rows replaced by ``patch``."""
    x, y, region_w, region_h = region
    stride, patch_stride = width * bytes_per_pixel, region_w * bytes_per_pixel
    out = bytearray(samples)
    for row in range(region_h):
        start = (y + row) * stride + x * bytes_per_pixel
        out[start:start + patch_stride] = patch[row * patch_stride:(row + 1) * patch_stride]
    return bytes(out)


def _protect_bytes(client, png, options, progress):
    """One engine job that keeps GTK responsive and stops on Cancel (or GIMP's SIGTERM)."""
    _CANCEL["requested"] = False
    previous = signal.signal(signal.SIGTERM, request_cancel)
    try:
        return client.protect(png, options, on_progress=progress.job,
                              should_cancel=keep_responding)
    finally:
        signal.signal(signal.SIGTERM, previous)


def protect_layer(image, drawable, options, new_layer, keep_original_visible=False):
    """The whole job; returns (new layer, engine report) or raises a FixativeClientError."""
    check_target(image, drawable)
    region = selected_region(image, drawable)
    whole_layer = region == (0, 0, drawable.width, drawable.height)
    progress = Progress()
    client = fixative_client.FixativeClient()
    info = client.connect(start=True, on_status=progress.say)
    fixative_plugin.check_layer_size(info, region[2], region[3])

    folder = tempfile.mkdtemp(prefix="fixative-gimp-")
    try:
        source_path = os.path.join(folder, "layer.png")
        result_path = os.path.join(folder, "protected.png")
        progress.say("reading the layer")
        # interlace, compression, bkgd, gama, offs, phys, time: plain, fast, no extra chunks.
        pdb.file_png_save(image, drawable, source_path, source_path, 0, 1, 0, 0, 0, 0, 0)
        with open(source_path, "rb") as handle:
            png = handle.read()
        if whole_layer:
            outcome = _protect_bytes(client, png, options, progress)
            fixative_plugin.check_result_size(outcome.result, drawable.width, drawable.height)
            result = outcome.result
        else:  # only the selection's box travels; the rest of the layer stays byte for byte
            width, height, channels, depth, samples = fixative_plugin.decode_png_samples(png)
            pixel_bytes = channels * depth // 8
            crop = fixative_plugin.encode_layer(region[2], region[3], channels, depth,
                                                _crop_samples(samples, width, pixel_bytes, region))
            outcome = _protect_bytes(client, crop, options, progress)
            patch = fixative_plugin.decode_result(outcome.result, region[2], region[3], channels,
                                                  depth)
            result = fixative_plugin.encode_layer(
                width, height, channels, depth,
                _paste_samples(samples, width, pixel_bytes, region, patch))
        progress.say("writing the protected layer")
        with open(result_path, "wb") as handle:
            handle.write(result)
        layer = _place_result(image, drawable, result_path, new_layer, keep_original_visible)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    gimp.progress_update(1.0)
    gimp.displays_flush()
    return layer, outcome.report


def _fail(message):
    """Tell the artist; batch callers also get an execution error, the dialog no traceback."""
    message = _native(message)
    gimp.message(message)
    if not _RUN["interactive"]:
        raise GimpFuError(message)


def fixative_protect(image, drawable, *arguments):
    """The registered procedure: every failure ends in one clear message, never a traceback.

    ``arguments``: the leading options, new-layer, any further options, then
    keep-original-visible (see PARAMS).
    """
    leading = len(LEADING_FIELDS)
    try:
        if len(arguments) != len(PARAMS) - 2:
            raise PluginError("The procedure got %d arguments after the drawable but expects %d. "
                              "Restart GIMP so that it registers the plug-in again."
                              % (len(arguments), len(PARAMS) - 2))
        new_layer, keep_original_visible = arguments[leading], arguments[-1]
        options = build_options(*(arguments[:leading] + arguments[leading + 1:-1]))
        layer, report = protect_layer(image, drawable, options, bool(new_layer),
                                      bool(keep_original_visible))
        if _RUN["interactive"] and report.get("summary"):  # how protected, when the engine says
            gimp.message(_native("Fixative: %s" % fixative_plugin.done_text(layer.name, report)))
    except GimpFuError:
        raise
    except Exception as exc:  # still a message, not gimpfu's traceback dialog
        if not isinstance(exc, fixative_client.FixativeClientError):
            import traceback
            traceback.print_exc()
        _fail(fixative_plugin.error_text(exc))


def _mark_interactive():
    _RUN["interactive"] = True


register(
    PROCEDURE_NAME,
    "Protect the layer against AI style mimicry",
    "Adds imperceptible changes that mislead the image encoders AI models are trained through "
    "(style cloak and/or concept poison), using the local Fixative engine. The result is a copy "
    "of the layer in its place (the original is kept, hidden, below it); with a selection, only "
    "the selection's bounding box is protected.",
    "Fixative contributors",
    "MIT License",
    "2025",
    "Protect for Web...",
    "RGB*, GRAY*",
    PARAMS,
    [],
    fixative_protect,
    menu="<Image>/Filters",
    on_run=_mark_interactive,
)

main()
