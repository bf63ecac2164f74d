#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Protect for Web... protects the active layer with the Fixative engine.

The layer's pixels go to the local engine as a lossless sRGB PNG (8-bit, or 16-bit for deeper
precisions) through the shared stdlib client; the protected pixels come back as a new layer
directly above, in one undo group. Images in another colour space or precision (linear, float
HDR, a wide-gamut profile) are converted to sRGB by babl, and the engine's change is added to
the layer's own samples (fixative_pixels.py), so untouched pixels stay bit-identical. Written
against the GIMP 3.0 API and nothing newer, so the same file runs on GIMP 3.0 and 3.2. GIMP's
Cancel kills this process; the engine notices the missing polls (its job lease) and frees the
job by itself.
"""

import array
import os
import signal
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Babl, Gegl, Gimp, Gio, GLib, GObject  # noqa: E402

PROCEDURE_NAME = "python-fu-fixative-protect"
EXPORT_PROCEDURE_NAME = "python-fu-fixative-export"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
# babl's sample types as fixative_pixels names them.
SAMPLE_DEPTHS = {"u8": "U8", "u16": "U16", "u32": "U32", "half": "F16", "float": "F32",
                 "double": "F64"}
INT_RANGE = (-2**31, 2**31 - 1)
MIN_SIDE = 16  # the engine's smallest accepted side, in pixels


def _add_common_to_path():
    """The shared files sit beside this file once installed, in ../../../common in the source tree."""
    for folder in (PLUGIN_DIR, os.path.normpath(os.path.join(PLUGIN_DIR, "..", "..", "..", "common"))):
        if os.path.isfile(os.path.join(folder, "fixative_client.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            return


_add_common_to_path()
try:
    import fixative_client
    import fixative_options
    import fixative_pixels
    import fixative_plugin
except ImportError as _exc:  # pragma: no cover - a broken installation
    sys.stderr.write(f"The Fixative plug-in is incomplete ({_exc}): fixative_client.py, "
                     "fixative_options.py, fixative_pixels.py, fixative_plugin.py and "
                     "fixative_png.py must sit beside fixative_protect.py. Run the Fixative "
                     "installer again.\n")
    raise

PluginError = fixative_plugin.PluginError
SCHEMA = {"current": None}  # the option schema the procedure was registered with


def argument_name(field):
    return field["name"].replace("_", "-")


# Letters GIMP's dialog buttons use (_OK, _Cancel, _Help, _Reset, _Save/_Load defaults): never
# given to a field.
_BUTTON_MNEMONICS = set("ochrsld")


def with_mnemonic(label, used):
    """The label with a keyboard mnemonic (``_`` before the first letter no other label or
    dialog button uses); ``used`` collects the letters taken. GIMP 3 warns about labels
    without one and about duplicates."""
    for index, char in enumerate(label):
        key = char.lower()
        if char.isalnum() and key not in used and key not in _BUTTON_MNEMONICS:
            used.add(key)
            return label[:index] + "_" + label[index:]
    return label


def _make_choice(field):
    choice = Gimp.Choice.new()
    for index, entry in enumerate(field["choices"]):
        choice.add(str(entry["value"]), index, entry.get("label") or str(entry["value"]),
                   entry.get("help") or "")
    return choice


def _suggestions_as_choice(field):
    """A text field with a fixed list of suggestions (target style: the engine's styles) as a
    choice field, so the dialog offers a list instead of a blank entry."""
    values = [str(value) for value in field.get("suggestions") or []]
    default = str(field.get("default") or "")
    if default and default not in values:
        values.insert(0, default)
    choices = [{"value": value, "label": value.replace("-", " ").capitalize(), "help": ""}
               for value in values]
    return dict(field, kind="choice", choices=choices, default=default or values[0])


def add_option_argument(procedure, field, mnemonics):
    """One procedure argument for a schema field: the ProcedureDialog shows it as such."""
    name = argument_name(field)
    label = with_mnemonic(fixative_options.label_of(field), mnemonics)
    if field["kind"] == "text" and field.get("suggestions"):
        field = _suggestions_as_choice(field)
    help_text, default, kind = field.get("help") or "", field.get("default"), field["kind"]
    flags = GObject.ParamFlags.READWRITE
    if kind == "choice":
        default = fixative_options.choice_values(field)[fixative_options.index_of_choice(field, default)]
        procedure.add_choice_argument(name, label, help_text, _make_choice(field), str(default),
                                      flags)
    elif kind == "integer":
        low = INT_RANGE[0] if field.get("minimum") is None else int(field["minimum"])
        high = INT_RANGE[1] if field.get("maximum") is None else int(field["maximum"])
        value = min(max(int(default if default is not None else 0), low), high)
        procedure.add_int_argument(name, label, help_text, low, high, value, flags)
    elif kind == "boolean":
        procedure.add_boolean_argument(name, label, help_text, bool(default), flags)
    else:  # text, or a list typed as comma-separated text; "" (never None) for empty
        text = ",".join(default) if isinstance(default, list) else (default or "")
        procedure.add_string_argument(name, label, help_text, text, flags)


class PixelLayout:
    """How one drawable's pixels travel to the engine and back.

    ``exchange``: the babl format of the engine's PNG samples: sRGB (a format name without a
    space is babl's sRGB), perceptual, u8 or u16, so babl converts from the image's own colour
    space and precision on reading and back on writing. ``native``: the drawable's own babl
    format (the image's space, precision and linearity), in which the result is written.
    ``direct``: the two are the same, so the engine's samples are written as they are."""

    def __init__(self, exchange, channels, bit_depth, native, depth, alpha):
        self.exchange, self.channels, self.bit_depth = exchange, channels, bit_depth
        self.native, self.depth, self.alpha = native, depth, alpha

    @property
    def direct(self):
        return self.exchange == self.native


def pixel_layout(drawable):
    """The PixelLayout for this drawable.

    8-bit travels as 8-bit only when the layer is 8-bit perceptual sRGB, where it is exact;
    everything else (linear or float precisions, other colour profiles) as 16-bit, always in
    perceptual sRGB, which is what the engine's budget is defined in."""
    babl_format = drawable.get_format()
    native = Babl.get_name(babl_format)
    sample = Babl.get_name(Babl.format_get_type(babl_format, 0))
    if sample not in SAMPLE_DEPTHS:
        raise PluginError(f"Fixative cannot read layers stored as {native}. Convert the image "
                          "with Image > Precision first.")
    alpha = drawable.has_alpha()
    if drawable.is_gray():
        components, channels = ("Y'A", 2) if alpha else ("Y'", 1)
    else:
        components, channels = ("R'G'B'A", 4) if alpha else ("R'G'B'", 3)
    bit_depth = 8 if native == f"{components} u8" else 16
    return PixelLayout(f"{components} u{bit_depth}", channels, bit_depth, native,
                       SAMPLE_DEPTHS[sample], alpha)


def read_pixels(drawable, region, layout):
    """(the region as ``layout.exchange`` samples, in GEGL's byte order; the region in the
    layer's own format, or None when the layout is direct)."""
    buffer = drawable.get_buffer()
    rect = Gegl.Rectangle.new(*region)
    sent = bytes(buffer.get(rect, 1.0, layout.exchange, Gegl.AbyssPolicy.NONE))
    own = None if layout.direct else bytes(buffer.get(rect, 1.0, layout.native,
                                                      Gegl.AbyssPolicy.NONE))
    return sent, own


def png_samples(layout, samples):
    """GEGL's samples as PNG's and back: 16-bit samples swap byte order on little-endian."""
    return _swap16_if_little(samples) if layout.bit_depth == 16 else samples


def pixels_to_write(layout, width, height, sent, result, own):
    """The engine's ``result`` (PNG samples) in the layer's own format, ``layout.native``.

    ``sent``, ``own``: what read_pixels gave. Direct layouts take the result as it is. Otherwise
    babl converts what was sent and what came back into the layer's format (in a scratch buffer)
    and the difference is added to the layer's own samples: unchanged pixels stay bit-identical,
    alpha is the original's, and float values the 16-bit exchange clipped (above 1.0, below 0)
    keep their value plus the change."""
    data = png_samples(layout, result)
    if layout.direct:
        return data
    rect = Gegl.Rectangle.new(0, 0, width, height)
    scratch = Gegl.Buffer.new(layout.native, 0, 0, width, height)
    converted = []
    for samples in (sent, data):
        scratch.set(rect, layout.exchange, samples)
        converted.append(bytes(scratch.get(rect, 1.0, layout.native, Gegl.AbyssPolicy.NONE)))
    try:
        return fixative_pixels.add_difference(own, converted[0], converted[1], layout.depth,
                                              layout.channels, layout.alpha)
    except fixative_pixels.PixelError as exc:
        raise PluginError(f"Could not put the protected pixels back ({exc}); the image was not "
                          "changed.") from None


def _swap16_if_little(data):
    """GEGL's u16 is native-endian, PNG's is big-endian: swap on little-endian machines."""
    if sys.byteorder != "little":
        return bytes(data)
    samples = array.array("H")
    samples.frombytes(bytes(data))
    samples.byteswap()
    return samples.tobytes()


def check_target(image, drawables):
    """The one layer to protect, or PluginError saying what to select instead."""
    if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
        raise PluginError("Indexed-colour images cannot be protected. Convert the image with "
                          "Image > Mode > RGB (or Grayscale) first, then run Protect for Web again.")
    if not drawables or len(drawables) != 1:
        raise PluginError(f"Select exactly one layer to protect ({len(drawables or [])} are "
                          "selected).")
    drawable = drawables[0]
    if not isinstance(drawable, Gimp.Layer) or isinstance(drawable, Gimp.LayerMask):
        raise PluginError("Select a layer to protect, not a channel or a layer mask.")
    if drawable.is_indexed():
        raise PluginError("Indexed-colour layers cannot be protected. Convert the image with "
                          "Image > Mode > RGB first.")
    return drawable


def read_style_image(config):
    """The style reference image's bytes (PNG/JPEG/TIFF file as chosen), or None."""
    chosen = config.get_property("style-image")
    if chosen is None or chosen.get_path() is None:
        return None
    try:
        _ok, contents, _etag = chosen.load_contents(None)
    except GLib.Error as exc:
        raise PluginError(f"Could not read the style reference image {chosen.get_path()} "
                          f"({exc.message}).") from None
    return bytes(contents)


def read_options(config, schema):
    """Engine options (ProtectOptions field names) from the procedure's arguments."""
    leading, extra = fixative_options.script_argument_fields(schema)
    values = {field["name"]: config.get_property(argument_name(field)) for field in leading + extra}
    return fixative_options.build_options(schema, values)


class Progress:
    """GIMP's progress bar with the engine's stage in plain words."""

    def __init__(self):
        self.last_text = None
        Gimp.progress_init("Fixative: connecting to the engine")

    def say(self, text):
        text = f"Fixative: {text}"
        if text != self.last_text:
            Gimp.progress_set_text(text)
            self.last_text = text

    def engine_status(self, text):
        self.say(text)
        Gimp.progress_pulse()

    def job(self, fraction, stage, eta_s):
        self.say(fixative_plugin.progress_text(stage, eta_s))
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))


