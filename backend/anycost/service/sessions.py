"""Editing sessions, kept on disk so that a restarted daemon resumes them.

Each session is `<id>.json` (model, region, slider values, fit figures, the face alignment) plus
`<id>.safetensors` (the projected W+) and, for an aligned face, `<id>.npy` (the photo's pixels under
the region, which renders are blended into). The number of sessions is bounded; the least recently used is evicted
and its id remembered, so a client asking for it gets a clear "evicted" answer.

An id is 128 random bits (32 hex digits): whoever knows it may use the session. No path is ever
built from an id that does not have that form, and the folder is private to the user (0700): it
holds the photos' pixels.
"""
from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from anycost.protocol import messages as P

MAX_EVICTED_REMEMBERED = 1000


@dataclass
class Session:
    id: str
    model: str
    region: list[int]                 # [x, y, w, h] in the source image
    image_size: list[int]             # [W, H] of the source image
    values: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    created: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.time)
    align: dict | None = None         # anycost.editing.faces.photo.AlignedFace.record(); None: a plain crop
    wplus: torch.Tensor | None = field(default=None, repr=False)   # [1, n_style, D], never edited in place
    original: np.ndarray | None = field(default=None, repr=False)  # uint8 [h, w, 3] under `region` (aligned)

    def meta(self) -> dict:
        d = asdict(self)
        d.pop("wplus")
        d.pop("original")
        return d


class SessionStore:
    def __init__(self, folder: Path, max_sessions: int = 64):
        self.folder = Path(folder)
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.folder.chmod(0o700)
        self.max_sessions = max_sessions
        self._lock = threading.Lock()
        self._cache: dict[str, Session] = {}
        self._evicted_file = self.folder / "evicted.txt"

    # ---------------------------------------------------------------- public

    def create(self, model: str, wplus: torch.Tensor, region, image_size, metrics: dict, align: dict | None = None,
               original: np.ndarray | None = None) -> Session:
        s = Session(secrets.token_hex(16), model, list(region), list(image_size), {}, metrics, align=align,
                    wplus=wplus.detach().cpu().contiguous(), original=original)
        assert s.wplus is not None                   # just set
        with self._lock:
            save_file({"wplus": s.wplus}, str(self._path(s.id, ".safetensors")))
            if original is not None:
                np.save(self._path(s.id, ".npy"), original, allow_pickle=False)
            self._write_meta(s)
            self._cache[s.id] = s
            self._evict_over_limit()
        return s

    def get(self, sid: str) -> Session:
        with self._lock:
            s = self._cache.get(sid) or self._load(sid)
            s.last_used = time.time()
            self._cache[sid] = s
            return s

    def set_values(self, s: Session, values: dict) -> None:
        with self._lock:
            s.values = dict(values)
            s.last_used = time.time()
            self._write_meta(s)

    def close(self, sid: str) -> None:
        with self._lock:
            if sid not in self._cache and not self._path(sid, ".json").is_file():
                raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"unknown session {sid!r}")
            self._delete(sid)

    def count(self) -> int:
        with self._lock:
            return len(self._ids_on_disk())

    # --------------------------------------------------------------- private

    def _path(self, sid: str, suffix: str) -> Path:
        if not P.SESSION_ID.fullmatch(sid):
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, f"{sid[:40]!r} is not a session id")
        return self.folder / f"{sid}{suffix}"

    def _write_meta(self, s: Session) -> None:
        tmp = self._path(s.id, ".json.tmp")
        tmp.write_text(json.dumps(s.meta()))
        tmp.replace(self._path(s.id, ".json"))

    def _load(self, sid: str) -> Session:
        meta_path, w_path = self._path(sid, ".json"), self._path(sid, ".safetensors")
        if not meta_path.is_file() or not w_path.is_file():
            if sid in self._evicted():
                raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"session {sid} was evicted (the backend keeps the "
                                                   f"{self.max_sessions} most recently used); project again")
            raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"unknown session {sid!r}")
        meta = json.loads(meta_path.read_text())
        original = None
        if meta.get("align") is not None:
            try:
                original = np.load(self._path(sid, ".npy"), allow_pickle=False)
            except (OSError, ValueError):
                raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"session {sid}: its photo pixels are missing or damaged; "
                                                   "project again") from None
        return Session(**meta, wplus=load_file(str(w_path))["wplus"], original=original)

    def _ids_on_disk(self) -> list[str]:
        return [p.stem for p in self.folder.glob("*.json") if P.SESSION_ID.fullmatch(p.stem)]

    def _evict_over_limit(self) -> None:
        ids = self._ids_on_disk()
        if len(ids) <= self.max_sessions:
            return
        def last_used(sid):
            s = self._cache.get(sid)
            return s.last_used if s else self._path(sid, ".json").stat().st_mtime
        for sid in sorted(ids, key=last_used)[: len(ids) - self.max_sessions]:
            self._delete(sid)
            with open(self._evicted_file, "a") as f:
                f.write(sid + "\n")
        lines = self._evicted_file.read_text().split()
        if len(lines) > MAX_EVICTED_REMEMBERED:
            self._evicted_file.write_text("\n".join(lines[-MAX_EVICTED_REMEMBERED:]) + "\n")

    def _evicted(self) -> set[str]:
        try:
            return set(self._evicted_file.read_text().split())
        except OSError:
            return set()

    def _delete(self, sid: str) -> None:
        self._cache.pop(sid, None)
        for suffix in (".json", ".safetensors", ".npy"):
            self._path(sid, suffix).unlink(missing_ok=True)
