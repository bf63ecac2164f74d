"""Stand-in for GIMP 2.10's `gimp` module (pygimp), enough to run gimpfu plug-ins end to end.

Same names and call signatures as GIMP 2.10 for what plug-ins use: gimp.Image, gimp.Layer
(width, height, offsets, set_offsets, name, opacity, mode, visible, mask, type), gimp.message,
gimp.progress_init/progress_update, gimp.displays_flush, and `pdb` with the procedures Fixative
calls (undo groups, item queries, file-png-save, gimp-file-load-layer, insert/remove layer).
Pixels live in memory (row-major, interleaved; 16-bit samples big-endian) and PNG files go
through plugins/common/fixative_png.py, so this runs under Python 2.7 and 3 without Pillow.
Names starting with ``fake_`` are test hooks with no GIMP counterpart.
"""

from __future__ import absolute_import, division, print_function

import os
import struct
import sys

from gimpenums import (GRAY, GRAY_IMAGE, GRAYA_IMAGE, INDEXED, INDEXED_IMAGE, INDEXEDA_IMAGE,
                       NORMAL_MODE, PRECISION_U8_GAMMA, PRECISION_U16_GAMMA, RGB, RGB_IMAGE,
                       RGBA_IMAGE)

_COMMON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "plugins", "common")
if os.path.normpath(_COMMON) not in sys.path:
    sys.path.append(os.path.normpath(_COMMON))
import fixative_png  # noqa: E402

locale_directory = ""
version = (2, 10, 38)

# Test hooks: what the plug-in told the user, and registrations seen by main().
fake_messages = []
fake_progress = []
fake_procedures = {}
fake_menus = {}
fake_flushes = []


class error(RuntimeError):
    """pygimp raises gimp.error when a PDB call fails."""


_TYPE_CHANNELS = {RGB_IMAGE: 3, RGBA_IMAGE: 4, GRAY_IMAGE: 1, GRAYA_IMAGE: 2, INDEXED_IMAGE: 1,
                  INDEXEDA_IMAGE: 2}
_BASE_OF_TYPE = {RGB_IMAGE: RGB, RGBA_IMAGE: RGB, GRAY_IMAGE: GRAY, GRAYA_IMAGE: GRAY,
                 INDEXED_IMAGE: INDEXED, INDEXEDA_IMAGE: INDEXED}
_next_id = [1]


def _new_id():
    _next_id[0] += 1
    return _next_id[0]


class Display(object):
    pass


class Vectors(object):
    pass


class Image(object):
    """gimp.Image(width, height, type=RGB)."""

    def __init__(self, width, height, type=RGB):
        self.width, self.height, self.base_type = int(width), int(height), type
        self.precision = PRECISION_U8_GAMMA
        self.layers = []
        self.active_layer = None
        self.ID = _new_id()
        self.fake_undo_depth = 0
        self.fake_undo_groups = 0
        self.fake_log = []
        self.channels = []
        # The selection as one byte per image pixel (0 unselected .. 255 selected); None: empty.
        self.fake_selection = None

    def fake_select_rectangle(self, x, y, width, height):
        """What the rectangle select tool does (test set-up, not a PDB call)."""
        rows = []
        for row in range(self.height):
            inside = y <= row < y + height
            rows.append(b"".join(b"\xff" if inside and x <= col < x + width else b"\x00"
                                 for col in range(self.width)))
        self.fake_selection = b"".join(rows)

    def fake_bit_depth(self):
        return 8 if self.precision < 200 else 16


class Drawable(object):
    """Common part of layers and channels."""

    def __init__(self, image, name, width, height, type):
        if not isinstance(image, Image):
            raise TypeError("image must be a gimp.Image")
        self.image, self.name = image, name
        self.width, self.height, self.type = int(width), int(height), type
        self.ID = _new_id()
        self.parent = None
        self.fake_attached = False
        self._offsets = (0, 0)
        size = self.width * self.height * self.bpp
        self.fake_data = b"\x00" * size

    @property
    def fake_channels(self):
        return _TYPE_CHANNELS[self.type]

    @property
    def bpp(self):
        return self.fake_channels * self.image.fake_bit_depth() // 8

    @property
    def has_alpha(self):
        return self.fake_channels in (2, 4)

    @property
    def is_rgb(self):
        return _BASE_OF_TYPE[self.type] == RGB

    @property
    def is_gray(self):
        return _BASE_OF_TYPE[self.type] == GRAY

    @property
    def is_indexed(self):
        return _BASE_OF_TYPE[self.type] == INDEXED

    @property
    def offsets(self):
        return self._offsets

    def fake_set_data(self, data):
        data = bytes(data)
        if len(data) != self.width * self.height * self.bpp:
            raise ValueError("expected %d bytes, got %d" % (self.width * self.height * self.bpp,
                                                            len(data)))
        self.fake_data = data


