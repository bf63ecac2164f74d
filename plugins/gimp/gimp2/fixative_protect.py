#!/usr/bin/env python
# -*- coding: utf-8 -*-
"""GIMP 2.10 plug-in: Filters > Protect for Web... protects the active layer (a layer group, or
the visible picture) with the Fixative engine; File > Export > Export Protected... writes the
protected picture as PNG, JPEG or WebP with the "not for AI training" opt-out.

GIMP 2.10 runs Python 2.7 with no numpy, so pixels travel through temporary PNG files
(file-png-save out, gimp-file-load-layer back in) and the stdlib client talks to the local
engine. Same procedure names as the GIMP 3 plug-in. Kept Python 2/3 compatible so the tests can
run it under Python 3 with a stand-in gimpfu.
"""

from __future__ import absolute_import, division, print_function

import os
import shutil
import signal
import sys
import tempfile

from gimpfu import (GRAY, INDEXED, PF_DIRNAME, PF_DRAWABLE, PF_IMAGE, PF_INT, PF_OPTION,
                    PF_STRING, PF_TOGGLE, RGB, gimp, main, pdb, register)
from gimpfu import error as GimpFuError

PROCEDURE_NAME = "python-fu-fixative-protect"
EXPORT_PROCEDURE_NAME = "python-fu-fixative-export"
VISIBLE_LAYER_NAME = "Visible (protected)"
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


def _text(value):
    """Text from a GIMP 2 byte string (file and layer names), for the shared code's messages."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


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
          + [(PF_TOGGLE, "keep-original-visible", "Keep the original visible", False),
             (PF_TOGGLE, "visible-picture", "Protect the visible picture", False)])
# Export Protected: the folder and file name (gimpfu has no save-file chooser), every option,
# then whether to sign credentials. The image is what is exported; the drawable is not used.
EXPORT_PARAMS = ([(PF_IMAGE, "image", "Input image", None),
                  (PF_DRAWABLE, "drawable", "Input drawable", None),
                  (PF_DIRNAME, "folder", "Export to folder (empty: the image's folder)", ""),
                  (PF_STRING, "file-name",
                   "File name, .png, .jpg or .webp (empty: NAME.protected.png)", "")]
                 + [_param(field) for field in LEADING_FIELDS + EXTRA_FIELDS]
                 + [(PF_TOGGLE, "credentials", "Add 'not for AI training' credentials", True)])


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


INDEXED_MESSAGE = ("Indexed-colour images cannot be protected. Convert the image with "
                   "Image > Mode > RGB (or Grayscale) first, then run Protect for Web again.")


def check_target(image, drawable):
    """PluginError, before any work, when this drawable cannot be protected here."""
    if image.base_type == INDEXED or pdb.gimp_drawable_is_indexed(drawable):
        raise PluginError(INDEXED_MESSAGE)
    if not pdb.gimp_item_is_layer(drawable):
        raise PluginError("Select a layer to protect, not a channel or a layer mask.")
    if pdb.gimp_item_is_group(drawable) and not hasattr(pdb, "gimp_image_merge_layer_group"):
        raise PluginError("Protecting a layer group needs GIMP 2.10.14 or newer. Protect a layer "
                          "inside the group, or use 'Protect the visible picture'.")


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


def _check_region_size(width, height):
    if min(width, height) < MIN_SIDE:
        raise PluginError("The selection covers only %dx%d pixels of this layer; the engine "
                          "needs at least %dx%d. Select a larger area."
                          % (width, height, MIN_SIDE, MIN_SIDE))


def selected_region(image, drawable):
    """(x, y, width, height) in layer coordinates: the selection's bounding box on the layer,
    or the whole layer when nothing is selected. Pixels outside it are never touched."""
    if pdb.gimp_selection_is_empty(image):
        return 0, 0, drawable.width, drawable.height
    non_empty, x, y, width, height = pdb.gimp_drawable_mask_intersect(drawable)
    if not non_empty:
        raise PluginError("The selection does not touch this layer: select part of the layer "
                          "(or nothing, for the whole layer).")
    _check_region_size(width, height)
    return x, y, width, height


def canvas_region(image):
    """Like ``selected_region`` for a canvas-sized layer (the visible picture)."""
    non_empty, x1, y1, x2, y2 = pdb.gimp_selection_bounds(image)
    if not non_empty:
        return 0, 0, image.width, image.height
    _check_region_size(x2 - x1, y2 - y1)
    return x1, y1, x2 - x1, y2 - y1


def visible_picture(image, flatten=False):
    """(temporary image, layer): what the artist sees, as one canvas-sized layer in a new image
    of the same precision and colour profile (indexed pictures become RGB); with ``flatten``,
    merged onto the background colour, without alpha (for JPEG). The caller deletes the image;
    the artist's image is not touched."""
    base = GRAY if image.base_type == GRAY else RGB
    picture = pdb.gimp_image_new_with_precision(image.width, image.height, base,
                                                pdb.gimp_image_get_precision(image))
    try:
        pdb.gimp_image_undo_disable(picture)
        size, profile = pdb.gimp_image_get_color_profile(image)
        if size:
            pdb.gimp_image_set_color_profile(picture, size, profile)
        layer = pdb.gimp_layer_new_from_visible(image, picture, _native("Visible"))
        pdb.gimp_image_insert_layer(picture, layer, None, 0)
        if flatten:
            layer = pdb.gimp_image_flatten(picture)
    except Exception:
        pdb.gimp_image_delete(picture)
        raise
    return picture, layer


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


