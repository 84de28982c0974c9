"""The CREPS generator: any size and aspect, regions equal to crops of the full render, tiling,
and previews that agree with box-downsampled finals by construction."""
from __future__ import annotations

import json
import math

import pytest
import torch

from anycost.models.creps import CrepsConfig, CrepsGenerator, sample_grid

SMALL = CrepsConfig(resolution=32, style_dim=32, n_mlp=2, channel_base=1024, channel_max=64, rank=4,
                    pixel_dim=8, decoder_hidden=(16, 16, 16), head_widths=(16, 8))


@pytest.fixture(scope="module")
def g():
    torch.manual_seed(0)
    g = CrepsGenerator(SMALL).eval()
    with torch.no_grad():
        for name, p in g.named_parameters():
            if name.endswith("bias") and "affine" not in name:
                p.add_(0.1 * torch.randn_like(p))     # away from the zero init: every path counts
        g.synthesis.b4.input.freqs.mul_(0.3)             # a smoother function, like a trained one
    return g


@pytest.fixture(scope="module")
def ws(g):
    with torch.no_grad():
        return g.map(torch.randn(2, SMALL.style_dim, generator=torch.Generator().manual_seed(1)))


def psnr(a, b):
    return 10 * math.log10(4 / (a - b).square().mean().item())


def test_config_and_shapes(g, ws):
    assert SMALL.num_ws == 9 and SMALL.levels == [4, 8, 16, 32] and ws.shape == (2, 9, 32)
    with torch.no_grad():
        img = g.render(ws, (40, 72))                  # not square, not the native size
    assert img.shape == (2, 3, 40, 72) and torch.isfinite(img).all() and img.std() > 1e-3
    with pytest.raises(ValueError):
        CrepsConfig(resolution=48)
    with pytest.raises(ValueError, match="outside"):
        g.render(ws, (40, 72), region=(60, 0, 20, 10))
    with pytest.raises(AssertionError):
        g.render(ws[:, :5], (8, 8))


def test_pixel_extent_grid_is_the_training_grid_at_native_size():
    assert torch.allclose(sample_grid(32, 32), torch.linspace(0, 1, 32, dtype=torch.float64), atol=1e-12)
    fine = sample_grid(64, 32)                        # two samples per native pixel, centred on it
    assert torch.allclose(fine.reshape(32, 2).mean(1), sample_grid(32, 32), atol=1e-12)


def test_region_is_the_crop_of_the_full_render(g, ws):
    with torch.no_grad():
        full = g.render(ws, (48, 80), tile=16)
        cache = g.prepare(ws, 48, 80)
        part = g.render(ws, (48, 80), region=(17, 5, 30, 21), tile=16, cache=cache)
        corner = g.render(ws, (48, 80), region=(79, 47, 1, 1), tile=16, cache=cache)
        untiled = g.render(ws, (48, 80), tile=1000, cache=cache)
    assert torch.equal(part, full[:, :, 5:26, 17:47]) and torch.equal(corner, full[:, :, 47:, 79:])
    assert torch.allclose(untiled, full, atol=1e-5)       # other tile shapes: the same up to rounding


def test_chunked_line_branch_is_the_same(g, ws):
    with torch.no_grad():
        a = g.prepare(ws, 40, 50)
        b = g.prepare(ws, 40, 50, chunk=7)
    assert all(torch.allclose(x, y, atol=1e-6) for x, y in zip(a.rows + a.cols, b.rows + b.cols, strict=True))


def test_previews_agree_with_downsampled_finals(g, ws):
    """The same continuous image at two sizes: a 4x final box-downsampled is close to the
    preview, and closer still to a supersampled preview."""
    with torch.no_grad():
        final = g.render(ws, (128, 128))
        down = torch.nn.functional.avg_pool2d(final, 4)
        preview = g.render(ws, (32, 32))
        super2 = g.render(ws, (32, 32), supersample=4)
        other = g.render(g.map(torch.randn(2, 32)), (32, 32))
    assert torch.allclose(super2, down, atol=1e-4)        # the same samples, averaged the same way
    assert psnr(preview, down) > psnr(other, down) + 10   # the same image, not just any image
    progress = []
    with torch.no_grad():
        g.render(ws, (20, 30), tile=10, progress=lambda i, n: progress.append((i, n)))
    assert progress == [(1, 6), (2, 6), (3, 6), (4, 6), (5, 6), (6, 6)]   # 2 x 3 tiles of 10 px