def protect_pixels(client, png, options, progress, style_image=None):
    """Run one engine job; cancels it if this process is told to stop while waiting."""
    def stop(_signum, _frame):
        raise SystemExit(1)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return client.protect(png, options, on_progress=progress.job, style_image=style_image)
    except BaseException:
        job_id = getattr(client, "last_job_id", None)
        if job_id and sys.exc_info()[0] in (SystemExit, KeyboardInterrupt):
            try:
                client.cancel(job_id)
            except Exception:  # the lease frees the job anyway
                pass
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def selected_region(drawable, canvas_image=None):
    """(x, y, width, height) in layer coordinates: the selection's bounding box on this layer,
    or the whole layer when nothing is selected. Pixels outside it are never touched.
    ``canvas_image``: the drawable is a canvas-sized layer not yet in that image."""
    width, height = drawable.get_width(), drawable.get_height()
    image = canvas_image or drawable.get_image()
    if Gimp.Selection.is_empty(image):
        return 0, 0, width, height
    if canvas_image is not None:
        non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)
        non_empty, x, y, region_w, region_h = non_empty, x1, y1, x2 - x1, y2 - y1
    else:
        non_empty, x, y, region_w, region_h = drawable.mask_intersect()
    if not non_empty:
        raise PluginError("The selection does not touch this layer: select part of the layer "
                          "(or nothing, for the whole layer).")
    if min(region_w, region_h) < MIN_SIDE:
        raise PluginError(f"The selection covers only {region_w}x{region_h} pixels of this layer; "
                          f"the engine needs at least {MIN_SIDE}x{MIN_SIDE}. Select a larger area.")
    return x, y, region_w, region_h


