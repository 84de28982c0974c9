# Copied beside the batch scripts of test_gimp_real.py (inside GIMP 3): the test image they share.
import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp  # noqa: E402 (after gi.require_version, as PyGObject needs)

FMT = "R'G'B'A u8"


def pixels(layer, w, h, x=0, y=0):
    return bytes(layer.get_buffer().get(Gegl.Rectangle.new(x, y, w, h), 1.0, FMT, Gegl.AbyssPolicy.CLAMP))


def face_image(params):
    """An image with one layer "Face" (the test face) and the region selected; -> image, layer."""
    w, h, (rx, ry, rw, rh) = params["w"], params["h"], params["region"]
    image = Gimp.Image.new(w, h, Gimp.ImageBaseType.RGB)
    face = Gimp.Layer.new(image, "Face", w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(face, None, 0)
    buf = face.get_buffer()
    buf.set(Gegl.Rectangle.new(0, 0, w, h), FMT, open(params["face"], "rb").read())
    buf.flush()
    image.select_rectangle(Gimp.ChannelOps.REPLACE, rx, ry, rw, rh)
    return image, face
