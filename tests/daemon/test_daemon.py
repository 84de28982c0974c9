"""The real daemon as a subprocess, spoken to over a real DEALER socket."""
import os
import shutil
import signal
import threading
import time

import msgpack
import numpy as np
import pytest

from anycost.protocol import messages as P
from anycost.protocol.client import BackendTimeout, Client
from anycost.protocol.messages import BackendError

from ..conftest import run_cli, without_module
from ..daemon_helpers import Daemon, face_image


@pytest.fixture(scope="module")
def daemon(tiny_model_file, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("daemon"), tiny_model_file, "--max-image-pixels", "250000")
    d.wait_ready()
    yield d
    assert d.stop() == 0, d.log_text()


def open_session(c, **kw) -> dict:
    return c.call("open", image=face_image(), timeout=120, **kw)


def test_hello_models_stats(client):
    hello = client.call("hello")
    assert hello["protocol"] == P.VERSION and hello["state"] == "ready" and hello["models"] == ["tiny"]
    assert hello["perceptual"] in ("lpips-alex", "laplacian-l1")
    assert (hello["perceptual"] == "laplacian-l1") == any("LPIPS" in w for w in hello["warnings"])
    assert hello["limits"]["max_image_pixels"] == 250000
    model = client.call("models")["models"][0]
    assert model["resolution"] == 64 and len(model["directions"]) == 8
    assert all(d["min"] < 0 < d["max"] for d in model["directions"])
    assert len(model["configs"]) == 16 and all(c["latency_ms"] > 0 for c in model["configs"])
    stats = client.call("stats")
    assert stats["requests"]["hello"] >= 1 and "sessions" in stats


def test_open_streams_progress_then_reconstruction(client):
    progress = []
    r = client.call("open", image=face_image(96, 80, "RGBA8"), region=[10, 5, 60, 70], steps=6, preview_every=3,
                    on_progress=progress.append, timeout=120)
    assert [p["data"]["step"] for p in progress] == list(range(1, 7))
    previews = [p["data"]["preview"] for p in progress if "preview" in p["data"]]
    assert len(previews) == 2 and previews[0]["w"] == 64
    rec = r["reconstruction"]
    assert (rec["w"], rec["h"], rec["mode"]) == (60, 70, "RGB8") and len(rec["data"]) == 60 * 70 * 3
    assert r["region"] == [10, 5, 60, 70] and r["metrics"]["steps"] == 6
    assert r["metrics"]["psnr"] > 5 and len(r["metrics"]["configs"]) == 6
    assert r["directions"][0]["name"] == "PC1"


def test_edit_budget_picks_sub_generator_and_render_is_full(client):
    s = open_session(client)
    sid, name = s["session"], s["directions"][0]["name"]
    fast = client.call("edit", session=sid, values={name: 2.0}, budget_ms=1e-6)
    models = client.call("models")["models"][0]
    fastest = min(models["configs"], key=lambda c: c["latency_ms"])
    assert (fast["config"]["ratio"], fast["config"]["resolution"]) == (fastest["ratio"], fastest["resolution"])
    assert fast["image"]["w"] == fast["config"]["resolution"] and fast["render_ms"] > 0
    roomy = client.call("edit", session=sid, values={name: 2.0}, budget_ms=60000, size=[50, 40])
    assert roomy["config"]["full"] and (roomy["image"]["w"], roomy["image"]["h"]) == (50, 40)
    zero = client.call("render", session=sid, values={})
    edited = client.call("render", session=sid, values={name: 3.0})
    assert zero["config"]["full"] and (zero["image"]["w"], zero["image"]["h"]) == (96, 80)
    assert zero["image"]["data"] != edited["image"]["data"]          # the slider changes the image
    again = client.call("render", session=sid, values={})
    assert again["image"]["data"] == zero["image"]["data"]          # the original latent was not changed