def place_copy(image, drawable, keep_original_visible):
    """A copy of the layer (mask, opacity, mode, locks, visibility and offsets included) in the
    original's place; the original is hidden below it as "NAME (original)" unless kept visible.

    A text layer's copy is a plain layer (see plain_layer_copy)."""
    name = drawable.get_name()
    if drawable.is_text_layer():
        copy = plain_layer_copy(image, drawable)
    else:
        copy = drawable.copy()
        image.insert_layer(copy, drawable.get_parent(), image.get_item_position(drawable))
    copy.set_name(f"{name} (protected)")
    if not keep_original_visible:
        drawable.set_name(f"{name} (original)")
        drawable.set_visible(False)
    return copy


def plain_layer_copy(image, layer):
    """A plain layer with the layer's pixels, mask and properties, inserted in its place.

    For text layers: GIMP's own copy of one stays a text layer, and GIMP re-renders a text layer
    from its text (dropping the protected pixels) as soon as its text or font is touched."""
    width, height = layer.get_width(), layer.get_height()
    copy = Gimp.Layer.new(image, layer.get_name(), width, height, layer.type(),
                          layer.get_opacity(), layer.get_mode())
    image.insert_layer(copy, layer.get_parent(), image.get_item_position(layer))
    _ok, x, y = layer.get_offsets()
    copy.set_offsets(x, y)
    rect = Gegl.Rectangle.new(0, 0, width, height)
    _copy_buffer(layer, copy, rect)
    if layer.get_mask() is not None:
        copy.add_mask(copy.create_mask(Gimp.AddMaskType.WHITE))
        _copy_buffer(layer.get_mask(), copy.get_mask(), rect)
        copy.set_apply_mask(layer.get_apply_mask())
        copy.set_show_mask(layer.get_show_mask())
        copy.set_edit_mask(layer.get_edit_mask())
    copy.set_blend_space(layer.get_blend_space())
    copy.set_composite_space(layer.get_composite_space())
    copy.set_composite_mode(layer.get_composite_mode())
    copy.set_color_tag(layer.get_color_tag())
    copy.set_visible(layer.get_visible())
    copy.set_lock_alpha(layer.get_lock_alpha())
    copy.set_lock_content(layer.get_lock_content())
    copy.set_lock_position(layer.get_lock_position())  # last: it forbids moving the copy
    copy.set_lock_visibility(layer.get_lock_visibility())
    return copy


