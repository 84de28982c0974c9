"""The compute side of the daemon: models, projection, edits and renders. Runs on one worker thread."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image as PILImage

from .. import protocol as P
from ..checkpoints import Model
from ..editing import apply_edit, load_directions
from ..faces.detection import FaceDetector, FacesUnavailable
from ..faces.photo import AlignedFace, Blend, FaceError, align_photo
from ..faces.recipes import model_recipe
from ..imaging import decode_image, encode_image, encode_pixels, from_pil
from ..perceptual import Perceptual
from ..projection import ProjectionCancelled, ProjectionOptions
from .calibration import SubConfig
from .served_models import ServedAnycost, ServedCreps, ServedModel
from .sessions import Session, SessionStore

log = logging.getLogger("anycost.backend")

Emit = Callable[[dict], None]
MAX_STEPS = 2000
MAX_OUTPUT_PIXELS = 8192 * 8192
MAX_OUTPUT_SIDE = 16384  # with the area bound: no 1 x 67M strip that only the resampler would choke on
MAX_TIME_LIMIT_S = 3600.0
MAX_SUPERSAMPLE = 4
KEPT_BLENDS = 8          # sessions whose face mask and warp grid stay in memory


@dataclass
class Job:
    identity: bytes
    id: object
    op: str
    msg: dict
    session: str | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    received: float = field(default_factory=time.monotonic)


class Engine:
    def __init__(self, models: dict[str, Model], sessions: SessionStore, perceptual: Perceptual,
                 state: Path, device: str = "cpu", max_pixels: int = 4096 * 4096,
                 refine_budget_ms: float = 1000.0, default_steps: int = 100):
        self.sessions = sessions
        self.perceptual = perceptual
        self.state = state
        self.device = device
        self.max_pixels = max_pixels
        self.refine_budget_ms = refine_budget_ms
        self.default_steps = default_steps
        self.models: dict[str, ServedModel] = {}
        for name, m in models.items():
            m.generator.to(device).eval().requires_grad_(False)
            kind = ServedCreps if m.kind == "creps" else ServedAnycost
            self.models[name] = kind(name, m, load_directions(m))
        self.default_model = next(iter(self.models))
        self.ready = threading.Event()
        self._detector: FaceDetector | None = None       # made on first use, on the worker thread
        self._blends: dict[str, Blend] = {}               # session id -> Blend, most recent last

    # ------------------------------------------------------------------ start-up

    def calibrate_all(self) -> None:
        for sm in self.models.values():
            sm.calibrate(self.state, log=log.info)
        self.ready.set()

    def served(self, name: str | None) -> ServedModel:
        sm = self.models.get(self.default_model if name is None else name)
        if sm is None:
            raise P.ProtocolError(P.ErrorCode.NOT_FOUND,
                                  f"model {name!r} is not served; served: {', '.join(self.models)}")
        return sm

    # ---------------------------------------------------------------------- ops

    def open(self, job: Job, emit: Emit) -> dict:
        msg = job.msg
        image = P.Image.from_dict(P.field(msg, "image", dict), self.max_pixels)
        x, y, w, h = P.region(msg, image.w, image.h)
        sm = self.served(P.field(msg, "model", str, required=False))
        steps = P.field(msg, "steps", int, required=False, default=self.default_steps)
        if not 0 <= steps <= MAX_STEPS:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, f"'steps' must be in 0..{MAX_STEPS}, got {steps}")
        time_limit = P.field(msg, "time_limit_s", float, required=False, default=120.0)
        if not 0 < time_limit <= MAX_TIME_LIMIT_S:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST,
                                  f"'time_limit_s' must be in (0, {MAX_TIME_LIMIT_S:g}], got {time_limit}")
        preview_every = max(1, P.field(msg, "preview_every", int, required=False, default=10))
        align = P.field(msg, "align", str, required=False, default="none")
        if align not in P.ALIGN_MODES:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST,
                                  f"'align' must be one of {', '.join(P.ALIGN_MODES)}, got {align!r}")
        face_index = P.field(msg, "face", int, required=False)
        photo = decode_image(image)
        recipe = model_recipe(sm.model.metadata) if align == "auto" else None
        photo_px = np.asarray(photo) if recipe else None
        # (photo_px is set whenever recipe is)
        aligned = (self.align(photo_px, recipe, sm.resolution, (x, y, w, h), face_index)  # type: ignore[arg-type]
                   if recipe else None)
        res = sm.resolution
        original = blend = None
        if aligned is None:
            # PIL sets its filter names (Image.LANCZOS, ...) in a loop: mypy cannot see them
            crop = photo.crop((x, y, x + w, y + h)).resize((res, res), PILImage.LANCZOS)  # type: ignore[attr-defined]
        else:
            # an alignment was found in these pixels, and align_photo made its crop
            assert photo_px is not None and aligned.crop is not None
            crop = PILImage.fromarray(aligned.crop)
            x, y, w, h = aligned.rect
            original = np.ascontiguousarray(photo_px[y:y + h, x:x + w])
            blend = Blend(aligned, original)
        target = from_pil(crop)[None].to(self.device)

        def progress(step, total, loss, img):
            out = {"step": step, "steps": total, "loss": round(loss, 5)}
            if img is not None and blend is None:     # the reconstruction so far, at model resolution
                out["preview"] = encode_image(img).to_dict()
            elif img is not None:                     # an aligned face: already blended into its region
                out["preview"] = encode_pixels(blend(img)).to_dict()
                out["region"] = [x, y, w, h]
            emit(P.reply(job.id, P.PROGRESS, data=out))

        opts = ProjectionOptions(steps=steps, time_limit_s=time_limit, preview_every=preview_every)
        try:
            result = sm.project(target, self.perceptual, opts, progress=progress, should_stop=job.cancel.is_set)
        except ProjectionCancelled:
            raise P.ProtocolError(P.ErrorCode.CANCELLED, "projection cancelled") from None
        metrics = dict(result.metrics, steps=result.steps, seconds=round(result.seconds, 3), stopped=result.stopped,
                       perceptual=self.perceptual.name)
        session = self.sessions.create(sm.name, result.wplus, (x, y, w, h), (image.w, image.h), metrics,
                                       align=None if aligned is None else aligned.record(), original=original)
        if blend is not None:
            self._keep_blend(session.id, blend)
        with torch.inference_mode():     # an any-size model shows it at preview size: its final can be large
            config = sm.preview_config(self.refine_budget_ms) if sm.any_size else None
            recon = self.draw(sm, session, result.wplus.to(self.device), config, (w, h))
        reply = {"session": session.id, "model": sm.name, "region": [x, y, w, h],
                 "reconstruction": recon.to_dict(), "metrics": metrics,
                 "directions": [d.describe() for d in sm.directions.values()], "alignment": None}
        if aligned is not None:
            reply["alignment"] = aligned.describe()
        elif align == "auto":
            reply["alignment_note"] = f"model {sm.name} declares no face alignment: the region was projected as is"
        return reply

    def align(self, photo: np.ndarray, recipe, resolution: int, bounds, face: int | None) -> AlignedFace:
        try:
            if self._detector is None:
                self._detector = FaceDetector()
            return align_photo(photo, recipe, resolution, self._detector, bounds, face)
        except FacesUnavailable as e:
            raise P.ProtocolError(P.ErrorCode.UNAVAILABLE, str(e)) from None
        except FaceError as e:
            raise P.ProtocolError(P.ErrorCode.NO_FACE, str(e)) from None

    def session_and_values(self, msg: dict) -> tuple[Session, ServedModel, dict]:
        s = self.sessions.get(P.session_id(msg))
        sm = self.served(s.model)
        values = P.field(msg, "values", dict, required=False, default={})
        clean = {}
        for k, v in values.items():
            if k not in sm.directions:
                raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"model {sm.name} has no direction {k!r}")
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, f"value of {k!r} must be a number")
            clean[k] = float(v)
        return s, sm, clean

    def output_size(self, msg: dict, default: tuple[int, int] | None) -> tuple[int, int] | None:
        size = P.field(msg, "size", list, required=False)
        if size is None:
            return default
        if len(size) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size):
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, "'size' must be [w, h] positive integers")
        if max(size) > MAX_OUTPUT_SIDE or size[0] * size[1] > MAX_OUTPUT_PIXELS:
            raise P.ProtocolError(P.ErrorCode.TOO_LARGE, f"'size' {size} is over the limit ({MAX_OUTPUT_SIDE} px a "
                                                         f"side, {MAX_OUTPUT_PIXELS} pixels in all)")
        return size[0], size[1]

    def edit(self, job: Job, emit: Emit) -> dict:
        s, sm, values = self.session_and_values(job.msg)
        budget = P.field(job.msg, "budget_ms", float, required=False, default=100.0)
        if budget <= 0:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST, "'budget_ms' must be positive")
        size = self.output_size(job.msg, None)
        self.sessions.set_values(s, values)
        if s.align is not None:       # the face is blended back after the render: that time is the budget's too
            budget = max(1.0, budget - self.blend(s).last_ms)
        return self._render(sm, s, values, sm.preview_config(budget), size, refined=False)

    def refine(self, job: Job) -> dict:
        """A better preview of the last edit, sent unasked once the user pauses."""
        s, sm, values = self.session_and_values(job.msg)
        size = self.output_size(job.msg, None)
        return self._render(sm, s, values, sm.preview_config(self.refine_budget_ms), size, refined=True)

    def render(self, job: Job, emit: Emit) -> dict:
        """The final image: the full generator (resized to `size`), or a CREPS model drawn at exactly
        `size`, tile by tile, with `progress` messages ({tile, tiles}) and cancellable between tiles."""
        s, sm, values = self.session_and_values(job.msg)
        size = self.output_size(job.msg, (s.region[2], s.region[3]))
        supersample = P.field(job.msg, "supersample", int, required=False, default=1)
        if not 1 <= supersample <= MAX_SUPERSAMPLE:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST,
                                  f"'supersample' must be in 1..{MAX_SUPERSAMPLE}, got {supersample}")
        if supersample > 1 and not sm.any_size:
            raise P.ProtocolError(P.ErrorCode.BAD_REQUEST,
                                  f"'supersample' needs a CREPS model; {sm.name} is an anycost generator")
        self.sessions.set_values(s, values)

        def progress(done: int, total: int) -> None:
            if job.cancel.is_set():
                raise P.ProtocolError(P.ErrorCode.CANCELLED, "render cancelled")
            emit(P.reply(job.id, P.PROGRESS, data={"tile": done, "tiles": total}))

        return self._render(sm, s, values, None, size, refined=False, supersample=supersample, progress=progress)

    def _render(self, sm: ServedModel, s: Session, values: dict, config: SubConfig | None, size, refined: bool,
                supersample: int = 1, progress=None) -> dict:
        t0 = time.perf_counter()
        assert s.wplus is not None                         # a stored session always has its W+
        with torch.inference_mode():
            wplus = apply_edit(s.wplus.to(self.device), sm.directions, values)
            image = self.draw(sm, s, wplus, config, size, supersample, progress)
        render_ms = (time.perf_counter() - t0) * 1000
        drawn = self.face_size(s) if s.align is not None else size
        return {"session": s.id, "image": image.to_dict(), "render_ms": round(render_ms, 2),
                "config": sm.describe_config(config, drawn), "refined": refined, "values": values}

    def draw(self, sm: ServedModel, s: Session, wplus: torch.Tensor, config: SubConfig | None, size,
             supersample: int = 1, progress=None) -> P.Image:
        """The session's image: a plain crop's render resized to `size` (default the region's), or an
        aligned face's render put back into the photo's region (`size` does not apply)."""
        if s.align is None:
            # without a size, a CREPS preview still takes the selection's aspect
            img = sm.draw(wplus, config, size or (s.region[2], s.region[3]), supersample, progress, session=s.id)
            return encode_image(img, size)
        img = sm.draw(wplus, config, self.face_size(s), supersample, progress, session=s.id)
        return encode_pixels(self.blend(s)(img))

    def face_size(self, s: Session) -> tuple[int, int]:
        """An aligned face's square at its size in the photo: what an any-size model draws."""
        side = max(1, round(self.blend(s).face.alignment.face_side))
        return side, side

    def blend(self, s: Session) -> Blend:
        assert s.align is not None                         # an aligned session (the callers check)
        # an aligned session keeps the photo's pixels under its region (arg-type: s.original)
        blend = self._blends.pop(s.id, None) or Blend(AlignedFace.from_record(s.align),
                                                      s.original)  # type: ignore[arg-type]
        return self._keep_blend(s.id, blend)

    def _keep_blend(self, sid: str, blend: Blend) -> Blend:
        self._blends[sid] = blend                     # most recently used last
        while len(self._blends) > KEPT_BLENDS:
            self._blends.pop(next(iter(self._blends)))
        return blend
