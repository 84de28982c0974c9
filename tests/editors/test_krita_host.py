"""The Krita host's layer bookkeeping where real Krita cannot be steered: addChildNode runs Qt's
event loop while it waits for Krita's stroke, so a click or another preview can arrive in the
middle of adding the preview layer (tests/krita_fake.py runs such a call at that moment). Seen in
real Krita 5.1 as an "Anycost preview" layer left behind by Original; the whole flow in real Krita
is test_krita_real.py."""
from __future__ import annotations

import pytest

from .. import krita_fake
from ..krita_helpers import APP  # noqa: F401  (QTimer needs a Qt application)

krita_fake.install()
from anycost_krita.krita_host import PREVIEW_NAME, KritaHost  # noqa: E402

W, H = 64, 48


def rgb(value: int) -> bytes:
    return bytes([value]) * (W * H * 3)


@pytest.fixture
def doc_host():
    doc, layer = krita_fake.document_with_layer(W, H)
    yield doc, KritaHost.from_active()
    krita_fake.Krita.instance().docs.remove(doc)


def previews(doc) -> list:
    return [n for n in doc.rootNode().childNodes() if n.name() == PREVIEW_NAME]


def test_a_removal_while_the_preview_is_being_added_removes_it(doc_host):
    """Original (or Discard) clicked while Krita adds the preview layer: no preview stays behind,
    and the next preview adds a new one."""
    doc, host = doc_host
    doc.during_wait = host.remove_preview
    host.show_preview(rgb(10), W, H)
    assert previews(doc) == [] and doc.names() == ["Face"]
    host.show_preview(rgb(20), W, H)
    (layer,) = previews(doc)
    assert layer.locked() and layer.writes[-1][4][:4] == bytes([20, 20, 20, 255])
    host.remove_preview()
    assert doc.names() == ["Face"]


def test_a_preview_arriving_while_the_layer_is_being_added_goes_into_that_layer(doc_host):
    """A newer preview drawn during the add ends on the one layer being added (not on a second
    preview layer, and not covered by the older pixels of the call that started the add)."""
    doc, host = doc_host
    doc.during_wait = lambda: host.show_preview(rgb(30), W, H)
    host.show_preview(rgb(40), W, H)
    (layer,) = previews(doc)
    assert [w[4][0] for w in layer.writes] == [30]
    host.remove_preview()
    assert previews(doc) == []


def test_the_last_of_remove_and_show_during_the_add_wins(doc_host):
    """Original pressed and released while the layer is being added: the preview stays, showing
    the newest pixels."""
    doc, host = doc_host

    def original_on_and_off():
        host.remove_preview()
        host.show_preview(rgb(35), W, H)

    doc.during_wait = original_on_and_off
    host.show_preview(rgb(45), W, H)
    (layer,) = previews(doc)
    assert [w[4][0] for w in layer.writes] == [35]


def test_apply_adds_one_layer_above_earlier_edits_and_no_preview(doc_host):
    doc, host = doc_host
    host.show_preview(rgb(50), W, H)
    host.apply(rgb(60), W, H, 0, "Anycost edit (age +1.00)")
    host.show_preview(rgb(70), W, H)
    host.apply(rgb(80), W, H, 0, "Anycost edit (age +2.00)")
    host.show_preview(rgb(90), W, H)
    assert doc.names() == ["Face", "Anycost edit (age +1.00)", "Anycost edit (age +2.00)", PREVIEW_NAME]
    assert doc.activeNode().name() == "Face"
