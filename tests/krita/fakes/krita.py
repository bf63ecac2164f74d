"""A fake ``krita`` module: just enough of libkis for the plugin's logic, with numpy storage.

It copies the facts that bite (measured in Krita 5.1.5): integer RGBA pixelData is B,G,R,A,
float is R,G,B,A, little-endian samples; a closed document answers rootNode() with None;
``addChildNode(child, above)`` puts ``child`` above ``above`` as one undo step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PyQt5.QtCore import QRect
from PyQt5.QtWidgets import QDockWidget

DTYPES = {"U8": np.dtype("<u1"), "U16": np.dtype("<u2"), "F16": np.dtype("<f2"), "F32": np.dtype("<f4")}
CHANNELS = {"RGBA": 4, "GRAYA": 2, "CMYKA": 5, "LABA": 4}
DEFAULT_PROFILE = {"RGBA": "sRGB-elle-V2-srgbtrc.icc", "GRAYA": "Gray-D50-elle-V2-srgbtrc.icc",
                   "CMYKA": "Chemical proof", "LABA": "Lab identity built-in"}


class Node:
    def __init__(self, document: Document, name: str, kind: str, model: str, depth: str,
                 profile: str) -> None:
        self.document, self._name, self._type = document, name, kind
        self._model, self._depth, self._profile = model, depth, profile
        self.pixels = np.zeros((document.height(), document.width(), CHANNELS[model]), DTYPES[depth])
        self.parent: Node | None = None
        self.children: list[Node] = []
        self.pixel_reads = 0
        self.properties = {"opacity": 255, "blendingMode": "normal", "inheritAlpha": False,
                           "alphaLocked": False, "visible": True, "locked": False}

    # layer properties (set without undo entries, as libkis does)
    def setName(self, name: str) -> None:
        self._name = name

    def opacity(self) -> int:
        return self.properties["opacity"]

    def setOpacity(self, value: int) -> None:
        self.properties["opacity"] = max(0, min(255, int(value)))

    def blendingMode(self) -> str:
        return self.properties["blendingMode"]

    def setBlendingMode(self, value: str) -> None:
        """libkis runs this as an undo command (Krita 5.1-5.3: "Composition Mode Change")."""
        self.properties["blendingMode"] = value
        self.document.undo_stack.append(("blend", self._name))

    def inheritAlpha(self) -> bool:
        return self.properties["inheritAlpha"]

    def setInheritAlpha(self, value: bool) -> None:
        self.properties["inheritAlpha"] = bool(value)

    def alphaLocked(self) -> bool:
        return self.properties["alphaLocked"]

    def setAlphaLocked(self, value: bool) -> None:
        self.properties["alphaLocked"] = bool(value)

    def visible(self) -> bool:
        return self.properties["visible"]

    def setVisible(self, value: bool) -> None:
        self.properties["visible"] = bool(value)

    def locked(self) -> bool:
        return self.properties["locked"]

    def setLocked(self, value: bool) -> None:
        self.properties["locked"] = bool(value)

    # identity and colour space
    def name(self) -> str:
        return self._name

    def type(self) -> str:
        return self._type

    def colorModel(self) -> str:
        return self._model

    def colorDepth(self) -> str:
        return self._depth

    def colorProfile(self) -> str:
        return self._profile

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        if model not in CHANNELS or depth not in DTYPES:
            return False
        converted = np.zeros(self.pixels.shape[:2] + (CHANNELS[model],), DTYPES[depth])
        if self._model == "GRAYA" and model == "RGBA":
            gray, alpha = self.pixels[..., 0], self.pixels[..., 1]
            converted[..., 0] = converted[..., 1] = converted[..., 2] = gray
            converted[..., 3] = alpha
        elif self._model == "RGBA" and model == "GRAYA":
            converted[..., 0] = self.pixels[..., :3].mean(axis=-1).round().astype(converted.dtype)
            converted[..., 1] = self.pixels[..., 3]
        elif self._model == model:
            converted[...] = self.pixels
        else:
            return False
        self.pixels, self._model, self._depth, self._profile = converted, model, depth, profile
        # libkis converts with the document's image: Krita records "Convert Layer Color Space"
        self.document.undo_stack.append(("convert", self._name))
        return True

    # pixels
    def bounds(self) -> QRect:
        alpha = self.pixels[..., -1] != 0
        if not alpha.any():
            return QRect()
        rows, cols = np.nonzero(alpha.any(axis=1))[0], np.nonzero(alpha.any(axis=0))[0]
        return QRect(int(cols[0]), int(rows[0]), int(cols[-1] - cols[0] + 1), int(rows[-1] - rows[0] + 1))

    def _native(self, array: np.ndarray) -> np.ndarray:
        if self._model == "RGBA" and self._depth in ("U8", "U16"):
            return array[..., [2, 1, 0, 3]]  # B,G,R,A like Krita
        return array

    def projectionPixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        """Groups: their visible children merged (the top one wins, enough for tests)."""
        if self._type == "grouplayer" and self.children:
            visible = [child for child in self.children if child.visible()]
            return visible[-1].pixelData(x, y, w, h) if visible else bytes(self.pixelData(x, y, w, h))
        return self.pixelData(x, y, w, h)

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        self.pixel_reads += 1
        return np.ascontiguousarray(self._native(self.pixels[y:y + h, x:x + w])).tobytes()

    def setPixelData(self, data: Any, x: int, y: int, w: int, h: int) -> bool:
        array = np.frombuffer(bytes(data), DTYPES[self._depth]).reshape(h, w, CHANNELS[self._model])
        self.pixels[y:y + h, x:x + w] = self._native(array)  # the swap is its own inverse
        return True

    def set_rgba(self, array: np.ndarray, x: int = 0, y: int = 0) -> None:
        """Test helper: paint R,G,B,A (or G,A) values without thinking about byte order."""
        h, w = array.shape[:2]
        self.pixels[y:y + h, x:x + w] = array

    # tree
    def parentNode(self) -> Node | None:
        return self.parent

    def childNodes(self) -> list[Node]:
        return list(self.children)

    def addChildNode(self, child: Node, above: Node | None) -> bool:
        index = self.children.index(above) + 1 if above is not None else len(self.children)
        self.children.insert(index, child)
        child.parent = self
        self.document.undo_stack.append(("add", child.name()))
        return True

    def duplicate(self) -> Node:
        """A detached deep copy: pixels, properties and child masks, like KisNode::clone."""
        copy = Node(self.document, self._name, self._type, self._model, self._depth, self._profile)
        copy.pixels = self.pixels.copy()
        copy.properties = dict(self.properties)
        for child in self.children:
            child_copy = child.duplicate()
            child_copy.parent = copy
            copy.children.append(child_copy)
        return copy

    def remove(self) -> bool:
        if self.parent is None:
            return False
        self.parent.children.remove(self)
        self.parent = None
        self.document.undo_stack.append(("remove", self._name))
        return True

    def detach_for_undo(self) -> tuple[Node, int]:
        """What Krita's Edit › Undo of "Add Layer" does: take the node out, no new undo entry."""
        parent, index = self.parent, self.parent.children.index(self)
        parent.children.remove(self)
        self.parent = None
        return parent, index

    def reattach_for_redo(self, place: tuple[Node, int]) -> None:
        parent, index = place
        parent.children.insert(index, self)
        self.parent = parent

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__


