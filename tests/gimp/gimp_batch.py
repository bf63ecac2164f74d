"""Runs inside real GIMP 3 (python-fu-eval): builds test images, calls the Fixative procedure, and
writes what happened (status, error, layer stack, raw pixels) for tests/test_gimp3.py to judge.

GIMP runs this with exec(); the spec file is named by the FIXATIVE_GIMP_SPEC environment variable.
Nothing here judges the result: the pytest side does, with numpy, so a failing check shows numbers.
"""

import hashlib
import json
import os
import shutil
import struct
import traceback

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
gi.require_version("Babl", "0.1")
from gi.repository import Babl, Gegl, Gimp, Gio  # noqa: E402

PROCEDURE = "python-fu-fixative-protect"
EXPORT_PROCEDURE = "python-fu-fixative-export"


def pixel_format(image, drawable):
    """The babl format the plug-in itself uses for this drawable, so bytes compare one to one."""
    eight_bit = image.get_precision() in (Gimp.Precision.U8_LINEAR, Gimp.Precision.U8_NON_LINEAR,
                                          Gimp.Precision.U8_PERCEPTUAL)
    if drawable.is_gray():
        components = "Y'A" if drawable.has_alpha() else "Y'"
    else:
        components = "R'G'B'A" if drawable.has_alpha() else "R'G'B'"
    return f"{components} {'u8' if eight_bit else 'u16'}"


def dump_pixels(image, drawable, path):
    fmt = pixel_format(image, drawable)
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    data = bytes(drawable.get_buffer().get(rect, 1.0, fmt, Gegl.AbyssPolicy.NONE))
    with open(path, "wb") as handle:
        handle.write(data)
    return fmt


def dump_native(drawable, path):
    """The drawable's pixels in its own babl format (the image's colour space and precision)."""
    babl_format = drawable.get_format()
    name = Babl.get_name(babl_format)
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    with open(path, "wb") as handle:
        handle.write(bytes(drawable.get_buffer().get(rect, 1.0, name, Gegl.AbyssPolicy.NONE)))
    return {"format": name, "type": Babl.get_name(Babl.format_get_type(babl_format, 0)),
            "channels": Babl.format_get_n_components(babl_format)}


def srgb16_format(drawable):
    """16-bit perceptual sRGB, the engine's side of a colour-managed exchange."""
    if drawable.is_gray():
        return "Y'A u16" if drawable.has_alpha() else "Y' u16"
    return "R'G'B'A u16" if drawable.has_alpha() else "R'G'B' u16"


def dump_colour(drawable, out_dir, name, kind):
    """``kind`` dumps for colour cases: own format (.native) and sRGB 16-bit (.srgb16)."""
    described = dump_native(drawable, os.path.join(out_dir, f"{name}.{kind}.native"))
    rect = Gegl.Rectangle.new(0, 0, drawable.get_width(), drawable.get_height())
    with open(os.path.join(out_dir, f"{name}.{kind}.srgb16"), "wb") as handle:
        handle.write(bytes(drawable.get_buffer().get(rect, 1.0, srgb16_format(drawable),
                                                     Gegl.AbyssPolicy.NONE)))
    return described


def use_engine(name):
    """Point the plug-in at the real engine or the test's fake one (state/engine-NAME.json, put
    there by the test), so one GIMP session can run cases against either."""
    state = os.path.join(os.environ.get("FIXATIVE_HOME", ""), "state")
    chosen = os.path.join(state, f"engine-{name}.json")
    if os.path.exists(chosen):
        shutil.copyfile(chosen, os.path.join(state, "engine.json"))


def set_colour(image, painting, colour):
    """Colour-space set-up: a profile conversion, a precision, float values outside 0..1."""
    if colour.get("profile"):
        profile = {"adobe": Gimp.ColorProfile.new_rgb_adobe,
                   "srgb-linear": Gimp.ColorProfile.new_rgb_srgb_linear}[colour["profile"]]()
        image.convert_color_profile(profile, Gimp.ColorRenderingIntent.RELATIVE_COLORIMETRIC,
                                    False)
    if colour.get("precision"):
        image.convert_precision(getattr(Gimp.Precision, colour["precision"]))
    if colour.get("hdr"):  # linear float: the top half 3x as bright, a stripe of negative red
        width, height = painting.get_width(), painting.get_height()
        rect = Gegl.Rectangle.new(0, 0, width, height)
        buffer = painting.get_buffer()
        count = width * height * 4
        values = list(struct.unpack(f"={count}f", bytes(buffer.get(rect, 1.0, "RGBA float",
                                                                    Gegl.AbyssPolicy.NONE))))
        for y in range(height):
            for x in range(width):
                at = (y * width + x) * 4
                if y < height // 2:
                    values[at:at + 3] = [value * 3.0 for value in values[at:at + 3]]
                elif y >= height - 4:
                    values[at] = -0.05
        buffer.set(rect, "RGBA float", struct.pack(f"={count}f", *values))
        buffer.flush()