def test_refined_preview_arrives_unasked_after_a_pause(client):
    sid = open_session(client)["session"]
    rid = client.send("edit", session=sid, values={"PC1": 1.0}, budget_ms=1e-6)
    first = client.wait(rid)
    assert not first["refined"] and not first["config"]["full"]
    deadline = time.monotonic() + 10
    while not client.unsolicited and time.monotonic() < deadline:
        try:
            client.unsolicited.append(client.recv(timeout=0.5))
        except BackendTimeout:
            pass
    refined = client.unsolicited.pop()
    assert refined["type"] == P.REFINED and refined["id"] == rid
    assert refined["data"]["refined"] and refined["data"]["config"]["full"]


def test_latest_edit_wins_in_a_burst(client):
    sid = open_session(client)["session"]
    ids = [client.send("edit", session=sid, values={"PC1": v / 10}, budget_ms=60000) for v in range(20)]
    finals = {}
    deadline = time.monotonic() + 60
    while len(finals) < len(ids) and time.monotonic() < deadline:
        msg = client.recv(timeout=30)
        if msg["type"] in (P.RESULT, P.ERROR):
            assert msg["id"] not in finals           # exactly one final reply per request
            finals[msg["id"]] = msg
    assert set(finals) == set(ids)
    assert finals[ids[-1]]["type"] == P.RESULT and finals[ids[-1]]["data"]["values"] == {"PC1": 1.9}
    superseded = [i for i in ids if finals[i]["type"] == P.ERROR]
    assert superseded and all(finals[i]["error"]["code"] == P.ErrorCode.SUPERSEDED for i in superseded)


def test_cancel_a_running_projection(client):
    rid = client.send("open", image=face_image(), steps=2000)
    while client.recv(timeout=60)["type"] != P.PROGRESS:   # wait until it is running
        pass
    assert client.call("cancel", target=rid)["state"] == "running"
    with pytest.raises(BackendError) as e:
        client.wait(rid, timeout=60)
    assert e.value.code == P.ErrorCode.CANCELLED


def test_two_clients_keep_their_sessions_apart(daemon):
    results = {}

    def user(k):
        with Client(daemon.address) as c:
            s = c.call("open", image=face_image(64 + 16 * k, 64), timeout=120)
            outs = [c.call("edit", session=s["session"], values={"PC2": v}, budget_ms=60000, timeout=120)
                    for v in (-1.0, 1.0)]
            results[k] = (s, outs, list(c.unsolicited))

    threads = [threading.Thread(target=user, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    assert set(results) == {0, 1}
    (s0, e0, _), (s1, e1, _) = results[0], results[1]
    assert s0["session"] != s1["session"]
    assert s0["reconstruction"]["w"] == 64 and s1["reconstruction"]["w"] == 80
    assert all(e["session"] == s0["session"] for e in e0) and all(e["session"] == s1["session"] for e in e1)


def test_close_then_not_found(client):
    sid = open_session(client)["session"]
    assert client.call("close", session=sid)["closed"]
    for op in ("edit", "render"):
        with pytest.raises(BackendError) as e:
            client.call(op, session=sid, values={})
        assert e.value.code == P.ErrorCode.NOT_FOUND
    with pytest.raises(BackendError):
        client.call("close", session=sid)


BAD = [
    (lambda: b"\xc1 not msgpack", P.ErrorCode.BAD_REQUEST),
    (lambda: msgpack.packb([1, 2, 3]), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack({"v": 1, "id": 5}), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack({"v": 1, "id": 5, "op": "fly"}), P.ErrorCode.UNKNOWN_OP),
    (lambda: P.pack({"v": 99, "id": 5, "op": "hello"}), P.ErrorCode.VERSION_MISMATCH),
    (lambda: P.pack(P.request("open", 5, image=face_image(), steps="many")), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("open", 5)), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("open", 5, image={**face_image(), "data": b"123"})), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("open", 5, image=face_image(600, 600))), P.ErrorCode.TOO_LARGE),
    (lambda: P.pack(P.request("open", 5, image=face_image(), region=[50, 50, 100, 10])), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("open", 5, image=face_image(), model="nope")), P.ErrorCode.NOT_FOUND),
    (lambda: P.pack(P.request("edit", 5, session="0" * 32, values={})), P.ErrorCode.NOT_FOUND),
    (lambda: P.pack(P.request("edit", 5, session="doesnotexist", values={})), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("edit", 5, session=17)), P.ErrorCode.BAD_REQUEST),
    (lambda: P.pack(P.request("cancel", 5)), P.ErrorCode.BAD_REQUEST),
]


