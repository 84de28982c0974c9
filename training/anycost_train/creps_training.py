"""`anycost-train creps`: the CREPS generator trained with the CREPS objective (non-saturating
logistic loss, lazy R1, path length, EMA) against the project's multi-resolution discriminator,
optionally distilled toward an anycost generator whose mapping network (W space) it shares.

CREPS draws a continuous image, so a training step renders the whole image at a resolution
sampled from `resolutions` (the pixel-extent grid: a coarse render is the box-downsampled fine
one), and the discriminator judges it at that resolution. With a `teacher` the mapping network is
the teacher's, frozen, and every step adds L1 + perceptual distance to the teacher's image of the
same W+: a latent projected and edited with the anycost model can then be rendered by CREPS at any
size. Single process or under torchrun; `--resume` continues exactly.
"""
from __future__ import annotations

import copy
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from anycost.core.imaging import grid, to_pil
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import downsample
from anycost.formats.creps import save_creps
from anycost.formats.registry import open_model
from anycost.models.config import GeneratorConfig
from anycost.models.creps import CrepsConfig, CrepsGenerator

from . import dist
from .config import CrepsTrainConfig
from .data import ImageFolder, ProceduralFaces
from .discriminator import MultiResDiscriminator
from .gan_steps import apply_loss, batch_of_step, update_ema
from .heldout import model_teacher
from .losses import d_logistic, g_nonsaturating, path_length, r1_penalty
from .run_loop import TrainingRun, set_learning_rates
from .teachers import TeacherSamples, open_teacher
from .trainer import command_line, git_commit


