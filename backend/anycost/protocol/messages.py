"""The wire protocol between editor plugins and anycost-backend (see docs/protocol.md).

ZeroMQ ROUTER (backend) / DEALER (plugins); every message is one frame holding a msgpack map.
This module imports only msgpack and the standard library, so plugins running inside Krita's or
GIMP's Python can reuse it without torch.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from ipaddress import ip_address
from pathlib import Path
from typing import Any

import msgpack

VERSION = 1
TCP_DEFAULT = "tcp://127.0.0.1:5557"     # the default endpoint where `ipc://` is not available (Windows)
SOCKET_NAME = "backend.sock"
# Session ids are 128 random bits in hex: knowing one is the right to use the session.
SESSION_ID = re.compile(r"[0-9a-f]{32}")

# Request ops, and the reply types a request can receive.
OPS = ("hello", "models", "open", "edit", "render", "cancel", "close", "stats", "shutdown")
PROGRESS, RESULT, ERROR, REFINED = "progress", "result", "error", "refined"


class ErrorCode(str, Enum):
    """The `code` of an `error` reply (docs/protocol.md lists when each is sent), and the two a
    client raises itself, which no daemon sends (`CLIENT_CODES`). A str: compares equal to its value."""
    BAD_REQUEST = "bad_request"     # not msgpack, wrong types, missing fields, bad image, bad region
    UNKNOWN_OP = "unknown_op"
    NOT_FOUND = "not_found"         # unknown or evicted session, unknown model or direction
    SUPERSEDED = "superseded"       # a newer edit of the same session replaced this one before it ran
    CANCELLED = "cancelled"         # stopped by a `cancel` request
    VERSION_MISMATCH = "version"
    TOO_LARGE = "too_large"         # image or message over the configured limits
    BUSY = "busy"                   # the queue is full
    NO_FACE = "no_face"             # alignment asked for, but no usable face: none, too small, profile
    UNAVAILABLE = "unavailable"     # an optional part (face alignment) is not installed
    INTERNAL = "internal"
    # raised by clients, never sent by a daemon
    UNREACHABLE = "unreachable"     # no answer in time, or the request could not be sent
    CLOSED = "closed"               # the client's connection closed with the request unanswered

    @classmethod
    def of(cls, value: Any) -> ErrorCode:
        """The code a reply carries; one this version does not know (a newer daemon's) is INTERNAL."""
        try:
            return cls(value)
        except ValueError:
            return cls.INTERNAL


CLIENT_CODES = (ErrorCode.UNREACHABLE, ErrorCode.CLOSED)
SERVER_CODES = tuple(c for c in ErrorCode if c not in CLIENT_CODES)

ALIGN_MODES = ("none", "auto")   # `open`: a plain crop of the region, or the model's face alignment

IMAGE_MODES = {"RGB8": 3, "RGBA8": 4}


class ProtocolError(Exception):
    """A request that cannot be served; becomes an `error` reply with this code and message."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message


class BackendError(Exception):
    """What a client raises or reports for a request that failed: the daemon's `error` reply, or
    (UNREACHABLE, CLOSED) a failure on the way to it. The one error type of every client."""

    def __init__(self, code: ErrorCode, message: str):
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message

    @classmethod
    def from_reply(cls, msg: dict) -> BackendError:
        err = msg.get("error")
        err = err if isinstance(err, dict) else {}
        return cls(ErrorCode.of(err.get("code")), str(err.get("message", "")))

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


# ------------------------------------------------------------------------------ framing

def pack(msg: dict) -> bytes:
    return msgpack.packb(msg, use_bin_type=True)


def unpack(frame: bytes) -> dict:
    try:
        msg = msgpack.unpackb(frame, raw=False, strict_map_key=True)
    except Exception as e:  # msgpack raises several unrelated types for garbage
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"message is not valid msgpack ({type(e).__name__})") from None
    if not isinstance(msg, dict):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"message must be a msgpack map, got {type(msg).__name__}")
    return msg


def request(op: str, id: int, **fields) -> dict:
    return {"v": VERSION, "id": id, "op": op, **fields}


def reply(id: Any, type: str, **fields) -> dict:
    return {"v": VERSION, "id": id, "type": type, **fields}


def error_reply(id: Any, code: ErrorCode, message: str) -> dict:
    return reply(id, ERROR, error={"code": ErrorCode(code).value, "message": message})


# --------------------------------------------------------------------------- validation

_TYPE_NAMES = {int: "an integer", float: "a number", str: "a string", bytes: "bytes", dict: "a map",
               list: "a list", bool: "a boolean"}


def field(msg: dict, name: str, kind, required: bool = True, default=None):
    """Read `msg[name]` checked against `kind` (a type or tuple); numbers accept ints."""
    if name not in msg or msg[name] is None:
        if required:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"missing field '{name}'")
        return default
    value = msg[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"field '{name}' must be {want}, got {type(value).__name__}")
    return value


def request_id(msg: Any) -> int | str | None:
    """The id a reply echoes: an integer (not a boolean) or a string; None when there is none."""
    rid = msg.get("id") if isinstance(msg, dict) else None
    return rid if isinstance(rid, (int, str)) and not isinstance(rid, bool) else None


def check_envelope(msg: dict) -> tuple[Any, str]:
    """Version, id and op of a request; raises ProtocolError with the right code. `v` must be the
    integer 1 (not 1.0, not true); `id` an integer or a string (not a boolean)."""
    rid = request_id(msg)
    if rid is None:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "field 'id' must be an integer or a string")
    v = msg.get("v")
    if type(v) is not int or v != VERSION:
        raise ProtocolError(ErrorCode.VERSION_MISMATCH, f"protocol version {v!r} is not supported; this backend "
                                              f"speaks version {VERSION} (the integer)")
    op = field(msg, "op", str)
    if op not in OPS:
        raise ProtocolError(ErrorCode.UNKNOWN_OP, f"unknown op {op!r}; known: {', '.join(OPS)}")
    check_finite(msg)
    return rid, op


def check_finite(msg: dict) -> None:
    """Reject a request holding NaN or an infinity anywhere (walked without recursion, so a deeply
    nested message cannot exhaust the stack)."""
    stack: list[tuple[str, Any]] = [("", msg)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, float):
            if not math.isfinite(value):
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"'{path}' is {value!r}: numbers must be finite")
        elif isinstance(value, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(value))


def session_id(msg: dict, name: str = "session") -> str:
    """A session id field, checked to have the form this backend issues before anything uses it."""
    sid = field(msg, name, str)
    if not SESSION_ID.fullmatch(sid):
        shown = sid if len(sid) <= 40 else sid[:40] + "…"
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{shown!r} is not a session id (32 hex digits, as `open` returns)")
    return sid


# ---------------------------------------------------------------------------- transport

def default_address() -> str:
    """Where the daemon listens unless told otherwise: `ANYCOST_ADDRESS`, else on Linux and macOS a
    Unix socket in the user's private runtime folder (only this user can reach it), else loopback
    TCP (Windows)."""
    env = os.environ.get("ANYCOST_ADDRESS")
    if env:
        return env
    folder = runtime_dir()
    return TCP_DEFAULT if folder is None else f"ipc://{folder / SOCKET_NAME}"


def runtime_dir() -> Path | None:
    """The user's private folder for the daemon's socket: `$XDG_RUNTIME_DIR/anycost`, else
    `anycost-<uid>` in the temporary folder (per user on macOS); None where Unix sockets are not
    available (Windows)."""
    if sys.platform == "win32" or not hasattr(os, "getuid"):
        return None
    base = os.environ.get("XDG_RUNTIME_DIR")
    if base and os.path.isdir(base):
        return Path(base) / "anycost"
    return Path(tempfile.gettempdir()) / f"anycost-{os.getuid()}"


class EndpointError(ValueError):
    """An `ipc://` endpoint whose folder another user could reach or control, or a path too long."""


def ipc_path(address: str) -> Path | None:
    return Path(address[len("ipc://"):]) if address.startswith("ipc://") else None


def check_private_folder(folder: Path, create: bool = False) -> None:
    """The socket's folder must be a real folder (not a link) owned by this user, with no access
    for anyone else; `create` makes it (mode 0700) when missing; a missing one passes otherwise.
    Raises EndpointError: a folder another user made could hold their socket, listening in our place."""
    if create:
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as e:
            raise EndpointError(f"cannot create the socket folder {folder}: {e}") from None
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        return                                   # nothing listens there yet: connecting is harmless
    except OSError as e:
        raise EndpointError(f"cannot use the socket folder {folder}: {e}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise EndpointError(f"{folder} is not a folder (a link or a file): refusing to use it for the socket")
    if st.st_uid != os.getuid():
        raise EndpointError(f"the socket folder {folder} belongs to user id {st.st_uid}, not to you "
                            f"({os.getuid()}): refusing to use it; remove it or set another address")
    if st.st_mode & 0o077:     # never made so by us (mkdir 0700): others may have put files in it
        raise EndpointError(f"the socket folder {folder} is open to other users "
                            f"(mode {stat.S_IMODE(st.st_mode):o}): check what is in it, then `chmod 700 {folder}`")


def check_endpoint(address: str, create: bool = False) -> None:
    """For an `ipc://` address, check (or with `create`, make) its private folder; others pass."""
    path = ipc_path(address)
    if path is None:
        return
    if len(os.fsencode(str(path))) > 100:       # sockaddr_un holds 104-108 bytes with the NUL
        raise EndpointError(f"the socket path {path} is too long for a Unix socket (100 bytes at most)")
    check_private_folder(path.parent, create=create)


def is_loopback(address: str) -> bool:
    """tcp to 127.0.0.0/8, ::1 or localhost, or a local transport (ipc, inproc)."""
    if address.startswith(("ipc://", "inproc://")):
        return True
    if not address.startswith("tcp://"):
        return False
    host = address[len("tcp://"):].rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


# ------------------------------------------------------------------------------- images

@dataclass(frozen=True)
class Image:
    """Raw 8-bit pixels, row-major, top row first, channels interleaved."""
    w: int
    h: int
    mode: str      # "RGB8" | "RGBA8"
    data: bytes

    def to_dict(self) -> dict:
        return {"w": self.w, "h": self.h, "mode": self.mode, "data": self.data}

    @classmethod
    def from_dict(cls, d: Any, max_pixels: int | None = None, name: str = "image") -> "Image":
        if not isinstance(d, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"'{name}' must be a map with w, h, mode, data")
        w, h = field(d, "w", int), field(d, "h", int)
        mode, data = field(d, "mode", str), field(d, "data", bytes)
        if mode not in IMAGE_MODES:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{name}: mode must be one of {', '.join(IMAGE_MODES)}, got {mode!r}")
        if w < 1 or h < 1:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name}: size must be positive, got {w}x{h}")
        if max_pixels is not None and w * h > max_pixels:
            raise ProtocolError(ErrorCode.TOO_LARGE, f"{name}: {w}x{h} is over the limit of {max_pixels} pixels")
        expected = w * h * IMAGE_MODES[mode]
        if len(data) != expected:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name}: {len(data)} bytes do not match {w}x{h} {mode} "
                                             f"({expected} bytes)")
        return cls(w, h, mode, data)


# ------------------------------------------------------------------------------ requests
# One record per request that carries fields: `fields()` is what a client sends, `from_message`
# what the daemon reads, with every check of docs/protocol.md's tables made there, in one place.
# What needs the model or the session (its directions, the model's name) is checked by the daemon.

MAX_STEPS = 2000
MAX_TIME_LIMIT_S = 3600.0
MAX_OUTPUT_SIDE = 16384              # with the area bound: no 1 x 67M strip that only the resampler would choke on
MAX_OUTPUT_PIXELS = 8192 * 8192
MAX_SUPERSAMPLE = 4
Size = tuple[int, int]


@dataclass(frozen=True)
class OpenRequest:
    """`open`: project an image (or a region of it) and start a session."""
    image: Image
    model: str | None = None           # None: the daemon's default model
    steps: int | None = None           # None: the daemon's default (`serve --steps`)
    align: bool = False                # "auto": find and align the face; else the region as it is
    face: int | None = None            # with align: which face (0 = the largest)
    preview_every: int | None = None   # a preview in every N-th progress message (the daemon: 10)
    region: tuple[int, int, int, int] | None = None   # None: the whole image
    time_limit_s: float | None = None  # None: 120 s

    def fields(self) -> dict:
        out: dict[str, Any] = {"image": self.image.to_dict(),
                               "align": ALIGN_MODES[1] if self.align else ALIGN_MODES[0]}
        for name in ("model", "steps", "preview_every", "time_limit_s"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        if self.region is not None:
            out["region"] = list(self.region)
        if self.align and self.face is not None:
            out["face"] = self.face
        return out

    @classmethod
    def from_message(cls, msg: dict, max_pixels: int | None = None) -> OpenRequest:
        image = Image.from_dict(field(msg, "image", dict), max_pixels)
        steps = field(msg, "steps", int, required=False)
        if steps is not None and not 0 <= steps <= MAX_STEPS:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"'steps' must be in 0..{MAX_STEPS}, got {steps}")
        time_limit = field(msg, "time_limit_s", float, required=False)
        if time_limit is not None and not 0 < time_limit <= MAX_TIME_LIMIT_S:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"'time_limit_s' must be in (0, {MAX_TIME_LIMIT_S:g}], got {time_limit}")
        align = field(msg, "align", str, required=False, default=ALIGN_MODES[0])
        if align not in ALIGN_MODES:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"'align' must be one of {', '.join(ALIGN_MODES)}, got {align!r}")
        preview_every = field(msg, "preview_every", int, required=False)
        return cls(image, field(msg, "model", str, required=False), steps, align == ALIGN_MODES[1],
                   field(msg, "face", int, required=False),
                   None if preview_every is None else max(1, preview_every),
                   region(msg, image.w, image.h) if msg.get("region") is not None else None, time_limit)


@dataclass(frozen=True)
class EditRequest:
    """`edit`: a preview of the session with these slider values, within a latency budget."""
    session: str
    values: dict[str, float]
    budget_ms: float = 100.0
    size: Size | None = None           # None: the sub-generator's own size

    def fields(self) -> dict:
        out: dict[str, Any] = {"session": self.session, "values": dict(self.values), "budget_ms": self.budget_ms}
        if self.size is not None:
            out["size"] = list(self.size)
        return out

    @classmethod
    def from_message(cls, msg: dict) -> EditRequest:
        budget = field(msg, "budget_ms", float, required=False, default=100.0)
        if budget <= 0:
            raise ProtocolError(ErrorCode.BAD_REQUEST, "'budget_ms' must be positive")
        return cls(session_id(msg), slider_values(msg), budget, output_size(msg))


@dataclass(frozen=True)
class RenderRequest:
    """`render`: the final image of the session with these values (Apply)."""
    session: str
    values: dict[str, float]
    size: Size | None = None           # None: the region's size
    supersample: int = 1               # CREPS models only: s x s samples per pixel

    def fields(self) -> dict:
        out: dict[str, Any] = {"session": self.session, "values": dict(self.values)}
        if self.size is not None:
            out["size"] = list(self.size)
        if self.supersample != 1:
            out["supersample"] = self.supersample
        return out

    @classmethod
    def from_message(cls, msg: dict) -> RenderRequest:
        supersample = field(msg, "supersample", int, required=False, default=1)
        if not 1 <= supersample <= MAX_SUPERSAMPLE:
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"'supersample' must be in 1..{MAX_SUPERSAMPLE}, got {supersample}")
        return cls(session_id(msg), slider_values(msg), output_size(msg), supersample)


@dataclass(frozen=True)
class CancelRequest:
    """`cancel`: stop a queued or running request of this client (its id)."""
    target: int | str

    def fields(self) -> dict:
        return {"target": self.target}

    @classmethod
    def from_message(cls, msg: dict) -> CancelRequest:
        return cls(field(msg, "target", (int, str)))


@dataclass(frozen=True)
class CloseRequest:
    """`close`: end a session and free its memory."""
    session: str

    def fields(self) -> dict:
        return {"session": self.session}

    @classmethod
    def from_message(cls, msg: dict) -> CloseRequest:
        return cls(session_id(msg))


# ------------------------------------------------------------------------------- replies
# The results clients read field by field, as records: the daemon builds them (`to_dict`), clients
# read them (`from_dict`, tolerant of fields an older daemon leaves out).

@dataclass(frozen=True)
class DirectionInfo:
    """A slider the session offers (docs/protocol.md, "Direction")."""
    name: str
    min: float
    max: float
    default: float = 0.0
    source: str = "model"           # "model", "official-boundary" or "pca"

    def to_dict(self) -> dict:
        return {"name": self.name, "min": self.min, "max": self.max, "default": self.default, "source": self.source}

    @classmethod
    def from_dict(cls, d: dict) -> DirectionInfo:
        return cls(str(d["name"]), float(d["min"]), float(d["max"]), float(d.get("default", 0.0)),
                   str(d.get("source", "model")))


@dataclass(frozen=True)
class OpenResult:
    """`open`'s result: the new session and how well the image was reproduced."""
    session: str
    region: tuple[int, int, int, int]  # what later images cover, in the request image's pixels
    reconstruction: Image
    directions: tuple[DirectionInfo, ...]
    model: str = ""
    metrics: dict = dataclasses.field(default_factory=dict)      # psnr, the perceptual distance, configs, steps, ...
    alignment: dict | None = None      # the faces found and the one aligned (docs/protocol.md, `open`)
    alignment_note: str = ""           # why `align: "auto"` projected the region as it is

    def to_dict(self) -> dict:
        out = {"session": self.session, "model": self.model, "region": list(self.region),
               "reconstruction": self.reconstruction.to_dict(), "metrics": self.metrics,
               "directions": [d.to_dict() for d in self.directions], "alignment": self.alignment}
        if self.alignment_note:
            out["alignment_note"] = self.alignment_note
        return out

    @classmethod
    def from_dict(cls, d: dict, fallback_region: tuple[int, int, int, int] = (0, 0, 0, 0)) -> OpenResult:
        r = d.get("region") or fallback_region
        return cls(str(d["session"]), (int(r[0]), int(r[1]), int(r[2]), int(r[3])),
                   Image.from_dict(d["reconstruction"], name="reconstruction"),
                   tuple(DirectionInfo.from_dict(x) for x in d.get("directions") or ()), str(d.get("model", "")),
                   dict(d.get("metrics") or {}), d.get("alignment") or None, str(d.get("alignment_note") or ""))


@dataclass(frozen=True)
class RenderResult:
    """The result of `edit` and `render`, and the data of a `refined` reply."""
    session: str
    image: Image
    render_ms: float = 0.0
    config: dict = dataclasses.field(default_factory=dict)       # ratio, resolution, full (docs/protocol.md, "Config")
    refined: bool = False
    values: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"session": self.session, "image": self.image.to_dict(), "render_ms": self.render_ms,
                "config": self.config, "refined": self.refined, "values": self.values}

    @classmethod
    def from_dict(cls, d: dict) -> RenderResult:
        return cls(str(d.get("session", "")), Image.from_dict(d["image"]),
                   float(d.get("render_ms", 0.0)), dict(d.get("config") or {}), bool(d.get("refined", False)),
                   {str(k): float(v) for k, v in (d.get("values") or {}).items()})


