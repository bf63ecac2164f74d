#!/usr/bin/env python3
"""GIMP 3 plug-in: Filters > Protect for Web... protects the active layer with the Fixative engine.

The layer's pixels go to the local engine as a lossless PNG (8-bit, or 16-bit for deeper
precisions) through the shared stdlib client; the protected pixels come back as a new layer
directly above, in one undo group. Written against the GIMP 3.0 API and nothing newer, so the
same file runs on GIMP 3.0 and 3.2. GIMP's Cancel kills this process; the engine notices the
missing polls (its job lease) and frees the job by itself.
"""

import array
import os
import signal
import sys
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

PROCEDURE_NAME = "python-fu-fixative-protect"
PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))

# (engine value, label, help) for each choice argument; the first column is what the engine reads.
MODES = [
    ("style", "Style cloak", "Hide the artwork's style from AI image encoders (Glaze-like)"),
    ("poison", "Concept poison", "Make AI encoders see another concept (Nightshade-like)"),
    ("both", "Both", "Style cloak and concept poison in one optimisation"),
]
INTENSITIES = [
    ("low", "Low", "Smallest change to the pixels, weakest protection"),
    ("default", "Default", "Balanced change and protection"),
    ("high", "High", "Strongest protection, most visible change"),
]
QUALITIES = [
    ("fast", "Fast", "Quick search: good for previews and small images"),
    ("default", "Default", "Balanced search time"),
    ("max", "Maximum", "Longest search, best protection"),
]
ROBUSTNESS = [
    ("off", "Off", "Optimise for the image exactly as it is"),
    ("standard", "Standard", "Survive typical resizing and JPEG compression"),
    ("strong", "Strong", "Survive heavy resizing, JPEG, blur and noise"),
]
EIGHT_BIT_PRECISIONS = ("U8_LINEAR", "U8_NON_LINEAR", "U8_PERCEPTUAL")


class PluginError(Exception):
    """A problem the artist can act on; its text is shown as-is."""


def _import_client():
    """The shared client sits beside this file once installed, in ../../../common in the source tree."""
    candidates = [PLUGIN_DIR, os.path.normpath(os.path.join(PLUGIN_DIR, "..", "..", "..", "common"))]
    for folder in candidates:
        if os.path.isfile(os.path.join(folder, "fixative_client.py")):
            if folder not in sys.path:
                sys.path.insert(0, folder)
            break
    try:
        import fixative_client
        import fixative_png
    except ImportError as exc:
        raise PluginError(f"The Fixative plug-in is incomplete ({exc}): fixative_client.py and "
                          "fixative_png.py must sit beside fixative_protect.py. Run the Fixative "
                          "installer again.") from exc
    return fixative_client, fixative_png


def _make_choice(entries):
    choice = Gimp.Choice.new()
    for index, (value, label, help_text) in enumerate(entries):
        choice.add(value, index, label, help_text)
    return choice


def pixel_layout(image, drawable):
    """Babl format, PNG channels and bit depth used to exchange this drawable's pixels.

    8-bit precisions travel as 8-bit, every deeper precision as 16-bit, always in perceptual
    (sRGB-curve) encoding, which is what the engine's budget is defined in.
    """
    precision = image.get_precision()
    eight_bit = any(precision == getattr(Gimp.Precision, name) for name in EIGHT_BIT_PRECISIONS)
    sample = "u8" if eight_bit else "u16"
    alpha = drawable.has_alpha()
    if drawable.is_gray():
        components, channels = ("Y'A", 2) if alpha else ("Y'", 1)
    else:
        components, channels = ("R'G'B'A", 4) if alpha else ("R'G'B'", 3)
    return f"{components} {sample}", channels, 8 if eight_bit else 16


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
    if drawable.is_group():
        raise PluginError("Select a single layer to protect, not a layer group.")
    if drawable.is_indexed():
        raise PluginError("Indexed-colour layers cannot be protected. Convert the image with "
                          "Image > Mode > RGB first.")
    return drawable


def read_options(config):
    """Engine options (ProtectOptions field names) from the procedure's arguments."""
    options = {
        "mode": config.get_property("mode"),
        "intensity": config.get_property("intensity"),
        "quality": config.get_property("quality"),
        "robustness": config.get_property("robustness"),
        "target_style": (config.get_property("target-style") or "").strip() or "auto",
    }
    for field, name in (("concept", "concept"), ("target_concept", "target-concept")):
        text = (config.get_property(name) or "").strip()
        if text:
            options[field] = text
    return options


class Progress:
    """GIMP's progress bar with the engine's stage text."""

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
        text = stage or "protecting"
        if eta_s is not None and eta_s >= 1:
            text = f"{text} (about {int(eta_s + 0.5)} s left)"
        self.say(text)
        Gimp.progress_update(max(0.0, min(1.0, float(fraction))))


def protect_pixels(client, png, options, progress):
    """Run one engine job; cancels it if this process is told to stop while waiting."""
    def stop(_signum, _frame):
        raise SystemExit(1)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        return client.protect_bytes(png, options, on_progress=progress.job)
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


