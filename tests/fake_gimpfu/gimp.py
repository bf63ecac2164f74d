"""Stand-in for GIMP 2.10's `gimp` module (pygimp), enough to run gimpfu plug-ins end to end.

Same names and call signatures as GIMP 2.10 for what plug-ins use: gimp.Image, gimp.Layer
(width, height, offsets, set_offsets, name, opacity, mode, visible, mask, type), gimp.message,
gimp.progress_init/progress_update, gimp.displays_flush, and `pdb` with the procedures Fixative
calls (undo groups, item queries, file-png-save, file-jpeg-save, file-webp-save,
gimp-file-load-layer, insert/remove layer, new images, layer groups and their merge, the visible
picture as a layer, flatten). Pixels live in memory (row-major, interleaved; 16-bit samples
big-endian) and PNG files go through plugins/common/fixative_png.py, so this runs under Python 2.7
and 3 without Pillow; JPEG and WebP are written with Pillow, so only where it is installed.

Compositing (a group's pixels, gimp-layer-new-from-visible, gimp-image-flatten) models GIMP 2.10's
"Normal" modes only: legacy Normal (NORMAL_MODE) blends in the stored, perceptual encoding and
Normal (LAYER_MODE_NORMAL) in linear light, both as straight-alpha "over" with layer opacity and
an applied mask; a pass-through group counts as an isolated one (the same for "over"). Any other
mode raises gimp.error rather than return pixels GIMP would not draw.
Names starting with ``fake_`` are test hooks with no GIMP counterpart.
"""

from __future__ import absolute_import, division, print_function

import os
import struct
import sys

from gimpenums import (GRAY, GRAY_IMAGE, GRAYA_IMAGE, INDEXED, INDEXED_IMAGE, INDEXEDA_IMAGE,
                       LAYER_MODE_NORMAL, LAYER_MODE_PASS_THROUGH, NORMAL_MODE, PDB_DRAWABLE,
                       PDB_FLOAT, PDB_IMAGE, PDB_INT32, PDB_STRING, PRECISION_U8_GAMMA,
                       PRECISION_U8_LINEAR, PRECISION_U16_GAMMA, PRECISION_U16_LINEAR, RGB,
                       RGB_IMAGE, RGBA_IMAGE, RUN_NONINTERACTIVE)

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
fake_new_images = []  # images made through the PDB (gimp-image-new...): plug-ins must delete them
fake_background = (1.0, 1.0, 1.0)  # the context's background colour (GIMP's default: white)


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
        self.filename = None  # pygimp: the XCF or imported file, None for a new image
        self.fake_profile = None  # an assigned ICC profile's bytes
        self.fake_deleted = False
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

    _fake_computed = False  # layer groups: size, offsets and pixels follow their children

    def __init__(self, image, name, width, height, type):
        if not isinstance(image, Image):
            raise TypeError("image must be a gimp.Image")
        self.image, self.name, self.type = image, name, type
        self.ID = _new_id()
        self.parent = None
        self.fake_attached = False
        if not self._fake_computed:
            self.width, self.height = int(width), int(height)
            self._offsets = (0, 0)
            self.fake_data = b"\x00" * (self.width * self.height * self.bpp)

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
    """gimp.GroupLayer(image, name="", opacity=100.0, mode=NORMAL_MODE), as pygimp makes it.

    As in GIMP, its size and offsets are its children's bounding box, its pixels their composite
    (the group's projection, without its own opacity and mask), moving it moves them, and
    writing its pixels is refused."""

    _fake_computed = True

    def __init__(self, image, name="", opacity=100.0, mode=NORMAL_MODE):
        Layer.__init__(self, image, name, 1, 1, RGBA_IMAGE if image.base_type == RGB
                       else GRAYA_IMAGE, opacity, mode)
        self.layers = []

    @property
    def fake_box(self):
        """(x, y, width, height) of the children in image coordinates; 1x1 when empty."""
        if not self.layers:
            return 0, 0, 1, 1
        left = min(child.offsets[0] for child in self.layers)
        top = min(child.offsets[1] for child in self.layers)
        right = max(child.offsets[0] + child.width for child in self.layers)
        bottom = max(child.offsets[1] + child.height for child in self.layers)
        return left, top, right - left, bottom - top

    @property
    def width(self):
        return self.fake_box[2]

    @property
    def height(self):
        return self.fake_box[3]

    @property
    def offsets(self):
        return self.fake_box[:2]

    def set_offsets(self, offset_x, offset_y):
        delta_x, delta_y = int(offset_x) - self.offsets[0], int(offset_y) - self.offsets[1]
        for child in self.layers:
            child.set_offsets(child.offsets[0] + delta_x, child.offsets[1] + delta_y)

    @property
    def fake_data(self):
        colours, alphas = _composite(self.image, self.layers, self.fake_box)
        return _samples_of(colours, alphas, self.fake_channels, self.image.fake_bit_depth())

    def fake_set_data(self, data):
        raise error("a layer group's pixels cannot be written")


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


