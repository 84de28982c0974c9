"""Where models come from: the user's model folder, the published files we know (`SOURCES`),
named architectures.

A model is named on the command line by a path, by the name of a known published file
(`stylegan2-ffhq-config-f`, `stylegan2-ada-ffhq`, ...; `models list` shows them all), by the name
of a file in the model folder, or as `random:ARCH[:SEED]` for an untrained network of a named
architecture (benchmarks, tests).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, overload

import torch

from anycost.core.defaults import DATA_DIR, DEFAULT_MODEL
from anycost.core.errors import CheckpointError, DownloadError
from anycost.core.paths import models_dir
from anycost.formats.checkpoints import (
    SUFFIX,
    AnycostModel,
    CrepsModel,
    Kind,
    Model,
    check_kind,
    load_model,
    load_official_encoder,
)
from anycost.formats.nvidia_pickle import LICENCE_NVIDIA
from anycost.models import Generator, architecture

# The built-in model shipped inside the package (trained by training/).
BUILTIN_DEMO = DATA_DIR / f"demo{SUFFIX}"

FFHQ = {"name": "ffhq"}   # FFHQ's own crop rule, unchanged (MetFaces was aligned the same way)

# Where each family is published. The official Anycost host has answered nothing since 2025
# (mit-han-lab/anycost-gan#30); ANYCOST_MODEL_BASE_URL names a mirror that holds any of these files
# under their file names, and a file placed in the model folder by hand always works.
ANYCOST_URL = "https://hanlab18.mit.edu/projects/anycost-gan/files"
HF_STYLEGAN2_URL = "https://huggingface.co/aaronb/StyleGAN2/resolve/main"    # also ZeqiangLai/StyleGAN2
ADA_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained"
NGC_STYLEGAN2_URL = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files"

LICENCE_ANYCOST = ("MIT (mit-han-lab/anycost-gan); fine-tuned from NVIDIA's StyleGAN2, whose networks are under "
                   + LICENCE_NVIDIA)
LICENCE_STYLEGAN2 = LICENCE_NVIDIA + "; NVIDIA's TF StyleGAN2 networks converted to rosinality's layout"
FFHQ_DATA = "; trained on FFHQ (images CC BY-NC-SA 4.0 / their own licences)"


@dataclass(frozen=True)
class Source:
    """A model file published somewhere, as `models list` shows it and `models pull` fetches it."""
    name: str
    resolution: int
    description: str
    filename: str                    # as published, and as kept in the model folder
    url: str                         # the published address
    licence: str
    sub_generators: bool = False     # trained for anycost previews (else: full channels at lower resolutions)
    bytes: int | None = None         # as published, where known
    sha256: str | None = None        # none is published: recorded on first pull, checked after that
    alignment: dict | None = None    # the crop rule of its training data (anycost.editing.faces.recipes)


def _anycost(name, resolution, description, alignment=None) -> Source:
    return Source(name, resolution, description, f"generator_{name}.pt", f"{ANYCOST_URL}/generator_{name}.pt",
                  LICENCE_ANYCOST, sub_generators=True, alignment=alignment)


def _hf(name, resolution, description, size=None, alignment=None) -> Source:
    return Source(name, resolution, description + " (rosinality's layout, HuggingFace)", f"{name}.pt",
                  f"{HF_STYLEGAN2_URL}/{name}.pt", LICENCE_STYLEGAN2 + (FFHQ_DATA if alignment else ""), bytes=size,
                  alignment=alignment)


def _ada(stem, resolution, description, alignment=None) -> Source:
    return Source(f"stylegan2-ada-{stem}", resolution, description + " (stylegan2-ada-pytorch pickle)", f"{stem}.pkl",
                  f"{ADA_URL}/{stem}.pkl", LICENCE_NVIDIA, alignment=alignment)


def _ngc(stem, resolution, description, alignment=None) -> Source:
    return Source(stem, resolution, description + " (StyleGAN3 release's StyleGAN2 pickle)", f"{stem}.pkl",
                  f"{NGC_STYLEGAN2_URL}/{stem}.pkl", LICENCE_NVIDIA, alignment=alignment)


SOURCES = {s.name: s for s in [
    _anycost("anycost-ffhq-config-f", 1024, "Anycost GAN, FFHQ faces, uniform channels", FFHQ),
    _anycost("anycost-ffhq-config-f-flexible", 1024, "Anycost GAN, FFHQ faces, per-layer channels", FFHQ),
    _anycost("anycost-car-config-f", 512, "Anycost GAN, LSUN cars"),
    _hf("stylegan2-ffhq-config-f", 1024, "StyleGAN2 FFHQ faces, config-f", 133_000_000, FFHQ),
    _hf("stylegan2-car-config-f", 512, "StyleGAN2 LSUN cars, config-f"),
    _hf("stylegan2-cat-config-f", 256, "StyleGAN2 LSUN cats, config-f"),
    _hf("stylegan2-church-config-f", 256, "StyleGAN2 LSUN churches, config-f"),
    _hf("stylegan2-horse-config-f", 256, "StyleGAN2 LSUN horses, config-f"),
    _ada("ffhq", 1024, "StyleGAN2-ADA FFHQ faces", FFHQ),
    _ada("metfaces", 1024, "StyleGAN2-ADA MetFaces (art portraits)", FFHQ),
    _ada("afhqcat", 512, "StyleGAN2-ADA AFHQ cats"),
    _ada("afhqdog", 512, "StyleGAN2-ADA AFHQ dogs"),
    _ada("afhqwild", 512, "StyleGAN2-ADA AFHQ wild animals"),
    _ngc("stylegan2-ffhq-1024x1024", 1024, "StyleGAN2 FFHQ faces", FFHQ),
    _ngc("stylegan2-ffhq-512x512", 512, "StyleGAN2 FFHQ faces", FFHQ),
    _ngc("stylegan2-ffhq-256x256", 256, "StyleGAN2 FFHQ faces", FFHQ),
    _ngc("stylegan2-ffhqu-1024x1024", 1024, "StyleGAN2 FFHQ-U (unaligned faces)"),
    _ngc("stylegan2-celebahq-256x256", 256, "StyleGAN2 CelebA-HQ faces (CelebA-HQ's own crop)"),
    _ngc("stylegan2-metfaces-1024x1024", 1024, "StyleGAN2 MetFaces (art portraits)", FFHQ),
    _ngc("stylegan2-afhqv2-512x512", 512, "StyleGAN2 AFHQv2 animal faces"),
]}


def source_url(src: Source) -> str:
    mirror = os.environ.get("ANYCOST_MODEL_BASE_URL")
    return f"{mirror.rstrip('/')}/{src.filename}" if mirror else src.url


def _manifest_path() -> Path:
    return models_dir() / "manifest.json"


def _read_manifest() -> dict:
    try:
        return json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}


def describe_source(meta: dict, src: Source) -> None:
    """What a published file does not say about itself, added to a model's metadata (its own wins)."""
    meta["name"] = src.name
    for key, value in (("alignment", src.alignment), ("licence", src.licence)):
        if value and key not in meta:
            meta[key] = value
    if not src.sub_generators:
        meta.setdefault("sub_generators", False)


