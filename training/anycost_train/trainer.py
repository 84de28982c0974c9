"""The training loop of both Anycost GAN stages, single process or under torchrun."""
from __future__ import annotations

import copy
import logging
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from anycost.core.imaging import grid, to_pil
from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import downsample
from anycost.formats.checkpoints import load_model, save_model
from anycost.formats.registry import open_model
from anycost.models import TRAINED_RATIOS, Generator
from anycost.models.channel_sort import sort_channels

from . import dist
from .config import TrainConfig
from .data import open_data
from .discriminator import MultiResDiscriminator
from .gan_steps import apply_loss, batch_of_step, update_ema
from .losses import consistency, d_logistic, g_nonsaturating, path_length, r1_penalty
from .procedural_faces import faces_of_latents
from .run_loop import TrainingRun, set_learning_rates
from .subgenerators import arch_dim, arch_vector, sample_ratios, widths
from .teachers import open_teacher, paired_images, resize_to, teacher_latents

log = logging.getLogger("anycost_train")


# metadata of the model an adaptation starts from that stays true of the adapted one
KEPT_BY_ADAPT = ("alignment", "licence", "directions", "attribute_sd", "w_space", "imported_from", "source",
                 "source_layout")


class Trainer(TrainingRun):
    tc: TrainConfig

    def __init__(self, tc: TrainConfig, out: Path, resume: bool = False, progress: bool = True):
        """Train `tc` into the run folder `out`. With `resume`, `tc` must be the run's own configuration
        (see `Trainer.resumed`), and training continues exactly from `out`'s saved state."""
        self.out = Path(out)
        self.rank, self.world = dist.init(tc.device)
        state = self.read_state(self.out) if resume else None
        self.tc = tc
        self.device = torch.device(tc.device)
        self.gcfg = tc.generator_config()
        self.progress = progress and self.rank == 0
        self.resolutions = self.gcfg.levels[::-1][:tc.n_res]

        torch.manual_seed(tc.seed)                      # the same initial weights on every rank
        self.g = Generator(self.gcfg).to(self.device)
        self.d = MultiResDiscriminator(self.gcfg, tc.n_res,
                                       arch_dim(self.gcfg) if self._conditioned else None).to(self.device)
        self.teacher = None
        # read once: weights and where they came from (adapt: any model the project opens, names included)
        init = open_model(tc.init, kind="anycost") if tc.init else None
        self.init_training = init.metadata.get("training") if init else None
        # what an adapted model keeps of the original: its description, its sliders
        adapted = init if tc.stage == "adapt" else None
        self.kept_meta = {k: v for k, v in (adapted.metadata if adapted else {}).items() if k in KEPT_BY_ADAPT}
        self.kept_tensors = dict(adapted.extra_tensors) if adapted else {}
        if tc.stage in ("adach", "adapt") and state is None:
            self._init_from_stage1(init)
        elif init and state is None:                     # e.g. stage 1 from a renderer warm start
            self.g.load_state_dict(self._init_generator(init).state_dict())
        self.g_ema = copy.deepcopy(self.g).eval().requires_grad_(False)
        if tc.stage in ("adach", "adapt"):
            if self.teacher is None:
                self.teacher = copy.deepcopy(self.g)
            self.teacher.eval().requires_grad_(False)
        # the generator learnt from (stage "teacher", data "teacher"); not `self.teacher`, stage 2's frozen G
        self.source = open_teacher(tc.teacher, tc.device) if tc.teacher else None
        self.adapters = None
        if tc.stage == "teacher":
            teacher_latents(torch.zeros(1, self.gcfg.style_dim), self.source)    # z wide enough, else a clear error
            if tc.feature_weight > 0:
                self.adapters = self._feature_adapters().to(self.device)
        groups = self._g_param_groups()
        if self.adapters is not None:
            groups.append({"params": list(self.adapters.parameters())})
        self.g_opt = torch.optim.Adam(groups, lr=tc.lr, betas=tc.betas)
        self.d_opt = torch.optim.Adam(self.d.parameters(), lr=tc.lr, betas=tc.betas)
        self.rnd = random.Random(tc.seed)               # shared by all ranks: same sub-generator per step
        self.gen = torch.Generator().manual_seed(tc.seed * 1009 + self.rank)   # per rank: z, noise
        self.step = 0
        self.mean_path = torch.zeros((), device=self.device)
        self.perceptual = (make_perceptual(device=tc.device) if tc.stage in ("adach", "adapt", "renderer", "teacher")
                           else None)
        self.data = open_data(tc.data, self.gcfg.resolution, tc.data_seed, self.source)
        self.history = list(state.get("history", [])) if state is not None else []
        if state is not None:
            self._load_state(state)
            if not self.history:      # a run started before histories were kept: its first record
                first = load_model(self.out / "latest.safetensors").metadata.get("training", {})
                self.history.append({"command": first.get("command"), "commit": first.get("commit"), "step": 0})
        else:
            dist.broadcast_module(self.g)
            if self.adapters is not None:
                dist.broadcast_module(self.adapters)
            dist.broadcast_module(self.d)
        # how this run was started and each resume: command, commit (taken now, not at save time), step
        self.history.append({"command": command_line(), "commit": git_commit(), "step": self.step})
        self.sample_z = torch.randn(2, self.gcfg.style_dim, generator=torch.Generator().manual_seed(12345))

    def _feature_adapters(self) -> torch.nn.ModuleDict:
        """Feature distillation (MobileStyleGAN's intermediate loss): a 1x1 convolution per resolution
        the teacher has activations at, mapping G's features there onto the teacher's."""
        assert self.source is not None                  # stage "teacher": opened (teacher_latents checked it)
        if not hasattr(self.source, "images_and_features"):
            raise ValueError(f"feature_weight needs a teacher with intermediate features; {self.source.name} has none")
        _, feats = self.source.images_and_features(torch.zeros(1, self.source.latent_dim, device=self.device))
        return torch.nn.ModuleDict({str(r): torch.nn.Conv2d(self.gcfg.channels[r], f.shape[1], 1)
                                    for r, f in feats.items() if r in self.gcfg.channels})

    def _student_features(self, z: torch.Tensor, res: int) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """G(z) at `res` and its features after each level's last convolution."""
        feats: dict[int, torch.Tensor] = {}
        hooks = []
        layers = [self.g.conv1] + [self.g.convs[2 * j + 1] for j in range(len(self.gcfg.levels) - 1)]
        for layer in layers:
            hooks.append(layer.register_forward_hook(lambda m, i, out: feats.__setitem__(out.shape[-1], out)))
        try:
            out = self.g(z, target_res=res, noise="random", generator=self.gen).float()
        finally:
            for h in hooks:
                h.remove()
        return out, feats

    def _g_param_groups(self) -> list[dict]:
        mapping = list(self.g.style.parameters())     # the mapping network
        ids = {id(p) for p in mapping}
        rest = {"params": [p for p in self.g.parameters() if id(p) not in ids]}
        if self.tc.stage == "adapt":    # the W space stays the original's: its directions, encoder, projections
            return [rest]
        return [rest, {"params": mapping, "lr": self.tc.lr * self.tc.mapping_lr_scale}]

    @property
    def _conditioned(self) -> bool:
        return ((self.tc.stage == "adach" or (self.tc.stage == "adapt" and self.tc.adv_weight > 0))
                and self.tc.conditioned_d)

    # ------------------------------------------------------------------ set-up

    def _init_generator(self, init) -> Generator:
        src = init.generator
        if src.cfg != self.gcfg:
            raise ValueError(f"{self.tc.init} has a different architecture than arch {self.tc.arch!r}")
        return src

    def _init_from_stage1(self, init) -> None:
        if init is None:
            raise ValueError(f"stage {self.tc.stage!r} starts from a trained model: pass --init MODEL_FILE")
        self.g.load_state_dict(self._init_generator(init).state_dict())
        self.teacher = copy.deepcopy(self.g)            # the frozen full generator of stage 1
        sort_channels(self.g)                           # most important channels first; same function

    # ------------------------------------------------------------------ data

    def real_batch(self, step: int) -> torch.Tensor:
        """This rank's images of `step`: a deterministic function of the step (exact resume)."""
        tc = self.tc
        return batch_of_step(self.data, step, tc.batch, self.rank, self.world, tc.data_seed,
                             tc.flip).to(self.device)

    def latents(self, n: int) -> tuple[torch.Tensor, int | None]:
        if self.rnd.random() < self.tc.mixing:
            z = torch.randn(n, 2, self.gcfg.style_dim, generator=self.gen)
            return z.to(self.device), self.rnd.randint(1, self.gcfg.n_style - 1)
        return torch.randn(n, 1, self.gcfg.style_dim, generator=self.gen).to(self.device), None

    # ------------------------------------------------------------------ one iteration

    def train_step(self) -> dict:
        if self.tc.stage in ("renderer", "teacher"):
            return self._regression_step()
        if self.tc.stage == "adapt":
            return self._adapt_step()
        tc, b = self.tc, self.tc.batch
        res = self.rnd.choice(self.resolutions)                        # sampling-based multi-resolution
        chans, arch = None, None
        if tc.stage == "adach":
            ratios = sample_ratios(self.gcfg, self.rnd, tc.channel_mode)
            chans = widths(self.gcfg, ratios)
            if self._conditioned:
                arch = arch_vector(ratios).to(self.device).expand(b, -1)
        real = self.real_batch(self.step)
        real = downsample(real, res)
        stats: dict[str, Any] = {"res": res, "channels": sum(chans) if chans else sum(self.gcfg.full_channels)}

        self._discriminator_step(real, chans, res, arch, stats)

        # generator
        self.g.requires_grad_(True)
        self.d.requires_grad_(False)
        z, k = self.latents(b)
        noise = self.g.noise_tensors("random", b, self.gen, device=self.device)
        with self._autocast():
            wplus = self.g.latent_to_wplus(z, inject_index=k)
            fake = self.g.synthesis(wplus, noise=noise, channels=chans, target_res=res)
            g_loss = g_nonsaturating(self.d(fake.float(), arch))
            if self.teacher is not None and tc.consistency_weight > 0:
                with torch.no_grad():
                    full = self.teacher(z, inject_index=k, noise=noise)
                assert self.perceptual is not None      # made for stage "adach"
                c_loss = consistency(fake.float(), full.float(), self.perceptual)
                g_loss = g_loss + tc.consistency_weight * c_loss
                stats["consistency"] = c_loss.item()
        apply_loss(self.g, self.g_opt, g_loss)
        stats["g_loss"] = g_loss.item()
        if tc.pl_weight > 0 and self.step % tc.pl_every == 0:
            z, k = self.latents(max(1, b // 2))
            wplus = self.g.latent_to_wplus(z, inject_index=k).detach().requires_grad_(True)
            pl, self.mean_path = path_length(self.g.synthesis(wplus, noise="random", generator=self.gen),
                                             wplus, self.mean_path, generator=self.gen)
            apply_loss(self.g, self.g_opt, tc.pl_weight * tc.pl_every * pl)
            stats["pl"] = pl.item()

        self._update_ema()
        self.step += 1
        return stats

    def _discriminator_step(self, real: torch.Tensor, chans, res: int, arch, stats: dict) -> None:
        """One step of D: `real` against G's images at this configuration, with the lazy R1 penalty."""
        tc = self.tc
        self.g.requires_grad_(False)
        self.d.requires_grad_(True)
        z, k = self.latents(tc.batch)
        with torch.no_grad(), self._autocast():
            fake = self.g(z, inject_index=k, channels=chans, target_res=res, noise="random", generator=self.gen)
        with self._autocast():
            d_loss = d_logistic(self.d(real, arch), self.d(fake.float(), arch))
        apply_loss(self.d, self.d_opt, d_loss)
        stats["d_loss"] = d_loss.item()
        if self.step % tc.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            pred = self.d(real_r, arch)
            r1 = r1_penalty(pred, real_r)
            apply_loss(self.d, self.d_opt, tc.r1_gamma / 2 * r1 * tc.r1_every + 0 * pred[0])
            stats["r1"] = r1.item()
        self.d.requires_grad_(False)

    def _adapt_step(self) -> dict:
        """Stage 2 without a dataset: a sampled sub-generator (channel ratios, one of the elastic
        resolutions) fitted to the frozen original's image of the same latent and noise (MSE +
        perceptual distance, the paper's consistency loss); optionally a discriminator that tells the
        original's samples from the sub-generator's; the full configuration held to the original by
        the anchor term (the sub-generators share its weights, so it moves when they learn)."""
        tc, b = self.tc, self.tc.batch
        assert self.teacher is not None and self.perceptual is not None     # made for stage "adapt"
        res = self.rnd.choice(self.resolutions)
        ratios = sample_ratios(self.gcfg, self.rnd, tc.channel_mode)
        chans = widths(self.gcfg, ratios)
        arch = arch_vector(ratios).to(self.device).expand(b, -1) if self._conditioned else None
        stats: dict[str, Any] = {"res": res, "channels": sum(chans)}
        if tc.adv_weight > 0:                                   # D: the original's samples are the real ones
            self._discriminator_step(downsample(self.real_batch(self.step), res), chans, res, arch, stats)
        self.g.requires_grad_(True)
        self.g.style.requires_grad_(False)                      # the mapping is not trained (W stays)
        z, k = self.latents(b)
        noise = self.g.noise_tensors("random", b, self.gen, device=self.device)
        with self._autocast():
            with torch.no_grad():
                original = self.teacher(z, inject_index=k, noise=noise).float()
            wplus = self.g.latent_to_wplus(z, inject_index=k)
            sub = self.g.synthesis(wplus, noise=noise, channels=chans, target_res=res).float()
            c_loss = consistency(sub, original, self.perceptual)
            loss = tc.consistency_weight * c_loss
            stats["consistency"] = c_loss.item()
            if tc.adv_weight > 0:
                adv = g_nonsaturating(self.d(sub, arch))
                loss = loss + tc.adv_weight * adv
                stats["g_adv"] = adv.item()
            if tc.anchor_weight > 0:
                a_loss = consistency(self.g.synthesis(wplus, noise=noise).float(), original, self.perceptual)
                loss = loss + tc.anchor_weight * a_loss
                stats["distill"] = a_loss.item()
        apply_loss(self.g, self.g_opt, loss)
        stats["g_loss"] = loss.item()
        self._update_ema()
        self.step += 1
        return stats

    def regression_target(self, z: torch.Tensor) -> torch.Tensor:
        """The image a warm start teaches for each z, at the full resolution.

        Stage "renderer": the procedural face of z's first 16 entries (through the normal CDF, the
        renderer's uniforms). Stage "teacher": the teacher's image of z's first `latent_dim` entries
        (both N(0, I)). The other entries of z are free for the adversarial stages."""
        if self.tc.stage == "renderer":
            return faces_of_latents(z, self.gcfg.resolution).to(self.device)
        return paired_images(self.source, z, self.gcfg.resolution).to(self.device)

    def _regression_step(self) -> dict:
        """Warm start: teach G(z) a known image per z by regression (L1 + perceptual distance) at a
        sampled resolution, as in stage 1: distillation. With `adv_weight` > 0 a discriminator also
        tells the targets from G's images (paired and adversarial at once: regression alone learns
        the teacher's layout and colours fast but stays blurred where it cannot yet tell z's detail)."""
        tc, b = self.tc, self.tc.batch
        res = self.rnd.choice(self.resolutions)
        z = torch.randn(b, self.gcfg.style_dim, generator=self.gen)
        stats = {"res": res, "channels": sum(self.gcfg.full_channels), "d_loss": 0.0}
        feature_loss = None
        if self.adapters is not None:
            assert self.source is not None              # adapters: stage "teacher", which opened it
            full, t_feats = self.source.images_and_features(teacher_latents(z, self.source))
            target = downsample(resize_to(full, self.gcfg.resolution).to(self.device), res)
            out, s_feats = self._student_features(z.to(self.device), res)
            terms = []
            for key, conv in self.adapters.items():
                r = int(key)
                if r in s_feats:
                    t = t_feats[r].to(self.device)
                    terms.append(F.mse_loss(conv(s_feats[r]), t / (t.pow(2).mean().sqrt() + 1e-8)))
            feature_loss = torch.stack(terms).mean()
            stats["features"] = feature_loss.item()
        else:
            target = downsample(self.regression_target(z), res)
            with self._autocast():
                out = self.g(z.to(self.device), target_res=res, noise="random", generator=self.gen).float()
        if tc.adv_weight > 0:
            self.d.requires_grad_(True)
            d_loss = d_logistic(self.d(target), self.d(out.detach()))
            apply_loss(self.d, self.d_opt, d_loss)
            stats["d_loss"] = d_loss.item()
            if self.step % tc.r1_every == 0:
                real_r = target.detach().requires_grad_(True)
                pred = self.d(real_r)
                apply_loss(self.d, self.d_opt, tc.r1_gamma / 2 * r1_penalty(pred, real_r) * tc.r1_every + 0 * pred[0])
            self.d.requires_grad_(False)
        assert self.perceptual is not None              # made for the "renderer" and "teacher" stages
        regression = F.l1_loss(out, target) + self.perceptual.distance(out, target).mean()
        loss = regression
        if feature_loss is not None:
            loss = loss + tc.feature_weight * feature_loss
        if tc.adv_weight > 0:
            loss = loss + tc.adv_weight * g_nonsaturating(self.d(out))
            stats["regression"] = regression.item()
        apply_loss(self.g if self.adapters is None else torch.nn.ModuleList([self.g, self.adapters]), self.g_opt, loss)
        self._update_ema()
        self.step += 1
        return dict(stats, g_loss=loss.item())

    def _autocast(self):
        if self.tc.amp and self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _update_ema(self) -> None:
        update_ema(self.g_ema, self.g, self.tc.batch * self.world, self.tc.ema_kimg)

    # ------------------------------------------------------------------ the run

    def run_info(self) -> dict:
        """Which perceptual distance the consistency term used, and how many processes."""
        return {"perceptual": self.perceptual.name if self.perceptual else None,
                "perceptual_warning": self.perceptual.warning if self.perceptual else None, "world": self.world}

    @property
    def label(self) -> str:  # type: ignore[override]  # read only, in place of the base's class attribute
        return self.tc.stage

    @torch.no_grad()
    def write_samples(self) -> Path | None:
        """The paper's figure for two fixed latents: rows channel ratios, columns resolutions."""
        if self.rank != 0:
            return None
        g, size = self.g_ema, self.gcfg.resolution
        tiles = []
        for z in self.sample_z:
            wplus = g.latent_to_wplus(z[None].to(self.device))
            for ratio in TRAINED_RATIOS:
                for res in self.resolutions:
                    img = g.synthesis(wplus, channels=ratio, target_res=res)
                    tiles.append(to_pil(img[0]).resize((size, size)))
        path = self.out / "samples" / f"{self.tc.stage}-{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        grid(tiles, cols=len(self.resolutions)).save(path)
        return path

    def checkpoint(self) -> Path | None:
        """The EMA generator as a model file, and the full state for an exact --resume."""
        self.save_replica_files([self.g, self.d, self.g_ema])
        if self.rank != 0:
            dist.barrier()
            return None
        meta = {**self.kept_meta, "name": f"{self.out.name}-{self.tc.stage}",
                "training": {"stage": self.tc.stage, "step": self.step,
                             "images": self.step * self.tc.batch * self.world, "world": self.world,
                             "config": self.tc.to_dict(),
                             "perceptual": self.perceptual.name if self.perceptual else None,
                             "command": self.history[0]["command"], "commit": self.history[0]["commit"],
                             "history": self.history, "init": self.init_training}}
        if self.tc.stage == "adapt":
            meta["sub_generators"] = True
        path = save_model(self.out / "checkpoints" / f"{self.tc.stage}-{self.step:07d}.safetensors", self.g_ema, meta,
                          self.kept_tensors, half=self.tc.half_checkpoints)
        save_model(self.out / "latest.safetensors", self.g_ema, meta, self.kept_tensors, half=self.tc.half_checkpoints)
        self.save_state({"g": self.g.state_dict(), "d": self.d.state_dict(), "g_ema": self.g_ema.state_dict(),
                         "adapters": self.adapters.state_dict() if self.adapters is not None else None,
                         "g_opt": self.g_opt.state_dict(), "d_opt": self.d_opt.state_dict(),
                         "teacher": self.teacher.state_dict() if self.teacher is not None else None})
        dist.barrier()
        return path

    @staticmethod
    def config_from(saved: dict) -> TrainConfig:
        return TrainConfig(**dict(saved, betas=tuple(saved["betas"])))

    def _load_state(self, s: dict) -> None:
        self.restore_loop_state(s)
        self.g.load_state_dict(s["g"])
        self.d.load_state_dict(s["d"])
        self.g_ema.load_state_dict(s["g_ema"])
        if s.get("adapters") is not None:
            assert self.adapters is not None            # saved by this run, whose configuration made them
            self.adapters.load_state_dict(s["adapters"])
        if s.get("teacher") is not None:
            assert self.teacher is not None             # likewise (stage "adach")
            self.teacher.load_state_dict(s["teacher"])
        self.g_opt.load_state_dict(s["g_opt"])
        self.d_opt.load_state_dict(s["d_opt"])
        set_learning_rates(self.g_opt, [g.get("lr", self.tc.lr) for g in self._g_param_groups()]
                           + ([self.tc.lr] if self.adapters is not None else []))
        set_learning_rates(self.d_opt, [self.tc.lr])


def command_line() -> str:
    """How this process was started, as a user would type it (no virtual-environment path)."""
    args = sys.argv[1:]
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        return " ".join(["torchrun", "--standalone", f"--nproc_per_node {world}", "-m anycost_train.cli", *args])
    return " ".join([Path(sys.argv[0]).name, *args])


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                              cwd=Path(__file__).resolve().parent).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