_FULL_SCALE = {8: 255, 16: 65535}


def _unpack(data, depth):
    count = len(data) * 8 // depth
    return struct.unpack(">%d%s" % (count, "H" if depth == 16 else "B"), data)


def _to_linear(value):
    return value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4


def _to_perceptual(value):
    return value * 12.92 if value <= 0.0031308 else 1.055 * value ** (1 / 2.4) - 0.055


def _linear_light(item):
    """Whether GIMP composites this item in linear light (Normal) or as stored (legacy Normal)."""
    if item.mode == NORMAL_MODE:
        return False
    if item.mode == LAYER_MODE_NORMAL:
        return True
    if item.mode == LAYER_MODE_PASS_THROUGH and isinstance(item, GroupLayer):
        spaces = set(_linear_light(child) for child in item.layers if child.visible)
        if len(spaces) <= 1:
            return spaces.pop() if spaces else False
    raise error("layer mode %r of %r is not modelled by the fake's compositing"
                % (item.mode, item.name))


def _colour_count(image):
    if image.base_type == INDEXED:
        raise error("compositing indexed images is not modelled by the fake")
    return 1 if image.base_type == GRAY else 3


def _item_pixels(item):
    """(colours, alphas): one list of 0..1 floats per pixel, and its alpha, for an item."""
    if isinstance(item, GroupLayer):
        return _composite(item.image, item.layers, item.fake_box)
    depth = item.image.fake_bit_depth()
    full, channels = float(_FULL_SCALE[depth]), item.fake_channels
    values = _unpack(item.fake_data, depth)
    colours, alphas = [], []
    for start in range(0, len(values), channels):
        pixel = values[start:start + channels]
        if channels in (2, 4):
            colours.append([value / full for value in pixel[:-1]])
            alphas.append(pixel[-1] / full)
        else:
            colours.append([value / full for value in pixel])
            alphas.append(1.0)
    return colours, alphas


def _composite(image, items, box):
    """What ``items`` (top first, as GIMP lists them) look like in ``box`` of the image."""
    left, top, width, height = box
    colours = [[0.0] * _colour_count(image) for _ in range(width * height)]
    alphas = [0.0] * (width * height)
    for item in reversed(items):
        if not item.visible:
            continue
        linear = _linear_light(item)
        source_colours, source_alphas = _item_pixels(item)
        (item_x, item_y), item_w = item.offsets, item.width
        opacity = item.opacity / 100.0
        mask = None
        if item.mask is not None and item.fake_apply_mask:
            mask = bytearray(item.mask.fake_data)
        for index, (colour, alpha) in enumerate(zip(source_colours, source_alphas)):
            x, y = item_x + index % item_w - left, item_y + index // item_w - top
            if not (0 <= x < width and 0 <= y < height):
                continue
            alpha *= opacity * (mask[index] / 255.0 if mask is not None else 1.0)
            if alpha <= 0.0:
                continue
            target = y * width + x
            below = alphas[target]
            result = alpha + below * (1.0 - alpha)
            under = colours[target]
            if linear:
                colour, under = [_to_linear(v) for v in colour], [_to_linear(v) for v in under]
            mixed = [(s * alpha + d * below * (1.0 - alpha)) / result
                     for s, d in zip(colour, under)]
            colours[target] = [_to_perceptual(v) for v in mixed] if linear else mixed
            alphas[target] = result
    return colours, alphas


