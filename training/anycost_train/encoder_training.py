"""Training the encoder with the paper's objective (Anycost GAN, Sec. 3.3):

E* = argmin_E  E_x[ l(G(E(x)), x) + alpha * E_{k,C} l(G_C^k(E(x)), x_k) ]   (+ a latent term on
generated images, where the true W+ is known), l = perceptual + MSE. Half of every batch is real
data, half is drawn by the generator itself. The generator stays frozen.
"""
from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from anycost.editing.perceptual import make_perceptual
from anycost.editing.projection import downsample, sub_configs
from anycost.formats.checkpoints import load_model, save_model
from anycost.models import Encoder, EncoderConfig

from .data import open_data
from .run_loop import plain_rng_state, set_plain_rng_state
from .teachers import open_teacher
from .trainer import command_line, git_commit

log = logging.getLogger("anycost_train")
STATE = "encoder-state.pt"


class EncoderTrainer:
    def __init__(self, model_path: Path, out: Path, steps: int = 2000, batch: int = 8, lr: float = 1e-4,
                 alpha: float = 0.5, latent_weight: float = 1.0, truncation: float = 0.8, data: str = "procedural",
                 teacher: str = "", data_seed: int = 1_000_000, seed: int = 0, device: str = "cpu",
                 save_every: int = 200, resume: bool = False):
        self.out = Path(out)
        self.model = load_model(model_path)
        self.device = torch.device(device)
        self.g = self.model.generator.to(self.device).eval().requires_grad_(False)
        cfg = self.g.cfg
        if self.model.encoder is not None:
            self.encoder = self.model.encoder
        else:
            torch.manual_seed(seed)
            self.encoder = Encoder(EncoderConfig.small(cfg.n_style, cfg.style_dim, cfg.resolution))
            self.encoder.mean_latent.copy_(self.g.w_avg)
        self.encoder.to(self.device).train()
        self.opt = torch.optim.Adam(self.encoder.parameters(), lr=lr)
        self.steps, self.batch, self.alpha = steps, batch, alpha
        self.latent_weight, self.truncation, self.save_every = latent_weight, truncation, save_every
        self.perceptual = make_perceptual(device=device)
        self.data = open_data(data, cfg.resolution, data_seed, open_teacher(teacher, device) if teacher else None)
        self.rnd = random.Random(seed)
        self.gen = torch.Generator().manual_seed(seed)
        self.configs = sub_configs(self.g)
        self.step = 0
        if resume:
            self._load_state()

    def loss(self, img, ref):
        return F.mse_loss(img, ref) + self.perceptual.distance(img, ref).mean()

    def train_step(self) -> dict:
        half = max(1, self.batch // 2)
        first = self.step * half
        if hasattr(self.data, "batch"):         # drawn in one call (a teacher's samples)
            real = self.data.batch(first, half).to(self.device)
        else:
            # (a dataset drawn by index has a length)
            real = torch.stack([self.data[(first + j) % len(self.data)]  # type: ignore[arg-type]
                                for j in range(half)]).to(self.device)
        with torch.no_grad():
            z = torch.randn(half, self.g.cfg.style_dim, generator=self.gen).to(self.device)
            w_gen = self.g.latent_to_wplus(z, truncation=self.truncation)
            fake = self.g.synthesis(w_gen)
        x = torch.cat([real, fake])
        pred = self.encoder(x)
        loss_full = self.loss(self.g.synthesis(pred), x)
        ratio, k = self.rnd.choice(self.configs)
        sub = self.g.synthesis(pred, channels=ratio, target_res=k)
        loss_sub = self.loss(sub, downsample(x, k))
        loss_w = F.mse_loss(pred[half:], w_gen)
        loss = loss_full + self.alpha * loss_sub + self.latent_weight * loss_w
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return {"loss": loss.item(), "image": loss_full.item(), "sub": loss_sub.item(), "latent": loss_w.item()}

    def run(self, progress: bool = True) -> Path:
        self.out.mkdir(parents=True, exist_ok=True)
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=self.steps, initial=self.step, desc="encoder", unit="it")
        path = self.out / "model.safetensors"
        while self.step < self.steps:
            t0 = time.monotonic()
            stats = self.train_step()
            stats["s_per_step"] = round(time.monotonic() - t0, 3)
            with open(self.out / "encoder-log.jsonl", "a") as f:
                f.write(json.dumps({"step": self.step, **stats}) + "\n")
            if bar:
                bar.update(1)
                bar.set_postfix(loss=f"{stats['loss']:.3f}")
            if self.step % self.save_every == 0 or self.step == self.steps:
                path = self.save()
        if bar:
            bar.close()
        return path

    def save(self) -> Path:
        meta = dict(self.model.metadata)
        meta["encoder_training"] = {"step": self.step, "batch": self.batch, "alpha": self.alpha,
                                    "perceptual": self.perceptual.name, "command": command_line(),
                                    "commit": git_commit()}
        self.encoder.eval()
        path = save_model(self.out / "model.safetensors", self.g, meta, self.model.extra_tensors,
                          encoder=self.encoder)
        self.encoder.train()
        state = {"step": self.step, "encoder": self.encoder.state_dict(), "opt": self.opt.state_dict(),
                 "gen": self.gen.get_state(), "rnd": plain_rng_state(self.rnd)}
        torch.save(state, self.out / STATE)
        return path

    def _load_state(self) -> None:
        s = torch.load(self.out / STATE, map_location="cpu", weights_only=True)
        self.encoder.load_state_dict(s["encoder"])
        self.opt.load_state_dict(s["opt"])
        self.gen.set_state(s["gen"])
        set_plain_rng_state(self.rnd, s["rnd"])
        self.step = int(s["step"])