@dataclass(frozen=True)
class Hello:
    """`hello`'s result: who answers and whether it is ready (it measures its previews first)."""
    version: str
    protocol: int
    state: str                         # "ready" or "calibrating"
    models: tuple[str, ...] = ()
    default_model: str = ""
    perceptual: str = ""               # the projection's perceptual distance (lpips-vgg, or its fallback)
    warnings: tuple[str, ...] = ()     # things the user should know (a fallback loss, untrained models)
    device: str = "cpu"
    threads: int = 0
    limits: dict = dataclasses.field(default_factory=dict)   # max_image_pixels, max_message_bytes, ...
    server: str = "anycost-backend"

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def to_dict(self) -> dict:
        return {"server": self.server, "version": self.version, "protocol": self.protocol, "state": self.state,
                "models": list(self.models), "default_model": self.default_model, "perceptual": self.perceptual,
                "warnings": list(self.warnings), "device": self.device, "threads": self.threads,
                "limits": dict(self.limits)}

    @classmethod
    def from_dict(cls, d: dict) -> Hello:
        return cls(str(d.get("version", "")), int(d.get("protocol", 0)), str(d.get("state", "")),
                   tuple(str(m) for m in d.get("models") or ()), str(d.get("default_model") or ""),
                   str(d.get("perceptual") or ""), tuple(str(w) for w in d.get("warnings") or ()),
                   str(d.get("device") or "cpu"), int(d.get("threads") or 0), dict(d.get("limits") or {}),
                   str(d.get("server") or "anycost-backend"))