def _take_place(image, source, layer):
    """Put ``layer`` where ``source`` is, with its properties (see _copy_properties)."""
    parent = pdb.gimp_item_get_parent(source)
    position = pdb.gimp_image_get_item_position(image, source)
    pdb.gimp_image_insert_layer(image, layer, parent, position)
    _copy_properties(image, source, layer)


def _merged_copy(image, group):
    """A copy of the group, merged into one layer that looks the same (mask, opacity and mode
    kept), directly above the group: what GIMP 3's place_merged_copy makes."""
    copy = pdb.gimp_layer_copy(group, 0)
    pdb.gimp_image_insert_layer(image, copy, pdb.gimp_item_get_parent(group),
                                pdb.gimp_image_get_item_position(image, group))
    return pdb.gimp_image_merge_layer_group(image, copy)


def _hide_original(item, name, keep_original_visible):
    if not keep_original_visible:
        item.name = _native("%s (original)" % name)
        item.visible = False


def _place_result(image, drawable, path, new_layer, keep_original_visible, visible=False):
    """Load the protected PNG into the image, one undo step. A layer: a copy in its place, the
    original kept below it, hidden, as "NAME (original)" (in place: replaced). A layer group:
    one merged layer in its place, the group kept below it the same way. The visible picture:
    a new layer on top."""
    pdb.gimp_image_undo_group_start(image)
    try:
        layer = pdb.gimp_file_load_layer(image, path)
        name = drawable.name
        if visible:
            pdb.gimp_image_insert_layer(image, layer, None, 0)
            layer.name = _native(VISIBLE_LAYER_NAME)
        elif pdb.gimp_item_is_group(drawable):
            merged = _merged_copy(image, drawable)
            _take_place(image, merged, layer)
            pdb.gimp_image_remove_layer(image, merged)
            layer.name = _native("%s (protected)" % name)
            _hide_original(drawable, name, keep_original_visible)
        elif new_layer:
            _take_place(image, drawable, layer)
            layer.name = _native("%s (protected)" % name)
            _hide_original(drawable, name, keep_original_visible)
        else:
            _take_place(image, drawable, layer)
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


def _save_png(image, drawable, path):
    """The drawable's pixels as the PNG the engine reads (a group: what its layers show)."""
    # interlace, compression, bkgd, gama, offs, phys, time: plain, fast, no extra chunks.
    pdb.file_png_save(image, drawable, path, path, 0, 1, 0, 0, 0, 0, 0)
    with open(path, "rb") as handle:
        return handle.read()