# ------------------------------------------------------------------------------ resolve

@overload
def open_model(spec: str, device: str = ..., kind: Literal["anycost"] = ...) -> AnycostModel: ...
@overload
def open_model(spec: str, device: str = ..., *, kind: Literal["creps"]) -> CrepsModel: ...
@overload
def open_model(spec: str, device: str = ..., *, kind: None) -> Model[Any]: ...


def open_model(spec: str, device: str = "cpu", kind: Kind | None = "anycost") -> Model:
    """The one resolver of `--model`: a file path, a built-in name (`demo`, `creps-demo`), the name of
    a published file (`SOURCES`), a file name in the model folder, or random:ARCH[:SEED] (untrained,
    seeded). `kind`: what the caller needs (None: either); anything else is refused with a message
    saying what it is."""
    from anycost.formats.creps import BUILTIN_CREPS_DEMO, BUILTIN_CREPS_DEMO_NAME, random_creps
    path = Path(spec).expanduser()
    model: Model
    if spec.startswith("random:"):
        model = random_creps(spec) if spec.split(":")[1].startswith("creps") else random_model(spec)
    elif spec in (DEFAULT_MODEL, BUILTIN_CREPS_DEMO_NAME) and not path.exists():
        builtin = BUILTIN_DEMO if spec == DEFAULT_MODEL else BUILTIN_CREPS_DEMO
        if not builtin.is_file():
            raise CheckpointError(f"the built-in model {spec!r} is missing from this installation ({builtin}); "
                                  "reinstall anycost, or pass --model (a file or an official name)")
        model = load_model(builtin, kind=None)
    elif path.exists() or os.sep in spec or spec.endswith((".pt", ".pth", ".pkl", SUFFIX)):
        model = load_model(path, kind=None)
    elif (models_dir() / f"{spec}{SUFFIX}").is_file():    # an imported copy wins over the published file
        model = load_model(models_dir() / f"{spec}{SUFFIX}", kind=None)
    elif spec in SOURCES:
        src = SOURCES[spec]
        local = models_dir() / src.filename
        if not local.is_file():
            raise CheckpointError(f"model {spec!r} is not downloaded: run `anycost-backend models pull {spec}` "
                                  f"or place {src.filename} in {models_dir()}")
        model = load_model(local)
        describe_source(model.metadata, src)
        encoder_file = models_dir() / f"encoder_{spec}.pt"   # the official encoder, placed beside it
        if encoder_file.is_file():
            model.encoder = load_official_encoder(encoder_file)
    else:
        raise CheckpointError(f"unknown model {spec!r}: not a file, not a known name (`anycost-backend models "
                              f"list`), not in {models_dir()}")
    check_kind(model, kind, spec)
    model.generator.to(device)
    if model.encoder is not None:
        model.encoder.to(device)
    return model