@dataclass(frozen=True)
class ModelInfo:
    """One served model, as `models` lists it (docs/protocol.md, `models`)."""
    name: str
    resolution: int
    kind: str = "anycost"              # "anycost" or "creps" (any output size)
    style_dim: int = 0
    n_style: int = 0
    untrained: bool = False
    has_encoder: bool = False
    any_size: bool = False
    w_space: str | None = None         # the model whose W space this one shares (CREPS next to its twin)
    alignment: str | None = None       # the face crop rule it declares, None: none
    licence: str = ""
    directions: tuple[DirectionInfo, ...] = ()
    configs: tuple[dict, ...] | None = None   # the sub-generators ranked by measured latency

    def to_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "resolution": self.resolution, "style_dim": self.style_dim,
                "n_style": self.n_style, "untrained": self.untrained, "has_encoder": self.has_encoder,
                "any_size": self.any_size, "w_space": self.w_space, "alignment": self.alignment,
                "licence": self.licence, "directions": [d.to_dict() for d in self.directions],
                "configs": None if self.configs is None else [dict(c) for c in self.configs]}

    @classmethod
    def from_dict(cls, d: dict) -> ModelInfo:
        configs = d.get("configs")
        return cls(str(d["name"]), int(d["resolution"]), str(d.get("kind") or "anycost"), int(d.get("style_dim") or 0),
                   int(d.get("n_style") or 0), bool(d.get("untrained")), bool(d.get("has_encoder")),
                   bool(d.get("any_size")), d.get("w_space"), d.get("alignment"), str(d.get("licence") or ""),
                   tuple(DirectionInfo.from_dict(x) for x in d.get("directions") or ()),
                   None if configs is None else tuple(dict(c) for c in configs))


