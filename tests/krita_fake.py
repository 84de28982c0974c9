"""An in-memory stand-in for the part of Krita's scripting API (the `krita` module) that
plugin_krita/anycost_krita/krita_host.py uses, to test the host's layer bookkeeping where real
Krita cannot be steered: `Document.during_wait` runs while `addChildNode`/`remove` wait for their
stroke, as Krita's event loop does (a click or a socket reply handled in the middle of an add).
Pixels are kept per layer as the list of rectangles written, enough to tell which layer got what.

Install with `install()` before importing anycost_krita.krita_host."""
from __future__ import annotations

import itertools
import sys
import types
from typing import Callable

_ids = itertools.count(1)


class _Uid:
    def __init__(self):
        self._s = f"{{fake-{next(_ids)}}}"

    def toString(self) -> str:
        return self._s


class _Rect:
    def __init__(self, x, y, w, h):
        self._r = (x, y, w, h)

    def x(self): return self._r[0]
    def y(self): return self._r[1]
    def width(self): return self._r[2]
    def height(self): return self._r[3]


class Node:
    def __init__(self, doc: "Document", name: str, kind: str = "paintlayer"):
        self.doc, self._name, self._type = doc, name, kind
        self._uid, self._parent, self._children = _Uid(), None, []
        self._locked = False
        self.writes: list[tuple[int, int, int, int, bytes]] = []

    def uniqueId(self): return self._uid
    def name(self) -> str: return self._name
    def type(self) -> str: return self._type
    def locked(self) -> bool: return self._locked
    def setLocked(self, on: bool) -> None: self._locked = bool(on)
    def parentNode(self): return self._parent
    def childNodes(self): return list(self._children)

    def bounds(self):
        if not self.writes:
            return _Rect(0, 0, 0, 0)
        x0 = min(w[0] for w in self.writes)
        y0 = min(w[1] for w in self.writes)
        x1 = max(w[0] + w[2] for w in self.writes)
        y1 = max(w[1] + w[3] for w in self.writes)
        return _Rect(x0, y0, x1 - x0, y1 - y0)

    def setPixelData(self, data: bytes, x, y, w, h) -> bool:
        assert len(data) == w * h * 4
        self.writes.append((x, y, w, h, bytes(data)))
        return True

    def projectionPixelData(self, x, y, w, h) -> bytes:
        return bytes(w * h * 4)

    def addChildNode(self, child: "Node", above: "Node | None") -> bool:
        i = self._children.index(above) + 1 if above is not None else len(self._children)
        self._children.insert(i, child)
        child._parent = self
        self.doc.waited()                                # Krita: waitForDone, events handled meanwhile
        return True

    def remove(self) -> bool:
        if self._parent is None:
            return False
        self._parent._children.remove(self)
        self._parent = None
        self.doc.waited()
        return True


class Document:
    def __init__(self, width: int, height: int):
        self._w, self._h = width, height
        self._root = Node(self, "root", "grouplayer")
        self._active = None
        self.during_wait: Callable[[], None] | None = None   # runs once, inside the next wait

    def waited(self) -> None:
        hook, self.during_wait = self.during_wait, None
        if hook is not None:
            hook()

    def rootNode(self): return self._root
    def width(self): return self._w
    def height(self): return self._h
    def colorModel(self): return "RGBA"
    def colorDepth(self): return "U8"
    def selection(self): return None
    def activeNode(self): return self._active
    def setActiveNode(self, node) -> None: self._active = node
    def refreshProjection(self) -> None: pass
    def waitForDone(self) -> None: pass
    def createNode(self, name: str, kind: str) -> Node: return Node(self, name, kind)

    def names(self) -> list[str]:
        """The top-level layers' names, bottom to top (Krita's order)."""
        return [n.name() for n in self._root.childNodes()]


class Krita:
    _instance: "Krita | None" = None

    def __init__(self):
        self.docs: list[Document] = []

    @classmethod
    def instance(cls) -> "Krita":
        if cls._instance is None:
            cls._instance = cls()
        return cls._instance

    def documents(self): return list(self.docs)
    def activeDocument(self): return self.docs[-1] if self.docs else None


def install() -> None:
    """Make `import krita` give this module's Krita (the real one exists only inside Krita)."""
    if "krita" not in sys.modules:
        module = types.ModuleType("krita")
        module.Krita = Krita            # type: ignore[attr-defined]
        module.IS_MOCK = True           # type: ignore[attr-defined]  # anycost_krita then registers no docker
        sys.modules["krita"] = module


def document_with_layer(width: int = 64, height: int = 48, name: str = "Face") -> tuple[Document, Node]:
    """A new open document holding one painted layer, made active."""
    doc = Document(width, height)
    layer = doc.createNode(name, "paintlayer")
    doc.rootNode().addChildNode(layer, None)
    layer.setPixelData(bytes(width * height * 4), 0, 0, width, height)
    doc.setActiveNode(layer)
    Krita.instance().docs.append(doc)
    return doc, layer