def write_result(image, drawable, data, fmt, new_layer):
    """Put the protected pixels into the image as one undo step; returns the layer written."""
    width, height = drawable.get_width(), drawable.get_height()
    rect = Gegl.Rectangle.new(0, 0, width, height)
    image.undo_group_start()
    try:
        if new_layer:
            _ok, offset_x, offset_y = drawable.get_offsets()
            target = Gimp.Layer.new(image, f"{drawable.get_name()} (protected)", width, height,
                                    drawable.type(), drawable.get_opacity(), drawable.get_mode())
            image.insert_layer(target, drawable.get_parent(), image.get_item_position(drawable))
            target.set_offsets(offset_x, offset_y)
            target.set_visible(True)
            buffer = target.get_buffer()
            buffer.set(rect, fmt, data)
            buffer.flush()
        else:
            target = drawable
            shadow = drawable.get_shadow_buffer()
            shadow.set(rect, fmt, data)
            shadow.flush()
            drawable.merge_shadow(True)
        target.update(0, 0, width, height)
    finally:
        image.undo_group_end()
    return target


def protect_layer(image, drawables, config):
    """The whole job for one run; raises PluginError (or a client error) with a clear message."""
    drawable = check_target(image, drawables)
    options = read_options(config)
    new_layer = bool(config.get_property("new-layer"))
    client_module, png_module = _import_client()

    width, height = drawable.get_width(), drawable.get_height()
    fmt, channels, bit_depth = pixel_layout(image, drawable)
    progress = Progress()

    client = client_module.FixativeClient()
    info = client.connect(start=True, on_status=progress.engine_status)
    max_pixels = (info.get("limits") or {}).get("max_pixels")
    if max_pixels and width * height > max_pixels:
        raise PluginError(f"This layer has {width * height} pixels; the Fixative engine accepts "
                          f"at most {max_pixels}. Scale the image down first.")

    progress.say("reading the layer")
    rect = Gegl.Rectangle.new(0, 0, width, height)
    raw = bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
    samples = _swap16_if_little(raw) if bit_depth == 16 else raw
    png = png_module.encode_png(width, height, channels, bit_depth, samples, compress_level=1)

    result, _report = protect_pixels(client, png, options, progress)

    progress.say("writing the protected layer")
    try:
        out_w, out_h, out_channels, out_depth, out_samples = png_module.decode_png(result)
    except png_module.PngError as exc:
        raise PluginError(f"The Fixative engine sent an image this plug-in cannot read ({exc}); the "
                          "image was not changed.") from exc
    if (out_w, out_h, out_channels, out_depth) != (width, height, channels, bit_depth):
        raise PluginError(f"The Fixative engine sent back a {out_w}x{out_h} {out_channels}-channel "
                          f"{out_depth}-bit image for a {width}x{height} {channels}-channel "
                          f"{bit_depth}-bit layer; the image was not changed.")
    data = _swap16_if_little(out_samples) if bit_depth == 16 else out_samples
    write_result(image, drawable, data, fmt, new_layer)
    Gimp.progress_update(1.0)
    Gimp.displays_flush()


def _failure(procedure, message):
    """Show the message and return EXECUTION_ERROR: never a Python traceback dialog."""
    Gimp.message(message)
    return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR, GLib.Error(message))


def run(procedure, run_mode, image, drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        gi.require_version("GimpUi", "3.0")
        from gi.repository import GimpUi

        GimpUi.init("fixative_protect")
        dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config,
                                        title="Protect for Web (Fixative)")
        dialog.fill(None)
        accepted = dialog.run()
        dialog.destroy()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        _client, _png = _import_client()
        try:
            protect_layer(image, drawables, config)
        except _client.FixativeClientError as exc:
            return _failure(procedure, f"Fixative: {exc} The image was not changed.")
    except PluginError as exc:
        return _failure(procedure, f"Fixative: {exc}")
    except Exception as exc:  # anything else still ends in a message, not a traceback dialog
        traceback.print_exc()
        return _failure(procedure, f"Fixative: unexpected error ({type(exc).__name__}: {exc}). The image was not "
                        "changed.")
    finally:
        Gimp.progress_end()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class FixativeProtect(Gimp.PlugIn):
    """Registers Filters > Protect for Web..."""

    def do_query_procedures(self):
        return [PROCEDURE_NAME]

    def do_set_i18n(self, _name):
        return False, None, None

    def do_create_procedure(self, name):
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*, GRAY*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE)
        procedure.set_menu_label("Protect for Web\u2026")
        procedure.add_menu_path("<Image>/Filters")
        procedure.set_documentation(
            "Protect the layer against AI style mimicry",
            "Adds imperceptible changes that mislead the image encoders AI models are trained "
            "through (style cloak and/or concept poison), using the local Fixative engine. "
            "The result is a new layer above the active one.",
            name)
        procedure.set_attribution("Fixative contributors", "MIT License", "2025")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_choice_argument("mode", "_Mode", "What the protection does",
                                      _make_choice(MODES), "style", flags)
        procedure.add_choice_argument("intensity", "_Intensity", "How much the pixels may change",
                                      _make_choice(INTENSITIES), "default", flags)
        procedure.add_choice_argument("quality", "_Quality", "How long to search",
                                      _make_choice(QUALITIES), "default", flags)
        procedure.add_choice_argument("robustness", "_Robustness",
                                      "Which edits the protection must survive",
                                      _make_choice(ROBUSTNESS), "standard", flags)
        procedure.add_string_argument("target-style", "Target _style",
                                      "Built-in style to push towards, or 'auto'", "auto", flags)
        procedure.add_string_argument("concept", "_Concept",
                                      "What the artwork shows (concept poison)", "", flags)
        procedure.add_string_argument("target-concept", "_Target concept",
                                      "What AI models should see instead (concept poison)", "",
                                      flags)
        procedure.add_boolean_argument("new-layer", "Result as a _new layer",
                                       "Put the protected pixels in a new layer above",
                                       True, flags)
        return procedure


if __name__ == "__main__":
    Gimp.main(FixativeProtect.__gtype__, sys.argv)
