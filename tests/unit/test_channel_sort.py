import torch

from anycost.formats.checkpoints import load_model
from anycost.models import Generator, GeneratorConfig
from anycost.models.channel_sort import sort_channels


def test_sort_preserves_full_output_and_orders_by_importance(official_file):
    g = load_model(official_file).generator
    z = torch.randn(3, 512, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before, before_half = g(z), g(z, channels=0.5)
        perms = sort_channels(g, n_samples=500)
        after, after_half = g(z), g(z, channels=0.5)
    assert (before - after).abs().max() < 1e-4                            # float rounding only
    assert any(not torch.equal(p, torch.arange(len(p))) for p in perms)   # something actually moved
    assert (before_half - after_half).abs().max() > 1e-3                  # so sub-generators change
    # once sorted, sorting again is the identity
    again = sort_channels(g, n_samples=500)
    assert all(torch.equal(p, torch.arange(len(p))) for p in again)


def test_sort_keeps_the_most_important_channels_first():
    torch.manual_seed(0)
    g = Generator(GeneratorConfig.from_multiplier(32, 0.125, 16, style_dim=32, n_mlp=2)).eval()
    with torch.no_grad():
        g.convs[1].conv.weight[:, :, 5] *= 50        # input channel 5 of convs.1 becomes dominant
    sort_channels(g, n_samples=200)
    w = g.convs[1].conv.weight[0].abs().sum(dim=(0, 2, 3))
    assert int(torch.argmax(w)) == 0