@dataclass(frozen=True)
class ModelsResult:
    """`models`' result: every served model and the one `open` uses when none is named."""
    models: tuple[ModelInfo, ...]
    default_model: str = ""

    def to_dict(self) -> dict:
        return {"models": [m.to_dict() for m in self.models], "default_model": self.default_model}

    @classmethod
    def from_dict(cls, d: dict) -> ModelsResult:
        return cls(tuple(ModelInfo.from_dict(m) for m in d.get("models") or ()), str(d.get("default_model") or ""))


@dataclass(frozen=True)
class Stats:
    """`stats`' result: what the daemon has done since it started."""
    uptime_s: float
    requests: dict[str, int]           # op -> requests answered
    errors: dict[str, int]             # error code -> errors answered
    queued: int = 0
    running: str | None = None         # the op being computed now
    sessions: int = 0
    edit_render_ms: dict = dataclasses.field(default_factory=dict)   # n, median, p95 of edit renders

    def to_dict(self) -> dict:
        return {"uptime_s": self.uptime_s, "requests": dict(self.requests), "errors": dict(self.errors),
                "queued": self.queued, "running": self.running, "sessions": self.sessions,
                "edit_render_ms": dict(self.edit_render_ms)}

    @classmethod
    def from_dict(cls, d: dict) -> Stats:
        return cls(float(d.get("uptime_s", 0.0)), {str(k): int(v) for k, v in (d.get("requests") or {}).items()},
                   {str(k): int(v) for k, v in (d.get("errors") or {}).items()}, int(d.get("queued") or 0),
                   d.get("running"), int(d.get("sessions") or 0), dict(d.get("edit_render_ms") or {}))