def protect_layer(image, drawable, options, new_layer, keep_original_visible=False,
                  visible=False):
    """The whole job; returns (new layer, engine report) or raises a FixativeClientError.

    ``visible``: protect the visible picture (every visible layer, as shown) as one new layer
    on top instead of ``drawable``."""
    if visible:
        if image.base_type == INDEXED:
            raise PluginError(INDEXED_MESSAGE)
        region, size = canvas_region(image), (image.width, image.height)
    else:
        check_target(image, drawable)
        region, size = selected_region(image, drawable), (drawable.width, drawable.height)
    whole_layer = region == (0, 0) + size
    progress = Progress()
    client = fixative_client.FixativeClient()
    info = client.connect(start=True, on_status=progress.say)
    fixative_plugin.check_layer_size(info, region[2], region[3])

    folder = tempfile.mkdtemp(prefix="fixative-gimp-")
    try:
        source_path = os.path.join(folder, "layer.png")
        result_path = os.path.join(folder, "protected.png")
        if visible:
            progress.say("reading the visible picture")
            picture, picture_layer = visible_picture(image)
            try:
                png = _save_png(picture, picture_layer, source_path)
            finally:
                pdb.gimp_image_delete(picture)
        else:
            progress.say("reading the layer")
            png = _save_png(image, drawable, source_path)
        if whole_layer:
            outcome = _protect_bytes(client, png, options, progress)
            fixative_plugin.check_result_size(outcome.result, size[0], size[1])
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
        layer = _place_result(image, drawable, result_path, new_layer, keep_original_visible,
                              visible)
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
    keep-original-visible and visible-picture (see PARAMS).
    """
    leading = len(LEADING_FIELDS)
    try:
        _check_count(arguments, PARAMS)
        new_layer, keep_original_visible, visible = arguments[leading], arguments[-2], arguments[-1]
        options = build_options(*(arguments[:leading] + arguments[leading + 1:-2]))
        layer, report = protect_layer(image, drawable, options, bool(new_layer),
                                      bool(keep_original_visible), bool(visible))
        if _RUN["interactive"] and report.get("summary"):  # how protected, when the engine says
            gimp.message(_native("Fixative: %s" % fixative_plugin.done_text(_text(layer.name),
                                                                             report)))
    except GimpFuError:
        raise
    except Exception as exc:  # still a message, not gimpfu's traceback dialog
        _fail_with(exc)


def _fail_with(exc):
    """Report an error as one message (a traceback on stderr too when it is not the engine's)."""
    if not isinstance(exc, fixative_client.FixativeClientError):
        import traceback
        traceback.print_exc()
    _fail(fixative_plugin.error_text(exc))


def _check_count(arguments, params):
    """PluginError when a stale registration passes another number of arguments."""
    if len(arguments) != len(params) - 2:
        raise PluginError("The procedure got %d arguments after the drawable but expects %d. "
                          "Restart GIMP so that it registers the plug-in again."
                          % (len(arguments), len(params) - 2))


# -- Export Protected ------------------------------------------------------------------------------

def export_path(image, folder, file_name):
    """The file to write: ``file_name`` (absolute, or inside ``folder``; empty: the image's name
    + ".protected.png"), ``folder`` empty: the image's own folder, else the home folder. Never the
    image's own file: the artist's original is not overwritten by its protected copy."""
    source = pdb.gimp_image_get_filename(image) or ""
    file_name = (file_name or "").strip()
    if not file_name:
        stem = os.path.splitext(os.path.basename(source))[0] if source else "Untitled"
        file_name = stem + ".protected.png"
    folder = folder or os.path.dirname(source) or os.path.expanduser("~")
    path = os.path.abspath(os.path.join(folder, os.path.expanduser(file_name)))
    fixative_plugin.export_format(path)
    if source and os.path.normcase(path) == os.path.normcase(os.path.abspath(source)):
        raise PluginError("Export Protected would overwrite the image's own file %s; choose "
                          "another file name." % path)
    if not os.path.isdir(os.path.dirname(path)):
        raise PluginError("The folder %s does not exist; choose another." % os.path.dirname(path))
    return _native(path)


# JPEG: quality 0.92, smoothing 0, optimize, progressive, no comment, 4:4:4 sub-sampling (the
# cloak lives in the colour detail too), baseline, no restart markers, integer DCT.
JPEG_SETTINGS = (0.92, 0.0, 1, 1, "", 2, 1, 0, 0)


def _save_webp(picture, layer, path):
    """file-webp-save: lossy quality 90, lossless alpha, one frame, none of GIMP's metadata (the
    opt-out XMP goes in after). GIMP 2.10 releases before minimize-size and kf-distance took two
    fewer parameters."""
    try:
        procedure = pdb.file_webp_save
    except AttributeError:
        raise PluginError("This GIMP has no WebP exporter; export to .png or .jpg instead.")
    # preset, lossless, quality, alpha-quality, animation, anim-loop[, minimize-size, kf-distance]
    settings = [0, 0, 90.0, 100.0, 0, 0] + ([0, 0] if procedure.nparams >= 18 else [])
    # exif, iptc, xmp, delay, force-delay
    procedure(picture, layer, path, path, *(settings + [0, 0, 0, 0, 0]))


def encode_with_gimp(picture, result, fmt, folder):
    """JPEG/WebP bytes of the engine's protected PNG, written by GIMP's own exporter into the
    temporary picture, with the engine's opt-out XMP as the file's only XMP."""
    protected = os.path.join(folder, "protected.png")
    with open(protected, "wb") as handle:
        handle.write(result)
    layer = pdb.gimp_file_load_layer(picture, _native(protected))
    pdb.gimp_image_insert_layer(picture, layer, None, 0)
    target = _native(os.path.join(folder, "export." + ("jpg" if fmt == "JPEG" else "webp")))
    if fmt == "JPEG":
        pdb.file_jpeg_save(picture, layer, target, target, *JPEG_SETTINGS)
    else:
        _save_webp(picture, layer, target)
    with open(target, "rb") as handle:
        data = handle.read()
    xmp = fixative_plugin.png_xmp(result)
    if xmp:
        data = (fixative_plugin.add_jpeg_xmp(data, xmp) if fmt == "JPEG"
                else fixative_plugin.add_webp_xmp(data, xmp))
    return data


def export_protected(image, folder, file_name, options, credentials=True):
    """Protect the visible picture and write it to a PNG/JPEG/WebP file with the opt-out XMP
    and, when asked, signed 'not for AI training' credentials; the image is not changed.

    Returns (path, engine report, notes): notes say what the artist should know (the file was
    written without credentials because the engine could not sign)."""
    path = export_path(image, folder, file_name)
    fmt = fixative_plugin.export_format(path)
    progress = Progress()
    client = fixative_client.FixativeClient()
    info = client.connect(start=True, on_status=progress.say)
    fixative_plugin.check_layer_size(info, image.width, image.height)
    notes = []
    work = tempfile.mkdtemp(prefix="fixative-gimp-")
    try:
        progress.say("reading the visible picture")
        picture, layer = visible_picture(image, flatten=fmt == "JPEG")
        try:
            png = _save_png(picture, layer, os.path.join(work, "visible.png"))
            outcome = _protect_bytes(client, png, options, progress)
            fixative_plugin.check_result_size(outcome.result, image.width, image.height)
            progress.say(u"writing %s" % _text(os.path.basename(path)))
            if fmt == "PNG":
                data = outcome.result  # the engine's file: the pixels plus the opt-out XMP
            else:
                data = encode_with_gimp(picture, outcome.result, fmt, work)
        finally:
            pdb.gimp_image_delete(picture)
        if credentials:
            progress.say("adding 'not for AI training' credentials")
            try:
                data = client.add_credentials(data)
            except fixative_client.FixativeClientError as exc:
                notes.append(u"%s was saved without signed credentials (its XMP opt-out is in "
                             u"the file): %s" % (_text(os.path.basename(path)),
                                                 fixative_plugin.message_of(exc)))
        try:
            with open(path, "wb") as handle:
                handle.write(data)
        except (IOError, OSError) as exc:
            raise PluginError("Could not write %s (%s)." % (path, exc.strerror or exc))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    gimp.progress_update(1.0)
    return path, outcome.report, notes


def fixative_export(image, drawable, folder, file_name, *arguments):
    """The registered export procedure: ``arguments`` are every option, then credentials."""
    try:
        _check_count((folder, file_name) + arguments, EXPORT_PARAMS)
        options = build_options(*arguments[:-1])
        path, report, notes = export_protected(image, folder, file_name, options,
                                               bool(arguments[-1]))
        for note in notes:
            gimp.message(_native(u"Fixative: %s" % note))
        if _RUN["interactive"]:
            gimp.message(_native(u"Fixative: %s" % fixative_plugin.done_text(
                _text(os.path.basename(path)), report).replace(u"Added", u"Exported", 1)))
    except GimpFuError:
        raise
    except Exception as exc:  # still a message, not gimpfu's traceback dialog
        _fail_with(exc)


def _mark_interactive():
    _RUN["interactive"] = True


register(
    PROCEDURE_NAME,
    "Protect the layer against AI style mimicry",
    "Adds imperceptible changes that mislead the image encoders AI models are trained through "
    "(style cloak and/or concept poison), using the local Fixative engine. The result is a copy "
    "of the layer in its place (the original is kept, hidden, below it; a layer group becomes one "
    "merged layer); with a selection, only the selection's bounding box is protected. 'Protect "
    "the visible picture' adds everything you see as one protected layer on top.",
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

register(
    EXPORT_PROCEDURE_NAME,
    "Export the picture protected against AI style mimicry",
    "Protects the visible picture (all visible layers, as shown) with the local Fixative engine "
    "and writes it as PNG, JPEG or WebP with the 'no AI training' opt-out metadata and, by "
    "default, signed 'not for AI training' credentials. The open image is not changed.",
    "Fixative contributors",
    "MIT License",
    "2025",
    "Export Protected...",
    "*",
    EXPORT_PARAMS,
    [],
    fixative_export,
    menu="<Image>/File/Export",
    on_run=_mark_interactive,
)

main()