def test_bench_creps_saves_its_figures(tmp_path):
    from ..conftest import run_cli
    out = tmp_path / "creps.json"
    r = run_cli("--threads", "1", "bench", "--creps", "creps-demo", "--sizes", "32", "--tile", "16",
                "--untiled-max", "32", "--out", str(out))
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(row["size"], row["tile"]) for row in rows] == [(32, 16), (32, 32)]
    assert all(row["finite"] and row["seconds"] > 0 and row["peak_rss_mib"] > 0 for row in rows)
    assert "| 32² | 16 |" in r.stdout and "| 32² | untiled |" in r.stdout
    bad = run_cli("bench", "--creps", "creps-nope")
    assert bad.returncode == 2 and "unknown CREPS architecture" in bad.stderr


def test_files_and_the_official_layout(g, ws, tmp_path):
    from anycost.core.errors import CheckpointError
    from anycost.formats.checkpoints import load_model
    from anycost.formats.creps import save_creps

    from ..conftest import run_cli
    with torch.no_grad():
        ref = g.render(ws, (24, 40))
    path = save_creps(tmp_path / "c.safetensors", g, {"name": "small"})
    back = load_model(path, kind="creps")
    assert back.generator.cfg == SMALL and back.metadata["name"] == "small"
    with torch.no_grad():
        assert torch.equal(back.generator.render(ws, (24, 40)), ref)
    with pytest.raises(CheckpointError, match="CREPS model"):
        load_model(path)                                   # not an anycost generator
    # the official release's layout: our tensors plus what upstream builds but never runs
    sd = dict(g.state_dict())
    sd["synthesis.b4.input.coords"] = torch.linspace(0, 1, 32).reshape(1, -1, 1, 1).repeat(1, 1, 2, 1)
    sd.update({f"synthesis.b4.tores.{k}": v for k, v in g.synthesis.b8.tores.state_dict().items()})
    sd.update({f"synthesis.decoder_8.{k}": v for k, v in g.synthesis.decoder_16.state_dict().items()})
    torch.save(sd, tmp_path / "official.pt")
    r = run_cli("convert-creps", str(tmp_path / "official.pt"), "--out", str(tmp_path / "conv.safetensors"))
    assert r.returncode == 0, r.stderr
    conv = load_model(tmp_path / "conv.safetensors", kind="creps").generator
    assert conv.cfg.resolution == 32 and conv.cfg.channels(8) == SMALL.channels(8) and conv.cfg.rank == 4
    with torch.no_grad():
        assert torch.equal(conv.render(ws, (24, 40)), ref)
    bad = run_cli("convert-creps", str(tmp_path / "official.pt").replace(".pt", ".pkl"), "--out", str(tmp_path / "x"))
    assert bad.returncode == 2


def test_sample_command_sizes_and_regions(g, tmp_path):
    import numpy as np

    from anycost.formats.creps import save_creps

    from ..conftest import run_cli
    model = str(save_creps(tmp_path / "small.safetensors", g))
    common = ["sample", "--model", model, "--seed", "3", "--size", "50x30", "--tile", "16"]
    assert run_cli(*common, "--out", str(tmp_path / "full.npy")).returncode == 0
    r = run_cli(*common, "--region", "7,4,33,20", "--out", str(tmp_path / "part.npy"))
    assert r.returncode == 0, r.stderr
    full, part = np.load(tmp_path / "full.npy"), np.load(tmp_path / "part.npy")
    assert full.shape == (1, 3, 30, 50) and np.array_equal(part, full[:, :, 4:24, 7:40])
    png = run_cli(*common, "--out", str(tmp_path / "full.png"))
    assert png.returncode == 0 and (tmp_path / "full.png").stat().st_size > 0
    bad = run_cli(*common, "--region", "40,0,20,10", "--out", str(tmp_path / "x.npy"))
    assert bad.returncode == 2 and "inside the 50x30 image" in bad.stderr
    wrong = run_cli("sample", "--model", "random:demo-128", "--seed", "1", "--size", "64x64",
                    "--out", str(tmp_path / "y.png"))
    assert wrong.returncode == 2 and "CREPS" in wrong.stderr
