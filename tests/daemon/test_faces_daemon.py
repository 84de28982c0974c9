"""Aligned sessions through a real daemon: project a photo's face, preview and apply back into it."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from anycost.editing.faces.blending import face_mask
from anycost.editing.faces.geometry import Alignment
from anycost.editing.faces.recipes import model_recipe
from anycost.protocol import messages as P
from anycost.protocol.client import Client
from anycost.protocol.messages import BackendError

from ..daemon_helpers import Daemon
from ..pipeline.test_faces import _require_mediapipe


@pytest.fixture(scope="module")
def daemon(tmp_path_factory):
    _require_mediapipe()
    d = Daemon(tmp_path_factory.mktemp("faces-daemon"), None)     # the built-in demo model
    d.wait_ready()
    yield d
    d.stop()


@pytest.fixture()
def client(daemon):
    with Client(daemon.address) as c:
        yield c


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """The astronaut with a margin on the left and below: the face is not at the image's centre."""
    from skimage import data
    canvas = np.full((600, 700, 3), 200, np.uint8)
    canvas[40:552, 150:662] = data.astronaut()
    return canvas


def image_of(a: np.ndarray, mode: str = "RGB8") -> dict:
    if mode == "RGBA8":
        a = np.concatenate([a, np.full(a.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return P.Image(a.shape[1], a.shape[0], mode, np.ascontiguousarray(a).tobytes()).to_dict()


def pixels(img: dict) -> np.ndarray:
    return np.frombuffer(img["data"], np.uint8).reshape(img["h"], img["w"], 3)


def test_aligned_session_previews_and_applies_into_the_photo(client, photo):
    from anycost.formats.registry import open_model
    recipe = model_recipe(open_model("demo").metadata)
    progress = []
    r = client.call("open", image=image_of(photo, "RGBA8"), align="auto", steps=5, timeout=120,
                    on_progress=progress.append)
    a = r["alignment"]
    assert a["face"] == 0 and len(a["faces"]) == 1 and a["face_px"] > 100
    x, y, w, h = r["region"]
    assert a["region"] == r["region"] and 150 < x and x + w < 662 and w < 300 and h < 300
    mask = face_mask(Alignment.from_dict(a), recipe, (x, y, w, h))
    outside = mask == 0
    assert outside.any() and (mask == 1).any()
    original = photo[y:y + h, x:x + w]
    rec = pixels(r["reconstruction"])
    assert rec.shape == (h, w, 3) and np.array_equal(rec[outside], original[outside])
    shown = [m["data"] for m in progress if "preview" in m["data"]]     # during the projection: blended too
    assert shown and all(d["region"] == r["region"] for d in shown)
    assert np.array_equal(pixels(shown[-1]["preview"])[outside], original[outside])

    values = {"smile": 2.5, "age": -1.0}
    # a preview a user would get: at half channels or more (the 0.25x sub-generators of the 64 px demo
    # are far from its final, docs/demo-model.md: 33 in this measure at 0.25x@16, against 7.5 at 1x@16)
    configs = next(m for m in client.call("models")["models"] if m["name"] == "demo")["configs"]
    usable = [c for c in configs if c["ratio"] >= 0.5 and (c["ratio"], c["resolution"]) != (1.0, 64)]
    budget = min(c["latency_ms"] for c in usable)
    full_ms = next(c["latency_ms"] for c in configs if (c["ratio"], c["resolution"]) == (1.0, 64))
    wanted = {(c["ratio"], c["resolution"]) for c in usable}
    while True:
        preview = client.call("edit", session=r["session"], values=values, budget_ms=budget)
        if (preview["config"]["ratio"], preview["config"]["resolution"]) in wanted or budget >= 0.99 * full_ms:
            break
        # drawing slower than calibrated (a busy CI machine): the daemon's budget choice scales the
        # calibrated latencies up and takes a cheaper (0.25x) configuration; a user would allow
        # more. Below the full generator's calibrated latency the full one is never chosen.
        budget = min(1.25 * budget, 0.99 * full_ms)
    assert not preview["config"]["full"]
    assert (preview["config"]["ratio"], preview["config"]["resolution"]) in wanted, (preview["config"], budget)
    final = client.call("render", session=r["session"], values=values)
    assert final["config"]["full"]
    for img in (preview["image"], final["image"]):
        out = pixels(img)
        assert out.shape == (h, w, 3)
        assert np.array_equal(out[outside], original[outside])        # bit for bit outside the mask
        assert np.abs(out[mask == 1].astype(int) - original[mask == 1]).mean() > 5   # the face did change
    # what the user saw while dragging is what Apply gives, up to the preview's lower detail
    diff = np.abs(pixels(preview["image"]).astype(int) - pixels(final["image"]).astype(int))[mask == 1].mean()
    assert diff < 20, (diff, preview["config"], budget)
    client.call("close", session=r["session"])


def test_region_limits_the_search_and_the_change(client, photo):
    r = client.call("open", image=image_of(photo), region=[300, 80, 250, 250], align="auto", steps=0, timeout=120)
    x, y, w, h = r["region"]
    assert x >= 300 and y >= 80 and x + w <= 550 and y + h <= 330


def test_face_choice_and_errors(client, photo):
    two = np.full((700, 1300, 3), 90, np.uint8)
    two[:600, :700] = photo
    two[300:660, 850:1210] = np.asarray(Image.fromarray(photo[40:552, 150:662]).resize((360, 360)))
    first = client.call("open", image=image_of(two), align="auto", steps=0, timeout=120)
    assert len(first["alignment"]["faces"]) == 2 and first["region"][0] < 700
    second = client.call("open", image=image_of(two), align="auto", face=1, steps=0, timeout=120)
    assert second["alignment"]["face"] == 1 and second["region"][0] > 800
    with pytest.raises(BackendError) as e:
        client.call("open", image=image_of(two), align="auto", face=3, steps=0)
    assert e.value.code == P.ErrorCode.NO_FACE and "2 face(s) were found" in str(e.value)
    with pytest.raises(BackendError) as e:
        client.call("open", image=image_of(np.full((200, 300, 3), 30, np.uint8)), align="auto", steps=0)
    assert e.value.code == P.ErrorCode.NO_FACE and "no face found" in str(e.value)
    with pytest.raises(BackendError) as e:
        client.call("open", image=image_of(photo), align="sideways", steps=0)
    assert e.value.code == P.ErrorCode.BAD_REQUEST
    assert client.call("models")["models"][0]["alignment"] == "ffhq"       # the daemon still serves


def test_an_aligned_session_survives_a_daemon_restart(tmp_path, photo):
    _require_mediapipe()
    d = Daemon(tmp_path, None)
    d.wait_ready()
    try:
        with Client(d.address) as c:
            r = c.call("open", image=image_of(photo), align="auto", steps=0, timeout=120)
            before = c.call("render", session=r["session"], values={"smile": 1.0})
    finally:
        d.stop()
    d = Daemon(tmp_path, None, port=int(d.address.rsplit(":", 1)[1]))
    d.wait_ready()
    try:
        with Client(d.address) as c:
            after = c.call("render", session=r["session"], values={"smile": 1.0})
    finally:
        d.stop()
    assert after["image"] == before["image"]


def test_krita_panel_aligns_offers_the_faces_and_applies_around_the_chosen_one(daemon, photo, tmp_path):
    """The docker's panel (PyQt offscreen, an in-memory document) on a photo with two faces."""
    from anycost_krita.panel import AnycostPanel
    from anycost_plugin.controller import EDITING
    from anycost_plugin.settings import MemoryStore

    from ..krita_helpers import pump
    from ..plugin_fakes import MemoryHost
    two = np.full((700, 1300, 3), 90, np.uint8)
    two[:600, :700] = photo
    two[300:660, 850:1210] = np.asarray(Image.fromarray(photo[40:552, 150:662]).resize((360, 360)))
    rgba = np.concatenate([two, np.full(two.shape[:2] + (1,), 255, np.uint8)], axis=2).tobytes()
    hosts = []

    def active_layer():
        hosts.append(MemoryHost(rgba, 1300, 700, (20, 20, 1260, 660)))    # a selection inside the layer
        return hosts[-1]

    store = MemoryStore({"address": daemon.address, "autostart": "false", "steps": "0"})
    panel = AnycostPanel(store, active_layer, log_dir=tmp_path)
    try:
        pump(lambda: panel.connection.connected, 30, "connected")
        assert panel.align.isChecked() and panel.face_box.isHidden()
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "projection")
        assert "face 1 of 2" in panel.message.text()
        assert not panel.face_box.isHidden() and panel.face_box.count() == 2
        x, y, w, h = hosts[-1].region                       # narrowed to the largest face's surroundings
        assert hosts[-1].source_region == (20, 20, 1260, 660) and x < 700 and w * h < 300 * 300
        assert len(hosts[-1].preview) == w * h * 3
        panel.face_box.setCurrentIndex(1)
        panel.face_box.activated.emit(1)                    # the user picks the other face: projects again
        pump(lambda: panel.controller.phase == EDITING and hosts[-1].region[0] > 800, 120, "second face")
        panel.apply_button.click()
        pump(lambda: panel.controller.phase == EDITING and hosts[-1].applied, 60, "apply")
        rgb, w, h, _, _, region = hosts[-1].applied[-1]
        assert region == hosts[-1].region and (w, h) == region[2:] and region[0] > 800
        panel.align.setChecked(False)                       # off: the selection as it is, saved
        assert store.values["align_faces"] in ("False", "false", "0")
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "plain projection")
        assert hosts[-1].region == (20, 20, 1260, 660) and panel.face_box.isHidden()
    finally:
        panel.shutdown()


def test_an_any_size_model_draws_the_face_at_its_size_in_the_photo(client, photo):
    """The CREPS demo shares the demo's faces and declares the same rule: its final is drawn at the
    face's own size in the photo, then blended back the same way."""
    r = client.call("open", image=image_of(photo), model="creps-demo", align="auto", steps=0, timeout=120)
    assert r["alignment"] is not None
    x, y, w, h = r["region"]
    final = client.call("render", session=r["session"], values={"smile": 2.0}, timeout=120)
    assert final["config"]["full"] and final["config"]["resolution"] == round(r["alignment"]["face_px"])
    out = pixels(final["image"])
    assert out.shape == (h, w, 3)
    from anycost.formats.registry import open_model
    recipe = model_recipe(open_model("creps-demo", kind="creps").metadata)
    mask = face_mask(Alignment.from_dict(r["alignment"]), recipe, (x, y, w, h))
    original = photo[y:y + h, x:x + w]
    assert np.array_equal(out[mask == 0], original[mask == 0])
    client.call("close", session=r["session"])
