"""The installed `anycost-backend` command, run as a user would."""
import hashlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from anycost.formats.checkpoints import load_model
from anycost.formats.registry import SOURCES

from ..conftest import official_code, run_cli


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for f in fragments:
        assert f in lines[0], lines[0]


def test_sample_npy_is_exact_and_deterministic(official_file, tmp_path):
    out = tmp_path / "a.npy"
    r = run_cli("sample", "--model", str(official_file), "--seed", "7", "--n", "2", "--channels", "0.5",
                "--resolution", "64", "--out", str(out))
    assert r.returncode == 0, r.stderr
    arr = np.load(out)
    assert arr.shape == (2, 3, 64, 64) and arr.dtype == np.float32
    g = load_model(official_file).generator
    with torch.no_grad():
        for i in range(2):
            z = torch.randn(1, 512, generator=torch.Generator().manual_seed(7 + i))
            ref = g(z, channels=0.5, target_res=64)
            assert np.abs(arr[i:i + 1] - ref.numpy()).max() < 1e-5
    r2 = run_cli("sample", "--model", str(official_file), "--seed", "7", "--n", "2", "--channels", "0.5",
                 "--resolution", "64", "--out", str(tmp_path / "b.npy"))
    assert r2.returncode == 0 and np.array_equal(arr, np.load(tmp_path / "b.npy"))


def test_sample_png_grid_and_z_file(official_file, tmp_path):
    z = np.random.default_rng(0).standard_normal((3, 512)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    r = run_cli("sample", "--model", str(official_file), "--z", str(tmp_path / "z.npy"), "--channels",
                "64,64,64,64,32,32,16,16,8,8,4,4", "--truncation", "0.7", "--out", str(tmp_path / "g.png"))
    assert r.returncode == 0, r.stderr
    img = Image.open(tmp_path / "g.png")
    assert img.size[0] > 2 * 128 and img.mode == "RGB"        # a grid of the three images
    r = run_cli("sample", "--model", str(official_file), "--seed", "1", "--out", str(tmp_path / "one.png"))
    assert Image.open(tmp_path / "one.png").size == (128, 128)


def test_random_noise_is_seeded(official_file, tmp_path):
    args = ["sample", "--model", str(official_file), "--seed", "3", "--noise", "random"]
    run_cli(*args, "--out", str(tmp_path / "r1.npy"))
    run_cli(*args, "--out", str(tmp_path / "r2.npy"))
    run_cli("sample", "--model", str(official_file), "--seed", "3", "--out", str(tmp_path / "c.npy"))
    r1, r2, c = (np.load(tmp_path / f) for f in ("r1.npy", "r2.npy", "c.npy"))
    assert np.array_equal(r1, r2) and not np.allclose(r1, c)


@pytest.mark.parametrize("extra,fragments", [
    (["--channels", "1.5"], ["ratio", "1.5"]),
    (["--channels", "abc"], ["--channels"]),
    (["--channels", "1,2,3"], ["12 entries"]),
    (["--resolution", "256"], ["256"]),
    (["--resolution", "100"], ["100"]),
    (["--out", "x.jpg"], [".png or .npy"]),
])
def test_sample_errors(official_file, tmp_path, extra, fragments):
    args = ["sample", "--model", str(official_file), "--seed", "0", "--out", str(tmp_path / "o.png")]
    # later options win in argparse, so the bad value replaces the good one
    r = run_cli(*args, *extra)
    assert_one_line_error(r, *fragments)


def test_missing_corrupt_and_unknown_models(tmp_path):
    out = str(tmp_path / "o.png")
    assert_one_line_error(run_cli("sample", "--model", str(tmp_path / "nope.pt"), "--seed", "0", "--out", out),
                          "not found")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a zip")
    assert_one_line_error(run_cli("sample", "--model", str(bad), "--seed", "0", "--out", out), "bad.pt")
    assert_one_line_error(run_cli("sample", "--model", "no-such-model", "--seed", "0", "--out", out), "unknown model")
    assert_one_line_error(run_cli("sample", "--model", "anycost-ffhq-config-f", "--seed", "0", "--out", out),
                          "models pull anycost-ffhq-config-f")
    assert_one_line_error(run_cli("sample", "--model", "random:nope", "--seed", "0", "--out", out), "architecture")
    assert_one_line_error(run_cli("sample", "--model", "random:demo-128", "--seed", "x", "--out", out), "--seed")


# ----------------------------------------------------------------------------- models pull

def test_pull_downloads_checks_and_lists(file_server, official_file, tmp_path):
    root, url = file_server
    name = "anycost-car-config-f"
    # the served file is a real generator in the official layout, but only 128 px: pull must refuse
    # it as the wrong model, then accept a correct one
    (root / SOURCES[name].filename).write_bytes(official_file.read_bytes())
    env = {"ANYCOST_MODEL_BASE_URL": url}
    r = run_cli("models", "pull", name, "--quiet", env=env)
    assert_one_line_error(r, "128 px", "512 px")
    cache = tmp_path / "model-cache"
    assert not any(cache.glob("*.pt")) and not any(cache.glob("*.part"))

    from anycost.models import Generator, GeneratorConfig
    torch.manual_seed(0)
    car = Generator(GeneratorConfig.from_multiplier(512, 0.0625, 16, style_dim=16, n_mlp=1))
    release = root / SOURCES[name].filename
    torch.save({"g_ema": car.state_dict()}, release)
    digest = hashlib.sha256(release.read_bytes()).hexdigest()

    r = run_cli("models", "pull", name, "--quiet", "--sha256", "0" * 64, env=env)
    assert_one_line_error(r, "sha256", "does not match")
    r = run_cli("models", "pull", name, "--quiet", "--sha256", digest, env=env)
    assert r.returncode == 0, r.stderr
    assert (cache / release.name).read_bytes() == release.read_bytes()
    manifest = json.loads((cache / "manifest.json").read_text())
    assert manifest[name]["sha256"] == digest
    listing = run_cli("models", "list", env=env).stdout
    assert name in listing and digest[:12] in listing
    r = run_cli("sample", "--model", name, "--seed", "0", "--resolution", "64", "--out", str(tmp_path / "c.npy"))
    assert r.returncode == 0 and np.load(tmp_path / "c.npy").shape == (1, 3, 64, 64)


def test_pull_offline_names_the_file_to_place(tmp_path):
    with socket.socket() as s:          # a loopback port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = run_cli("models", "pull", "anycost-ffhq-config-f", "--quiet",
                env={"ANYCOST_MODEL_BASE_URL": f"http://127.0.0.1:{port}"})
    assert_one_line_error(r, "cannot download", "generator_anycost-ffhq-config-f.pt", "by hand")


