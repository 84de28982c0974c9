"""The plugins' shared view model (anycost_plugin.view_model) with a scripted backend and a manual
clock: what may be pressed in each phase, the slider mapping, typed errors as messages, the face
and model menus, the closed-document check. No Qt, no GLib, no daemon: the real editors and the
real daemon drive the same object in test_krita_plugin.py, test_krita_real.py and test_gimp_real.py."""
from __future__ import annotations

import pytest

from anycost.protocol import messages as P
from anycost.protocol.messages import ErrorCode
from anycost_plugin.connection import CONNECTED
from anycost_plugin.controller import APPLYING, EDITING, IDLE, PROJECTING, HostError
from anycost_plugin.events import Signal
from anycost_plugin.settings import MemoryStore, Settings
from anycost_plugin.view_model import DOCUMENT_CHECK_MS, SLIDER_STEPS, EditView, Slider

from ..plugin_fakes import ManualLoop, MemoryHost, ScriptedConnection

W, H = 8, 6
DIRECTIONS = [{"name": "smile", "min": -3.0, "max": 3.0, "default": 0.0},
              {"name": "head_turn", "min": -2.0, "max": 1.0, "default": 0.5}]


def image(fill: int) -> dict:
    return {"w": W, "h": H, "mode": "RGB8", "data": bytes([fill]) * (W * H * 3)}


@pytest.fixture
def view():
    store = MemoryStore({})
    settings = Settings.load(store)
    saved = []
    v = EditView(settings, ManualLoop(), connection=ScriptedConnection(models=("demo", "creps-demo"), default="demo"),
                 save=lambda: saved.append(dict(settings.__dict__)))
    v.saved = saved
    events = {"sliders": [], "faces": [], "models": [], "reset": 0}
    v.sliders_changed.connect(events["sliders"].append)
    v.faces_changed.connect(lambda labels, chosen: events["faces"].append((labels, chosen)))
    v.models_changed.connect(lambda names, chosen: events["models"].append((names, chosen)))
    v.values_reset.connect(lambda: events.__setitem__("reset", events["reset"] + 1))
    v.events = events
    yield v
    v.stop()