class Layer(Drawable):
    """gimp.Layer(image, name, width, height, type=RGB_IMAGE, opacity=100.0, mode=NORMAL_MODE)."""

    def __init__(self, image, name, width, height, type=RGB_IMAGE, opacity=100.0,
                 mode=NORMAL_MODE):
        Drawable.__init__(self, image, name, width, height, type)
        self.opacity, self.mode = float(opacity), mode
        self.visible = True
        self.mask = None
        self.fake_locks = {"content": False, "position": False, "alpha": False}
        self.fake_apply_mask = True

    def set_offsets(self, offset_x, offset_y):
        self._offsets = (int(offset_x), int(offset_y))


class GroupLayer(Layer):
    def __init__(self, image, name="Layer Group"):
        Layer.__init__(self, image, name, 1, 1, RGBA_IMAGE if image.base_type == RGB
                       else GRAYA_IMAGE)
        self.layers = []


class Channel(Drawable):
    def __init__(self, image, name, width, height, opacity=100.0, color=None):
        Drawable.__init__(self, image, name, width, height, GRAY_IMAGE)
        self.opacity = float(opacity)

    @property
    def bpp(self):
        return 1  # the fake keeps masks and channels at 8 bits whatever the precision


class LayerMask(Channel):
    def __init__(self, layer):
        Channel.__init__(self, layer.image, layer.name + " mask", layer.width, layer.height)
        self.fake_layer = layer

    @property
    def offsets(self):
        return self.fake_layer.offsets


def _region_of(image, item, mask_bytes):
    """One byte per item pixel taken from an image-sized mask (None: all 0)."""
    offset_x, offset_y = item.offsets
    out = bytearray(item.width * item.height)
    if mask_bytes is None:
        return bytes(out)
    for row in range(item.height):
        for col in range(item.width):
            x, y = col + offset_x, row + offset_y
            if 0 <= x < image.width and 0 <= y < image.height:
                out[row * item.width + col] = bytearray(mask_bytes[y * image.width + x:
                                                                   y * image.width + x + 1])[0]
    return bytes(out)


def _siblings(image, parent):
    return image.layers if parent is None else parent.layers


