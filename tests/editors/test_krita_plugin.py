"""The Krita plugin's editor-independent parts against a real daemon: connection state machine
(with the backend started on demand and restarted), latest-wins editing, apply and discard,
pixel conversions and settings. Real Krita runs in test_krita_real.py."""
from __future__ import annotations

import os
import signal

import pytest

from anycost.protocol import messages as P
from anycost.protocol.client import Client
from anycost.protocol.spawn import free_port
from anycost_krita.qt_loop import QtLoop
from anycost_plugin import pixels
from anycost_plugin.connection import CONNECTED, STARTING, UNREACHABLE, Connection
from anycost_plugin.controller import EDITING, IDLE, EditController, HostError
from anycost_plugin.settings import MemoryStore, Settings

from ..conftest import CLI
from ..daemon_helpers import face_image
from ..krita_helpers import pump
from ..plugin_fakes import MemoryHost, RecordingSocket


@pytest.fixture(scope="module")
def daemon(tiny_daemon):
    return tiny_daemon


@pytest.fixture
def connection(daemon):
    c = Connection(Settings(address=daemon.address, autostart=False), QtLoop())
    c.start()
    pump(lambda: c.state == CONNECTED, 30, "connected")
    yield c
    c.stop()


def face_host(w=80, h=72, region=None) -> MemoryHost:
    img = face_image(w, h, "RGBA8")
    return MemoryHost(img["data"], w, h, region)


# ---------------------------------------------------------------------------- connection

def test_connection_reports_models(connection, daemon):
    assert connection.message.startswith("Connected to " + daemon.address)
    assert [m.name for m in connection.models] == ["tiny"] and connection.default_model == "tiny"


def test_no_backend_without_autostart_is_unreachable_with_reason():
    c = Connection(Settings(address=f"tcp://127.0.0.1:{free_port()}", autostart=False), QtLoop(),
                   hello_timeout_s=0.5)
    c.start()
    pump(lambda: c.state == UNREACHABLE, 10, "unreachable")
    assert "No backend answers" in c.message and c.child is None
    c.stop()


def test_autostart_with_a_missing_executable_says_so(tmp_path):
    c = Connection(Settings(address=f"tcp://127.0.0.1:{free_port()}", executable=str(tmp_path / "nope")), QtLoop(),
                   log_dir=tmp_path, hello_timeout_s=0.5)
    c.start()
    pump(lambda: c.state == UNREACHABLE, 10, "unreachable")
    assert "was not found" in c.message
    c.stop()