@pytest.mark.parametrize("make,code", BAD)
def test_bad_input_gets_an_error_and_the_daemon_keeps_serving(client, make, code):
    client.send_raw(make())
    reply = client.recv(timeout=60)
    assert reply["type"] == P.ERROR and reply["error"]["code"] == code, reply
    assert reply["error"]["message"]
    assert client.call("hello")["state"] == "ready"


def test_bad_values_and_multi_frame(client):
    sid = open_session(client)["session"]
    with pytest.raises(BackendError) as e:
        client.call("edit", session=sid, values={"Nope": 1.0})
    assert e.value.code == P.ErrorCode.NOT_FOUND
    with pytest.raises(BackendError) as e:
        client.call("edit", session=sid, values={"PC1": "big"})
    assert e.value.code == P.ErrorCode.BAD_REQUEST
    client.socket.send_multipart([b"a", b"b"])
    assert client.recv()["error"]["code"] == P.ErrorCode.BAD_REQUEST


def test_kill_9_and_restart_resume_the_session(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file)
    d.wait_ready()
    with Client(d.address) as c:
        s = c.call("open", image=face_image(), timeout=120)
        before = c.call("render", session=s["session"], values={"PC1": 1.0})
    d.proc.send_signal(signal.SIGKILL)
    d.proc.wait()
    d2 = Daemon(tmp_path, tiny_model_file, port=int(d.address.rsplit(":", 1)[1]))
    d2.wait_ready()
    with Client(d2.address) as c:
        after = c.call("render", session=s["session"], values={"PC1": 1.0})
    assert after["image"]["data"] == before["image"]["data"]
    assert d2.stop() == 0


def test_sessions_are_bounded_and_evicted_ones_say_so(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file, "--max-sessions", "2")
    d.wait_ready()
    with Client(d.address) as c:
        ids = [c.call("open", image=face_image(), steps=1, timeout=120)["session"] for _ in range(3)]
        with pytest.raises(BackendError) as e:
            c.call("render", session=ids[0], values={})
        assert e.value.code == P.ErrorCode.NOT_FOUND and "evicted" in e.value.message
        c.call("render", session=ids[2], values={})
    assert d.stop(signal.SIGINT) == 0


def test_second_instance_on_a_busy_port_exits_2(daemon, tiny_model_file, tmp_path):
    port = daemon.address.rsplit(":", 1)[1]
    d = Daemon(tmp_path, tiny_model_file, port=int(port))
    assert d.proc.wait(timeout=60) == 2
    text = d.log_text()
    assert "already in use" in text and "Traceback" not in text