@dataclass(frozen=True)
class CancelResult:
    """`cancel`'s result: where the target was ("pending", "running" or "unknown")."""
    target: int | str
    state: str
    cancelled: bool

    def to_dict(self) -> dict:
        return {"target": self.target, "state": self.state, "cancelled": self.cancelled}

    @classmethod
    def from_dict(cls, d: dict) -> CancelResult:
        return cls(d["target"], str(d["state"]), bool(d["cancelled"]))


@dataclass(frozen=True)
class CloseResult:
    """`close`'s result."""
    session: str
    closed: bool = True

    def to_dict(self) -> dict:
        return {"session": self.session, "closed": self.closed}

    @classmethod
    def from_dict(cls, d: dict) -> CloseResult:
        return cls(str(d["session"]), bool(d.get("closed", True)))


@dataclass(frozen=True)
class ShutdownResult:
    """`shutdown`'s result: the daemon stops after answering."""
    stopping: bool = True

    def to_dict(self) -> dict:
        return {"stopping": self.stopping}

    @classmethod
    def from_dict(cls, d: dict) -> ShutdownResult:
        return cls(bool(d.get("stopping", True)))


# every op's request record (None: the op takes no fields) and result record
REQUESTS: dict[str, type | None] = {"hello": None, "models": None, "open": OpenRequest, "edit": EditRequest,
                                    "render": RenderRequest, "cancel": CancelRequest, "close": CloseRequest,
                                    "stats": None, "shutdown": None}
