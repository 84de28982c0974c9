"""Where models come from: the user's cache folder, the official release, named architectures.

A model is named on the command line by a path, by the name of an official release file
(`anycost-ffhq-config-f`, ...), by the name of a file in the cache folder, or as `random:ARCH[:SEED]`
for an untrained network of a named architecture (benchmarks, tests).
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
from anycost.models import Generator, architecture

# The official release (mit-han-lab/anycost-gan, models/__init__.py). The host has been reported
# gone (their issue #30), so a mirror can be set with ANYCOST_MODEL_BASE_URL and local files always work.
OFFICIAL_BASE_URL = "https://hanlab18.mit.edu/projects/anycost-gan/files"

# The built-in model shipped inside the package (trained by training/).
BUILTIN_DEMO = DATA_DIR / f"demo{SUFFIX}"


FFHQ = {"name": "ffhq"}   # FFHQ's own crop rule, unchanged


@dataclass(frozen=True)
class OfficialModel:
    name: str
    resolution: int
    description: str
    sha256: str | None = None   # not published upstream; checked when known (--sha256), recorded on pull
    alignment: dict | None = None   # the crop rule of its training data (anycost.editing.faces.recipes); None: none

    @property
    def filename(self) -> str:
        return f"generator_{self.name}.pt"


OFFICIAL_MODELS = {m.name: m for m in [
    OfficialModel("anycost-ffhq-config-f", 1024, "Anycost GAN, FFHQ faces, uniform channels", alignment=FFHQ),
    OfficialModel("anycost-ffhq-config-f-flexible", 1024, "Anycost GAN, FFHQ faces, per-layer channels",
                  alignment=FFHQ),
    OfficialModel("stylegan2-ffhq-config-f", 1024, "StyleGAN2 FFHQ (not trained for sub-generators)", alignment=FFHQ),
    OfficialModel("anycost-car-config-f", 512, "Anycost GAN, LSUN cars"),
]}


def base_url() -> str:
    return os.environ.get("ANYCOST_MODEL_BASE_URL", OFFICIAL_BASE_URL).rstrip("/")


def _manifest_path() -> Path:
    return models_dir() / "manifest.json"


def _read_manifest() -> dict:
    try:
        return json.loads(_manifest_path().read_text())
    except (OSError, ValueError):
        return {}


# ------------------------------------------------------------------------------ resolve

@overload
def open_model(spec: str, device: str = ..., kind: Literal["anycost"] = ...) -> AnycostModel: ...
@overload
def open_model(spec: str, device: str = ..., *, kind: Literal["creps"]) -> CrepsModel: ...
@overload
def open_model(spec: str, device: str = ..., *, kind: None) -> Model[Any]: ...


def open_model(spec: str, device: str = "cpu", kind: Kind | None = "anycost") -> Model:
    """The one resolver of `--model`: a file path, a built-in name (`demo`, `creps-demo`), an official
    name, a file name in the model folder, or random:ARCH[:SEED] (untrained, seeded). `kind`: what
    the caller needs (None: either); anything else is refused with a message saying what it is."""
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
    elif path.exists() or os.sep in spec or spec.endswith((".pt", ".pth", SUFFIX)):
        model = load_model(path, kind=None)
    elif spec in OFFICIAL_MODELS:
        local = models_dir() / OFFICIAL_MODELS[spec].filename
        if not local.is_file():
            raise CheckpointError(f"model {spec!r} is not downloaded: run `anycost-backend models pull {spec}` "
                                  f"or place {OFFICIAL_MODELS[spec].filename} in {models_dir()}")
        model = load_model(local)
        encoder_file = models_dir() / f"encoder_{spec}.pt"   # the official encoder, placed beside it
        if encoder_file.is_file():
            model.encoder = load_official_encoder(encoder_file)
    elif (models_dir() / f"{spec}{SUFFIX}").is_file():
        model = load_model(models_dir() / f"{spec}{SUFFIX}", kind=None)
    else:
        raise CheckpointError(f"unknown model {spec!r}: not a file, not an official name "
                              f"({', '.join(OFFICIAL_MODELS)}), not in {models_dir()}")
    check_kind(model, kind, spec)
    official = OFFICIAL_MODELS.get(model.name)
    if official is not None and official.alignment and "alignment" not in model.metadata:
        model.metadata["alignment"] = official.alignment
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
    """Download an official generator into the cache folder, checking size, hash and content."""
    if name not in OFFICIAL_MODELS:
        raise DownloadError(f"unknown official model {name!r}; known: {', '.join(OFFICIAL_MODELS)}")
    entry = OFFICIAL_MODELS[name]
    dest = models_dir() / entry.filename
    if dest.is_file() and not force:
        return dest
    url = f"{base_url()}/{entry.filename}"
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    by_hand = f"place {entry.filename} there by hand ({dest}) or pass --model /path/to/{entry.filename}"
    try:
        digest, size = _download(url, part, progress)
    except (urllib.error.URLError, OSError, TimeoutError) as e:
        part.unlink(missing_ok=True)
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"cannot download {url} ({reason}); {by_hand}") from None
    expected = sha256 or entry.sha256
    if expected and digest != expected.lower():
        part.unlink(missing_ok=True)
        raise DownloadError(f"{entry.filename}: sha256 {digest} does not match the expected {expected}; "
                            f"the file was discarded")
    try:
        model = load_model(part)
    except CheckpointError as e:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url} did not give a usable generator ({e}); {by_hand}") from None
    if model.generator.cfg.resolution != entry.resolution:
        part.unlink(missing_ok=True)
        raise DownloadError(f"{url} holds a {model.generator.cfg.resolution} px generator, expected "
                            f"{entry.resolution} px; the file was discarded")
    part.replace(dest)
    manifest = _read_manifest()
    manifest[name] = {"file": entry.filename, "sha256": digest, "bytes": size, "url": url,
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
    """Official names (downloaded or not) and every other model file in the cache folder."""
    folder = models_dir()
    manifest = _read_manifest()
    out = []
    for m in OFFICIAL_MODELS.values():
        p = folder / m.filename
        if p.is_file():
            sha = manifest.get(m.name, {}).get("sha256", "placed by hand")
            out.append(LocalEntry(m.name, p, p.stat().st_size, f"{m.description}; sha256 {sha[:12]}"))
        else:
            out.append(LocalEntry(m.name, None, 0, f"{m.description}; not downloaded"))
    if folder.is_dir():
        for p in sorted(folder.glob(f"*{SUFFIX}")):
            out.append(LocalEntry(p.stem, p, p.stat().st_size, "Anycost Editor model"))
    return out
