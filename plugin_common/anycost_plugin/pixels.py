"""Pixel bookkeeping without numpy: channel orders and the feathered edge of an applied result.
Everything is done with C-level slice assignment on bytearrays, never a Python loop per pixel."""
from __future__ import annotations


def bgra_to_rgba(data: bytes) -> bytes:
    """Krita's 8-bit layers are BGRA in memory; the protocol speaks RGBA."""
    out = bytearray(data)
    out[0::4], out[2::4] = data[2::4], data[0::4]
    return bytes(out)


def add_alpha(rgb: bytes, w: int, h: int, alpha: bytes | None = None, order: str = "RGBA") -> bytes:
    """RGB8 (the backend's images) to 4 channels in `order` ("RGBA" for GIMP and the protocol,
    "BGRA" for Krita's memory layout) with the given alpha plane (w*h bytes; opaque if None)."""
    if len(rgb) != w * h * 3:
        raise ValueError(f"{len(rgb)} bytes are not a {w}x{h} RGB image")
    if order not in ("RGBA", "BGRA"):
        raise ValueError(f"order must be RGBA or BGRA, not {order!r}")
    r, g, b = rgb[0::3], rgb[1::3], rgb[2::3]
    out = bytearray(w * h * 4)
    out[0::4], out[1::4], out[2::4] = (r, g, b) if order == "RGBA" else (b, g, r)
    out[3::4] = alpha if alpha is not None else b"\xff" * (w * h)
    return bytes(out)


def _ramp(n: int, feather: int) -> list[int]:
    """0..255 rising over `feather` px from both ends of a line of n px (pixel centres)."""
    if feather <= 0:
        return [255] * n
    return [min(255, round(255 * (min(i, n - 1 - i) + 0.5) / feather)) for i in range(n)]


def feather_alpha(w: int, h: int, feather: int) -> bytes:
    """Alpha of a w x h rectangle whose edges fade to transparent over `feather` px:
    min(ramp(x), ramp(y)), so corners fade along both edges and the inside stays opaque."""
    if w < 1 or h < 1:
        raise ValueError(f"empty region {w}x{h}")
    feather = min(feather, (max(w, h) + 1) // 2)
    rx, ry = _ramp(w, feather), _ramp(h, feather)
    rows: dict[int, bytes] = {}
    for v in set(ry):                   # at most feather + 1 distinct rows
        rows[v] = bytes(min(a, v) for a in rx)
    return b"".join(rows[v] for v in ry)