class Document:
    def __init__(self, width: int, height: int, name: str, model: str = "RGBA", depth: str = "U8",
                 profile: str = "") -> None:
        self._width, self._height, self._name = width, height, name
        self._model, self._depth = model, depth
        self._profile = profile or DEFAULT_PROFILE[model]
        self.undo_stack: list[tuple[str, str]] = []
        self.conversions: list[tuple[str, str, str]] = []
        self._selection: Selection | None = None
        self.closed = False
        self.refreshes = 0
        self._root = Node(self, "root", "grouplayer", model, depth, self._profile)
        self.active: Node | None = None

    def width(self) -> int:
        return self._width

    def height(self) -> int:
        return self._height

    def fileName(self) -> str:
        return f"/tmp/{self._name}.kra"

    def colorModel(self) -> str:
        return self._model

    def colorDepth(self) -> str:
        return self._depth

    def colorProfile(self) -> str:
        return self._profile

    def rootNode(self) -> Node | None:
        return None if self.closed else self._root

    def activeNode(self) -> Node | None:
        return self.active

    def createNode(self, name: str, kind: str) -> Node:
        return Node(self, name, kind, self._model, self._depth, self._profile)

    def add_paint_layer(self, name: str, model: str | None = None, depth: str | None = None) -> Node:
        """Test helper: a new paint layer on top, added without an undo entry."""
        node = Node(self, name, "paintlayer", model or self._model, depth or self._depth,
                    DEFAULT_PROFILE[model or self._model] if model else self._profile)
        node.parent = self._root
        self._root.children.append(node)
        self.active = node
        return node

    def pixelData(self, x: int, y: int, w: int, h: int) -> bytes:
        """The top visible layer stands in for the projection (tests use one layer)."""
        return self._root.children[-1].pixelData(x, y, w, h)

    def refreshProjection(self) -> None:
        self.refreshes += 1

    def selection(self) -> Selection | None:
        return self._selection

    def setSelection(self, selection: Selection | None) -> None:
        self._selection = selection

    def setColorSpace(self, model: str, depth: str, profile: str) -> bool:
        """Converts every layer (the fake knows grey -> RGB and same-model depth changes)."""
        for node in self._root.children:
            if not node.setColorSpace(model, depth, profile):
                return False
        self._model, self._depth, self._profile = model, depth, profile
        self.conversions.append((model, depth, profile))
        return True

    def waitForDone(self) -> None:
        pass

    def close(self) -> bool:
        self.closed = True
        Krita.instance().open_documents.remove(self)
        return True


