"""The compute side of the daemon: models, projection, edits and renders. Runs on one worker thread."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from PIL import Image as PILImage

from anycost.core.imaging import decode_image, encode_image, encode_pixels, from_pil
from anycost.editing.directions import apply_edit, load_directions
from anycost.editing.faces.detection import FaceDetector, FacesUnavailable
from anycost.editing.faces.photo import AlignedFace, Blend, FaceError, ProjectionTarget, projection_target
from anycost.editing.faces.recipes import model_recipe
from anycost.editing.perceptual import Perceptual
from anycost.editing.projection import ProjectionCancelled, ProjectionOptions
from anycost.formats.checkpoints import Model
from anycost.protocol import messages as P
from anycost.service.calibration import SubConfig
from anycost.service.served_models import ServedAnycost, ServedCreps, ServedModel
from anycost.service.sessions import Session, SessionStore

log = logging.getLogger("anycost.backend")

Emit = Callable[[dict], None]
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
                 refine_budget_ms: float = 1000.0, default_steps: int = 100, lowp_previews: bool = True):
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
            self.models[name] = kind(name, m, load_directions(m), lowp_previews=lowp_previews)
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
        req = P.OpenRequest.from_message(job.msg, self.max_pixels)
        image = req.image
        x, y, w, h = req.region or (0, 0, image.w, image.h)
        sm = self.served(req.model)
        steps = self.default_steps if req.steps is None else req.steps
        time_limit = 120.0 if req.time_limit_s is None else req.time_limit_s
        preview_every = 10 if req.preview_every is None else req.preview_every
        recipe = model_recipe(sm.model.metadata) if req.align else None
        found = self.target(decode_image(image), (x, y, w, h), sm.resolution, recipe, req.face)
        aligned, original, blend = found.aligned, found.original, found.blend()
        x, y, w, h = found.rect
        target = from_pil(found.crop)[None].to(self.device)

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
        note = (f"model {sm.name} declares no face alignment: the region was projected as is"
                if req.align and aligned is None else "")
        return P.OpenResult(session.id, (x, y, w, h), recon,
                            tuple(P.DirectionInfo(**d.describe()) for d in sm.directions.values()), sm.name,
                            metrics, None if aligned is None else aligned.describe(), note).to_dict()

    def target(self, photo: PILImage.Image, region, resolution: int, recipe, face: int | None) -> ProjectionTarget:
        try:
            if recipe is not None and self._detector is None:
                self._detector = FaceDetector()
            return projection_target(photo, region, resolution, recipe, self._detector, face)
        except FacesUnavailable as e:
            raise P.ProtocolError(P.ErrorCode.UNAVAILABLE, str(e)) from None
        except FaceError as e:
            raise P.ProtocolError(P.ErrorCode.NO_FACE, str(e)) from None

    def session_and_model(self, sid: str, values: dict[str, float]) -> tuple[Session, ServedModel]:
        """The session, its model, and the values checked against the model's directions."""
        s = self.sessions.get(sid)
        sm = self.served(s.model)
        for k in values:
            if k not in sm.directions:
                raise P.ProtocolError(P.ErrorCode.NOT_FOUND, f"model {sm.name} has no direction {k!r}")
        return s, sm

    def edit(self, job: Job, emit: Emit) -> dict:
        req = P.EditRequest.from_message(job.msg)
        s, sm = self.session_and_model(req.session, req.values)
        values, budget, size = req.values, req.budget_ms, req.size
        self.sessions.set_values(s, values)
        if s.align is not None:       # the face is blended back after the render: that time is the budget's too
            budget = max(1.0, budget - self.blend(s).last_ms)
        return self._render(sm, s, values, sm.preview_config(budget), size, refined=False)

    def refine(self, job: Job) -> dict:
        """A better preview of the last edit, sent unasked once the user pauses."""
        req = P.EditRequest.from_message(job.msg)
        s, sm = self.session_and_model(req.session, req.values)
        return self._render(sm, s, req.values, sm.preview_config(self.refine_budget_ms), req.size, refined=True)

    def render(self, job: Job, emit: Emit) -> dict:
        """The final image: the full generator (resized to `size`), or a CREPS model drawn at exactly
        `size`, tile by tile, with `progress` messages ({tile, tiles}) and cancellable between tiles."""
        req = P.RenderRequest.from_message(job.msg)
        s, sm = self.session_and_model(req.session, req.values)
        values, supersample = req.values, req.supersample
        size = req.size or (s.region[2], s.region[3])
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
        return P.RenderResult(s.id, image, round(render_ms, 2), sm.describe_config(config, drawn), refined,
                              values).to_dict()

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