RESULTS: dict[str, type] = {"hello": Hello, "models": ModelsResult, "open": OpenResult, "edit": RenderResult,
                            "render": RenderResult, "cancel": CancelResult, "close": CloseResult, "stats": Stats,
                            "shutdown": ShutdownResult}


def slider_values(msg: dict) -> dict[str, float]:
    """`values`: direction name -> a number (which directions exist is the model's to say)."""
    values = field(msg, "values", dict, required=False, default={})
    out = {}
    for k, v in values.items():
        if not isinstance(k, str) or not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"value of {k!r} must be a number")
        out[k] = float(v)
    return out


def output_size(msg: dict) -> Size | None:
    """`size`: [w, h] positive integers within the output limits, or None when absent."""
    size = field(msg, "size", list, required=False)
    if size is None:
        return None
    if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
        raise ProtocolError(ErrorCode.BAD_REQUEST, "'size' must be [w, h] positive integers")
    if max(size) > MAX_OUTPUT_SIDE or size[0] * size[1] > MAX_OUTPUT_PIXELS:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"'size' {size} is over the limit ({MAX_OUTPUT_SIDE} px a "
                                                 f"side, {MAX_OUTPUT_PIXELS} pixels in all)")
    return size[0], size[1]


def region(msg: dict, width: int, height: int, name: str = "region") -> tuple[int, int, int, int]:
    """Optional [x, y, w, h] inside a width x height image; default the whole image."""
    r = field(msg, name, list, required=False)
    if r is None:
        return 0, 0, width, height
    if len(r) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in r):
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"'{name}' must be [x, y, w, h] integers")
    x, y, w, h = r
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"{name} {r} lies outside the {width}x{height} image")
    return x, y, w, h