def _convert(data, width, height, channels, depth, target_channels, target_depth):
    """Samples from one channel layout/bit depth to another (for gimp-file-load-layer)."""
    count = width * height * channels
    fmt = ">%d%s" % (count, "H" if depth == 16 else "B")
    samples = list(struct.unpack(fmt, data))
    if depth != target_depth:
        samples = ([value * 257 for value in samples] if target_depth == 16
                   else [(value + 128) // 257 for value in samples])
    full = 65535 if target_depth == 16 else 255
    pixels = [samples[i:i + channels] for i in range(0, count, channels)]
    out = []
    for pixel in pixels:
        colour, alpha = (pixel[:-1], pixel[-1]) if channels in (2, 4) else (pixel, full)
        if target_channels in (3, 4):
            colour = colour * 3 if len(colour) == 1 else colour
        elif len(colour) == 3:
            colour = [int(round(0.2126 * colour[0] + 0.7152 * colour[1] + 0.0722 * colour[2]))]
        out.extend(colour)
        if target_channels in (2, 4):
            out.append(alpha)
    return struct.pack(">%d%s" % (len(out), "H" if target_depth == 16 else "B"), *out)


class _PDB(object):
    """gimp.pdb: built-in procedures below; registered python-fu procedures through gimpfu."""

    # -- undo -------------------------------------------------------------------------------
    def gimp_image_undo_group_start(self, image):
        image.fake_undo_depth += 1
        if image.fake_undo_depth == 1:
            image.fake_undo_groups += 1
        image.fake_log.append(("undo-group-start", image.fake_undo_depth))
        return 1

    def gimp_image_undo_group_end(self, image):
        if image.fake_undo_depth <= 0:
            raise error("gimp-image-undo-group-end: no undo group is open")
        image.fake_undo_depth -= 1
        image.fake_log.append(("undo-group-end", image.fake_undo_depth))
        return 1

    # -- items --------------------------------------------------------------------------------
    def gimp_item_is_layer(self, item):
        return int(isinstance(item, Layer))

    def gimp_item_is_group(self, item):
        return int(isinstance(item, GroupLayer))

    def gimp_item_is_channel(self, item):
        return int(isinstance(item, Channel))

    def gimp_drawable_is_indexed(self, drawable):
        return int(drawable.is_indexed)

    def gimp_drawable_has_alpha(self, drawable):
        return int(drawable.has_alpha)

    def gimp_item_get_parent(self, item):
        return item.parent

    def gimp_image_get_item_position(self, image, item):
        siblings = _siblings(image, item.parent)
        if item not in siblings:
            raise error("gimp-image-get-item-position: item is not part of the image")
        return siblings.index(item)

    def gimp_image_insert_layer(self, image, layer, parent, position):
        if layer.image is not image:
            raise error("gimp-image-insert-layer: the layer was created for another image")
        if layer.fake_attached:
            raise error("gimp-image-insert-layer: the layer is already in an image")
        siblings = _siblings(image, parent)
        if position == -1:
            active = image.active_layer
            position = siblings.index(active) if active in siblings else 0
        siblings.insert(max(0, min(int(position), len(siblings))), layer)
        layer.parent, layer.fake_attached = parent, True
        image.active_layer = layer
        image.fake_log.append(("insert-layer", layer.name, image.fake_undo_depth))
        return 1

    def gimp_image_remove_layer(self, image, layer):
        siblings = _siblings(image, layer.parent)
        if layer not in siblings:
            raise error("gimp-image-remove-layer: the layer is not part of the image")
        siblings.remove(layer)
        layer.fake_attached = False
        if image.active_layer is layer:
            image.active_layer = siblings[0] if siblings else None
        image.fake_log.append(("remove-layer", layer.name, image.fake_undo_depth))
        return 1

    def gimp_item_delete(self, item):
        if item.fake_attached:
            raise error("gimp-item-delete: the item is still part of an image")
        return 1

    # -- properties, masks, selection (what the plug-in copies) ---------------------------------
    def gimp_item_get_lock_content(self, item):
        return int(item.fake_locks["content"])

    def gimp_item_set_lock_content(self, item, value):
        item.fake_locks["content"] = bool(value)

    def gimp_item_get_lock_position(self, item):
        return int(item.fake_locks["position"])

    def gimp_item_set_lock_position(self, item, value):
        item.fake_locks["position"] = bool(value)

    def gimp_layer_get_lock_alpha(self, layer):
        return int(layer.fake_locks["alpha"])

    def gimp_layer_set_lock_alpha(self, layer, value):
        layer.fake_locks["alpha"] = bool(value)

    def gimp_layer_get_apply_mask(self, layer):
        if layer.mask is None:
            raise error("gimp-layer-get-apply-mask: the layer has no mask")
        return int(layer.fake_apply_mask)

    def gimp_layer_set_apply_mask(self, layer, value):
        if layer.mask is None:
            raise error("gimp-layer-set-apply-mask: the layer has no mask")
        layer.fake_apply_mask = bool(value)

    def gimp_layer_create_mask(self, layer, mask_type):
        mask = LayerMask(layer)
        if mask_type == 0:
            mask.fake_data = b"\xff" * (layer.width * layer.height)
        elif mask_type == 4:  # ADD-SELECTION-MASK
            mask.fake_data = _region_of(layer.image, layer, layer.image.fake_selection)
        elif mask_type != 1:
            raise error("gimp-layer-create-mask: type %d is not modelled by the fake" % mask_type)
        return mask

    def gimp_layer_add_mask(self, layer, mask):
        if layer.mask is not None:
            raise error("gimp-layer-add-mask: the layer already has a mask")
        if not isinstance(mask, LayerMask) or mask.fake_layer is not layer:
            raise error("gimp-layer-add-mask: the mask was made for another layer")
        layer.mask = mask
        layer.image.fake_log.append(("add-mask", layer.name, layer.image.fake_undo_depth))

    def gimp_selection_is_empty(self, image):
        selection = image.fake_selection
        return int(selection is None or selection.strip(b"\x00") == b"")

    def gimp_selection_save(self, image):
        channel = Channel(image, "Selection Mask copy", image.width, image.height)
        if image.fake_selection is not None:
            channel.fake_data = image.fake_selection
        image.channels.insert(0, channel)
        channel.fake_attached = True
        return channel

    def gimp_image_select_item(self, image, operation, item):
        if operation != 2:
            raise error("gimp-image-select-item: only CHANNEL-OP-REPLACE is modelled by the fake")
        if not isinstance(item, Channel):
            raise error("gimp-image-select-item: only channels are modelled by the fake")
        offset_x, offset_y = item.offsets
        out = bytearray(image.width * image.height)
        source = bytearray(item.fake_data)
        for row in range(item.height):
            for col in range(item.width):
                x, y = col + offset_x, row + offset_y
                if 0 <= x < image.width and 0 <= y < image.height:
                    out[y * image.width + x] = source[row * item.width + col]
        image.fake_selection = bytes(out)

    def gimp_image_remove_channel(self, image, channel):
        if channel not in image.channels:
            raise error("gimp-image-remove-channel: the channel is not part of the image")
        image.channels.remove(channel)
        channel.fake_attached = False

    def gimp_drawable_mask_intersect(self, drawable):
        """Bounding box of the selection on the drawable (drawable coordinates)."""
        image = drawable.image
        if self.gimp_selection_is_empty(image):
            return 1, 0, 0, drawable.width, drawable.height
        region = bytearray(_region_of(image, drawable, image.fake_selection))
        rows = [row for row in range(drawable.height)
                if any(region[row * drawable.width:(row + 1) * drawable.width])]
        cols = [col for col in range(drawable.width)
                if any(region[row * drawable.width + col] for row in range(drawable.height))]
        if not rows:
            return 0, 0, 0, 0, 0
        return 1, cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1

    # -- progress -------------------------------------------------------------------------------
    def gimp_progress_set_text(self, message):
        fake_progress.append(("text", message))
        return 1

    # -- files ----------------------------------------------------------------------------------
    def file_png_save(self, image, drawable, filename, raw_filename, interlace, compression,
                      bkgd, gama, offs, phys, time):
        for value in (interlace, compression, bkgd, gama, offs, phys, time):
            if not isinstance(value, int):
                raise TypeError("file-png-save: flag arguments must be integers")
        if drawable.image is not image:
            raise error("file-png-save: the drawable is not part of the image")
        if drawable.is_indexed:
            raise error("file-png-save: indexed export is not modelled by the fake")
        png = fixative_png.encode_png(drawable.width, drawable.height, drawable.fake_channels,
                                      image.fake_bit_depth(), drawable.fake_data)
        with open(filename, "wb") as handle:
            handle.write(png)
        image.fake_log.append(("file-png-save", filename))
        return 1

    def gimp_file_load_layer(self, image, filename):
        with open(filename, "rb") as handle:
            width, height, channels, depth, data = fixative_png.decode_png(handle.read())
        alpha = channels in (2, 4)
        if image.base_type == RGB:
            layer_type = RGBA_IMAGE if alpha else RGB_IMAGE
        elif image.base_type == GRAY:
            layer_type = GRAYA_IMAGE if alpha else GRAY_IMAGE
        else:
            raise error("gimp-file-load-layer: indexed images are not modelled by the fake")
        layer = Layer(image, os.path.basename(filename), width, height, layer_type)
        layer.fake_set_data(_convert(data, width, height, channels, depth, layer.fake_channels,
                                     image.fake_bit_depth()))
        image.fake_log.append(("file-load-layer", filename))
        return layer

    # -- registered python-fu procedures ---------------------------------------------------------
    def __getattr__(self, name):
        procedure = name.replace("_", "-")
        if procedure not in fake_procedures:
            raise AttributeError("no PDB procedure %r in the fake" % procedure)

        def call(*args, **kwargs):
            import gimpfu

            run_mode = kwargs.pop("run_mode", 1)
            if kwargs:
                raise TypeError("unexpected keyword arguments %r" % sorted(kwargs))
            try:
                return gimpfu._run(procedure, (run_mode,) + tuple(args))
            except gimpfu.CancelError:
                raise error("Procedure '%s' was cancelled" % procedure)
            except (TypeError, error):
                raise
            except Exception as exc:
                raise error("Procedure '%s' returned an error: %s" % (procedure, exc))

        return call


pdb = _PDB()


def message(text):
    fake_messages.append(text)
    sys.stderr.write("gimp.message: %s\n" % (text,))


def progress_init(message=None):
    fake_progress.append(("init", message))


def progress_update(percentage):
    fake_progress.append(("update", float(percentage)))


def displays_flush():
    fake_flushes.append(True)


def install_procedure(name, blurb, help, author, copyright, date, label, imagetypes, type,
                      params, results):
    fake_procedures[name] = {"blurb": blurb, "help": help, "label": label,
                             "imagetypes": imagetypes, "type": type, "params": params,
                             "results": results}


def menu_register(name, menu):
    fake_menus.setdefault(name, []).append(menu)


def domain_register(domain, path=None):
    pass


def main(init, quit, query, run):
    """GIMP queries a plug-in when it installs it; the fake does that and then waits for calls."""
    query()