def _samples_of(colours, alphas, channels, depth, background=None):
    """Packed samples with ``channels`` (grey is repeated into RGB, RGB weighted into grey);
    with ``background``, flattened onto that colour (as stored) and without alpha."""
    full, out = _FULL_SCALE[depth], []
    for colour, alpha in zip(colours, alphas):
        if background is not None:
            back = background[:1] if len(colour) == 1 else background
            colour = [c * alpha + b * (1.0 - alpha) for c, b in zip(colour, back)]
        if channels in (3, 4) and len(colour) == 1:
            colour = colour * 3
        elif channels in (1, 2) and len(colour) == 3:
            colour = [0.2126 * colour[0] + 0.7152 * colour[1] + 0.0722 * colour[2]]
        out.extend(int(round(min(1.0, max(0.0, value)) * full)) for value in colour)
        if channels in (2, 4):
            out.append(int(round(alpha * full)))
    return struct.pack(">%d%s" % (len(out), "H" if depth == 16 else "B"), *out)


def _copy_item(layer, image, add_alpha=False):
    """gimp-layer-copy's duplicate ("NAME copy"): pixels, offsets, opacity, mode, visibility,
    locks and mask; a group with copies of its children. Not attached to the image."""
    if isinstance(layer, GroupLayer):
        copy = GroupLayer(image, layer.name + " copy", layer.opacity, layer.mode)
        for child in layer.layers:
            child_copy = _copy_item(child, image)
            child_copy.name, child_copy.parent, child_copy.fake_attached = child.name, copy, True
            copy.layers.append(child_copy)
    else:
        kind = layer.type
        if add_alpha and not layer.has_alpha:
            kind = {RGB_IMAGE: RGBA_IMAGE, GRAY_IMAGE: GRAYA_IMAGE}.get(kind, kind)
        copy = Layer(image, layer.name + " copy", layer.width, layer.height, kind, layer.opacity,
                     layer.mode)
        copy.fake_set_data(layer.fake_data if kind == layer.type else _convert(
            layer.fake_data, layer.width, layer.height, layer.fake_channels,
            image.fake_bit_depth(), copy.fake_channels, image.fake_bit_depth()))
        copy.set_offsets(*layer.offsets)
    _copy_state(layer, copy)
    return copy