@pytest.mark.slow
def test_autostart_then_restart_after_the_backend_dies(tmp_path, tiny_model_file, monkeypatch):
    # the child inherits the environment: its own state folders, and the tiny model as default
    for var, sub in (("ANYCOST_STATE_DIR", "state"), ("ANYCOST_CACHE_DIR", "cache"), ("ANYCOST_CONFIG_DIR", "config")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    exe = tmp_path / "backend.sh"
    exe.write_text(f"#!/bin/sh\nexec {CLI} --threads 1 \"$@\" --model {tiny_model_file}\n")
    exe.chmod(0o755)
    # no address set: the default endpoint, this user's private socket, on which the child is started
    c = Connection(Settings(executable=str(exe)), QtLoop(), log_dir=tmp_path, hello_timeout_s=0.5, heartbeat_s=0.5)
    states = []
    c.state_changed.connect(lambda s, m: states.append((s, m)))
    c.start()
    pump(lambda: c.state == CONNECTED, 120, "started backend")
    assert STARTING in [s for s, _ in states] and "started by Krita" in c.message
    assert c.address == P.default_address() and c.address.startswith("ipc://") and c.address in c.message
    first = c.child.pid
    os.kill(first, signal.SIGKILL)                      # the backend crashes
    pump(lambda: c.state != CONNECTED, 20, "loss noticed")
    pump(lambda: c.state == CONNECTED, 120, "restarted backend")
    assert c.child.pid != first
    assert any(m.startswith("Lost the backend") for _, m in states)
    child = c.child
    c.stop()                                            # the editor closes: its backend goes too
    assert child.poll() is not None


# ---------------------------------------------------------------------------- editing

def test_project_edit_latest_wins_apply(connection, daemon):
    ctl = EditController()
    ctl.attach(connection.socket)
    host = face_host(region=(8, 4, 64, 60))
    ctl.project(host, steps=5)
    pump(lambda: ctl.phase == EDITING, 120, "projection")
    assert ctl.session and ctl.directions and host.preview is not None
    reconstruction = host.preview
    name = ctl.directions[0].name
    top = ctl.directions[0].max
    for i in range(1, 21):                              # a fast drag: 20 moves, no waiting
        ctl.set_value(name, top * i / 20)
    assert ctl.edits_sent == 1                          # one in flight, the rest coalesced
    shown = []
    ctl.preview_shown.connect(shown.append)
    pump(lambda: shown and shown[-1]["values"][name] == pytest.approx(top), 60, "newest values shown")
    assert ctl.edits_sent < 20 and host.preview != reconstruction
    ctl.apply(feather=8)
    pump(lambda: ctl.applied == 1 and ctl.phase == EDITING, 60, "apply")
    rgb, w, h, feather, label, _ = host.applied[-1]
    assert (w, h, feather) == (64, 60, 8) and len(rgb) == 64 * 60 * 3 and name in label
    assert host.preview is None and ctl.session is not None       # the session stays for another edit
    ctl.set_value(name, 0.0)                                       # one more tweak, no new projection
    pump(lambda: host.preview is not None, 60, "a preview after Apply")
    ctl.apply(feather=8)
    pump(lambda: ctl.applied == 2 and ctl.phase == EDITING, 60, "a second apply")
    assert len(host.applied) == 2 and name not in host.applied[-1][4]
    ctl.discard()
    assert ctl.session is None and ctl.phase == IDLE
    with Client(daemon.address) as c:                   # the session was closed on the backend
        pump(lambda: c.call("stats")["sessions"] == 0, 10, "session closed")


def test_discard_and_closed_document(connection, daemon):
    ctl = EditController()
    ctl.attach(connection.socket)
    host = face_host()
    ctl.project(host, steps=2)
    pump(lambda: ctl.phase == EDITING, 120, "projection")
    ctl.discard()
    assert host.preview is None and ctl.session is None and ctl.phase == IDLE
    ctl.project(host, steps=2)
    pump(lambda: ctl.phase == EDITING, 120, "projection")
    host.open = False                                   # the document is closed under the session
    ctl.set_value(ctl.directions[0].name, 1.0)
    ctl.apply(feather=4)
    pump(lambda: ctl.phase == IDLE, 60, "apply on a closed document")
    assert not host.applied and "closed" in ctl.message and ctl.session is None
    with pytest.raises(HostError):
        ctl.apply(feather=4)


def test_a_failing_document_update_is_a_message_and_editing_goes_on(connection):
    ctl = EditController()
    ctl.attach(connection.socket)
    host = face_host()
    ctl.project(host, steps=2)
    pump(lambda: ctl.phase == EDITING, 120, "projection")
    name = ctl.directions[0].name
    host.broken = True
    ctl.set_value(name, 1.0)
    pump(lambda: ctl.error, 60, "the failure reported")
    assert ctl.message == "Could not update the document: RuntimeError: the preview layer is gone"
    host.broken, before = False, host.previews
    ctl.set_value(name, 2.0)                            # the session goes on
    pump(lambda: host.previews > before, 60, "a preview again")
    ctl.discard()


def test_cancel_a_projection(connection):
    ctl = EditController()
    ctl.attach(connection.socket)
    steps = []
    ctl.progress.connect(steps.append)
    ctl.project(face_host(), steps=2000)
    pump(lambda: len(steps) > 2, 60, "projection running")
    ctl.cancel_projection()
    pump(lambda: ctl.phase == IDLE, 60, "cancelled")
    assert ctl.message == "Projection cancelled" and ctl.session is None


def test_projection_error_is_a_message(connection):
    ctl = EditController()
    ctl.attach(connection.socket)
    ctl.project(face_host(), model="no-such-model")
    pump(lambda: ctl.phase == IDLE and ctl.message, 30, "error")
    assert ctl.message.startswith("Projection failed") and "no-such-model" in ctl.message


# ---------------------------------------------------------------------------- pixels, settings

def test_channel_orders_round_trip():
    rgba = bytes(range(4 * 6))
    bgra = pixels.bgra_to_rgba(rgba)                    # the swap is its own inverse
    assert bgra[:4] == bytes([2, 1, 0, 3]) and pixels.bgra_to_rgba(bgra) == rgba
    rgb = bytes([10, 20, 30, 40, 50, 60])
    assert pixels.add_alpha(rgb, 2, 1, b"\x07\x09", "BGRA") == bytes([30, 20, 10, 7, 60, 50, 40, 9])
    assert pixels.add_alpha(rgb, 2, 1) == bytes([10, 20, 30, 255, 40, 50, 60, 255])
    with pytest.raises(ValueError):
        pixels.add_alpha(rgb, 3, 1)


def test_feather_alpha():
    w, h, f = 40, 30, 8
    a = pixels.feather_alpha(w, h, f)
    at = lambda x, y: a[y * w + x]  # noqa: E731
    assert len(a) == w * h and at(20, 15) == 255 and at(f, 15) == 255
    assert at(0, 15) < at(1, 15) < at(4, 15) < 255           # rises from the edge inward
    assert at(0, 0) <= min(at(0, 15), at(20, 0))              # corners fade along both edges
    assert all(at(x, y) == at(w - 1 - x, h - 1 - y) for x in range(w) for y in range(h))   # symmetric
    assert pixels.feather_alpha(5, 4, 0) == b"\xff" * 20


def test_settings_persist_and_repair():
    store = MemoryStore()
    Settings(address="tcp://127.0.0.1:6000", budget="150", feather=24, autostart=False).save(store)
    s = Settings.load(store)
    assert (s.address, s.budget_ms(), s.feather, s.autostart) == ("tcp://127.0.0.1:6000", 150.0, 24, False)
    bad = Settings.load(MemoryStore({"feather": "-3", "budget": "fast", "steps": "x"}))
    assert (bad.feather, bad.budget, bad.steps) == (16, "auto", 100)
    with pytest.raises(ValueError, match="budget"):
        Settings(budget="0").save(store)


# ---------------------------------------------------------------------------- the panel (docker contents)

def test_panel_drives_the_whole_flow(daemon, tmp_path):
    from anycost_krita.panel import SLIDER_STEPS, AnycostPanel
    store = MemoryStore({"address": daemon.address, "autostart": "false", "feather": "5", "steps": "3"})
    hosts = []

    def active_layer():
        if not hosts:
            raise HostError("Open an image first")
        return hosts[-1]

    panel = AnycostPanel(store, active_layer, log_dir=tmp_path)
    try:
        pump(lambda: panel.connection.connected, 30, "connected")
        assert "Connected" in panel.status.text() and panel.model_box.currentText() == "tiny"
        panel.project_button.click()                      # no document: a message, no traceback
        assert panel.message.text() == "Open an image first" and panel.controller.phase == IDLE
        hosts.append(face_host())
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "projection")
        assert len(panel.sliders) == len(panel.controller.directions) > 0
        slider, label, d = next(iter(panel.sliders.values()))
        assert slider.isEnabled() and panel.apply_button.isEnabled()
        slider.setValue(SLIDER_STEPS)
        assert label.text() == f"{d.hi:+.2f}"
        pump(lambda: panel.message.text().startswith("Preview:"), 60, "preview")
        panel.reset_button.click()
        assert slider.value() == d.position(0.0) and all(v == 0 for v in panel.controller.values.values())
        panel.apply_button.click()
        pump(lambda: hosts[-1].applied and panel.controller.phase == EDITING, 60, "apply")
        assert hosts[-1].applied[-1][3] == 5                # the feather setting
        assert slider.isEnabled() and panel.apply_button.isEnabled()   # the sliders stay for another edit
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "projection")
        assert hosts[-1].preview is not None
        panel.discard_button.click()                        # Discard: preview gone, session closed
        assert hosts[-1].preview is None and panel.controller.session is None
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "projection")
        hosts[-1].open = False                              # the user closes the document
        pump(lambda: panel.controller.session is None, 10, "session ended")
        assert "document was closed" in panel.message.text()
        panel.quality.setCurrentIndex(3)                    # 250 ms, saved at once
        assert store.values["budget"] == "250" and panel.controller.budget_ms == 250
        panel.address.setText("http://nope")
        panel.reconnect_button.click()                      # a bad address is refused with a message
        assert "tcp://" in panel.message.text() and store.values["address"] == daemon.address
    finally:
        panel.shutdown()