def discriminator_config(cfg: CrepsConfig) -> GeneratorConfig:
    """The discriminator's widths for a CREPS model: StyleGAN2's (half the CREPS line widths)."""
    channels = {r: max(1, min(cfg.channel_base // (2 * r), cfg.channel_max // 2)) for r in cfg.levels}
    return GeneratorConfig(resolution=cfg.resolution, channels=channels, style_dim=cfg.style_dim)


def teacher_directions(teacher, num_ws: int) -> tuple[list[dict], dict[str, torch.Tensor]]:
    """The teacher's directions in CREPS rows (a range that ends at the teacher's last row also
    covers the output head's row), ready to store in the CREPS file."""
    n = teacher.generator.n_style
    specs = []
    for spec in teacher.metadata.get("directions", []):
        spec = dict(spec)
        if "rows" in spec and spec["rows"][1] == n:
            spec["rows"] = [spec["rows"][0], num_ws]
        specs.append(spec)
    return specs, {k: v for k, v in teacher.extra_tensors.items() if k.startswith("directions.")}


FACES_SEED = 7_000_000       # the encoded faces' latent seeds: neither training data nor held out


class CrepsTrainer(TrainingRun):
    STATE = "creps-state.pt"
    label = "creps"
    tc: CrepsTrainConfig

    def __init__(self, tc: CrepsTrainConfig, out: Path, resume: bool = False, progress: bool = True):
        self.out = Path(out)
        self.rank, self.world = dist.init(tc.device)
        state = self.read_state(self.out) if resume else None
        tc.validate()
        self.tc, self.device = tc, torch.device(tc.device)
        self.cfg = tc.creps_config()
        self.resolutions = tc.training_resolutions()
        self.progress = progress and self.rank == 0
        torch.manual_seed(tc.seed)                        # the same initial weights on every rank
        self.g = CrepsGenerator(self.cfg).to(self.device)
        self.faces: TeacherSamples | None = None
        self.teacher = self._load_teacher(tc.teacher) if tc.teacher else None
        self.d = (MultiResDiscriminator(discriminator_config(self.cfg), len(self.cfg.levels) - 1).to(self.device)
                  if tc.adv_weight > 0 else None)
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)
        trainable = [p for p in self.g.parameters() if p.requires_grad]
        self.g_opt = torch.optim.Adam(trainable, lr=tc.lr, betas=tc.betas)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=tc.lr, betas=tc.betas) if self.d else None
        self.perceptual = make_perceptual(device=tc.device) if self.teacher is not None else None
        self.data = (ProceduralFaces(self.cfg.resolution, tc.data_seed) if tc.data == "procedural"
                     else ImageFolder(tc.data, self.cfg.resolution, flip=False)) if self.d else None
        self.rnd = random.Random(tc.seed)                # shared by all ranks: same resolution per step
        self.gen = torch.Generator().manual_seed(tc.seed * 1009 + self.rank)
        self.step = 0
        self.mean_path = torch.zeros((), device=self.device)
        self.history = list(state["history"]) if state is not None else []
        if state is not None:
            self._load_state(state)
        else:
            dist.broadcast_module(self.g)
            if self.d:
                dist.broadcast_module(self.d)
        self.history.append({"command": command_line(), "commit": git_commit(), "step": self.step})
        self.sample_z = torch.randn(4, self.cfg.style_dim, generator=torch.Generator().manual_seed(12345))

    def _load_teacher(self, path: str):
        teacher = open_model(path)
        tg = teacher.generator
        if (tg.cfg.style_dim, tg.cfg.n_mlp, tg.cfg.resolution) != (self.cfg.style_dim, self.cfg.n_mlp,
                                                                   self.cfg.resolution):
            raise ValueError(f"teacher {path}: style {tg.cfg.style_dim}, {tg.cfg.n_mlp} mapping layers, "
                             f"{tg.cfg.resolution} px; the CREPS model has {self.cfg.style_dim}, "
                             f"{self.cfg.n_mlp}, {self.cfg.resolution} px: they must match to share W")
        tg.to(self.device).eval().requires_grad_(False)
        # the teacher's mapping network (nn.Sequential: PixelNorm, then the layers) becomes ours, frozen
        for i in range(self.cfg.n_mlp):
            getattr(self.g.mapping, f"fc{i}").load_state_dict(tg.style[i + 1].state_dict())
        self.g.mapping.w_avg.copy_(tg.w_avg)
        self.g.mapping.requires_grad_(False)
        if self.tc.encoded > 0:
            if teacher.encoder is None:
                raise ValueError(f"teacher {path} has no encoder: option encoded needs one")
            teacher.encoder.to(self.device).eval().requires_grad_(False)
            # the faces to encode: the samples of the generator the teacher model learnt from, if any
            source = model_teacher(teacher.metadata)
            self.faces = TeacherSamples(open_teacher(source, self.tc.device), tg.cfg.resolution, FACES_SEED) \
                if source else None
        return teacher

    # ------------------------------------------------------------------ one iteration

    def latents(self, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """W+ in CREPS rows, and the teacher's image of it (None without a teacher)."""
        if self.teacher is None:
            z = torch.randn(n, self.cfg.style_dim, generator=self.gen).to(self.device)
            return self.g.map(z), None
        tg = self.teacher.generator
        mix = self.rnd.random() < self.tc.mixing
        z = torch.randn(n, 2 if mix else 1, self.cfg.style_dim, generator=self.gen).to(self.device)
        k = self.rnd.randint(1, tg.n_style - 1) if mix else None
        with torch.no_grad():
            wplus = tg.latent_to_wplus(z, inject_index=k)
            if (m := round(n * self.tc.encoded)) > 0:
                wplus = torch.cat([self.teacher.encoder(self.faces_to_encode(m)), wplus[m:]])
            target = tg.synthesis(wplus)
        return self.g.wplus_from_anycost(wplus), target

    def faces_to_encode(self, n: int) -> torch.Tensor:
        """This step's faces for the encoder: the source generator's samples (this rank's own, a
        function of the step for an exact resume), else the teacher model's own at truncation 1."""
        if self.faces is not None:
            return self.faces.batch((self.step * self.world + self.rank) * n, n).to(self.device)
        z = torch.randn(n, self.cfg.style_dim, generator=self.gen).to(self.device)
        assert self.teacher is not None                   # called by latents() with a teacher
        return self.teacher.generator(z)

    def render(self, g: CrepsGenerator, ws: torch.Tensor, res: int) -> torch.Tensor:
        return g.render(ws, (res, res), tile=res)

    def train_step(self) -> dict:
        tc, b = self.tc, self.tc.batch
        if tc.patch_prob > 0 and self.rnd.random() < tc.patch_prob:
            return self._patch_step()
        res = self.rnd.choice(self.resolutions)
        stats = {"res": res, "d_loss": 0.0}
        if self.d is not None:
            assert self.d_opt is not None                 # made with the discriminator
            real = downsample(batch_of_step(self.data, self.step, b, self.rank, self.world, tc.data_seed, tc.flip)
                              .to(self.device), res)
            self.d.requires_grad_(True)
            with torch.no_grad():
                fake = self.render(self.g, self.latents(b)[0], res)
            d_loss = d_logistic(self.d(real), self.d(fake))
            apply_loss(self.d, self.d_opt, d_loss)
            stats["d_loss"] = d_loss.item()
            if self.step % tc.r1_every == 0:
                real_r = real.detach().requires_grad_(True)
                pred = self.d(real_r)
                r1 = r1_penalty(pred, real_r)
                apply_loss(self.d, self.d_opt, tc.r1_gamma / 2 * r1 * tc.r1_every + 0 * pred[0])
                stats["r1"] = r1.item()
            self.d.requires_grad_(False)

        ws, target = self.latents(b)
        fake = self.render(self.g, ws, res)
        g_loss = torch.zeros((), device=self.device)
        if self.d is not None:
            g_loss = g_loss + tc.adv_weight * g_nonsaturating(self.d(fake))
        if target is not None:
            assert self.perceptual is not None            # made with the teacher
            target = downsample(target, res)
            distill = F.l1_loss(fake, target) + self.perceptual.distance(fake, target).mean()
            g_loss = g_loss + tc.distill_weight * distill
            stats["distill"] = distill.item()
        apply_loss(self.g, self.g_opt, g_loss)
        stats["g_loss"] = g_loss.item()
        if tc.pl_weight > 0 and self.step % tc.pl_every == 0:
            ws_pl = self.latents(max(1, b // 2))[0].detach().requires_grad_(True)
            pl, self.mean_path = path_length(self.render(self.g, ws_pl, res), ws_pl, self.mean_path,
                                             generator=self.gen)
            apply_loss(self.g, self.g_opt, tc.pl_weight * tc.pl_every * pl)
            stats["pl"] = pl.item()
        update_ema(self.g_ema, self.g, b * self.world, tc.ema_kimg)
        self.step += 1
        return stats

    def _patch_step(self) -> dict:
        """Distillation on a random patch of the native-resolution image: the line branch for the
        whole grid (cheap), the pixel branch only for the patch, against the same crop of the teacher."""
        tc, r, p = self.tc, self.cfg.resolution, self.tc.patch
        x, y = self.rnd.randint(0, r - p), self.rnd.randint(0, r - p)
        ws, target = self.latents(tc.batch)
        fake = self.g.pixels(self.g.prepare(ws, r, r), ws, y, y + p, x, x + p)
        assert target is not None and self.perceptual is not None   # patches need a teacher (validate)
        target = target[:, :, y:y + p, x:x + p]
        distill = F.l1_loss(fake, target) + self.perceptual.distance(fake, target).mean()
        apply_loss(self.g, self.g_opt, tc.distill_weight * distill)
        update_ema(self.g_ema, self.g, tc.batch * self.world, tc.ema_kimg)
        self.step += 1
        return {"res": f"{p}@{r}", "d_loss": 0.0, "distill": distill.item(),
                "g_loss": (tc.distill_weight * distill).item()}

    # ------------------------------------------------------------------ the run

    def run_info(self) -> dict:
        return {"perceptual": self.perceptual.name if self.perceptual else None, "world": self.world}

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        """Fixed latents: the teacher's image (when there is one), then CREPS at res/4, res/2, res
        and 2x res (every tile shown at 2x res, nearest)."""
        if self.rank != 0:
            return None
        big, tiles = 2 * self.cfg.resolution, []
        for z in self.sample_z:
            ws, target = self._sample_latent(z[None].to(self.device))
            if target is not None:
                tiles.append(to_pil(target[0]).resize((big, big), 0))
            for r in (self.cfg.resolution // 4, self.cfg.resolution // 2, self.cfg.resolution, big):
                tiles.append(to_pil(self.g_ema.render(ws, (r, r))[0]).resize((big, big), 0))
        path = self.out / "samples" / f"creps-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid(tiles, cols=len(tiles) // len(self.sample_z)).save(path)
        return path

    def _sample_latent(self, z):
        if self.teacher is None:
            return self.g_ema.map(z), None
        tg = self.teacher.generator
        wplus = tg.latent_to_wplus(z)
        return self.g_ema.wplus_from_anycost(wplus), tg.synthesis(wplus)

    def checkpoint(self) -> Path | None:
        """The EMA generator as a CREPS model file (with the teacher's encoder and directions when it
        shares the teacher's W), and the full state for an exact --resume."""
        self.save_replica_files([self.g, self.d, self.g_ema])
        if self.rank != 0:
            dist.barrier()
            return None
        meta: dict[str, Any] = {"name": f"{self.out.name}-creps",
                "training": {"stage": "creps", "step": self.step, "images": self.step * self.tc.batch * self.world,
                             "world": self.world, "config": self.tc.to_dict(),
                             "perceptual": self.perceptual.name if self.perceptual else None,
                             "command": self.history[0]["command"], "commit": self.history[0]["commit"],
                             "history": self.history}}
        extra: dict
        encoder, extra = None, {}
        if self.teacher is not None:
            meta["w_space"] = {"model": self.teacher.name, "source": self.tc.teacher}
            meta["directions"], extra = teacher_directions(self.teacher, self.cfg.num_ws)
            encoder = self.teacher.encoder
        path = save_creps(self.out / "checkpoints" / f"creps-{self.step:07d}.safetensors", self.g_ema, meta,
                          encoder=encoder, extra_tensors=extra)
        save_creps(self.out / "latest.safetensors", self.g_ema, meta, encoder=encoder, extra_tensors=extra)
        self.save_state({"g": self.g.state_dict(), "g_ema": self.g_ema.state_dict(), "g_opt": self.g_opt.state_dict(),
                         "d": self.d.state_dict() if self.d else None,
                         # d_opt exists whenever d does
                         "d_opt": self.d_opt.state_dict() if self.d else None})  # type: ignore[union-attr]
        dist.barrier()
        return path

    @staticmethod
    def config_from(saved: dict) -> CrepsTrainConfig:
        return CrepsTrainConfig.from_dict(saved)

    def _load_state(self, s: dict) -> None:
        self.restore_loop_state(s)
        self.g.load_state_dict(s["g"])
        self.g_ema.load_state_dict(s["g_ema"])
        self.g_opt.load_state_dict(s["g_opt"])
        set_learning_rates(self.g_opt, [self.tc.lr])
        if self.d:
            assert self.d_opt is not None                 # made with the discriminator
            self.d.load_state_dict(s["d"])
            self.d_opt.load_state_dict(s["d_opt"])
            set_learning_rates(self.d_opt, [self.tc.lr])