def _copy_state(source, target):
    """Visibility, locks and the layer mask, as GIMP's copy and group merge carry them."""
    target.visible, target.fake_locks = source.visible, dict(source.fake_locks)
    if source.mask is not None:
        target.mask = LayerMask(target)
        target.mask.fake_data = source.mask.fake_data
        target.fake_apply_mask = source.fake_apply_mask


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

    def gimp_image_reorder_item(self, image, item, parent, position):
        """Move an attached item into ``parent`` (None: the top level) at ``position``."""
        if item.image is not image or not item.fake_attached:
            raise error("gimp-image-reorder-item: the item is not part of the image")
        if parent is not None and (not isinstance(parent, GroupLayer) or parent is item):
            raise error("gimp-image-reorder-item: the new parent is not a layer group")
        _siblings(image, item.parent).remove(item)
        siblings = _siblings(image, parent)
        siblings.insert(max(0, min(int(position), len(siblings))), item)
        item.parent = parent
        image.fake_log.append(("reorder-item", item.name, image.fake_undo_depth))
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

    def gimp_selection_bounds(self, image):
        """(non_empty, x1, y1, x2, y2) in image coordinates; the whole canvas when empty."""
        if self.gimp_selection_is_empty(image):
            return 0, 0, 0, image.width, image.height
        selection = bytearray(image.fake_selection)
        rows = [row for row in range(image.height)
                if any(selection[row * image.width:(row + 1) * image.width])]
        cols = [col for col in range(image.width)
                if any(selection[row * image.width + col] for row in rows)]
        return 1, cols[0], rows[0], cols[-1] + 1, rows[-1] + 1

    # -- images -----------------------------------------------------------------------------------
    def gimp_image_new(self, width, height, type):
        return self.gimp_image_new_with_precision(width, height, type, PRECISION_U8_GAMMA)

    def gimp_image_new_with_precision(self, width, height, type, precision):
        if precision not in (PRECISION_U8_GAMMA, PRECISION_U8_LINEAR, PRECISION_U16_GAMMA,
                             PRECISION_U16_LINEAR):
            raise error("gimp-image-new-with-precision: precision %r is not modelled by the fake"
                        % (precision,))
        if type == INDEXED and precision != PRECISION_U8_GAMMA:
            raise error("gimp-image-new-with-precision: indexed images are 8-bit gamma only")
        image = Image(width, height, type)
        image.precision = precision
        fake_new_images.append(image)
        return image

    def gimp_image_delete(self, image):
        if image.fake_deleted:
            raise error("gimp-image-delete: the image was already deleted")
        image.fake_deleted = True
        return 1

    def gimp_image_undo_disable(self, image):
        image.fake_log.append(("undo-disable",))
        return 1

    def gimp_image_get_filename(self, image):
        return image.filename

    def gimp_image_get_name(self, image):
        return os.path.basename(image.filename) if image.filename else "Untitled"

    def gimp_image_get_precision(self, image):
        return image.precision

    def gimp_image_get_color_profile(self, image):
        """(num_bytes, profile_data) as pygimp returns an INT8ARRAY: (0, ()) for none."""
        data = image.fake_profile
        return (len(data), tuple(bytearray(data))) if data else (0, ())

    def gimp_image_set_color_profile(self, image, num_bytes, color_profile):
        data = bytes(bytearray(color_profile))
        if len(data) != num_bytes:
            raise error("gimp-image-set-color-profile: num-bytes does not match the data")
        image.fake_profile = data or None
        return 1

    def gimp_context_get_background(self):
        import gimpcolor

        return gimpcolor.RGB(*fake_background)

    # -- layer groups, the visible picture, flattening ---------------------------------------------
    def gimp_layer_group_new(self, image):
        """A new group, pass-through as GIMP 2.10 makes them (pygimp's gimp.GroupLayer uses
        legacy Normal instead)."""
        return GroupLayer(image, "Layer Group", 100.0, LAYER_MODE_PASS_THROUGH)

    def gimp_layer_copy(self, layer, add_alpha):
        if not isinstance(add_alpha, int):
            raise TypeError("gimp-layer-copy: add-alpha must be an integer")
        return _copy_item(layer, layer.image, bool(add_alpha))

    def gimp_image_merge_layer_group(self, image, layer_group):
        """The group replaced, at its place, by one layer that looks the same: its pixels, name,
        offsets, opacity, mode (pass-through becomes Normal), visibility, locks and mask."""
        if not isinstance(layer_group, GroupLayer):
            raise error("gimp-image-merge-layer-group: the item is not a layer group")
        siblings = _siblings(image, layer_group.parent)
        if layer_group.image is not image or layer_group not in siblings:
            raise error("gimp-image-merge-layer-group: the group is not part of the image")
        mode = layer_group.mode
        merged = Layer(image, layer_group.name, layer_group.width, layer_group.height,
                       layer_group.type, layer_group.opacity,
                       LAYER_MODE_NORMAL if mode == LAYER_MODE_PASS_THROUGH else mode)
        merged.fake_set_data(layer_group.fake_data)
        merged.set_offsets(*layer_group.offsets)
        _copy_state(layer_group, merged)
        siblings[siblings.index(layer_group)] = merged
        merged.parent, merged.fake_attached = layer_group.parent, True
        layer_group.fake_attached = False
        if image.active_layer is layer_group:
            image.active_layer = merged
        image.fake_log.append(("merge-layer-group", layer_group.name, image.fake_undo_depth))
        return merged

    def gimp_layer_new_from_visible(self, image, dest_image, name):
        """What the image shows, as a canvas-sized layer with alpha for ``dest_image`` (in its
        base type and precision), not yet added to it."""
        colours, alphas = _composite(image, image.layers, (0, 0, image.width, image.height))
        kind = GRAYA_IMAGE if dest_image.base_type == GRAY else RGBA_IMAGE
        if dest_image.base_type == INDEXED:
            raise error("gimp-layer-new-from-visible: indexed destinations are not modelled")
        layer = Layer(dest_image, name, image.width, image.height, kind)
        layer.fake_set_data(_samples_of(colours, alphas, layer.fake_channels,
                                        dest_image.fake_bit_depth()))
        image.fake_log.append(("new-from-visible", name))
        return layer

    def gimp_image_flatten(self, image):
        """Every visible layer merged onto the context's background colour, invisible ones
        dropped: one layer without alpha is left, and returned."""
        colours, alphas = _composite(image, image.layers, (0, 0, image.width, image.height))
        kind = GRAY_IMAGE if image.base_type == GRAY else RGB_IMAGE
        flat = Layer(image, "Background", image.width, image.height, kind)
        flat.fake_set_data(_samples_of(colours, alphas, flat.fake_channels,
                                       image.fake_bit_depth(), background=fake_background))
        for item in image.layers:
            item.fake_attached = False
        image.layers[:] = [flat]
        flat.fake_attached, image.active_layer = True, flat
        image.fake_log.append(("flatten", image.fake_undo_depth))
        return flat

    # -- progress -------------------------------------------------------------------------------
    def gimp_progress_set_text(self, message):
        fake_progress.append(("text", message))
        return 1

    # -- files ----------------------------------------------------------------------------------
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

    # -- built-in procedures with their PDB signature; registered python-fu procedures --------------
    def __getattr__(self, name):
        procedure = name.replace("_", "-")
        if procedure in _BUILT_IN:
            return _BUILT_IN[procedure]
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