# ---------------------------------------------------------------------------------- bench/demo

def test_bench_saves_json(official_file, tmp_path):
    out = tmp_path / "bench.json"
    r = run_cli("--threads", "1", "bench", "--model", str(official_file), "--repeat", "1",
                "--ratios", "1,0.5", "--resolutions", "128,32", "--out", str(out),
                env={"ANYCOST_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    rows = {(row["path"], row["ratio"], row["resolution"]): row for row in data["rows"]}
    assert set(rows) == {(p, r, k) for p in ("fast", "reference") for r in (1.0, 0.5) for k in (128, 32)}
    for p in ("fast", "reference"):
        assert rows[(p, 1.0, 128)]["speedup"] == 1.0 and rows[(p, 0.5, 32)]["mac_reduction"] > 1
    assert rows[("reference", 0.5, 32)]["vs_reference"] == 1.0
    peak = data["matmul_peak_gmac_per_s"]
    full = rows[("fast", 1.0, 128)]
    assert full["gmac_per_s"] == pytest.approx(full["gmacs"] / (full["median_ms"] / 1000), rel=0.01)
    # units checked against the machine: a share of its own matrix-multiply peak (Winograd does fewer
    # multiplies than it is credited with, so somewhat above 1 is possible; 1000x is a unit slip)
    assert peak > 0 and 0.005 < full["peak_share"] < 3
    assert data["conv_forms"] and list((tmp_path / "state" / "calibration").glob("conv-forms-*.json"))
    assert data["environment"]["threads"] == 1
    assert "| fast | 0.5 | 32 |" in r.stdout and "GMAC/s" in r.stdout
    bad = run_cli("bench", "--paths", "quick")
    assert bad.returncode != 0 and "--paths" in bad.stderr


def test_bench_reuse_rows(official_file, tmp_path):
    out = tmp_path / "reuse.json"
    r = run_cli("--threads", "1", "bench", "--model", str(official_file), "--ratios", "0.5", "--resolutions", "64",
                "--reuse-rows", "0,7", "--repeat", "3", "--out", str(out),
                env={"ANYCOST_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["levels_reused"] for row in rows] == [0, 3]        # rows 0..5 feed the 4, 8, 16 px levels
    assert all(row["reuse_median_ms"] > 0 and row["fresh_median_ms"] > 0 for row in rows)
    assert "| 0.5x@64 | 7.. | 3 |" in r.stdout


def test_bench_against_the_official_code_in_the_same_run(tmp_path):
    """Ours, the official generator under the same allocator settings, and the official one as
    shipped: three processes, the same weights and W+, one small configuration of config-f's car
    model; the images agree and each process reports its allocator."""
    out = tmp_path / "official.json"
    r = run_cli("--threads", "1", "bench", "--against-official", str(official_code()), "--arch", "car-512",
                "--ratios", "0.25", "--resolutions", "16", "--repeat", "2", "--out", str(out),
                env={"ANYCOST_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    (row,) = data["rows"]
    assert (row["ratio"], row["resolution"]) == (0.25, 16)
    for impl in ("ours", "ours-preview", "official", "official-as-shipped"):
        assert len(row[f"{impl}_ms"]) == 2 and row[f"{impl}_median_ms"] > 0
    assert row["speedup_same_allocator"] == pytest.approx(row["official_median_ms"] / row["ours_median_ms"])
    agree = row["ours_vs_official"]
    assert agree["max_abs_diff"] < 1e-3 and agree["psnr_db"] > 80          # the same network
    low = row["preview_vs_ours"]                   # as the daemon serves it: within 40 dB of float32, or equal
    assert low["psnr_db"] >= 40 and 0 <= low["perceptual"] < 0.1 and data["perceptual"]
    assert row["preview_precision"]["used"] in ("fp32", "bf16", "int8")
    if row["preview_precision"]["used"] == "fp32":
        assert low["max_abs_diff"] == 0
    notes = data["workers"]
    assert "glibc defaults" in notes["official-as-shipped"]["note"] and "kept" in notes["official"]["note"]
    assert "| 0.25x@16 |" in r.stdout
    bad = run_cli("bench", "--against-official", str(tmp_path), "--arch", "car-512")
    assert bad.returncode != 0 and "does not hold the official Anycost GAN code" in bad.stderr
    bad = run_cli("bench", "--against-official", str(official_code()), "--arch", "demo-128")
    assert bad.returncode != 0 and "not an architecture the official constructor builds" in bad.stderr


def test_grid_writes_the_paper_figure(tmp_path):
    r = run_cli("grid", "--model", "random:demo-128", "--out", str(tmp_path / "grid.png"))
    assert r.returncode == 0, r.stderr
    img = Image.open(tmp_path / "grid.png")
    assert img.size[0] > 4 * 128


def test_bench_e2e_through_a_real_daemon(tiny_model_file, tmp_path):
    out = tmp_path / "e2e.json"
    r = run_cli("--threads", "1", "bench", "--e2e", "--model", str(tiny_model_file), "--n", "3",
                "--budgets", "30,100", "--busy", "1",
                "--out", str(out), env={"ANYCOST_STATE_DIR": str(tmp_path / "state")})
    assert r.returncode == 0, r.stderr
    data = json.loads(out.read_text())
    assert set(data["budgets"]) == {"30", "100"} and data["busy_neighbours"] == 1
    for b in data["budgets"].values():
        assert b["n"] == 3 and b["round_trip_median_ms"] >= b["render_median_ms"] > 0
        assert 0 <= b["transport_share"] < 1
        assert sum(b["configs"].values()) == 3
    assert data["render"]["size"] == [256, 256]
    assert "| edit, budget 100 ms |" in r.stdout and "busy neighbour processes 1" in r.stdout
    spinning = [p for p in Path("/proc").glob("[0-9]*") if _cmdline(p).endswith("while True: pass")]
    assert not spinning                                   # the neighbours end with the run


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""
