"""What no bad input, other local user or huge output may do to a real daemon: ids and numbers
checked before use, one rule for the envelope, bounded outputs, every error counted, the default
endpoint private to its user, no routing-id takeover, memory given back after a huge render."""
from __future__ import annotations

import json
import math
import os
import signal
import stat
import subprocess
import sys
import time

import msgpack
import pytest
import zmq

from anycost.core.memory import process_memory_mb as _rss_mb
from anycost.protocol import messages as P
from anycost.protocol.client import BackendTimeout, Client

from ..conftest import CLI, run_cli
from ..daemon_helpers import Daemon, face_image


@pytest.fixture(scope="module")
def daemon(tiny_daemon):
    return tiny_daemon


def error_of(c: Client, op: str, **fields) -> dict:
    """The error reply (whole message) to one request."""
    rid = c.send(op, **fields)
    while True:
        m = c.recv(60)
        if m.get("id") == rid and m["type"] in (P.RESULT, P.ERROR):
            assert m["type"] == P.ERROR, f"{op} {fields} was answered {m}"
            return m


def raw_reply(c: Client, msg: dict) -> dict:
    c.send_raw(msgpack.packb(msg, use_bin_type=True))
    return c.recv(60)


@pytest.fixture(scope="module")
def session(daemon):
    with Client(daemon.address) as c:
        s = c.call("open", image=face_image(), steps=2, timeout=120)
    yield s
    with Client(daemon.address) as c:
        c.call("close", session=s["session"])


def test_session_ids_are_128_bit_capabilities(session):
    assert P.SESSION_ID.fullmatch(session["session"])


@pytest.mark.parametrize("sid", ["a" * 251, "a" * 4000, "../../etc/passwd", "0123456789abcdef", "A" * 32,
                                 "g" * 32, "", "0" * 31 + "\u00e9"])
def test_an_id_not_of_the_issued_form_is_bad_request_before_any_file_is_touched(client, sid):
    for op, extra in (("edit", {"values": {}}), ("render", {}), ("close", {})):
        m = error_of(client, op, session=sid, **extra)
        assert m["error"]["code"] == P.ErrorCode.BAD_REQUEST, (op, m)
        assert "session id" in m["error"]["message"]
    unknown = "0" * 32                              # the right form, but no such session
    assert error_of(client, "render", session=unknown)["error"]["code"] == P.ErrorCode.NOT_FOUND


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_anywhere_are_bad_request_and_never_stored(client, session, daemon, bad):
    sid = session["session"]
    name = session["directions"][0]["name"]
    cases = [("edit", {"session": sid, "values": {name: bad}}),
             ("edit", {"session": sid, "values": {name: 1.0}, "budget_ms": bad}),
             ("render", {"session": sid, "values": {name: bad}}),
             ("open", {"image": face_image(), "time_limit_s": bad}),
             ("hello", {"extra": [1, {"deep": [bad]}]})]          # even in a field nobody reads
    for op, fields in cases:
        m = error_of(client, op, **fields)
        assert m["error"]["code"] == P.ErrorCode.BAD_REQUEST and "finite" in m["error"]["message"], (op, m)
    record = daemon.root / "state" / "sessions" / f"{sid}.json"

    def refuse(constant):
        raise AssertionError(f"{constant} stored in {record}")
    json.loads(record.read_text(), parse_constant=refuse)


def test_version_and_id_follow_one_rule(client):
    for v in (True, 1.0, "1", None, 2):
        m = raw_reply(client, {"v": v, "id": 5, "op": "hello"})
        assert m["type"] == P.ERROR and m["error"]["code"] == P.ErrorCode.VERSION_MISMATCH and m["id"] == 5, v
    for rid in (True, False, 1.5, None, [1], {"a": 1}):
        m = raw_reply(client, {"v": 1, "id": rid, "op": "hello"})
        assert m["type"] == P.ERROR and m["error"]["code"] == P.ErrorCode.BAD_REQUEST and m["id"] is None, rid
    for rid in (0, -3, 2 ** 63 - 1, "x", ""):
        m = raw_reply(client, {"v": 1, "id": rid, "op": "hello"})
        assert m["type"] == P.RESULT and m["id"] == rid and type(m["id"]) is type(rid)