def describe_layers(image):
    layers = []
    for layer in image.get_layers():
        _ok, offset_x, offset_y = layer.get_offsets()
        entry = {"name": layer.get_name(), "id": layer.get_id(),
                 "width": layer.get_width(), "height": layer.get_height(),
                 "offsets": [offset_x, offset_y], "type": layer.type().value_nick,
                 "position": image.get_item_position(layer),
                 "opacity": round(layer.get_opacity(), 3), "mode": layer.get_mode().value_nick,
                 "visible": layer.get_visible(), "lock_position": layer.get_lock_position(),
                 "lock_alpha": layer.get_lock_alpha(), "lock_content": layer.get_lock_content(),
                 "text": layer.is_text_layer(), "mask": None}
        mask = layer.get_mask()
        if mask is not None:
            rect = Gegl.Rectangle.new(0, 0, mask.get_width(), mask.get_height())
            data = bytes(mask.get_buffer().get(rect, 1.0, "Y u8", Gegl.AbyssPolicy.NONE))
            entry["mask"] = hashlib.sha256(data).hexdigest()[:16] + f":{min(data)}-{max(data)}"
        layers.append(entry)
    return layers


def build_image(case):
    """The test image: the loaded PNG as layer "Painting" on a larger canvas, between two others."""
    image = Gimp.file_load(Gimp.RunMode.NONINTERACTIVE, Gio.File.new_for_path(case["png"]))
    painting = image.get_layers()[0]
    painting.set_name("Painting")
    canvas_w, canvas_h = case["canvas"]
    offset_x, offset_y = case["offsets"]
    image.resize(canvas_w, canvas_h, offset_x, offset_y)
    gray = image.get_base_type() == Gimp.ImageBaseType.GRAY
    background = Gimp.Layer.new(image, "Background", canvas_w, canvas_h,
                                Gimp.ImageType.GRAY_IMAGE if gray else Gimp.ImageType.RGB_IMAGE,
                                100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(background, None, 1)
    background.fill(Gimp.FillType.WHITE)
    top = Gimp.Layer.new(image, "Top", 8, 8,
                         Gimp.ImageType.GRAYA_IMAGE if gray else Gimp.ImageType.RGBA_IMAGE,
                         100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(top, None, 0)
    top.fill(Gimp.FillType.TRANSPARENT)
    setup = case.get("setup", {})
    if "opacity" in setup:
        painting.set_opacity(setup["opacity"])
    if "mode" in setup:
        painting.set_mode(getattr(Gimp.LayerMode, setup["mode"]))
    if setup.get("lock_position"):
        painting.set_lock_position(True)
    if setup.get("lock_alpha"):
        painting.set_lock_alpha(True)
    if setup.get("mask"):  # a ramp mask made from the layer's alpha: not all white, not all black
        mask = painting.create_mask(Gimp.AddMaskType.ALPHA)
        painting.add_mask(mask)
    if setup.get("group"):  # the painting inside a layer group "Group", which is protected
        group = Gimp.GroupLayer.new(image, "Group")
        image.insert_layer(group, None, image.get_item_position(painting))
        image.reorder_item(painting, group, 0)
    if setup.get("text"):  # a text layer "Text" above the painting, which is protected
        font = Gimp.context_get_font()
        text = Gimp.TextLayer.new(image, "Fixative test text", font, 32.0, Gimp.Unit.pixel())
        image.insert_layer(text, None, image.get_item_position(painting))
        if setup.get("text_style"):  # what the copy must carry over
            text.set_opacity(70.0)
            text.set_mode(Gimp.LayerMode.SCREEN)
            text.add_mask(text.create_mask(Gimp.AddMaskType.ALPHA))
            text.set_lock_position(True)
    if case.get("colour"):
        set_colour(image, painting, case["colour"])
    if "select" in case:
        image.select_rectangle(Gimp.ChannelOps.REPLACE, *case["select"])
    if case.get("convert") == "indexed":
        image.convert_indexed(Gimp.ConvertDitherType.NONE, Gimp.ConvertPaletteType.GENERATE, 64,
                              False, False, "")
    return image, painting


def run_case(case, out_dir):
    name = case["name"]
    verdict = {"name": name}
    image, painting = build_image(case)
    verdict["precision"] = image.get_precision().value_nick
    verdict["base_type"] = image.get_base_type().value_nick
    verdict["before_layers"] = describe_layers(image)
    verdict["source_format"] = dump_pixels(image, painting, os.path.join(out_dir, f"{name}.before"))
    colour = bool(case.get("colour"))
    if colour:
        verdict["native_before"] = dump_colour(painting, out_dir, name, "before")
        reference = image.duplicate()  # GIMP's own conversion to sRGB, to compare with the engine's
        reference.convert_color_profile(Gimp.ColorProfile.new_rgb_srgb(),
                                        Gimp.ColorRenderingIntent.RELATIVE_COLORIMETRIC, False)
        dump_colour(next(layer for layer in reference.get_layers()
                         if layer.get_name() == "Painting"), out_dir, name, "reference")
        reference.delete()
    target = painting
    setup = case.get("setup", {})
    if setup.get("group"):
        target = painting.get_parent()
    elif setup.get("text"):
        target = next(layer for layer in image.get_layers() if layer.is_text_layer())
        verdict["text_format"] = dump_pixels(image, target, os.path.join(out_dir, f"{name}.text"))
    if case.get("args", {}).get("visible-picture"):
        visible = Gimp.Layer.new_from_visible(image, image, "visible-before")
        verdict["visible_format"] = dump_pixels(image, visible,
                                                os.path.join(out_dir, f"{name}.visible"))
        visible.delete()

    target_name = target.get_name()
    procedure = Gimp.get_pdb().lookup_procedure(EXPORT_PROCEDURE if case.get("export")
                                                else PROCEDURE)
    if procedure is None:
        verdict["status"] = "not-registered"
        return verdict
    config = procedure.create_config()
    if case.get("export"):
        config.set_property("file", Gio.File.new_for_path(os.path.join(out_dir, case["export"])))
    interactive = case.get("interactive", False)  # the dialog (built, then closed: see plug-in)
    config.set_property("run-mode", Gimp.RunMode.INTERACTIVE if interactive
                        else Gimp.RunMode.NONINTERACTIVE)
    config.set_property("image", image)
    config.set_core_object_array("drawables", [target])
    for key, value in case.get("args", {}).items():
        if key == "style-image":
            value = Gio.File.new_for_path(value)
        config.set_property(key, value)
    use_engine(case.get("engine", "real"))
    result = procedure.run(config)
    status = result.index(0)
    if isinstance(status, int):  # GIMP 3.2's bindings give the PDB status as a plain int
        status = Gimp.PDBStatusType(status)
    verdict["status"] = status.value_nick
    verdict["error"] = result.index(1) if result.length() > 1 else None
    if verdict["error"] is not None and not isinstance(verdict["error"], str):
        verdict["error"] = str(verdict["error"])
    verdict["pdb_error"] = Gimp.get_pdb().get_last_error()

    verdict["after_layers"] = describe_layers(image)
    dump_pixels(image, painting, os.path.join(out_dir, f"{name}.source-after"))
    protected = [layer for layer in image.get_layers() if layer.get_id() != painting.get_id()
                 and layer.get_name().endswith("(protected)")]
    if setup.get("text") and target.is_valid():  # the text layer itself must be left as it was
        dump_pixels(image, target, os.path.join(out_dir, f"{name}.text-after"))
    elif setup.get("text"):  # in place: replaced by a plain layer of the same name
        protected = [layer for layer in image.get_layers() if layer.get_name() == target_name]
    verdict["protected_is_text"] = bool(protected) and protected[0].is_text_layer()
    if protected:
        verdict["result_format"] = dump_pixels(image, protected[0],
                                               os.path.join(out_dir, f"{name}.result"))
    if colour:
        verdict["native_source_after"] = dump_colour(painting, out_dir, name, "source-after")
        if protected:
            verdict["native_result"] = dump_colour(protected[0], out_dir, name, "result")
    image.delete()
    return verdict


def describe_arguments():
    """The registered procedure's arguments: name, type, default and (for choices) the values."""
    procedure = Gimp.get_pdb().lookup_procedure(PROCEDURE)
    if procedure is None:
        return None
    arguments = []
    for spec in procedure.get_arguments():
        entry = {"name": spec.get_name(), "type": spec.value_type.name,
                 "label": spec.get_nick(), "help": spec.get_blurb()}
        entry["spec"] = spec.__gtype__.name
        if "Choice" in entry["spec"]:
            entry["choices"] = list(Gimp.param_spec_choice_get_choice(spec).list_nicks())
        try:
            default = spec.get_default_value()
            entry["default"] = default if isinstance(default, (str, int, float, bool)) else None
        except (TypeError, AttributeError):
            entry["default"] = None
        arguments.append(entry)
    return arguments


def main():
    with open(os.environ["FIXATIVE_GIMP_SPEC"]) as handle:
        spec = json.load(handle)
    out_dir = spec["out_dir"]
    try:
        arguments = describe_arguments()
    except Exception:
        arguments = traceback.format_exc()
    verdicts = []
    for case in spec["cases"]:
        try:
            verdicts.append(run_case(case, out_dir))
        except Exception:
            verdicts.append({"name": case["name"], "status": "harness-error",
                             "error": traceback.format_exc()})
    with open(os.path.join(out_dir, "verdict.json"), "w") as handle:
        json.dump({"gimp_version": Gimp.version(), "cases": verdicts, "arguments": arguments}, handle, indent=1)


main()