class _Procedure(object):
    """A PDB procedure as pygimp hands it out (``pdb.file_jpeg_save``): ``proc_name``, ``nparams``
    and ``params`` (type, name, description), and a call that puts RUN-NONINTERACTIVE in front
    when the run mode is left out, then checks the count and the types as GIMP does."""

    _ACCEPTS = {PDB_INT32: int, PDB_FLOAT: (int, float), PDB_STRING: str,
                PDB_IMAGE: Image, PDB_DRAWABLE: Drawable}

    def __init__(self, name, params, function):
        self.proc_name, self.params, self.function = name, tuple(params), function

    @property
    def nparams(self):
        return len(self.params)

    def __call__(self, *args):
        if len(args) == self.nparams - 1 and self.params[0][1] == "run-mode":
            args = (RUN_NONINTERACTIVE,) + args
        if len(args) != self.nparams:
            raise TypeError("wrong number of parameters")
        for value, (kind, name, _blurb) in zip(args, self.params):
            if not isinstance(value, self._ACCEPTS[kind]):
                raise TypeError("%s: wrong type %s for parameter %r"
                                % (self.proc_name, type(value).__name__, name))
        if args[0] != RUN_NONINTERACTIVE:
            raise error("%s: only non-interactive calls are modelled by the fake" % self.proc_name)
        return self.function(*args[1:])


def _saving(procedure, image, drawable, filename):
    if drawable.image is not image:
        raise error("%s: the drawable is not part of the image" % procedure)
    if drawable.is_indexed:
        raise error("%s: indexed export is not modelled by the fake" % procedure)
    folder = os.path.dirname(os.path.abspath(filename))
    if not os.path.isdir(folder):
        raise error("%s: could not open '%s' for writing" % (procedure, filename))


