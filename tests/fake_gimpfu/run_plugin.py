"""Run the GIMP 2.10 plug-in once under the fake gimpfu, the way GIMP would, from a PNG.

Usage: python run_plugin.py PLUGIN_FILE INPUT_PNG OUT_DIR ARGS_JSON [EXPORT_FILE_NAME]
Works under Python 2.7 (GIMP 2.10's interpreter) and 3. Builds an image with the PNG as layer
"Painting" (offset 7, 5) between "Background" and "Top", calls python-fu-fixative-protect
non-interactively (or, given EXPORT_FILE_NAME, python-fu-fixative-export into OUT_DIR with
ARGS_JSON as its options and credentials), and writes OUT_DIR/verdict.json plus the raw pixels of
the source before and after and of the result layer, for the test to judge.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import gimp  # noqa: E402 - puts plugins/common on sys.path, as the installer's layout would
import fixative_png  # noqa: E402
from gimpenums import GRAY, GRAY_IMAGE, GRAYA_IMAGE, RGB, RGB_IMAGE, RGBA_IMAGE  # noqa: E402


def load_plugin(path):
    """Import the plug-in file as GIMP does (it registers itself and calls main())."""
    try:
        import importlib.util  # novermin - Python 3 branch
    except ImportError:  # Python 2.7
        import imp
        return imp.load_source("fixative_protect_gimp2", path)
    spec = importlib.util.spec_from_file_location("fixative_protect_gimp2", path)  # novermin
    module = importlib.util.module_from_spec(spec)  # novermin
    spec.loader.exec_module(module)
    return module


def main():
    plugin_file, input_png, out_dir, args_json = sys.argv[1:5]
    export_name = sys.argv[5] if len(sys.argv) > 5 else None
    load_plugin(plugin_file)
    with open(input_png, "rb") as handle:
        width, height, channels, depth, data = fixative_png.decode_png(handle.read())
    base = GRAY if channels in (1, 2) else RGB
    image = gimp.Image(width + 20, height + 20, base)
    background = gimp.Layer(image, "Background", image.width, image.height,
                            GRAY_IMAGE if base == GRAY else RGB_IMAGE)
    gimp.pdb.gimp_image_insert_layer(image, background, None, 0)
    layer_type = {1: GRAY_IMAGE, 2: GRAYA_IMAGE, 3: RGB_IMAGE, 4: RGBA_IMAGE}[channels]
    painting = gimp.Layer(image, "Painting", width, height, layer_type)
    painting.fake_set_data(data)
    gimp.pdb.gimp_image_insert_layer(image, painting, None, 0)
    painting.set_offsets(7, 5)
    top = gimp.Layer(image, "Top", 4, 4, RGBA_IMAGE if base == RGB else GRAYA_IMAGE)
    gimp.pdb.gimp_image_insert_layer(image, top, None, 0)
    before = painting.fake_data

    verdict = {"python": list(sys.version_info[:3]), "error": None}
    arguments = [str(value) if isinstance(value, type(u"")) else value
                 for value in json.loads(args_json)]  # byte strings under Python 2, as GIMP's
    try:
        if export_name:
            gimp.pdb.python_fu_fixative_export(image, painting, str(out_dir), str(export_name),
                                               *arguments)
        else:
            gimp.pdb.python_fu_fixative_protect(image, painting, *arguments)
    except gimp.error as exc:
        verdict["error"] = str(exc)
    verdict["layers"] = [{"name": item.name, "width": item.width, "height": item.height,
                          "offsets": list(item.offsets)} for item in image.layers]
    verdict["messages"] = list(gimp.fake_messages)
    verdict["undo_groups"] = image.fake_undo_groups
    verdict["undo_depth"] = image.fake_undo_depth
    verdict["new_images_left"] = len([item for item in gimp.fake_new_images
                                      if not item.fake_deleted])
    verdict["progress"] = [list(entry) for entry in gimp.fake_progress]
    for name, pixels in (("before", before), ("source-after", painting.fake_data)):
        with open(os.path.join(out_dir, name), "wb") as handle:
            handle.write(pixels)
    for item in image.layers:
        if item.name.endswith("(protected)"):
            with open(os.path.join(out_dir, "result"), "wb") as handle:
                handle.write(item.fake_data)
    with open(os.path.join(out_dir, "verdict.json"), "w") as handle:
        json.dump(verdict, handle)


if __name__ == "__main__":
    main()