def test_non_loopback_needs_keys_and_curve_works(tiny_model_file, tmp_path):
    env = dict(os.environ, ANYCOST_CONFIG_DIR=str(tmp_path / "config"), ANYCOST_STATE_DIR=str(tmp_path / "state"))
    r = run_cli("serve", "--bind", "tcp://0.0.0.0:5999", "--model", str(tiny_model_file), env=env)
    assert r.returncode == 2 and "refusing" in r.stderr and "anycost-backend keys" in r.stderr
    assert run_cli("keys", env=env).returncode == 0
    d = Daemon(tmp_path, tiny_model_file, "--curve")
    from anycost.service.keys import load_client_keys
    server_key, pair = load_client_keys(tmp_path / "config" / "keys")
    deadline = time.monotonic() + 60
    with Client(d.address, curve_server_key=server_key, curve_keypair=pair) as c:
        while True:
            try:
                assert c.call("hello", timeout=2)["protocol"] == P.VERSION
                break
            except BackendTimeout:
                assert time.monotonic() < deadline and d.proc.poll() is None
    with Client(d.address) as plain:              # no keys: no answer
        with pytest.raises(BackendTimeout):
            plain.call("hello", timeout=2)
    import zmq
    with Client(d.address, curve_server_key=server_key, curve_keypair=zmq.curve_keypair()) as stranger:
        with pytest.raises(BackendTimeout):          # valid CURVE, but not an authorised client
            stranger.call("hello", timeout=2)
    assert d.stop() == 0


def test_status_and_shutdown(daemon, tiny_model_file, tmp_path):
    r = run_cli("status", "--address", daemon.address)
    assert r.returncode == 0 and "tiny" in r.stdout and "ready" in r.stdout
    d = Daemon(tmp_path, tiny_model_file)
    d.wait_ready()
    with Client(d.address) as c:
        assert c.call("shutdown")["stopping"]
    assert d.proc.wait(timeout=30) == 0
    r = run_cli("status", "--address", d.address, "--timeout", "1")
    assert r.returncode == 1 and "no anycost-backend answers" in r.stdout


def test_install_service_writes_a_user_unit(tmp_path):
    r = run_cli("install-service", "--unit-dir", str(tmp_path), "--model", "demo")
    assert r.returncode == 0 and "systemctl --user enable --now anycost-backend.service" in r.stdout
    unit = (tmp_path / "anycost-backend.service").read_text()
    exec_line = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    exe = exec_line.split("=", 1)[1].split()[0]
    # no --bind: the daemon takes its own default (this user's private socket), as the plugins do
    assert os.access(exe, os.X_OK) and exec_line.endswith(" serve --model demo")
    assert "WantedBy=default.target" in unit