def _file_png_save(image, drawable, filename, raw_filename, interlace, compression, bkgd, gama,
                   offs, phys, time):
    _saving("file-png-save", image, drawable, filename)
    png = fixative_png.encode_png(drawable.width, drawable.height, drawable.fake_channels,
                                  image.fake_bit_depth(), drawable.fake_data)
    with open(filename, "wb") as handle:
        handle.write(png)
    image.fake_log.append(("file-png-save", filename))


def _pillow_image(procedure, drawable, keep_alpha):
    """The drawable as an 8-bit Pillow image (16-bit samples rounded, as GIMP's export does)."""
    try:
        from PIL import Image as PillowImage
    except ImportError:
        raise error("%s: the fake writes this format with Pillow, which is not installed"
                    % procedure)
    depth = drawable.image.fake_bit_depth()
    data = drawable.fake_data
    if depth == 16:
        data = struct.pack(">%dB" % (len(data) // 2),
                           *[(value + 128) // 257 for value in _unpack(data, 16)])
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[drawable.fake_channels]
    picture = PillowImage.frombytes(mode, (drawable.width, drawable.height), data)
    if not keep_alpha and mode in ("LA", "RGBA"):
        picture = picture.convert(mode[:-1])  # the alpha channel is dropped, not composited
    return picture


def _file_jpeg_save(image, drawable, filename, raw_filename, quality, smoothing, optimize,
                    progressive, comment, subsmp, baseline, restart, dct):
    _saving("file-jpeg-save", image, drawable, filename)
    if not (0.0 <= quality <= 1.0 and 0.0 <= smoothing <= 1.0):
        raise error("file-jpeg-save: quality and smoothing lie between 0 and 1")
    if subsmp not in (0, 1, 2) or dct not in (0, 1, 2) or restart < 0:
        raise error("file-jpeg-save: this sub-sampling, DCT or restart value is not modelled")
    if smoothing:
        raise error("file-jpeg-save: smoothing is not modelled by the fake")
    picture = _pillow_image("file-jpeg-save", drawable, keep_alpha=False)
    # GIMP numbers sub-sampling 0 = 4:2:0, 1 = 4:2:2, 2 = 4:4:4; Pillow the other way round.
    extra = {"comment": comment} if comment else {}
    picture.save(filename, "JPEG", quality=int(round(quality * 100)), optimize=bool(optimize),
                 progressive=bool(progressive), subsampling={0: 2, 1: 1, 2: 0}[subsmp], **extra)
    image.fake_log.append(("file-jpeg-save", filename))


def _file_webp_save(image, drawable, filename, raw_filename, *settings):
    """file-webp-save with the settings ``fake_webp_save_params`` names (GIMP 2.10's current
    18-parameter signature, or the earlier one without minimize-size and kf-distance)."""
    values = dict(zip([param[1] for param in fake_webp_save_params[5:]], settings))
    _saving("file-webp-save", image, drawable, filename)
    if not (0 <= values["quality"] <= 100 and 0 <= values["alpha-quality"] <= 100):
        raise error("file-webp-save: quality and alpha-quality lie between 0 and 100")
    if values["animation"]:
        raise error("file-webp-save: animation is not modelled by the fake")
    if values["exif"] or values["iptc"] or values["xmp"]:
        raise error("file-webp-save: writing the image's metadata is not modelled by the fake")
    picture = _pillow_image("file-webp-save", drawable, keep_alpha=True)
    if picture.mode in ("L", "LA"):
        picture = picture.convert("RGBA" if picture.mode == "LA" else "RGB")
    picture.save(filename, "WEBP", quality=float(values["quality"]),
                 alpha_quality=int(values["alpha-quality"]), lossless=bool(values["lossless"]))
    image.fake_log.append(("file-webp-save", filename))


_SAVE_HEAD = [(PDB_INT32, "run-mode", "The run mode"), (PDB_IMAGE, "image", "Input image"),
              (PDB_DRAWABLE, "drawable", "Drawable to save"),
              (PDB_STRING, "filename", "The name of the file"),
              (PDB_STRING, "raw-filename", "The name entered")]
# Parameters as GIMP 2.10's plug-ins register them (plug-ins/common/file-png.c,
# plug-ins/file-jpeg/jpeg.c, plug-ins/file-webp/file-webp.c).
_PNG_SAVE_PARAMS = _SAVE_HEAD + [(PDB_INT32, name, name) for name in (
    "interlace", "compression", "bkgd", "gama", "offs", "phys", "time")]
_JPEG_SAVE_PARAMS = _SAVE_HEAD + [
    (PDB_FLOAT, "quality", "Quality of saved image (0 <= quality <= 1)"),
    (PDB_FLOAT, "smoothing", "Smoothing factor for saved image (0 <= smoothing <= 1)"),
    (PDB_INT32, "optimize", "Use optimized tables during Huffman coding (0/1)"),
    (PDB_INT32, "progressive", "Create progressive JPEG images (0/1)"),
    (PDB_STRING, "comment", "Image comment"),
    (PDB_INT32, "subsmp", "Sub-sampling type { 0, 1, 2, 3 }"),
    (PDB_INT32, "baseline", "Force creation of a baseline JPEG (0/1)"),
    (PDB_INT32, "restart", "Interval of restart markers (in MCU rows, 0 = no restart markers)"),
    (PDB_INT32, "dct", "DCT method to use { INTEGER (0), FIXED (1), FLOAT (2) }")]
WEBP_SAVE_PARAMS_2_10 = _SAVE_HEAD + [
    (PDB_INT32, "preset", "preset (Default=0, Picture=1, Photo=2, Drawing=3, Icon=4, Text=5)"),
    (PDB_INT32, "lossless", "Use lossless encoding (0/1)"),
    (PDB_FLOAT, "quality", "Quality of the image (0 <= quality <= 100)"),
    (PDB_FLOAT, "alpha-quality", "Quality of the image's alpha channel (0 <= alpha-quality <= 100)"),
    (PDB_INT32, "animation", "Use layers for animation (0/1)"),
    (PDB_INT32, "anim-loop", "Loop animation infinitely (0/1)"),
    (PDB_INT32, "minimize-size", "Minimize animation size (0/1)"),
    (PDB_INT32, "kf-distance", "Maximum distance between key-frames (>=0)"),
    (PDB_INT32, "exif", "Toggle saving exif data (0/1)"),
    (PDB_INT32, "iptc", "Toggle saving iptc data (0/1)"),
    (PDB_INT32, "xmp", "Toggle saving xmp data (0/1)"),
    (PDB_INT32, "delay", "Delay to use when timestamps are not available or forced"),
    (PDB_INT32, "force-delay", "Force delay on all frames")]
# Earlier GIMP 2.10 releases registered file-webp-save without these two.
WEBP_SAVE_PARAMS_EARLY_2_10 = [param for param in WEBP_SAVE_PARAMS_2_10
                               if param[1] not in ("minimize-size", "kf-distance")]
fake_webp_save_params = WEBP_SAVE_PARAMS_2_10  # test hook: which file-webp-save this GIMP has


class _WebpProcedure(_Procedure):
    """file-webp-save, whose signature follows ``fake_webp_save_params``."""

    @property
    def params(self):
        return tuple(fake_webp_save_params)

    @params.setter
    def params(self, _value):
        pass


_BUILT_IN = {
    "file-png-save": _Procedure("file-png-save", _PNG_SAVE_PARAMS, _file_png_save),
    "file-jpeg-save": _Procedure("file-jpeg-save", _JPEG_SAVE_PARAMS, _file_jpeg_save),
    "file-webp-save": _WebpProcedure("file-webp-save", (), _file_webp_save),
}

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