class Selection:
    def __init__(self) -> None:
        self._box = (0, 0, 0, 0)

    def select(self, x: int, y: int, w: int, h: int, value: int) -> None:
        self._box = (x, y, w, h)

    def x(self) -> int:
        return self._box[0]

    def y(self) -> int:
        return self._box[1]

    def width(self) -> int:
        return self._box[2]

    def height(self) -> int:
        return self._box[3]


class Krita:
    _instance: Krita | None = None

    def __init__(self) -> None:
        self.settings: dict[tuple[str, str], str] = {}
        self.open_documents: list[Document] = []
        self.extensions: list[Any] = []
        self.dock_factories: list[Any] = []
        self.active_document: Document | None = None

    @classmethod
    def instance(cls) -> Krita:
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def documents(self) -> list[Document]:
        return list(self.open_documents)

    def activeDocument(self) -> Document | None:
        return self.active_document

    def activeWindow(self) -> None:
        return None

    def createDocument(self, width: int, height: int, name: str, model: str, depth: str,
                       profile: str, resolution: float) -> Document:
        document = Document(width, height, name, model, depth, profile)
        self.open_documents.append(document)
        return document

    def readSetting(self, group: str, name: str, default: str) -> str:
        return self.settings.get((group, name), default)

    def writeSetting(self, group: str, name: str, value: str) -> None:
        self.settings[(group, name)] = str(value)

    def addExtension(self, extension: Any) -> None:
        self.extensions.append(extension)

    def addDockWidgetFactory(self, factory: Any) -> None:
        self.dock_factories.append(factory)


class Extension:
    def __init__(self, parent: Any = None) -> None:
        self.parent = parent


class DockWidget(QDockWidget):
    pass


class DockWidgetFactoryBase:
    DockRight = 1

    class DockPosition:
        DockRight = 1


class DockWidgetFactory(DockWidgetFactoryBase):
    def __init__(self, identifier: str, position: int, widget_class: type) -> None:
        self.identifier, self.position, self.widget_class = identifier, position, widget_class
