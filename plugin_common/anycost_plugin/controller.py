"""Project -> slide -> Apply/Discard, independent of the editor: the editor is a `Host`.

Edits follow "latest wins, one in flight": moving a slider while an edit is on its way only records
the newest values; when the reply arrives, the newest values go out (if they changed). The backend's
unasked `refined` preview replaces the shown one only if it belongs to the newest edit.
"""
from __future__ import annotations

import time
from typing import Protocol

from anycost.protocol import messages as P  # the backend's own module (vendored by install-plugin)
from anycost.protocol.messages import BackendError, ErrorCode

from .backend_socket import BackendSocket
from .events import Signal

IDLE, PROJECTING, EDITING, APPLYING = "idle", "projecting", "editing", "applying"


class HostError(Exception):
    """Something about the document stops the operation (no layer, wrong colour depth...)."""


class Host(Protocol):
    """`source_region`: the document rectangle projected (the selection's bounds or the layer);
    `region`: where previews and Apply write, which the controller narrows to the part the backend
    may change (an aligned face's surroundings)."""
    source_region: tuple[int, int, int, int]
    region: tuple[int, int, int, int]

    def source(self) -> tuple[dict, tuple[int, int, int, int]]:
        """The pixels to project (a protocol Image map, RGBA8) of `source_region`, and that region."""
    def show_preview(self, rgb: bytes, w: int, h: int) -> None: ...
    def remove_preview(self) -> None: ...
    def apply(self, rgb: bytes, w: int, h: int, feather: int, name: str) -> None: ...
    def alive(self) -> bool: ...