def _copy_buffer(source, target, rect):
    """Pixels from one drawable to another of the same format, in GEGL's own terms (exact)."""
    buffer = target.get_buffer()
    source.get_buffer().copy(rect, Gegl.AbyssPolicy.NONE, buffer, rect)
    buffer.flush()
    target.update(rect.x, rect.y, rect.width, rect.height)


def place_merged_copy(image, group, keep_original_visible):
    """A layer group's look as one layer in its place ("NAME (protected)"); the group is kept
    below it, hidden and renamed "NAME (original)" unless kept visible."""
    name = group.get_name()
    copy = group.copy()
    image.insert_layer(copy, group.get_parent(), image.get_item_position(group))
    merged = copy.merge()
    merged.set_name(f"{name} (protected)")
    if not keep_original_visible:
        group.set_name(f"{name} (original)")
        group.set_visible(False)
    return merged


def write_result(image, drawable, data, fmt, region, new_layer, keep_original_visible,
                 visible_layer=None):
    """Put the protected pixels into the image as one undo step; returns the layer written.

    ``visible_layer``: a new layer made from the visible picture, added on top."""
    rect = Gegl.Rectangle.new(*region)
    image.undo_group_start()
    try:
        if visible_layer is not None or drawable.is_group():
            if visible_layer is not None:
                image.insert_layer(visible_layer, None, 0)
                target = visible_layer
            else:
                target = place_merged_copy(image, drawable, keep_original_visible)
            buffer = target.get_buffer()
            buffer.set(rect, fmt, data)
            buffer.flush()
        elif new_layer:
            target = place_copy(image, drawable, keep_original_visible)
            buffer = target.get_buffer()
            buffer.set(rect, fmt, data)
            buffer.flush()
        else:  # with a selection GIMP merges the shadow through the selection mask, in its
            # compositing precision (16-bit images in a gamma profile such as Adobe RGB: a few
            # 1/65535 steps inside the selection), as for its own filters
            target = drawable
            if drawable.is_text_layer():  # GIMP 3.2 would keep it live text, re-rendered on edit
                name = drawable.get_name()
                target = plain_layer_copy(image, drawable)
                image.remove_layer(drawable)
                target.set_name(name)  # GIMP called it "NAME #1" while both existed
                image.set_selected_layers([target])
            shadow = target.get_shadow_buffer()
            shadow.set(rect, fmt, data)
            shadow.flush()
            target.merge_shadow(True)
        target.update(*region)
    finally:
        image.undo_group_end()
    return target


