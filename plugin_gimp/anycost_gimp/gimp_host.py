"""The only module that touches GIMP's image API: a Host (anycost_plugin.controller) over one layer.

The preview layer is scratch space made with the undo history frozen, so Cancel leaves no trace;
Apply adds the result as a new layer inside one undo group.
"""
from __future__ import annotations

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402

from anycost_plugin.controller import HostError  # noqa: E402
from anycost_plugin.pixels import add_alpha, feather_alpha  # noqa: E402

FORMAT = "R'G'B'A u8"
PREVIEW_NAME = "Anycost preview"
EDIT_PREFIX = "Anycost edit"          # the applied layers' names (controller.edit_name)


class GimpHost:
    def __init__(self, image, layer):
        if not isinstance(layer, Gimp.Layer):
            raise HostError("Anycost Edit works on one layer: select a single layer")
        self.image, self.layer = image, layer
        self._preview = None
        _, ox, oy = layer.get_offsets()
        lw, lh = layer.get_width(), layer.get_height()
        non_empty, x1, y1, x2, y2 = Gimp.Selection.bounds(image)[-5:]     # (success,) non_empty, bounds
        if not non_empty:
            x1, y1, x2, y2 = ox, oy, ox + lw, oy + lh
        x1, y1, x2, y2 = max(x1, ox), max(y1, oy), min(x2, ox + lw), min(y2, oy + lh)
        if x2 - x1 < 8 or y2 - y1 < 8:
            raise HostError("The layer (or selection) is empty or smaller than 8×8 px")
        self.source_region = self.region = (x1, y1, x2 - x1, y2 - y1)   # region: where previews and Apply go
        self._offsets = (ox, oy)

    def alive(self) -> bool:
        return self.image.is_valid() and self.layer.is_valid()

    def source(self):
        x, y, w, h = self.source_region
        ox, oy = self._offsets
        data = bytes(self.layer.get_buffer().get(Gegl.Rectangle.new(x - ox, y - oy, w, h), 1.0, FORMAT,
                                                 Gegl.AbyssPolicy.CLAMP))
        return {"w": w, "h": h, "mode": "RGBA8", "data": data}, self.source_region

    def _new_layer(self, name: str, rgba: bytes):
        x, y, w, h = self.region
        layer = Gimp.Layer.new(self.image, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
        self.image.insert_layer(layer, self.layer.get_parent(), self._above())
        layer.set_offsets(x, y)
        self._write(layer, rgba)
        return layer

    def _above(self) -> int:
        """The stack position (0 = top) a new layer takes: above the source and above the earlier
        applied Anycost layers stacked directly on it, so a new preview is not hidden under an earlier edit."""
        parent = self.layer.get_parent()
        siblings = list(parent.get_children() if parent is not None else self.image.get_layers())   # top first
        i = self.image.get_item_position(self.layer)
        while i > 0 and siblings[i - 1].get_name().startswith(EDIT_PREFIX):
            i -= 1
        return i

    def _write(self, layer, rgba: bytes) -> None:
        w, h = self.region[2:]
        buf = layer.get_buffer()
        buf.set(Gegl.Rectangle.new(0, 0, w, h), FORMAT, rgba)
        buf.flush()
        layer.update(0, 0, w, h)

    def show_preview(self, rgb: bytes, w: int, h: int) -> None:
        rgba = add_alpha(rgb, w, h)
        self.image.undo_freeze()                 # scratch: not in the undo history
        try:
            if self._preview is not None and self._preview.is_valid():
                self._write(self._preview, rgba)
            else:
                self._preview = self._new_layer(PREVIEW_NAME, rgba)
        finally:
            self.image.undo_thaw()
        Gimp.displays_flush()

    def remove_preview(self) -> None:
        if self._preview is not None and self._preview.is_valid():
            self.image.undo_freeze()
            try:
                self.image.remove_layer(self._preview)
            finally:
                self.image.undo_thaw()
            Gimp.displays_flush()
        self._preview = None

    def apply(self, rgb: bytes, w: int, h: int, feather: int, name: str) -> None:
        self.remove_preview()
        self.image.undo_group_start()
        try:
            self._new_layer(name, add_alpha(rgb, w, h, feather_alpha(w, h, feather)))
        finally:
            self.image.undo_group_end()
        Gimp.displays_flush()
