import torch

from anycost.editing.directions import Direction, apply_edit, default_rows, pca_directions
from anycost.formats.checkpoints import load_model


def test_pca_directions_are_orthonormal_cached_and_ordered(tiny_model_file, tmp_path):
    g = load_model(tiny_model_file).generator
    dirs = pca_directions(g, tmp_path, n=3000)
    vecs = torch.stack([d.vector for d in dirs.values()])
    assert torch.allclose(vecs @ vecs.T, torch.eye(len(vecs)), atol=1e-4)
    scales = [d.scale for d in dirs.values()]
    assert scales == sorted(scales, reverse=True) and scales[0] > 0
    assert len(list(tmp_path.glob("pca-*.safetensors"))) == 1
    again = pca_directions(g, tmp_path, n=3000)
    assert all(torch.equal(again[k].vector, dirs[k].vector) for k in dirs)


def test_apply_edit_moves_only_its_rows_and_never_the_original():
    w = torch.zeros(1, 12, 8)
    d = Direction("smile", torch.ones(8), -1, 1, 0.5, default_rows(12))
    before = w.clone()
    out = apply_edit(w, {"smile": d}, {"smile": 2.0})      # clamped to the range: 1 * 0.5
    assert torch.equal(w, before)
    assert torch.allclose(out[0, :8], torch.full((8, 8), 0.5)) and torch.equal(out[0, 8:], w[0, 8:])
    assert default_rows(18) == (0, 12)


def test_official_boundary_file_next_to_the_model_is_used(tiny_model_file, tmp_path, monkeypatch):
    from anycost.editing.directions import load_directions
    monkeypatch.setenv("ANYCOST_CACHE_DIR", str(tmp_path))
    m = load_model(tiny_model_file)
    assert next(iter(load_directions(m).values())).source == "pca"
    vec = torch.nn.functional.normalize(torch.randn(1, 64), dim=1).double()
    torch.save({"31_Smiling": vec, "15_Eyeglasses": -vec}, tmp_path / f"boundary_{m.name}.pt")
    dirs = load_directions(m)
    assert set(dirs) == {"Smiling", "Eyeglasses"} and dirs["Smiling"].source == "official-boundary"
    assert dirs["Smiling"].scale == 0.6 and dirs["Smiling"].vector.dtype == torch.float32
