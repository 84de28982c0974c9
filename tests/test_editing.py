import torch

from anycost.checkpoints import load_model
from anycost.editing import Direction, apply_edit, default_rows, pca_directions


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