@pytest.mark.parametrize("size", [[1, 67108864], [67108864, 1], [16385, 16], [8192, 8193], [0, 5], [-1, 5]])
def test_output_size_is_bounded_per_side_and_in_area(client, session, size):
    for op in ("render", "edit"):
        m = error_of(client, op, session=session["session"], size=size)
        want = P.ErrorCode.BAD_REQUEST if min(size) < 1 else P.ErrorCode.TOO_LARGE
        assert m["error"]["code"] == want, (op, size, m)


def test_an_empty_model_name_is_not_the_default_model(client):
    m = error_of(client, "open", image=face_image(), model="", steps=0)
    assert m["error"]["code"] == P.ErrorCode.NOT_FOUND and "''" in m["error"]["message"]


def test_stats_count_every_error_answered(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file)
    d.wait_ready()
    with Client(d.address) as c:
        long = c.send("open", image=face_image(), steps=400)          # keeps the worker busy
        queued = [c.send("open", image=face_image(), steps=1) for _ in range(6)]
        for rid in queued:
            assert c.call("cancel", target=rid)["state"] == "pending"
        c.call("cancel", target=long)
        codes = [m["error"]["code"] for m in c.unsolicited if m["type"] == P.ERROR]   # arrived meanwhile
        while len(codes) < 7:
            m = c.recv(120)
            if m["type"] == P.ERROR:
                codes.append(m["error"]["code"])
        assert codes == [P.ErrorCode.CANCELLED] * 7
        error_of(c, "edit", session="nope")
        errors = c.call("stats")["errors"]
    assert errors == {P.ErrorCode.CANCELLED: 7, P.ErrorCode.BAD_REQUEST: 1}
    assert d.stop() == 0


def test_a_second_socket_with_the_same_routing_id_cannot_take_over_replies(daemon):
    ctx = zmq.Context.instance()
    victim, thief = ctx.socket(zmq.DEALER), ctx.socket(zmq.DEALER)
    try:
        for s in (victim, thief):
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.ROUTING_ID, b"editor-1")
        victim.connect(daemon.address)
        victim.send(P.pack(P.request("hello", 1)))
        assert victim.poll(10000) and P.unpack(victim.recv())["id"] == 1
        thief.connect(daemon.address)
        thief.send(P.pack(P.request("stats", 2)))
        time.sleep(0.3)
        victim.send(P.pack(P.request("hello", 3)))
        assert victim.poll(10000) and P.unpack(victim.recv())["id"] == 3      # still the victim's
        assert not thief.poll(1000)                                          # the thief hears nothing
    finally:
        victim.close(0)
        thief.close(0)


def test_edits_queued_while_the_daemon_is_down_reach_its_successor(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file)
    d.wait_ready()
    with Client(d.address) as c:
        s = c.call("open", image=face_image(), timeout=120)
        name = s["directions"][0]["name"]
        before = c.call("edit", session=s["session"], values={name: 1.5}, budget_ms=1000)
        d.proc.send_signal(signal.SIGKILL)
        d.proc.wait()
        pending = [c.send("edit", session=s["session"], values={name: v}, budget_ms=1000) for v in (0.5, 1.5)]
        with pytest.raises(BackendTimeout):
            c.recv(0.5)                                                       # nobody there
        d2 = Daemon(tmp_path, tiny_model_file, address=d.address)
        finals = {}
        while len(finals) < 2:
            m = c.recv(180)
            if m["type"] in (P.RESULT, P.ERROR):
                finals[m["id"]] = m
        assert sorted(finals) == pending
        last = finals[pending[1]]
        assert last["type"] == P.RESULT and last["data"]["image"]["data"] == before["image"]["data"]
        assert finals[pending[0]]["type"] == P.RESULT or finals[pending[0]]["error"]["code"] == P.ErrorCode.SUPERSEDED
    assert d2.stop() == 0


# ------------------------------------------------------------------------ the default endpoint