class EditController:
    """Signals: `changed(phase, message)`, `progress(0..1)` during projection,
    `directions_changed(directions)` (the session's protocol Direction records),
    `preview_shown({"config", "render_ms", "refined", "values"})`, `faces_found(faces, chosen)` after
    an aligned projection (the backend's face records, largest first; [] when not aligned)."""

    def __init__(self):
        self.changed, self.progress, self.directions_changed = Signal(), Signal(), Signal()
        self.preview_shown, self.faces_found = Signal(), Signal()
        self.socket: BackendSocket | None = None
        self.host: Host | None = None
        self.phase, self.message, self.error = IDLE, "", False
        self.error_code: ErrorCode | None = None   # the backend's code of the error shown, if it sent one
        self.session: str | None = None
        self.region = None                    # where previews and Apply go (narrowed for an aligned face)
        self.source_region = None             # what was projected
        self.directions: list[P.DirectionInfo] = []
        self.values: dict[str, float] = {}
        self.budget_ms: float | None = None   # None: auto
        self._open_id = None
        self._edit_id = None                  # the edit in flight
        self._newest_edit = None              # id of the newest edit sent
        self._sent_values: dict | None = None
        self._dirty = False
        self._overhead_ms = 20.0              # transport + conversion beyond the render (auto budget)
        self._sent_at = 0.0
        self._to_close: list[str] = []
        self.edits_sent = 0
        self.applied = 0                      # layers added by Apply in this controller's life
        self.original_shown = False           # the before/after toggle: the preview layer taken away
        self._last_shown: tuple[bytes, int, int] | None = None   # what the preview layer showed last

    # ------------------------------------------------------------------ state

    def _set(self, phase: str, message: str = "", error: bool = False, code: ErrorCode | None = None) -> None:
        self.phase, self.message, self.error, self.error_code = phase, message, error, code
        self.changed.emit(phase, message)

    def _fail(self, message: str, phase: str | None = None, code: ErrorCode | None = None) -> None:
        self._set(phase or (EDITING if self.session else IDLE), message, error=True, code=code)

    def attach(self, socket: BackendSocket | None) -> None:
        """Use this connection (None while disconnected). A session lives on the backend, so it
        survives a reconnection to the same backend."""
        if self.socket is not None:
            self.socket.refined.disconnect(self._on_refined)
            self.socket.failed.disconnect(self._on_handler_failed)
        self.socket = socket
        if socket is not None:
            socket.refined.connect(self._on_refined)
            socket.failed.connect(self._on_handler_failed)
            for sid in self._to_close:          # sessions ended while we were disconnected
                socket.send("close", {"session": sid}, lambda d: None, lambda e: None)
            self._to_close = []
        if self.phase in (PROJECTING, APPLYING):
            self._open_id = None
            self._edit_id = None
            self._fail("The connection to the backend was lost during the operation; try again")

    def _on_handler_failed(self, what: str) -> None:
        """A reply could not be shown (e.g. the user deleted the layer): say so, keep the session.
        During a projection, the projection ends too (else it would finish untracked)."""
        self._edit_id = None
        if self.phase == PROJECTING and self._open_id is not None and self.socket is not None:
            self._stop_projection()
            if self.host is not None and self.host.alive():
                self.host.remove_preview()
            self._fail(f"Could not update the document: {what}; the projection was stopped", IDLE)
            return
        self._fail(f"Could not update the document: {what}")

    # ------------------------------------------------------------------ project

    def project(self, host: Host, model: str = "", steps: int = 100, align: bool = False,
                face: int | None = None) -> None:
        """Project the host's source. `align`: find the face and align it as the model was trained
        (a model that declares no alignment projects the region as it is); `face`: which face when
        there are several (0 = the largest, the default)."""
        if self.socket is None:
            raise HostError("Not connected to the backend")
        if self.phase == PROJECTING:
            raise HostError("A projection is already running")
        self.discard()
        image, region = host.source()        # raises HostError with the reason
        host.region = region
        self.host, self.region, self.source_region = host, region, region
        request = P.OpenRequest(P.Image.from_dict(image, name="the layer's pixels"), model or None,
                                steps, align, face, preview_every=10)
        self._set(PROJECTING, f"Projecting {region[2]}×{region[3]} px…")
        self.progress.emit(0.0)
        self._open_id = self.socket.send("open", request.fields(), self._on_opened, self._on_open_error,
                                         self._on_open_progress)

    def _narrow(self, rect) -> None:
        """Previews and Apply go to `rect` of the projected source (an aligned face's surroundings)."""
        x, y = self.source_region[:2]
        self.region = (x + rect[0], y + rect[1], rect[2], rect[3])
        if self.host is not None:
            self.host.region = self.region

    def _stop_projection(self) -> None:
        """Cancel the running projection on the backend and drop its replies."""
        self.cancel_projection()
        assert self.socket is not None and self._open_id is not None   # callers check both
        self.socket.forget(self._open_id)
        self._open_id = None

    def cancel_projection(self) -> None:
        if self.phase == PROJECTING and self._open_id is not None and self.socket:
            self.socket.send("cancel", {"target": self._open_id}, lambda d: None, lambda e: None)

    def _on_open_progress(self, data: dict) -> None:
        steps = max(1, int(data.get("steps") or 1))
        self.progress.emit(min(1.0, int(data.get("step", 0)) / steps))
        if data.get("region") and self.host is not None:     # an aligned face: its region, already blended
            self._narrow(data["region"])
        preview = data.get("preview")
        if preview and self._host_alive():   # the current reconstruction, at model resolution
            self._show(P.Image.from_dict(preview, name="preview"), resize=True)

    def _on_opened(self, data: dict) -> None:
        self._open_id = None
        opened = P.OpenResult.from_dict(data, (0, 0, self.source_region[2], self.source_region[3]))
        self.session = opened.session
        self._narrow(opened.region)
        aligned = opened.alignment or {}
        self.faces_found.emit(list(aligned.get("faces") or []), int(aligned.get("face") or 0))
        self.directions = list(opened.directions)
        self.values = {d.name: d.default for d in self.directions}
        self._sent_values = dict(self.values)
        self.directions_changed.emit(self.directions)
        self.progress.emit(1.0)
        if self._host_alive():
            self._show(opened.reconstruction)
        psnr = opened.metrics.get("psnr")
        what = "Projected" + (f" (PSNR {psnr:.1f} dB)" if isinstance(psnr, (int, float)) else "")
        if aligned:
            n = len(aligned.get("faces") or [])
            what += f"; face {int(aligned.get('face') or 0) + 1} of {n}, aligned" if n > 1 else "; face aligned"
        elif opened.alignment_note:
            what += f"; {opened.alignment_note}"
        self._set(EDITING, what)

    def _on_open_error(self, err: BackendError) -> None:
        self._open_id = None
        self.progress.emit(0.0)
        if self.host is not None and self.host.alive():
            self.host.remove_preview()        # the unfinished projection's progress previews
        if err.code == ErrorCode.CANCELLED:
            self._fail("Projection cancelled", IDLE, err.code)
        elif err.code == ErrorCode.NO_FACE:
            self._fail(f"No usable face: {err.message}", IDLE, err.code)
        else:
            self._fail(f"Projection failed: {err.message}", IDLE, err.code)

    # ------------------------------------------------------------------ edit

    def set_value(self, name: str, value: float) -> None:
        if self.session is None or self.phase != EDITING:
            return
        if name not in self.values:
            raise HostError(f"unknown direction {name!r}")
        self.values[name] = float(value)
        self._changed_values()

    def reset(self, name: str | None = None) -> None:
        """All sliders (or the one named) back to their defaults."""
        if self.session is None:
            return
        for d in self.directions:
            if name is None or d.name == name:
                self.values[d.name] = d.default
        self._changed_values()

    def _changed_values(self) -> None:
        self.show_original(False)             # an edit is looked at, not the original
        self._dirty = self.values != self._sent_values
        self._pump()

    def show_original(self, on: bool) -> None:
        """The before/after toggle: the preview layer goes (the document as it was) and comes back
        with what it showed. Removing it, rather than hiding it, behaves the same in both editors
        (Krita applies a visibility change later, through its stroke queue)."""
        if on == self.original_shown or self.session is None:
            return
        self.original_shown = on
        if self.host is None or not self.host.alive():
            return
        if on:
            self.host.remove_preview()
        elif self._last_shown is not None:
            self.host.show_preview(*self._last_shown)

    def _budget(self) -> float:
        if self.budget_ms is not None:
            return self.budget_ms
        return max(20.0, 100.0 - self._overhead_ms)    # auto: 100 ms on screen, transport included

    def _pump(self) -> None:
        """Send the newest values if none is in flight (one in flight: no pile-up)."""
        if (not self._dirty or self._edit_id is not None or self.socket is None or self.session is None
                or self.phase != EDITING):
            return
        self._dirty = False
        self._sent_values = dict(self.values)
        w, h = self.region[2], self.region[3]
        self._sent_at = time.monotonic()
        edit = P.EditRequest(self.session, dict(self.values), self._budget(), (w, h))
        self._edit_id = self.socket.send("edit", edit.fields(), self._on_edit, self._on_edit_error)
        self._newest_edit = self._edit_id
        self.edits_sent += 1

    def _on_edit(self, data: dict) -> None:
        self._edit_id = None
        round_trip = (time.monotonic() - self._sent_at) * 1000
        shown = P.RenderResult.from_dict(data)
        self._overhead_ms = 0.8 * self._overhead_ms + 0.2 * max(0.0, round_trip - shown.render_ms)
        if self._host_alive() and self.phase == EDITING:
            self._show_preview(shown)
        self._pump()

    def _on_edit_error(self, err: BackendError) -> None:
        self._edit_id = None
        if err.code not in (ErrorCode.SUPERSEDED, ErrorCode.CLOSED):
            self._fail(f"Preview failed: {err.message}", code=err.code)
        self._pump()

    def _on_refined(self, rid: int, data: dict) -> None:
        if rid != self._newest_edit or self._edit_id is not None or self._dirty or self.phase != EDITING:
            return                                    # an older edit's, or newer values are coming
        if self._host_alive():
            self._show_preview(P.RenderResult.from_dict(data))

    def _show_preview(self, shown: P.RenderResult) -> None:
        self._show(shown.image)
        self.preview_shown.emit({"config": shown.config, "render_ms": shown.render_ms, "refined": shown.refined,
                                 "values": shown.values})

    # ------------------------------------------------------------------ apply / discard

    def apply(self, feather: int) -> None:
        if self.session is None or self.phase != EDITING:
            raise HostError("Nothing to apply: project a layer first")
        w, h = self.region[2], self.region[3]
        if self._edit_id is not None and self.socket is not None:
            self.socket.forget(self._edit_id)       # a late preview must not cover the applied layer
        self._edit_id = self._newest_edit = None
        self._dirty = False
        self._set(APPLYING, "Rendering at full quality…")
        self.progress.emit(0.0)
        values = dict(self.values)
        assert self.socket is not None                # EDITING implies attached (attach() fails a session otherwise)
        self.socket.send("render", P.RenderRequest(self.session, values, (w, h)).fields(),
                         lambda data: self._on_rendered(data, values, feather), self._on_render_error,
                         self._on_render_progress)

    def _on_render_progress(self, data: dict) -> None:
        """A model drawn tile by tile (CREPS at the selection's size) reports each tile."""
        tiles = max(1, int(data.get("tiles") or 1))
        self.progress.emit(min(1.0, int(data.get("tile", 0)) / tiles))

    def _on_rendered(self, data: dict, values: dict, feather: int) -> None:
        if not self._host_alive():
            self.discard()
            self._set(IDLE, "The document was closed before Apply finished", error=True)
            return
        img = P.RenderResult.from_dict(data).image
        assert self.host is not None                  # alive, checked above
        try:
            self.host.apply(img.data, img.w, img.h, feather, edit_name(values))
        except HostError as e:
            self._fail(f"Apply failed: {e}")
            return
        # the session goes on: another tweak and Apply adds another layer, no new projection
        self.applied += 1
        self.original_shown, self._last_shown = False, None   # Host.apply removed the preview layer
        self._sent_values = None                    # the next move draws a new preview
        self._set(EDITING, "Applied as a new layer; move a slider for another, or Discard to finish")

    def _on_render_error(self, err: BackendError) -> None:
        self._fail(f"Apply failed: {err.message}", code=err.code)

    def discard(self, remove_preview: bool = True) -> None:
        """Close the session (backend memory and disk) and remove the preview layer."""
        if self._open_id is not None and self.socket is not None:
            self._stop_projection()
        if self._edit_id is not None and self.socket is not None:
            self.socket.forget(self._edit_id)   # its late reply (e.g. from a restarted backend) is not shown
        if self.session is not None:            # free it on the backend (memory and disk)
            if self.socket is not None:
                self.socket.send("close", {"session": self.session}, lambda d: None, lambda e: None)
            else:
                self._to_close.append(self.session)
        if remove_preview and self.host is not None and self.host.alive():
            self.host.remove_preview()
        self.session, self.directions, self.values = None, [], {}
        self.original_shown, self._last_shown = False, None
        self._edit_id = self._newest_edit = None
        self._dirty = False
        self.directions_changed.emit([])
        if self.phase != IDLE:
            self._set(IDLE, "")

    # ------------------------------------------------------------------ helpers

    def _host_alive(self) -> bool:
        return self.host is not None and self.host.alive()

    def _show(self, image: P.Image, resize: bool = False) -> None:
        w, h = self.region[2], self.region[3]
        rgb = image.data
        if resize and (image.w, image.h) != (w, h):
            rgb = resize_nearest(rgb, image.w, image.h, w, h)
        assert self.host is not None                  # callers check _host_alive() first
        self._last_shown = (rgb, w, h)
        if not self.original_shown:                   # a refined preview waits while the original is shown
            self.host.show_preview(rgb, w, h)


def face_menu(faces: list) -> list[str]:
    """The Face menu's entries for the backend's face records (largest first)."""
    return [f"{i + 1}: {f['box'][2]:.0f}×{f['box'][3]:.0f} px" + (" (largest)" if i == 0 else "")
            for i, f in enumerate(faces)]


def edit_name(values: dict) -> str:
    """The applied layer's name: what was changed."""
    changed = ", ".join(f"{k} {v:+.2f}" for k, v in values.items() if abs(v) > 1e-6)
    return f"Anycost edit ({changed or 'projection'})"


def resize_nearest(rgb: bytes, sw: int, sh: int, dw: int, dh: int) -> bytes:
    """Nearest-neighbour resize of RGB8 (projection progress only: the backend resizes the rest)."""
    xs = [min(sw - 1, (x * sw) // dw) * 3 for x in range(dw)]
    out = bytearray()
    rows = {}
    for y in range(dh):
        sy = min(sh - 1, (y * sh) // dh)
        if sy not in rows:
            src = rgb[sy * sw * 3:(sy + 1) * sw * 3]
            rows[sy] = b"".join(src[i:i + 3] for i in xs)
        out += rows[sy]
    return bytes(out)
