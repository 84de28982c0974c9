"""A real daemon serving a CREPS model beside the anycost model whose W space it shares: previews
are the same image at a lower resolution, the final is drawn at exactly the requested size."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from anycost.core.imaging import to_pil
from anycost.formats.checkpoints import load_model
from anycost.protocol import messages as P
from anycost.protocol.messages import BackendError

from ..conftest import TINY_CREPS
from ..daemon_helpers import Daemon, face_image


@pytest.fixture(scope="module")
def creps_file(tiny_creps_file):
    return tiny_creps_file


@pytest.fixture(scope="module")
def daemon(tiny_model_file, creps_file, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("daemon"), tiny_model_file, "--model", str(creps_file))
    d.wait_ready()
    yield d
    assert d.stop() == 0, d.log_text()


@pytest.fixture
def creps_name(client):
    return next(m["name"] for m in client.call("models")["models"] if m["kind"] == "creps")


def test_models_say_which_kind_and_which_w_space(client, creps_name):
    models = {m["name"]: m for m in client.call("models")["models"]}
    creps, anycost = models[creps_name], models["tiny"]
    assert anycost["kind"] == "anycost" and not anycost["any_size"]
    assert creps["any_size"] and creps["w_space"] == "tiny" and creps["n_style"] == TINY_CREPS.num_ws
    sizes = [c["resolution"] for c in creps["configs"]]
    latency = [c["latency_ms"] for c in creps["configs"]]
    assert creps["directions"] and sizes[0] == 128 and sizes == sorted(sizes, reverse=True)   # biggest first
    assert latency == sorted(latency, reverse=True)


def test_preview_is_a_smaller_render_and_the_final_is_exactly_the_size(daemon, client, creps_name, creps_file):
    s = client.call("open", image=face_image(96, 80), model=creps_name, timeout=120)
    sid = s["session"]
    assert (s["reconstruction"]["w"], s["reconstruction"]["h"]) == (96, 80) and s["metrics"]["psnr"] > 0
    configs = next(m for m in client.call("models")["models"] if m["name"] == creps_name)["configs"]
    # the fastest size; `models` rounds latencies to 0.01 ms, so two sizes can share the lowest figure
    lowest = min(c["latency_ms"] for c in configs)
    fastest = {c["resolution"] for c in configs if c["latency_ms"] == lowest}
    fast = client.call("edit", session=sid, values={}, budget_ms=1e-6)
    side = fast["config"]["resolution"]
    assert not fast["config"]["full"] and side in fastest
    assert (fast["image"]["w"], fast["image"]["h"]) == (side, round(side * 80 / 96))   # the selection's aspect
    sized = client.call("edit", session=sid, values={}, budget_ms=1e-6, size=[96, 80])
    assert (sized["image"]["w"], sized["image"]["h"]) == (96, 80)

    progress = []
    final = client.call("render", session=sid, values={}, size=[300, 200], on_progress=progress.append)
    assert final["config"]["full"] and final["config"]["size"] == [300, 200]
    assert (final["image"]["w"], final["image"]["h"]) == (300, 200)
    assert [m["data"]["tile"] for m in progress] == [1, 2] and progress[0]["data"]["tiles"] == 2

    # the same pixels as drawing the session's W+ here at that size: no resampling on the way
    g = load_model(creps_file, kind="creps").generator
    wplus = load_file(str(daemon.root / "state" / "sessions" / f"{sid}.safetensors"))["wplus"]
    torch.set_num_threads(1)
    with torch.no_grad():
        here = np.asarray(to_pil(g.render(wplus, (200, 300))[0]), dtype=np.int16)
    there = np.frombuffer(final["image"]["data"], np.uint8).reshape(200, 300, 3).astype(np.int16)
    assert np.abs(here - there).max() <= 1

    smooth = client.call("render", session=sid, values={}, size=[300, 200], supersample=2)
    assert (smooth["image"]["w"], smooth["image"]["h"]) == (300, 200) \
        and smooth["image"]["data"] != final["image"]["data"]


def test_supersample_is_checked(client, creps_name):
    creps = client.call("open", image=face_image(), model=creps_name, steps=0, timeout=120)["session"]
    anycost = client.call("open", image=face_image(), model="tiny", steps=0, timeout=120)["session"]
    with pytest.raises(BackendError) as e:
        client.call("render", session=creps, supersample=9)
    assert e.value.code == P.ErrorCode.BAD_REQUEST and "1..4" in e.value.message
    with pytest.raises(BackendError) as e:
        client.call("render", session=anycost, supersample=2)
    assert e.value.code == P.ErrorCode.BAD_REQUEST and "CREPS" in e.value.message


def test_a_large_final_reports_progress_and_can_be_cancelled(client, creps_name):
    sid = client.call("open", image=face_image(), model=creps_name, steps=0, timeout=120)["session"]
    rid = client.send("render", session=sid, values={}, size=[2048, 2048])
    while True:
        msg = client.recv(60)
        if msg.get("id") == rid and msg["type"] == P.PROGRESS:
            assert msg["data"]["tiles"] == 64
            client.send("cancel", target=rid)
            break
    with pytest.raises(BackendError) as e:
        client.wait(rid, timeout=60)
    assert e.value.code == P.ErrorCode.CANCELLED
    after = client.call("render", session=sid, values={}, size=[64, 48])       # still serving
    assert (after["image"]["w"], after["image"]["h"]) == (64, 48)


def test_the_plugin_applies_a_creps_final_at_the_selection_size_with_progress(daemon, creps_name):
    """The editors' shared controller: Apply with a CREPS model gets the selection's exact size and
    reports the tiles as progress (a 600 x 300 selection: 3 x 2 tiles of 256)."""
    from anycost_krita.qt_loop import QtLoop
    from anycost_plugin.connection import CONNECTED, Connection
    from anycost_plugin.controller import EDITING, EditController
    from anycost_plugin.settings import Settings

    from ..krita_helpers import pump
    from ..plugin_fakes import MemoryHost
    conn = Connection(Settings(address=daemon.address, autostart=False), QtLoop())
    conn.start()
    try:
        pump(lambda: conn.state == CONNECTED, 30, "connected")
        ctl = EditController()
        ctl.attach(conn.socket)
        img = face_image(640, 320, "RGBA8")
        host = MemoryHost(img["data"], 640, 320, (20, 10, 600, 300))
        ctl.project(host, model=creps_name, steps=3)
        pump(lambda: ctl.phase == EDITING, 120, "projection")
        fractions = []
        ctl.progress.connect(fractions.append)
        ctl.apply(feather=0)
        pump(lambda: ctl.applied == 1 and ctl.phase == EDITING, 120, "apply")
        rgb, w, h, feather, label, _ = host.applied[-1]
        assert (w, h) == (600, 300) and len(rgb) == 600 * 300 * 3
        assert fractions == pytest.approx([i / 6 for i in range(7)])
    finally:
        conn.stop()