@pytest.mark.slow
def test_the_service_unit_verifies_and_serves_where_the_plugins_look(tmp_path, tiny_model_file):
    """systemd checks the unit (as `systemctl --user enable` would); its ExecStart, run with the
    environment a user manager gives services (XDG_RUNTIME_DIR, no ANYCOST_ADDRESS), answers on
    the plugins' default endpoint."""
    import shlex
    import subprocess
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not found (Debian: the systemd package)")
    r = run_cli("install-service", "--unit-dir", str(tmp_path), "--model", str(tiny_model_file))
    assert r.returncode == 0, r.stderr
    unit = tmp_path / "anycost-backend.service"
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    env = {k: v for k, v in os.environ.items() if k != "ANYCOST_ADDRESS"}
    env["XDG_RUNTIME_DIR"] = str(runtime)
    check = subprocess.run([analyze, "--user", "verify", str(unit)], capture_output=True, text=True, env=env,
                           timeout=60)
    assert check.returncode == 0 and not check.stderr.strip(), check.stderr
    broken = tmp_path / "broken" / unit.name                  # the check can fail: a program that is not there
    broken.parent.mkdir()
    broken.write_text(unit.read_text().replace("ExecStart=/", "ExecStart=/nonexistent/"))
    assert subprocess.run([analyze, "--user", "verify", str(broken)], capture_output=True, env=env,
                          timeout=60).returncode != 0
    command = shlex.split(next(line for line in unit.read_text().splitlines()
                               if line.startswith("ExecStart=")).split("=", 1)[1])
    for var, sub in (("ANYCOST_STATE_DIR", "state"), ("ANYCOST_CACHE_DIR", "cache")):
        env[var] = str(tmp_path / sub)
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        address = f"ipc://{runtime / 'anycost' / P.SOCKET_NAME}"      # where the plugins' default points
        with Client(address) as c:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                try:
                    if P.Hello.from_dict(c.call("hello", timeout=2)).ready:
                        break
                except BackendTimeout:
                    pass
            assert [m["name"] for m in c.call("models")["models"]] == [tiny_model_file.stem]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_demo_runs_the_whole_loop(tiny_model_file, tmp_path):
    env = {"ANYCOST_STATE_DIR": str(tmp_path / "state"), "ANYCOST_CACHE_DIR": str(tmp_path / "cache")}
    r = run_cli("--threads", "1", "demo", "--model", str(tiny_model_file), "--steps", "3", "--out",
                str(tmp_path / "out"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    for name in ("input.png", "reconstruction.png", "final.png", "report.md", "report.json"):
        assert (out / name).is_file(), name
    assert len(list(out.glob("preview-*.png"))) == 16
    import json
    report = json.loads((out / "report.json").read_text())
    assert len(report["previews"]) == 16 and report["final"]["render_ms"] > 0
    assert {p["precision"] for p in report["previews"]} <= {"fp32", "bf16", "int8"}   # as the daemon said
    assert f"px, {report['previews'][0]['precision']} |" in (out / "report.md").read_text()
    assert report["align"] == "auto" and "face" not in report        # the tiny model declares no crop rule
    assert (out / "strip.png").is_file() and "![strip](strip.png)" in (out / "report.md").read_text()


@pytest.mark.slow
def test_demo_edits_the_astronauts_face_with_the_built_in_model(tmp_path):
    """What ./run.sh does: the photo's face found and aligned, every slider dragged, the final blended
    back into the whole photo."""
    import json

    from PIL import Image
    env = {"ANYCOST_STATE_DIR": str(tmp_path / "state"), "ANYCOST_CACHE_DIR": str(tmp_path / "cache")}
    r = run_cli("--threads", "1", "demo", "--steps", "20", "--out", str(tmp_path / "out"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    out = tmp_path / "out"
    report = json.loads((out / "report.json").read_text())
    assert report["face"]["faces"] == 1 and report["model"]["name"] == "demo"
    assert "non-commercial" in (out / "report.md").read_text()
    photo, final = Image.open(out / "input.png"), Image.open(out / "final-photo.png")
    assert photo.size == final.size == (512, 512)
    x, y, w, h = report["region"]
    a, b = np.asarray(photo).astype(int), np.asarray(final).astype(int)
    assert np.abs(a - b)[y:y + h, x:x + w].mean() > 1                  # the face changed ...
    outside = np.ones(a.shape[:2], bool)
    outside[y:y + h, x:x + w] = False
    assert np.array_equal(a[outside], b[outside])                     # ... and nothing else
    names = {p["direction"] for p in report["previews"]}
    assert {"age", "smile", "head_turn"} <= names and len(report["previews"]) == 2 * len(names)
    strip = Image.open(out / "strip.png")
    assert strip.width == 8 * 128 and strip.height >= 2 * 128


def test_demo_without_mediapipe_says_how_and_edits_the_aligned_crop(tiny_model_file, tmp_path):
    env = {"ANYCOST_STATE_DIR": str(tmp_path / "state"), "PYTHONPATH": without_module(tmp_path, "mediapipe")}
    r = run_cli("--threads", "1", "demo", "--model", str(tiny_model_file), "--steps", "2", "--out",
                str(tmp_path / "out"), env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "pip install 'anycost-editor[faces]'" in r.stdout and "demo-face.png" in r.stdout
    import json
    assert json.loads((tmp_path / "out" / "report.json").read_text())["align"] == "none"


def test_align_auto_on_a_model_without_alignment_projects_the_region_as_is(client):
    r = client.call("open", image=face_image(), align="auto", steps=0, timeout=120)
    assert r["alignment"] is None and "declares no face alignment" in r["alignment_note"]
    assert r["region"] == [0, 0, 96, 80]
    client.call("close", session=r["session"])