def protect_layer(image, drawables, config, schema):
    """The whole job for one run: returns (layer written, engine report) or raises a
    FixativeClientError (PluginError for what the artist can fix) with a clear message."""
    options = read_options(config, schema)
    new_layer = bool(config.get_property("new-layer"))
    keep_original_visible = bool(config.get_property("keep-original-visible"))
    style_image = read_style_image(config)
    visible_layer = None
    if config.get_property("visible-picture"):  # the whole picture as one new layer on top
        if image.get_base_type() == Gimp.ImageBaseType.INDEXED:
            check_target(image, drawables)
        visible_layer = Gimp.Layer.new_from_visible(image, image, "Visible (protected)")
        drawable = visible_layer
    else:
        drawable = check_target(image, drawables)
    try:
        return _protect_drawable(image, drawable, options, style_image, new_layer,
                                 keep_original_visible, visible_layer)
    except BaseException:
        in_image = [layer.get_id() for layer in image.get_layers()]
        if visible_layer is not None and visible_layer.get_id() not in in_image:
            visible_layer.delete()  # made but never added: nothing of it may stay behind
        raise


def _protect_drawable(image, drawable, options, style_image, new_layer, keep_original_visible,
                      visible_layer):
    """Read, protect, write back: the part of protect_layer after choosing what to protect."""
    region = selected_region(drawable, image if visible_layer is not None else None)
    _x, _y, width, height = region
    layout = pixel_layout(drawable)
    progress = Progress()

    client = fixative_client.FixativeClient()
    info = client.connect(start=True, on_status=progress.engine_status)
    fixative_plugin.check_layer_size(info, width, height)

    progress.say("reading the layer")
    sent, own = read_pixels(drawable, region, layout)
    png = fixative_plugin.encode_layer(width, height, layout.channels, layout.bit_depth,
                                       png_samples(layout, sent))

    outcome = protect_pixels(client, png, options, progress, style_image)

    progress.say("writing the protected layer")
    result = fixative_plugin.decode_result(outcome.result, width, height, layout.channels,
                                           layout.bit_depth)
    data = pixels_to_write(layout, width, height, sent, result, own)
    layer = write_result(image, drawable, data, layout.native, region, new_layer,
                         keep_original_visible, visible_layer)
    Gimp.progress_update(1.0)
    Gimp.displays_flush()
    return layer, outcome.report