def host() -> MemoryHost:
    return MemoryHost(bytes(range(256)) * (W * H * 4 // 256 + 1), W, H)


def opened(view, faces=None):
    sock = view.connection.socket
    data = {"session": "a" * 32, "region": [0, 0, W, H], "directions": DIRECTIONS, "reconstruction": image(10),
            "metrics": {"psnr": 21.5}}
    if faces is not None:
        data["alignment"] = {"faces": faces, "face": 0}
    sock.answer(sock.last("open"), data)


def test_what_may_be_pressed_in_each_phase(view):
    off = view.enabled
    assert not off.project and not off.apply and not off.sliders and off.model and not off.progress
    view.start()
    assert view.online and view.status == "Connected to a scripted backend"
    idle = view.enabled
    assert idle.ok and idle.project and idle.model
    assert not idle.apply and not idle.reset and not idle.discard and not idle.cancel
    h = host()
    view.project(h)
    assert view.phase == PROJECTING
    projecting = view.enabled
    assert projecting.cancel and projecting.progress and projecting.discard and not projecting.ok
    assert not projecting.project and not projecting.model and not projecting.sliders
    opened(view)
    assert view.phase == EDITING and h.preview == image(10)["data"]
    editing = view.enabled
    assert editing.ok and editing.sliders and editing.apply and editing.reset and editing.project and not editing.model
    assert view.message.text.startswith("Projected (PSNR 21.5 dB)") and not view.message.error
    view.apply(4)
    assert view.phase == APPLYING and view.enabled.progress and not view.enabled.apply and not view.enabled.ok
    sock = view.connection.socket
    sock.answer(sock.last("render"), {"image": image(50), "values": {}})
    assert view.phase == IDLE and h.applied[-1][3] == 4 and view.message.text == "Applied as a new layer"
    assert not view.enabled.discard
    view.connection.drop()                                    # the backend went away: nothing to press
    assert not view.enabled.project and not view.online


def test_sliders_map_positions_to_values_and_send_edits(view):
    view.start()
    view.project(host())
    opened(view)
    sliders = view.events["sliders"][-1]
    assert [s.name for s in sliders] == ["smile", "head_turn"] and sliders[1].label == "Head turn"
    turn = sliders[1]
    assert turn.position(turn.default) == round(2.5 / 3 * SLIDER_STEPS) and turn.value_at(0) == -2.0
    assert turn.value_at(SLIDER_STEPS) == 1.0 and Slider.text(turn.value_at(SLIDER_STEPS)) == "+1.00"
    assert Slider("flat", "Flat", 1.0, 1.0, 1.0).position(1.0) == 0       # a degenerate range does not divide by 0
    assert view.move("smile", SLIDER_STEPS) == 3.0
    sock = view.connection.socket
    edit = sock.sent[sock.last("edit") - 1][1]
    assert edit["values"] == {"smile": 3.0, "head_turn": 0.5} and edit["session"] == "a" * 32
    view.reset()
    assert view.events["reset"] == 1 and view.value("smile") == 0.0 and view.value("head_turn") == 0.5


def test_errors_become_typed_messages(view):
    view.start()
    view.project(lambda: (_ for _ in ()).throw(HostError("Open an image first")))   # the host factory refuses
    assert view.message.text == "Open an image first" and view.message.error and view.message.code is None
    assert view.phase == IDLE

    def broken():
        raise RuntimeError("the layer vanished")
    view.project(broken)                                      # a bug is a message too, never a traceback
    assert view.message.text == "Unexpected error: RuntimeError: the layer vanished" and view.message.error
    view.project(host())
    sock = view.connection.socket
    sock.fail(sock.last("open"), ErrorCode.NO_FACE, "no face in the region")
    assert view.phase == IDLE and view.message.error and view.message.code is ErrorCode.NO_FACE
    assert view.message.text == "No usable face: no face in the region"
    view.project(host())
    opened(view)
    view.move("smile", 10)
    sock.fail(sock.last("edit"), ErrorCode.SUPERSEDED)          # replaced by a newer edit: not an error to show
    assert not view.message.error and view.phase == EDITING
    view.move("smile", 20)
    sock.fail(sock.last("edit"), ErrorCode.INTERNAL, "RuntimeError: boom")
    assert view.message.error and view.message.code is ErrorCode.INTERNAL and "boom" in view.message.text
    assert view.phase == EDITING and view.enabled.sliders                    # the session goes on


def test_faces_and_models_menus(view):
    view.start()
    assert view.events["models"][-1] == (["demo", "creps-demo"], 0)       # the backend's default, none chosen yet
    view.choose_model("creps-demo")
    assert view.saved[-1]["model"] == "creps-demo"
    view.connection.start()                                                   # reconnected: the saved choice wins
    assert view.events["models"][-1] == (["demo", "creps-demo"], 1)
    view.choose_align(True)
    assert view.settings.align_faces and view.saved[-1]["align_faces"] is True
    h = host()
    view.project(h)
    assert view.connection.socket.sent[-1][1]["align"] == "auto"
    faces = [{"box": [0, 0, 60, 60]}, {"box": [70, 0, 30, 30]}]
    opened(view, faces)
    labels, chosen = view.events["faces"][-1]
    assert labels == ["1: 60×60 px (largest)", "2: 30×30 px"] and chosen == 0
    view.choose_face(1, h)
    sock = view.connection.socket
    assert sock.sent[-1][0] == "open" and sock.sent[-1][1]["face"] == 1 and view.phase == PROJECTING
    view.choose_budget(3)
    assert view.controller.budget_ms == view.settings.budget_ms() and view.saved[-1]["budget"] == view.settings.budget


def test_a_closed_document_ends_its_session_on_the_next_check(view):
    view.start()
    h = host()
    view.project(h)
    opened(view)
    h.open = False                                             # the user closes the document
    loop = view._document_check.loop
    loop.advance(DOCUMENT_CHECK_MS - 1)
    assert view.controller.session is not None                 # not yet checked
    loop.advance(1)
    assert view.controller.session is None and view.phase == IDLE
    assert view.message.text == "The document was closed; its Anycost session was ended"
    sock = view.connection.socket
    assert sock.sent[-1][0] == "close" and sock.sent[-1][1] == {"session": "a" * 32}


class _AnsweringSocket:
    """A BackendSocket whose replies arrive inside send(), as the real one's do when it drains a
    reply that is already there. The first socket (before the backend is started) gets no answer;
    later ones answer `hello` "calibrating" three times, then "ready"."""
    made = 0
    hellos = 0

    def __init__(self, address, loop):
        self.refined, self.failed = Signal(), Signal()
        self.rid = 0
        _AnsweringSocket.made += 1
        self.silent = _AnsweringSocket.made == 1

    def send(self, op, fields, on_result, on_error, on_progress=None):
        self.rid += 1
        if self.silent:
            return self.rid
        if op == "hello":
            _AnsweringSocket.hellos += 1
            state = "calibrating" if _AnsweringSocket.hellos <= 3 else "ready"
            on_result(P.Hello("0", P.VERSION, state).to_dict())
        elif op == "models":
            on_result(P.ModelsResult((P.ModelInfo("demo", 64),), "demo").to_dict())
        return self.rid

    def forget(self, rid):
        pass

    def drain(self):
        pass

    def close(self, wait_s=1.0):
        pass


class _Child:
    returncode = None

    def poll(self):
        return None

    def terminate(self):
        pass

    def wait(self, timeout=None):
        return 0


def test_a_hello_answered_inside_send_does_not_leave_the_connection_waiting(monkeypatch, tmp_path):
    from anycost_plugin import connection as conn
    monkeypatch.setattr(conn, "BackendSocket", _AnsweringSocket)
    monkeypatch.setattr(conn, "start_backend", lambda *a, **k: _Child())
    loop = ManualLoop()
    c = conn.Connection(Settings(address="tcp://127.0.0.1:1", executable="anycost-backend"), loop, log_dir=tmp_path,
                        hello_timeout_s=1, heartbeat_s=2, start_timeout_s=60)
    c.start()
    loop.advance(1500)                     # no answer: the backend is started, then it is measuring
    assert c.child is not None
    loop.advance(5000)                     # three "calibrating" answers, 0.5 s apart, then "ready"
    assert c.state == CONNECTED and [m.name for m in c.models] == ["demo"], (c.state, c.message)
