"""Teacher generators: anything that maps a latent batch to images, for training a student from.

A teacher has `latent_dim`, `resolution`, `name` and `images(z) -> [N, 3, R, R]` in [-1, 1] for
z of shape [N, latent_dim]. Two kinds:

- `gan-face-generate`: the DCGAN of the PyPI package of that name (MIT code; trained on
  DigiFace-1M, which Microsoft releases for non-commercial research only), 64 px, z of 100 dims.
  Its weights come inside the wheel; install it with `pip install --no-deps gan-face-generate==1.1.1`
  (its declared dependencies pull wandb and matplotlib, which it does not need to draw).
- any generator file the project opens (our format, a rosinality checkpoint, a name like `demo`):
  z is its own z, images its full generator's at truncation 1.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

DCGAN_FACES = "gan-face-generate"
DCGAN_INSTALL = "pip install --no-deps gan-face-generate==1.1.1"
# Said wherever a model taught by this teacher is described.
DCGAN_LICENCE = ("taught by gan-face-generate 1.1.1 (MIT code), a DCGAN trained on Microsoft's DigiFace-1M, "
                 "which is released for non-commercial research only: so is this model")


class TeacherUnavailable(RuntimeError):
    """The teacher's package or file is not there; the message says how to get it."""


class DCGANFaces:
    """gan-face-generate's 64 px DCGAN (ConvTranspose + BatchNorm, in eval mode), on the CPU or `device`."""
    name = DCGAN_FACES
    latent_dim = 100
    resolution = 64
    licence = DCGAN_LICENCE

    def __init__(self, device: str | torch.device = "cpu"):
        try:
            from gan_face_generate import models
        except ImportError:
            raise TeacherUnavailable(f"the teacher {DCGAN_FACES!r} is not installed: {DCGAN_INSTALL}") from None
        weights = Path(models.__file__).with_name("weights.tar")
        if not weights.is_file():
            raise TeacherUnavailable(f"{weights} is missing: reinstall with {DCGAN_INSTALL}")
        net = models.Generator(ngpu=0, nc=3, nz=self.latent_dim, ngf=64)
        # saved from CUDA: map_location is needed; weights_only: the file cannot run code
        state = torch.load(weights, weights_only=True, map_location="cpu")["netG_state_dict"]
        net.load_state_dict(state)
        self.net = net.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)

    @torch.no_grad()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.latent_dim, z.shape
        return self.net(z.to(self.device)[:, :, None, None]).clamp(-1, 1)

    @torch.no_grad()
    def images_and_features(self, z: torch.Tensor) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """The images and the activations after each ReLU, by resolution (4, 8, 16, 32 px: 512, 256,
        128, 64 channels), for feature distillation."""
        assert z.ndim == 2 and z.shape[1] == self.latent_dim, z.shape
        x, feats = z.to(self.device)[:, :, None, None], {}
        for layer in self.net.main:
            x = layer(x)
            if isinstance(layer, torch.nn.ReLU):
                feats[x.shape[-1]] = x
        return x.clamp(-1, 1), feats


class GeneratorTeacher:
    """The full generator of a model file the project opens, as a teacher."""

    def __init__(self, spec: str, device: str | torch.device = "cpu"):
        from anycost.formats.registry import open_model
        model = open_model(spec)
        self.g = model.generator.eval().requires_grad_(False).to(device)
        self.name = model.metadata.get("name") or Path(spec).stem
        self.latent_dim, self.resolution = self.g.cfg.style_dim, self.g.cfg.resolution
        self.licence = model.metadata.get("licence", "")
        self.device = torch.device(device)

    @torch.no_grad()
    def images(self, z: torch.Tensor) -> torch.Tensor:
        assert z.ndim == 2 and z.shape[1] == self.latent_dim, z.shape
        return self.g(z.to(self.device)[:, None], noise="const").clamp(-1, 1)


def open_teacher(spec: str, device: str | torch.device = "cpu"):
    """`gan-face-generate`, or a model file / name the project opens."""
    if spec == DCGAN_FACES:
        return DCGANFaces(device)
    from anycost.core.errors import CheckpointError
    try:
        return GeneratorTeacher(spec, device)
    except (CheckpointError, FileNotFoundError) as e:
        raise TeacherUnavailable(f"teacher {spec!r}: {e}; known teachers: {DCGAN_FACES!r} or a model file") from None


def resize_to(images: torch.Tensor, resolution: int) -> torch.Tensor:
    """The teacher's images at the student's resolution (area down, bilinear up)."""
    r = images.shape[-1]
    if r == resolution:
        return images
    if r > resolution:
        return F.adaptive_avg_pool2d(images, resolution)
    return F.interpolate(images, size=resolution, mode="bilinear", align_corners=False)


def teacher_latents(student_z: torch.Tensor, teacher) -> torch.Tensor:
    """The teacher's latent paired with a student z: its first `latent_dim` entries (the rest are
    free for the student). Both are N(0, I), so the pairing keeps the teacher's distribution."""
    if student_z.shape[-1] < teacher.latent_dim:
        raise ValueError(f"the student's z ({student_z.shape[-1]}) must be at least as wide as the teacher's "
                         f"latent ({teacher.latent_dim})")
    return student_z[..., :teacher.latent_dim]


def paired_images(teacher, student_z: torch.Tensor, resolution: int) -> torch.Tensor:
    """The teacher's image of each student z (through `teacher_latents`), at the student's resolution:
    what the teacher stage regresses G(z) onto."""
    return resize_to(teacher.images(teacher_latents(student_z, teacher)), resolution)


class TeacherSamples(torch.utils.data.Dataset):
    """Item i is the teacher's image of latent seed `seed + i`: deterministic, effectively unlimited,
    drawn in batches (`batch(first, n)`), which is how the trainers read it."""

    def __init__(self, teacher, resolution: int, seed: int = 0, length: int = 2 ** 31 - 1):
        self.teacher, self.resolution, self.seed, self.length = teacher, resolution, seed, length

    def __len__(self) -> int:
        return self.length

    def latent(self, i: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return torch.randn(self.teacher.latent_dim, generator=g)

    def batch(self, first: int, n: int) -> torch.Tensor:
        z = torch.stack([self.latent(first + j) for j in range(n)])
        return resize_to(self.teacher.images(z), self.resolution).cpu()

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.batch(i, 1)[0]