def test_the_panel_fits_a_laptop_screen_and_speaks_plainly(daemon, tmp_path):
    """14+ sliders on a 1366×768 screen: the docker asks for little height (its contents scroll),
    the settings fold away, sliders are named for people, reset one by one, and carry a centre mark."""
    from PyQt5.QtCore import QPoint, Qt
    from PyQt5.QtTest import QTest

    from anycost.protocol.messages import DirectionInfo
    from anycost_krita.panel import AnycostPanel
    from anycost_plugin.view_model import Slider
    store = MemoryStore({"address": daemon.address, "autostart": "false", "steps": "2"})
    host = face_host()
    panel = AnycostPanel(store, lambda: host, log_dir=tmp_path)
    try:
        pump(lambda: panel.connection.connected, 30, "connected")
        panel.project_button.click()
        pump(lambda: panel.controller.phase == EDITING, 120, "projection")
        names = list(panel.sliders)
        first, label, spec = panel.sliders[names[0]]
        assert spec.label.startswith("Variation ") and "principal component" in first.toolTip()
        assert first.tickInterval() == spec.position(spec.default) and first.tickPosition() != 0
        first.setValue(first.maximum())
        QTest.mouseDClick(first, Qt.LeftButton, pos=QPoint(first.width() // 2, first.height() // 2))
        assert first.value() == spec.position(spec.default) and label.text() == Slider.text(spec.default)
        first.setValue(first.maximum())
        undo = next(b for b in panel.findChildren(type(panel.settings_toggle)) if b.text() == "↺")
        undo.click()
        assert panel.controller.values[names[0]] == spec.default
        assert panel.apply_button.focusPolicy() == Qt.TabFocus   # a click does not move the focus into Feather

        many = [Slider.from_direction(DirectionInfo(f"PC{i}", -3.0, 3.0)) for i in range(1, 17)]
        panel._build_sliders(many)
        panel.resize(280, 700)
        panel.show()
        pump(lambda: True, 0.1)
        assert not panel.settings_box.isVisible()            # folded until asked for
        assert panel.minimumSizeHint().height() < 200        # the docker never forces the window taller
        content = panel.scroll_area.widget().sizeHint().height()
        assert content > 700 and panel.scroll_area.verticalScrollBar().maximum() > 0    # 16 sliders scroll
        panel.settings_toggle.click()
        assert panel.settings_box.isVisible() and panel.diagnose_button.isVisible()
    finally:
        panel.shutdown()


def test_a_reply_older_than_the_newest_edit_is_never_shown():
    """An edit of an earlier session answered late (e.g. by a restarted backend that found it in its
    queue) must not paint over the current session's preview."""
    w, h = 8, 6
    sock, ctl, host = RecordingSocket(), EditController(), face_host(w, h)
    ctl.attach(sock)

    def opened(sid, fill):
        sock.answer(sock.last("open"), {"session": sid, "region": [0, 0, w, h], "directions": [
            {"name": "PC1", "min": -3.0, "max": 3.0, "default": 0.0}],
            "reconstruction": {"w": w, "h": h, "mode": "RGB8", "data": bytes([fill]) * (w * h * 3)}})

    ctl.project(host, steps=1)
    opened("a" * 32, 10)
    ctl.set_value("PC1", 1.0)
    old_edit = sock.last("edit")
    ctl.discard()
    ctl.project(host, steps=1)
    opened("b" * 32, 20)
    assert host.preview == bytes([20]) * (w * h * 3)
    sock.answer(old_edit, {"image": {"w": w, "h": h, "mode": "RGB8", "data": bytes([99]) * (w * h * 3)},
                           "values": {"PC1": 1.0}})
    assert host.preview == bytes([20]) * (w * h * 3)              # the old session's image was ignored
    ctl.set_value("PC1", 2.0)
    new_edit = sock.last("edit")
    assert new_edit != old_edit and sock.sent[new_edit - 1][1]["session"] == "b" * 32
    sock.answer(new_edit, {"image": {"w": w, "h": h, "mode": "RGB8", "data": bytes([30]) * (w * h * 3)},
                           "values": {"PC1": 2.0}})
    assert host.preview == bytes([30]) * (w * h * 3)


def test_the_panel_runs_on_pyqt6_as_in_krita_6(daemon, tmp_path):
    """Krita 6 has PyQt6 and no PyQt5: the docker's panel, through anycost_krita.qt, builds and
    works there (offscreen, PyQt6 from PyPI, in a Python where importing PyQt5 fails)."""
    import json
    import subprocess
    import sys

    from ..conftest import REPO
    pytest.importorskip("PyQt6.QtWidgets")
    r = subprocess.run([sys.executable, str(REPO / "tests" / "krita6_panel.py"), daemon.address, str(tmp_path)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["qt_major"] == 6 and not out["pyqt5_loaded"] and out["status"].startswith("Connected")
    assert out["label"] == "+3.00" and out["slider_label"].startswith("Variation")
    assert not out["preview_while_original"] and out["preview_back"]
    assert len(out["applied"]) == 2 and out["session_after_discard"] is None