def _failure(procedure, run_mode, message):
    """EXECUTION_ERROR with the message, never a traceback. Interactively GIMP shows the returned
    error itself, so the message is shown once; in scripts and batch runs it also goes to the
    message console, where nothing else would show it."""
    if run_mode != Gimp.RunMode.INTERACTIVE:
        Gimp.message(message)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def ask_in_dialog(procedure, config, title):
    """Show the procedure's dialog (fields from the option schema); True when the person clicked OK."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi

    GimpUi.init("fixative_protect")
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config, title=title)
    use_combo_boxes(dialog, SCHEMA["current"])
    dialog.fill(None)
    enable_fields_by_mode(dialog, SCHEMA["current"])
    # Tests build the dialog under Xvfb and close it at once (no person to click OK).
    accepted = False if os.environ.get("FIXATIVE_GIMP_DIALOG_CHECK") else dialog.run()
    dialog.destroy()
    return bool(accepted)


def use_combo_boxes(dialog, schema):
    """Choices as labelled combo boxes: GIMP draws short ones as radio frames, whose titles take
    no mnemonic (GIMP then warns). Call before ``fill``."""
    gi.require_version("Gtk", "3.0")
    from gi.repository import Gtk

    for field in fixative_options.dialog_fields(schema):
        if field["kind"] == "choice" or (field["kind"] == "text" and field.get("suggestions")):
            dialog.get_widget(argument_name(field), Gtk.ComboBox.__gtype__)


def enable_fields_by_mode(dialog, schema):
    """Grey out fields that do not apply (concept fields outside poison/both mode) with the
    schema's ``enabled_when``; a GIMP without this call keeps them all enabled."""
    for field in fixative_options.dialog_fields(schema):
        for controlling, allowed in (field.get("enabled_when") or {}).items():
            values = Gimp.ValueArray.new(len(allowed))
            for value in allowed:
                values.append(GObject.Value(GObject.TYPE_STRING, str(value)))
            try:
                dialog.set_sensitive_if_in(argument_name(field), None,
                                           controlling.replace("_", "-"), values, True)
            except (AttributeError, TypeError) as exc:
                sys.stderr.write(f"Fixative: cannot grey out {field['name']} ({exc})\n")