def random_model(spec: str) -> Model:
    """`random:ARCH[:SEED]`: an untrained generator of a named architecture, seeded."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise CheckpointError(f"expected random:ARCH[:SEED], got {spec!r}")
    try:
        cfg = architecture(parts[1])
        seed = int(parts[2]) if len(parts) == 3 else 0
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        g = Generator(cfg)
    g.update_w_avg(n=2000)
    return Model(g.eval(), {"name": spec, "untrained": True}, spec)


# ---------------------------------------------------------------------------- download

def pull(name: str, sha256: str | None = None, force: bool = False, progress: bool = True) -> Path:
    """Download a published model into the model folder, checking its size, hash and content. The
    SHA-256 of the first download is recorded; a later download that differs is refused."""
    if name not in SOURCES:
        raise DownloadError(f"unknown model {name!r}; known: {', '.join(SOURCES)}")
    src = SOURCES[name]
    dest = models_dir() / src.filename
    if dest.is_file() and not force:
        return dest
    url = source_url(src)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    by_hand = f"place {src.filename} there by hand ({dest}) or pass --model /path/to/{src.filename}"
    try:
        digest, size = _download(url, part, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"cannot download {url} ({reason}); {by_hand}") from None
    manifest = _read_manifest()
    seen = manifest.get(name, {}).get("sha256")
    expected = sha256 or src.sha256 or seen
    if expected and digest != expected.lower():
        part.unlink(missing_ok=True)
        why = "the one given" if sha256 else ("the published one" if src.sha256 else f"the one first seen ({seen})")
        raise DownloadError(f"{src.filename}: sha256 {digest} does not match {why}; the file was discarded "
                            f"(pass --sha256 to accept another)")
    try:
        model = load_model(part)
    except CheckpointError as e:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url} did not give a usable generator ({e}); {by_hand}") from None
    if model.generator.cfg.resolution != src.resolution:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url} holds a {model.generator.cfg.resolution} px generator, expected "
                            f"{src.resolution} px; the file was discarded")
    part.replace(dest)
    manifest[name] = {"file": src.filename, "sha256": digest, "bytes": size, "url": url,
                      "pulled": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    _manifest_path().write_text(json.dumps(manifest, indent=2))
    return dest


def _download(url: str, dest: Path, progress: bool) -> tuple[str, int]:
    from tqdm import tqdm  # installed with lpips; imported here to keep start-up light

    h = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        done = 0
        with open(dest, "wb") as f, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name.removesuffix(".part"),
                                         disable=not progress) as bar:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                h.update(chunk)
                done += len(chunk)
                bar.update(len(chunk))
    if total is not None and done != total:
        raise OSError(f"incomplete download: {done} of {total} bytes")
    return h.hexdigest(), done


# ------------------------------------------------------------------------------- list

@dataclass
class LocalEntry:
    name: str
    path: Path | None
    bytes: int
    note: str


def list_models() -> list[LocalEntry]:
    """Every known published model (downloaded or not) and every other model file in the folder."""
    folder = models_dir()
    manifest = _read_manifest()
    out = []
    for m in SOURCES.values():
        p = folder / m.filename
        about = f"{m.resolution} px, {m.description}; licence: {m.licence.split(' (')[0]}"
        if p.is_file():
            sha = manifest.get(m.name, {}).get("sha256", "placed by hand")
            out.append(LocalEntry(m.name, p, p.stat().st_size, f"{about}; sha256 {sha[:12]}"))
        else:
            size = f"{m.bytes / 1e6:.0f} MB, " if m.bytes else ""
            out.append(LocalEntry(m.name, None, 0, f"{about}; {size}not downloaded"))
    if folder.is_dir():
        for p in sorted(folder.glob(f"*{SUFFIX}")):
            out.append(LocalEntry(p.stem, p, p.stat().st_size, "Anycost Editor model"))
    return out
