"""The only module that touches Krita's document API: a Host (see controller.py) over one layer.

Facts this relies on (measured, docs/krita-plugin.md): layers are BGRA in memory; `setPixelData`
is not an undo step while adding a node is, so the preview layer is scratch space and Apply
adds one new, already-filled layer: one undo step that removes it again.
"""
from __future__ import annotations

import logging

from krita import Krita

from anycost_plugin.controller import HostError
from anycost_plugin.pixels import add_alpha, bgra_to_rgba, feather_alpha

from .qt import QTimer

log = logging.getLogger("anycost_plugin")
PREVIEW_NAME = "Anycost preview"
EDIT_PREFIX = "Anycost edit"          # the applied layers' names (controller.edit_name)


def _uid(node) -> str:
    return node.uniqueId().toString()


def _parent_of(doc, node):
    """(parent, node) as found from the document's root by the node's id, or None when the node is
    not in the document: a wrapper Krita handed out earlier may report no parent, or a removed node."""
    want = _uid(node)
    stack = [doc.rootNode()]
    while stack:
        parent = stack.pop()
        for child in parent.childNodes():
            if _uid(child) == want:
                return parent, child
            stack.append(child)
    return None


class KritaHost:
    def __init__(self, doc, node):
        self.doc, self.node = doc, node
        self._doc_id = _uid(doc.rootNode())
        self._preview = None
        self._adding = self._remove_when_added = False   # see _preview_layer
        self._newest: tuple[bytes, int, int] | None = None
        self.source_region = self.region = self._region()   # region: where previews and Apply go

    @classmethod
    def from_active(cls) -> "KritaHost":
        doc = Krita.instance().activeDocument()
        if doc is None:
            raise HostError("Open an image first")
        node = doc.activeNode()
        if node is None or node.type() not in ("paintlayer", "grouplayer", "filelayer", "clonelayer"):
            raise HostError("Select a paint layer to project")
        if _parent_of(doc, node) is None:
            raise HostError("Click the layer to project in the Layers docker first")
        if doc.colorModel() != "RGBA" or doc.colorDepth() != "U8":
            raise HostError(f"Anycost edits 8-bit RGB images; this one is {doc.colorModel()} {doc.colorDepth()} "
                            "(Image ▸ Convert Image Color Space)")
        return cls(doc, node)

    def _region(self) -> tuple[int, int, int, int]:
        """The selection's bounds if there is a selection, else the layer's bounds, inside the canvas."""
        sel = self.doc.selection()
        if sel is not None and sel.width() > 0 and sel.height() > 0:
            x, y, w, h = sel.x(), sel.y(), sel.width(), sel.height()
        else:
            b = self.node.bounds()
            x, y, w, h = b.x(), b.y(), b.width(), b.height()
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(self.doc.width(), x + w), min(self.doc.height(), y + h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            raise HostError("The layer (or selection) is empty or smaller than 8×8 px")
        return x0, y0, x1 - x0, y1 - y0

    # ------------------------------------------------------------------ Host

    def alive(self) -> bool:
        return any(_uid(d.rootNode()) == self._doc_id for d in Krita.instance().documents())

    def source(self):
        x, y, w, h = self.source_region
        data = bytes(self.node.projectionPixelData(x, y, w, h))
        return {"w": w, "h": h, "mode": "RGBA8", "data": bgra_to_rgba(data)}, self.source_region

    def show_preview(self, rgb: bytes, w: int, h: int) -> None:
        self._newest = (rgb, w, h)
        if self._adding:                            # re-entered while Krita adds the layer (_preview_layer)
            self._remove_when_added = False
            return
        layer = self._preview_layer()
        if layer is None:                           # removed again while Krita was adding it
            return
        rgb, w, h = self._newest                    # a preview drawn during the add is newer
        x, y = self.region[:2]
        layer.setPixelData(add_alpha(rgb, w, h, order="BGRA"), x, y, w, h)
        self.doc.refreshProjection()

    def remove_preview(self) -> None:
        if self._adding:                            # likewise: done once the layer is in the document
            log.info("remove preview: once added")
            self._remove_when_added = True
            return
        held = self._preview
        layer, self._preview = self._find_preview(), None
        log.info("remove preview: held %s, found %s", held is not None, layer is not None)   # for diagnostics
        if layer is not None:
            layer.remove()
            self.doc.refreshProjection()

    def apply(self, rgb: bytes, w: int, h: int, feather: int, name: str) -> None:
        parent = self._parent()
        self.remove_preview()                       # before: the new layer is the last undo step
        layer = self.doc.createNode(name, "paintlayer")
        x, y = self.region[:2]
        layer.setPixelData(add_alpha(rgb, w, h, feather_alpha(w, h, feather), "BGRA"), x, y, w, h)
        parent.addChildNode(layer, self._above())  # one undo step: the layer with its pixels
        self._keep_source_active()
        self.doc.refreshProjection()

    # ------------------------------------------------------------------ the preview layer

    def _parent(self):
        found = _parent_of(self.doc, self.node)
        if found is None:
            raise HostError("The projected layer was deleted")
        self.node = found[1]                                # a fresh wrapper of the same layer
        return found[0]

    def _above(self):
        """The node a new layer goes above: the source, or the applied Anycost layers stacked
        directly on it (so a new preview is not hidden under an earlier edit). Never a preview
        layer: Apply adds its layer right after removing the preview, and a node placed relative
        to one being removed was seen to leave that preview in the document (Krita 5.1)."""
        siblings = self._parent().childNodes()              # bottom to top
        ids = [_uid(n) for n in siblings]
        i = ids.index(_uid(self.node)) if _uid(self.node) in ids else len(siblings) - 1
        while i + 1 < len(siblings) and siblings[i + 1].name().startswith(EDIT_PREFIX):
            i += 1
        return siblings[i]

    def _find_preview(self):
        if self._preview is not None and self._preview.parentNode() is not None:
            return self._preview
        return None

    def _preview_layer(self):
        """The preview layer, added on first use (or after the user deleted it); None when it was
        removed again while being added.

        addChildNode waits for Krita's stroke and runs Qt's event loop meanwhile, so a click (Original,
        Discard) or the next preview can arrive before it returns (seen in Krita 5.1: Original found
        no preview to remove, then the one being added stayed). Such calls only record what they want
        (`_newest`, `_remove_when_added`), done here once the layer is in the document."""
        layer = self._find_preview()
        if layer is None:
            parent = self._parent()
            layer = self.doc.createNode(PREVIEW_NAME, "paintlayer")
            layer.setLocked(True)
            self._preview, self._adding, self._remove_when_added = layer, True, False
            try:
                parent.addChildNode(layer, self._above())
            finally:
                self._adding = False
            self._keep_source_active()
            if self._remove_when_added:
                self.remove_preview()
                return None
        return layer

    def _keep_source_active(self) -> None:
        """Krita makes an added layer the active one; the source stays active instead, so the
        session keeps editing it and Project projects it again. (Seen in Krita 5.1: once the added
        preview layer is removed, activeNode() still returns it, a node outside the document.)"""
        node, doc = self.node, self.doc
        doc.setActiveNode(node)
        QTimer.singleShot(0, lambda: doc.setActiveNode(node))   # after Krita's own reaction to the new node