def run(procedure, run_mode, image, drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not ask_in_dialog(procedure, config, "Protect for Web (Fixative)"):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        layer, report = protect_layer(image, drawables, config, SCHEMA["current"])
        if run_mode == Gimp.RunMode.INTERACTIVE:  # what was added, how protected: one line
            Gimp.message("Fixative: " + fixative_plugin.done_text(layer.get_name(), report))
    except Exception as exc:  # every failure ends in a message, not a traceback dialog
        if not isinstance(exc, fixative_client.FixativeClientError):
            traceback.print_exc()
        return _failure(procedure, run_mode, fixative_plugin.error_text(exc))
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def export_protected(image, config, schema):
    """Protect the flattened picture and write it as PNG/JPEG/WebP with the opt-out metadata and,
    when asked, signed 'not for AI training' credentials. The image itself is not changed.

    Returns (path, engine report, notes); a note tells the artist that the file was written
    without credentials because the engine could not sign (the protection is not thrown away)."""
    chosen = config.get_property("file")
    if chosen is None or chosen.get_path() is None:
        raise PluginError("Choose the file to export to (.png, .jpg or .webp).")
    path = chosen.get_path()
    fmt = fixative_plugin.export_format(path)
    options = read_options(config, schema)
    credentials = bool(config.get_property("credentials"))
    style_image = read_style_image(config)

    copy = image.duplicate()
    try:
        if copy.get_base_type() == Gimp.ImageBaseType.INDEXED:
            copy.convert_rgb()
        layer = copy.flatten() if fmt == "JPEG" else copy.merge_visible_layers(
            Gimp.MergeType.CLIP_TO_IMAGE)
        width, height = layer.get_width(), layer.get_height()
        layout = pixel_layout(layer)
        progress = Progress()
        client = fixative_client.FixativeClient()
        info = client.connect(start=True, on_status=progress.engine_status)
        fixative_plugin.check_layer_size(info, width, height)
        region = (0, 0, width, height)
        sent, own = read_pixels(layer, region, layout)
        png = fixative_plugin.encode_layer(width, height, layout.channels, layout.bit_depth,
                                           png_samples(layout, sent))
        outcome = protect_pixels(client, png, options, progress, style_image)
        progress.say("writing " + os.path.basename(path))
        if fmt == "PNG":
            data = outcome.result  # the engine's file: sRGB pixels plus the opt-out XMP
        else:  # GIMP's exporter writes the copy, in the image's own colour space
            result = fixative_plugin.decode_result(outcome.result, width, height,
                                                   layout.channels, layout.bit_depth)
            buffer = layer.get_buffer()
            buffer.set(Gegl.Rectangle.new(*region), layout.native,
                       pixels_to_write(layout, width, height, sent, result, own))
            buffer.flush()
            data = _export_with_gimp(copy, path, fmt, fixative_plugin.png_xmp(outcome.result))
        notes = []
        if credentials:
            progress.say("adding 'not for AI training' credentials")
            try:
                data = client.add_credentials(data)
            except fixative_client.FixativeClientError as exc:  # keep the protection, say so
                notes.append(f"{os.path.basename(path)} was saved without signed credentials (its "
                             f"XMP opt-out is in the file): {fixative_plugin.message_of(exc)}")
        try:
            with open(path, "wb") as handle:
                handle.write(data)
        except OSError as exc:
            raise PluginError(f"Could not write {path} ({exc.strerror or exc}).") from exc
    finally:
        copy.delete()
    Gimp.progress_update(1.0)
    return path, outcome.report, notes


def _export_with_gimp(copy, path, fmt, xmp):
    """JPEG/WebP bytes of the protected copy, written by GIMP's own exporter, with the engine's
    opt-out XMP as the file's only XMP (JPEG APP1 segment, WebP ``XMP `` chunk).

    GIMP's own include-xmp argument would write the image's metadata, not the engine's packet,
    so the packet goes in after GIMP has written the file; the credentials are signed last."""
    temporary = path + ".fixative-tmp." + ("jpg" if fmt == "JPEG" else "webp")
    try:
        Gimp.file_save(Gimp.RunMode.NONINTERACTIVE, copy, Gio.File.new_for_path(temporary), None)
        with open(temporary, "rb") as handle:
            data = handle.read()
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    if xmp:
        data = (fixative_plugin.add_jpeg_xmp(data, xmp) if fmt == "JPEG"
                else fixative_plugin.add_webp_xmp(data, xmp))
    return data


def run_export(procedure, run_mode, image, _drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE and not ask_in_dialog(procedure, config, "Export Protected (Fixative)"):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        path, report, notes = export_protected(image, config, SCHEMA["current"])
        for note in notes:
            Gimp.message("Fixative: " + note)
        if run_mode == Gimp.RunMode.INTERACTIVE:
            Gimp.message("Fixative: " + fixative_plugin.done_text(os.path.basename(path), report)
                         .replace("Added", "Exported", 1))
    except Exception as exc:
        if not isinstance(exc, fixative_client.FixativeClientError):
            traceback.print_exc()
        return _failure(procedure, run_mode, fixative_plugin.error_text(exc))
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class FixativeProtect(Gimp.PlugIn):
    """Registers Filters > Protect for Web..."""

    def do_query_procedures(self):
        return [PROCEDURE_NAME, EXPORT_PROCEDURE_NAME]

    def do_set_i18n(self, _name):
        return False, None, None

    def do_create_procedure(self, name):
        if name == EXPORT_PROCEDURE_NAME:
            return self._create_export_procedure(name)
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Protect for Web\u2026")
        procedure.add_menu_path("<Image>/Filters")
        procedure.set_documentation(
            "Protect the layer against AI style mimicry",
            "Adds imperceptible changes that mislead the image encoders AI models are trained "
            "through (style cloak and/or concept poison), using the local Fixative engine. "
            "The result is a copy of the layer in its place (the original is kept, hidden, "
            "below it); with a selection, only the selection's bounding box is protected.",
            name)
        procedure.set_attribution("Fixative contributors", "MIT License", "2025")
        SCHEMA["current"] = fixative_options.load_schema()
        leading, extra = fixative_options.script_argument_fields(SCHEMA["current"])
        mnemonics = set()
        for field in leading:
            add_option_argument(procedure, field, mnemonics)
        procedure.add_boolean_argument("new-layer", with_mnemonic("Result as a new layer", mnemonics),
                                       "Put the protected pixels in a copy of the layer",
                                       True, GObject.ParamFlags.READWRITE)
        for field in extra:
            add_option_argument(procedure, field, mnemonics)
        procedure.add_file_argument(
            "style-image", with_mnemonic("Style reference image", mnemonics),
            "Optional: a picture in the style the protection should steer towards (PNG, JPEG "
            "or TIFF)", Gimp.FileChooserAction.OPEN, True, None, GObject.ParamFlags.READWRITE)
        procedure.add_boolean_argument(
            "keep-original-visible", with_mnemonic("Keep the original visible", mnemonics),
            "Leave the unprotected layer visible under the copy (semi-transparent pixels then "
            "show twice); by default it is hidden and renamed \"NAME (original)\"",
            False, GObject.ParamFlags.READWRITE)
        procedure.add_boolean_argument(
            "visible-picture", with_mnemonic("Protect the visible picture", mnemonics),
            "Protect everything you see (all visible layers) as one new layer on top, e.g. "
            "before posting; your layers stay as they are", False, GObject.ParamFlags.READWRITE)
        return procedure


    def _create_export_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_export, None)
        procedure.set_image_types("*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
        procedure.set_menu_label("Export Protected\u2026")
        procedure.add_menu_path("<Image>/File/Export")
        procedure.set_documentation(
            "Export the picture protected against AI style mimicry",
            "Protects the visible picture (all layers merged) with the local Fixative engine and "
            "writes it as PNG, JPEG or WebP with the 'no AI training' opt-out metadata and, by "
            "default, signed 'not for AI training' credentials. The open image is not changed.",
            name)
        procedure.set_attribution("Fixative contributors", "MIT License", "2025")
        mnemonics = set()
        procedure.add_file_argument("file", with_mnemonic("Export to", mnemonics),
                                    "The .png, .jpg or .webp file to write",
                                    Gimp.FileChooserAction.SAVE, False, None,
                                    GObject.ParamFlags.READWRITE)
        SCHEMA["current"] = fixative_options.load_schema()
        leading, extra = fixative_options.script_argument_fields(SCHEMA["current"])
        for field in leading + extra:
            add_option_argument(procedure, field, mnemonics)
        procedure.add_file_argument(
            "style-image", with_mnemonic("Style reference image", mnemonics),
            "Optional: a picture in the style the protection should steer towards (PNG, JPEG "
            "or TIFF)", Gimp.FileChooserAction.OPEN, True, None, GObject.ParamFlags.READWRITE)
        procedure.add_boolean_argument(
            "credentials", with_mnemonic("Add 'not for AI training' credentials", mnemonics),
            "Sign C2PA credentials into the file saying it must not be used for AI training "
            "(with your Fixative identity)", True, GObject.ParamFlags.READWRITE)
        return procedure


if __name__ == "__main__":
    Gimp.main(FixativeProtect.__gtype__, sys.argv)