def test_serve_status_and_the_default_endpoint_are_private_to_the_user(tiny_model_file, tmp_path, runtime_dir):
    address = P.default_address()
    assert address == f"ipc://{runtime_dir / 'anycost' / 'backend.sock'}"
    env = {"ANYCOST_STATE_DIR": str(tmp_path / "state"), "ANYCOST_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.Popen([str(CLI), "--threads", "1", "serve", "--model",
                             str(tiny_model_file), "--steps", "1"], env=dict(os.environ, **env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        with Client(address) as c:
            c.wait_ready(proc=proc)
        sock = runtime_dir / "anycost" / "backend.sock"
        assert stat.S_IMODE(os.stat(sock.parent).st_mode) == 0o700
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600 and stat.S_ISSOCK(os.stat(sock).st_mode)
        r = run_cli("status", env=env)                                   # no --address: finds it
        assert r.returncode == 0 and address in r.stdout and "tiny" in r.stdout
        second = run_cli("serve", "--model", str(tiny_model_file), env=env, timeout=120)
        assert second.returncode == 2 and "already in use" in second.stderr
        with Client() as c:                                              # still the first one's
            assert c.call("hello")["state"] == "ready"
        if os.geteuid() == 0 and os.path.exists(SYSTEM_PYTHON):            # another OS user
            os.chmod(runtime_dir, 0o755)              # as /tmp would be: only our folder guards the socket
            other = subprocess.run([SYSTEM_PYTHON, "-c", _OTHER_USER_CLIENT, str(sock)], user=65534, group=65534,
                                   capture_output=True, text=True, timeout=60, env={})
            assert other.returncode == 0, other.stderr
            assert other.stdout.strip() == "PermissionError", other.stdout
        with Client() as c:
            c.call("shutdown")
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert not sock.exists()                                              # removed on exit


# A process of user `nobody` (the system Python: the project's may live in root's home) tries the
# socket itself: the folder's mode must stop it before any byte of the protocol.
SYSTEM_PYTHON = "/usr/bin/python3"
_OTHER_USER_CLIENT = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
    print("connected")
except OSError as e:
    print(type(e).__name__)
"""


def test_a_socket_folder_another_user_could_control_is_refused(tmp_path, runtime_dir):
    folder = runtime_dir / "anycost"
    folder.mkdir(mode=0o755)
    os.chmod(folder, 0o755)
    with pytest.raises(P.EndpointError, match="open to other users"):
        Client()                                        # a client will not talk through it
    with pytest.raises(P.EndpointError, match="open to other users"):
        P.check_endpoint(P.default_address(), create=True)   # nor will the daemon listen in it
    os.chmod(folder, 0o700)
    P.check_endpoint(P.default_address(), create=True)
    if os.geteuid() == 0:
        os.chown(folder, 65534, 65534)
        r = run_cli("serve", "--model", "random:demo-128", env={"ANYCOST_STATE_DIR": str(tmp_path / "s")})
        assert r.returncode == 2 and "belongs to user id 65534" in r.stderr
        r = run_cli("status", "--timeout", "1")
        assert r.returncode == 2 and "belongs to user id 65534" in r.stderr
    folder.rmdir()
    folder.symlink_to(tmp_path)
    with pytest.raises(P.EndpointError, match="not a folder"):
        P.check_endpoint(P.default_address(), create=True)


# ------------------------------------------------------------------------------------ memory

@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS from /proc, glibc's malloc_trim")
def test_memory_of_a_huge_render_is_given_back(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file)
    d.wait_ready()
    with Client(d.address) as c:
        s = c.call("open", image=face_image(), steps=1, timeout=120)
        for _ in range(3):
            c.call("edit", session=s["session"], values={}, budget_ms=1000)
        base = _rss_mb(d.proc.pid)
        r = c.call("render", session=s["session"], size=[8192, 8192], timeout=300)
        assert (r["image"]["w"], r["image"]["h"]) == (8192, 8192)
        del r
        peak = _rss_mb(d.proc.pid, "VmHWM")
        deadline = time.monotonic() + 10
        while _rss_mb(d.proc.pid) > base + 120 and time.monotonic() < deadline:
            time.sleep(0.2)
        after = _rss_mb(d.proc.pid)
        assert peak > base + 300, (base, peak)                 # the render did need the memory
        assert after < base + 120, (base, peak, after)           # and it was given back
        c.call("edit", session=s["session"], values={}, budget_ms=1000)   # previews go on
    assert d.stop() == 0


def test_a_worker_that_fails_at_start_up_ends_the_daemon_with_an_error(tiny_model_file, tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "calibration").write_text("a file where the measurements folder should be")
    d = Daemon(tmp_path, tiny_model_file)
    with pytest.raises(P.BackendError, match="exited with code 2"):
        d.wait_ready(60)
    assert "the daemon stopped because of an error" in d.log_text()
