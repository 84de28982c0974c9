"""One edit without a dialog (scripts, batch mode): project a region, render it with the given
direction values, close the session, and return the render (the host pastes it with its feathered
edge, as after the interactive flow). Blocking: for a plug-in call that needs no event loop."""
from __future__ import annotations

from pathlib import Path

from anycost.protocol import messages as P
from anycost.protocol.client import BackendTimeout, Client
from anycost.protocol.spawn import LaunchError, start_backend


class EditError(Exception):
    """What to tell the user: no backend, bad edits string, a failed projection..."""


def parse_edits(text: str) -> dict[str, float]:
    """'smile=1.5, age=-0.5' -> {'smile': 1.5, 'age': -0.5}; empty -> {} (the projection only)."""
    values = {}
    for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
        name, sep, value = part.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            values[name.strip()] = float(value)
        except ValueError:
            raise EditError(f"edits must look like 'smile=1.5, age=-0.5'; cannot read {part!r}") from None
    return values


def connect(address: str, executable: str | None, log_path: Path, start_timeout_s: float = 180.0) -> Client:
    """A client of a ready backend at `address` ("" = the default endpoint); starts `executable`
    there when none answers."""
    try:
        client = Client(address or None)
    except P.EndpointError as e:
        raise EditError(str(e)) from None
    address = client.address
    try:
        client.call("hello", timeout=2.0)
    except BackendTimeout:
        if not executable:
            client.close()
            raise EditError(f"no backend answers at {address} (start `anycost-backend serve`)") from None
        try:
            start_backend(address, executable=executable, log=log_path, for_editor=True)
        except LaunchError as e:
            client.close()
            raise EditError(str(e)) from None
    try:
        client.wait_ready(start_timeout_s, poll_s=0.3)
    except P.BackendError:
        client.close()
        raise EditError(f"the backend at {address} did not become ready within {start_timeout_s:g} s "
                        f"(log: {log_path})") from None
    return client


def edit_region(client: Client, rgba: bytes, w: int, h: int, edits: dict[str, float], model: str = "",
                steps: int = 100, on_progress=None, align: bool = False,
                face: int | None = None) -> tuple[bytes, tuple[int, int, int, int]]:
    """RGBA8 pixels of a w x h region -> the edited result rendered at full quality (RGB8) and
    where it goes in the region ([x, y, w, h]: all of it, or with `align` the aligned face's
    surroundings, the photo blended in around the face)."""
    request = P.OpenRequest(P.Image(w, h, "RGBA8", rgba), model or None, steps, align, face)
    try:
        opened = client.call("open", timeout=600, on_progress=on_progress, **request.fields())
    except P.BackendError as e:
        what = "no usable face" if e.code == P.ErrorCode.NO_FACE else "projection failed"
        raise EditError(f"{what}: {e.message}") from None
    result = P.OpenResult.from_dict(opened, (0, 0, w, h))
    session, rect = result.session, result.region
    try:
        known = {d.name for d in result.directions}
        unknown = sorted(set(edits) - known)
        if unknown:
            raise EditError(f"this model has no direction {', '.join(unknown)}; it has: {', '.join(sorted(known))}")
        try:
            render = P.RenderRequest(session, edits, (rect[2], rect[3]))
            out = P.RenderResult.from_dict(client.call("render", timeout=600, **render.fields())).image
        except P.BackendError as e:
            raise EditError(f"render failed: {e.message}") from None
    finally:
        try:
            client.call("close", timeout=10, session=session)
        except P.BackendError:           # a timeout too: the session is only left to the daemon's eviction
            pass
    return out.data, rect
