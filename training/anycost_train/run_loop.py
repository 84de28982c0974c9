"""The part of a training run both trainers share: the loop with its log, samples and checkpoints,
the state file written atomically, and resuming a run with its own configuration."""
from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from . import dist

if TYPE_CHECKING:
    from .config import CrepsTrainConfig, TrainConfig

# what a resumed run may change; everything else is the run's own. A lower `lr` (and a longer EMA)
# on resume is an annealing phase by hand, recorded in the run's history like any other resume.
RESUMABLE_CHANGES = ("iters", "log_every", "sample_every", "checkpoint_every", "lr", "ema_kimg")
AVERAGED_STATS = ("loss", "consistency", "distill")      # stats averaged over the processes when logged


class TrainingRun:
    """A subclass sets `STATE` (the state file's name) and `label`, and implements `train_step()`
    (-> stats with `g_loss`, `d_loss`, `res`), `write_samples()`, `checkpoint()`, `run_info()` and
    `config_from(saved, changes)`; its constructor takes (config, out, resume=, progress=)."""
    STATE = "train-state.pt"
    label = "train"

    # set by the subclass's constructor
    tc: TrainConfig | CrepsTrainConfig
    out: Path
    rank: int
    world: int
    progress: bool
    device: torch.device
    step: int
    gen: torch.Generator                 # per rank: latents, noise
    rnd: random.Random                   # shared by all ranks
    mean_path: torch.Tensor              # the path-length regulariser's running mean
    history: list[dict]

    if TYPE_CHECKING:                    # what a subclass implements
        def __init__(self, tc: Any, out: Path, resume: bool = False, progress: bool = True) -> None: ...

        def train_step(self) -> dict: ...

        def write_samples(self) -> Path | None: ...

        def checkpoint(self) -> Path | None: ...

        def run_info(self) -> dict: ...

        @staticmethod
        def config_from(saved: dict) -> Any: ...

    def run(self) -> Path | None:
        tc = self.tc
        self.out.mkdir(parents=True, exist_ok=True)
        if self.rank == 0:
            (self.out / "config.json").write_text(json.dumps({**tc.to_dict(), "run": self.run_info()}, indent=2))
        bar = None
        if self.progress:
            from tqdm import tqdm
            bar = tqdm(total=tc.iters, initial=self.step, desc=self.label, unit="it", dynamic_ncols=True)
        t_last, n_last = time.monotonic(), self.step
        model_path = None
        while self.step < tc.iters:
            stats = self.train_step()
            if bar:
                bar.update(1)
                shown = {"d": stats.get("d_loss"), "g": stats.get("g_loss"), "c": stats.get("consistency")}
                bar.set_postfix(**{k: f"{v:.3f}" for k, v in shown.items() if v is not None}, res=stats["res"])
            if self.step % tc.log_every == 0 or self.step == tc.iters:
                now = time.monotonic()
                stats["img_per_s"] = round((self.step - n_last) * tc.batch * self.world / max(now - t_last, 1e-9), 2)
                t_last, n_last = now, self.step
                stats = {k: (dist.mean(v, self.device) if k.endswith(AVERAGED_STATS) else v) for k, v in stats.items()}
                if self.rank == 0:
                    with open(self.out / "log.jsonl", "a") as f:
                        f.write(json.dumps({"step": self.step, "time": time.time(), **stats}) + "\n")
            if self.step % tc.sample_every == 0 or self.step == tc.iters:
                self.write_samples()
            if self.step % tc.checkpoint_every == 0 or self.step == tc.iters:
                model_path = self.checkpoint()
        if bar:
            bar.close()
        dist.barrier()
        return model_path

    def save_replica_files(self, modules) -> None:
        """Under torchrun, before a checkpoint: each rank's checksum of its replicas (they must agree)
        and its own noise generator (ranks draw different noise), for an exact resume."""
        if self.world > 1:
            value = dist.check_replicas([m for m in modules if m is not None])
            (self.out / f"replica-rank{self.rank}.txt").write_text(f"{self.step} {value!r}\n")
            torch.save({"gen": self.gen.get_state()}, self.out / f"rng-rank{self.rank}.pt")

    def save_state(self, state: dict) -> None:
        """`state` plus the loop's own (step, configuration, random streams, path-length mean,
        history), written atomically."""
        state = {**state, "step": self.step, "config": self.tc.to_dict(), "gen": self.gen.get_state(),
                 "rnd": plain_rng_state(self.rnd), "mean_path": self.mean_path.cpu(), "history": self.history}
        tmp = self.out / (self.STATE + ".tmp")
        torch.save(state, tmp)
        tmp.replace(self.out / self.STATE)

    def restore_loop_state(self, s: dict) -> None:
        self.step = int(s["step"])
        self.gen.set_state(s["gen"])
        if self.world > 1 and self.rank > 0:
            self.gen.set_state(torch.load(self.out / f"rng-rank{self.rank}.pt", weights_only=True)["gen"])
        set_plain_rng_state(self.rnd, s["rnd"])
        self.mean_path = s["mean_path"].to(self.device)

    @classmethod
    def resumed(cls, out: Path, changes: dict | None = None, progress: bool = True):
        """The run in `out`, continued with its own configuration; `changes` may set only
        RESUMABLE_CHANGES (e.g. more iterations). Values not given keep the run's own."""
        changes = {k: v for k, v in (changes or {}).items() if v is not None}
        if unknown := set(changes) - set(RESUMABLE_CHANGES):
            raise ValueError(f"a resumed run can change only {', '.join(RESUMABLE_CHANGES)}; "
                             f"not {', '.join(sorted(unknown))}")
        saved = cls.read_state(Path(out))["config"]
        return cls(cls.config_from({**saved, **changes}), out, resume=True, progress=progress)

    @classmethod
    def read_state(cls, out: Path) -> dict:
        path = out / cls.STATE
        if not path.is_file():
            raise FileNotFoundError(f"nothing to resume: {path} does not exist")
        return torch.load(path, map_location="cpu", weights_only=True)


def set_learning_rates(opt: torch.optim.Optimizer, lrs: list[float]) -> None:
    """Each parameter group's rate from the (possibly resumed and changed) configuration: a loaded
    optimizer state carries the rates it was saved with."""
    assert len(lrs) == len(opt.param_groups), (len(lrs), len(opt.param_groups))
    for group, lr in zip(opt.param_groups, lrs, strict=True):
        group["lr"] = lr


def plain_rng_state(rnd: random.Random) -> list:
    """random.Random's state as lists, which torch.load(weights_only=True) reads back."""
    version, internal, gauss = rnd.getstate()
    return [version, list(internal), gauss]


def set_plain_rng_state(rnd: random.Random, state) -> None:
    version, internal, gauss = state
    rnd.setstate((version, tuple(internal), gauss))
