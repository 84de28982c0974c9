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
    assert h.applied[-1][3] == 4 and view.message.text.startswith("Applied as a new layer")
    assert view.phase == EDITING and view.enabled.apply and view.enabled.sliders and view.enabled.discard
    view.discard()
    assert view.phase == IDLE and not view.enabled.discard and not view.enabled.apply
    view.connection.drop()                                    # the backend went away: nothing to press
    assert not view.enabled.project and not view.online


def test_sliders_map_positions_to_values_and_send_edits(view):
    view.start()
    view.project(host())
    opened(view)
    sliders = view.events["sliders"][-1]
    assert [s.name for s in sliders] == ["smile", "head_turn"] and [s.label for s in sliders] == ["Smile", "Head turn"]
    assert all(s.tip for s in sliders)
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


def test_slider_labels_are_for_people():
    def label(name, source="model"):
        return Slider.from_direction(P.DirectionInfo(name, -1.0, 1.0, 0.0, source))
    pc = label("PC3", "pca")
    assert pc.label == "Variation 3" and "principal component 3" in pc.tip and "resets it to +0.00" in pc.tip
    assert label("Smiling", "official-boundary").label == "Smile"
    assert label("Eyeglasses", "official-boundary").label == "Glasses"
    young = label("Young", "official-boundary")
    assert young.label == "Youth" and "younger" in young.tip
    assert label("wavy_hair").label == "Wavy hair" and label("some_new_thing").label == "Some new thing"
    assert label("light_direction", "pca").label == "Light direction"    # a named PCA direction keeps its name
    from anycost_plugin.settings import BUDGET_CHOICES, budget_label
    labels = [budget_label(b) for b in BUDGET_CHOICES]
    assert labels[:2] == ["Balanced (auto, about 100 ms)", "Fastest (50 ms, coarser)"]


def test_a_cancelled_projection_leaves_no_preview_layer(view):
    """Cancel while the projection shows its progress: the preview layer it drew goes too."""
    view.start()
    h = host()
    view.project(h)
    sock = view.connection.socket
    sock.progress(sock.last("open"), {"step": 3, "steps": 10, "preview": image(30)})
    assert h.preview == image(30)["data"]
    view.cancel()
    assert sock.sent[-1][0] == "cancel"
    sock.fail(sock.last("open"), ErrorCode.CANCELLED, "cancelled")
    assert h.preview is None and view.phase == IDLE and view.message.text == "Projection cancelled"
    view.project(h)                                           # and a failed one likewise
    sock.progress(sock.last("open"), {"step": 1, "steps": 10, "preview": image(31)})
    sock.fail(sock.last("open"), ErrorCode.INTERNAL, "out of memory")
    assert h.preview is None and view.message.error


def test_the_session_outlives_apply_and_sliders_reset_one_by_one(view):
    view.start()
    h = host()
    view.project(h)
    opened(view)
    sock = view.connection.socket
    view.move("smile", SLIDER_STEPS)
    view.move("head_turn", 0)
    sock.answer(sock.last("edit"), {"image": image(60), "values": view.controller.values, "render_ms": 5.0})
    view.apply(0)
    sock.answer(sock.last("render"), {"image": image(61), "values": {}})
    assert len(h.applied) == 1 and "smile +3.00" in h.applied[0][4] and h.preview is None
    view.reset("smile")                                        # one slider back to its centre mark
    assert view.value("smile") == 0.0 and view.value("head_turn") == -2.0 and view.events["reset"] == 1
    edit = sock.sent[sock.last("edit") - 1][1]
    assert edit["values"] == {"smile": 0.0, "head_turn": -2.0}   # a preview of the new values, no new projection
    sock.answer(sock.last("edit"), {"image": image(62), "values": edit["values"], "render_ms": 5.0})
    assert h.preview == image(62)["data"] and [op for op, *_ in sock.sent].count("open") == 1
    view.apply(0)                                              # Apply again: another layer
    sock.answer(sock.last("render"), {"image": image(63), "values": {}})
    assert len(h.applied) == 2 and "head_turn -2.00" in h.applied[1][4] and "smile" not in h.applied[1][4]
    assert view.controller.applied == 2 and view.phase == EDITING


def test_before_after_toggle_hides_the_preview_until_the_next_move(view):
    view.start()
    h = host()
    view.project(h)
    assert not view.enabled.compare
    opened(view)
    sock = view.connection.socket
    view.move("smile", 150)
    sock.answer(sock.last("edit"), {"image": image(70), "values": dict(view.controller.values), "render_ms": 5.0})
    assert view.enabled.compare and h.preview == image(70)["data"]
    view.show_original(True)                                   # the document as it was
    assert h.preview is None and view.controller.original_shown
    sock.refined.emit(sock.last("edit"), {"image": image(71), "values": dict(view.controller.values)})
    assert h.preview is None                                   # a refined preview waits while the original shows
    view.show_original(False)                                  # back: the newest preview
    assert h.preview == image(71)["data"]
    view.show_original(True)
    view.move("smile", 160)                                    # moving a slider shows the edit again
    assert h.preview == image(71)["data"] and not view.controller.original_shown
    view.show_original(True)
    view.discard()
    assert not view.controller.original_shown and not view.enabled.compare


def test_the_projection_says_how_long_is_left():
    now = [100.0]
    v = EditView(Settings(), ManualLoop(), connection=ScriptedConnection(), clock=lambda: now[0])
    v.start()
    v.project(host())
    sock = v.connection.socket
    assert v.projection_text == "Projecting…"
    now[0] += 4.0
    sock.progress(sock.last("open"), {"step": 25, "steps": 100})
    assert v.projection_text == "Projecting: 25%, about 12 s left"
    now[0] += 146.0
    sock.progress(sock.last("open"), {"step": 50, "steps": 100})
    assert v.projection_text == "Projecting: 50%, about 2 min left"
    sock.fail(sock.last("open"), ErrorCode.CANCELLED)
    assert v.projection_text == "" and v.phase == IDLE
    v.stop()


def test_switching_documents_clears_a_stale_message(view):
    view.start()
    view.project(lambda: (_ for _ in ()).throw(HostError("Select a paint layer to project")))
    assert view.message.error
    view.document_changed()
    assert view.message.text == "" and not view.message.error
    view.project(host())
    opened(view)
    view.document_changed()                                    # a session's own message stays
    assert view.message.text.startswith("Projected")


def test_json_settings_file_round_trip_and_a_broken_file(tmp_path):
    from anycost_plugin.settings import JsonFileStore
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    assert Settings.load(JsonFileStore(path)) == Settings()     # unreadable: the defaults, no exception
    s = Settings(executable="/opt/anycost/bin/anycost-backend", feather=3, budget="250")
    s.save(JsonFileStore(path))
    assert Settings.load(JsonFileStore(path)) == s


def test_a_document_update_failing_during_projection_stops_it(view):
    """The layer deleted under a running projection: its progress preview cannot be drawn; the
    projection is stopped on the backend (not left to finish untracked) and nothing is left."""
    view.start()
    h = host()
    view.project(h)
    sock = view.connection.socket
    open_id = sock.last("open")
    sock.progress(open_id, {"step": 1, "steps": 10, "preview": image(30)})
    sock.failed.emit("HostError: The projected layer was deleted")     # what BackendSocket reports
    assert sock.sent[-1][0] == "cancel" and sock.sent[-1][1] == {"target": open_id} and open_id in sock.forgotten
    assert view.phase == IDLE and h.preview is None and "projection was stopped" in view.message.text
    assert view.enabled.project and not view.enabled.cancel
