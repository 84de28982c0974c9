import subprocess
import sys

import msgpack
import pytest

from anycost.protocol import messages as P


def test_round_trip_and_envelope():
    msg = P.request("edit", 7, session="abc", values={"Smile": 0.5}, budget_ms=100)
    back = P.unpack(P.pack(msg))
    assert back == msg
    assert P.check_envelope(back) == (7, "edit")


@pytest.mark.parametrize("msg,code", [
    ({"v": 1, "id": 1, "op": "dance"}, P.ErrorCode.UNKNOWN_OP),
    ({"v": 2, "id": 1, "op": "hello"}, P.ErrorCode.VERSION_MISMATCH),
    ({"v": 1, "op": "hello"}, P.ErrorCode.BAD_REQUEST),
    ({"v": 1, "id": 1}, P.ErrorCode.BAD_REQUEST),
    ({"v": 1, "id": 1, "op": 5}, P.ErrorCode.BAD_REQUEST),
])
def test_envelope_errors(msg, code):
    with pytest.raises(P.ProtocolError) as e:
        P.check_envelope(msg)
    assert e.value.code == code


def test_not_msgpack_and_not_a_map():
    for frame in (b"\xc1\xc1garbage", msgpack.packb([1, 2])):
        with pytest.raises(P.ProtocolError) as e:
            P.unpack(frame)
        assert e.value.code == P.ErrorCode.BAD_REQUEST


def test_field_types():
    assert P.field({"a": 3}, "a", float) == 3.0
    assert P.field({}, "a", int, required=False, default=9) == 9
    for bad in ({"a": "x"}, {"a": True}, {}):
        with pytest.raises(P.ProtocolError, match="'a'"):
            P.field(bad, "a", int)


def test_image_validation():
    ok = {"w": 2, "h": 3, "mode": "RGB8", "data": bytes(18)}
    assert P.Image.from_dict(ok).to_dict() == ok
    cases = [({**ok, "data": bytes(17)}, P.ErrorCode.BAD_REQUEST, "18 bytes"),
             ({**ok, "mode": "CMYK"}, P.ErrorCode.BAD_REQUEST, "mode"),
             ({**ok, "w": 0}, P.ErrorCode.BAD_REQUEST, "positive"),
             ({**ok, "w": "2"}, P.ErrorCode.BAD_REQUEST, "'w'")]
    for d, code, text in cases:
        with pytest.raises(P.ProtocolError, match=text) as e:
            P.Image.from_dict(d)
        assert e.value.code == code
    with pytest.raises(P.ProtocolError) as e:
        P.Image.from_dict(ok, max_pixels=5)
    assert e.value.code == P.ErrorCode.TOO_LARGE


def test_region():
    assert P.region({}, 10, 20) == (0, 0, 10, 20)
    assert P.region({"region": [1, 2, 3, 4]}, 10, 20) == (1, 2, 3, 4)
    for r in ([5, 5, 6, 1], [0, 0, 0, 1], [-1, 0, 2, 2], [0, 0, 2], [0, 0, 2.5, 2]):
        with pytest.raises(P.ProtocolError):
            P.region({"region": r}, 10, 10)


def test_protocol_and_client_import_no_torch():
    """The plugins reuse these inside Krita/GIMP, where there is no torch."""
    code = ("import sys, anycost.protocol.messages, anycost.protocol.client, anycost.protocol.spawn; "
            "print('torch' in sys.modules, 'numpy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


# ------------------------------------------------------------------ typed records and the spec

def test_error_codes_travel_as_their_wire_spelling_and_come_back_typed():
    frame = P.pack(P.error_reply(3, P.ErrorCode.NO_FACE, "no face in the region"))
    raw = msgpack.unpackb(frame, raw=False)
    assert raw["error"] == {"code": "no_face", "message": "no face in the region"} and type(raw["error"]["code"]) is str
    err = P.BackendError.from_reply(P.unpack(frame))
    assert err.code is P.ErrorCode.NO_FACE and err.message == "no face in the region"
    assert str(err) == "no_face: no face in the region"
    # a code this version does not know (a newer daemon's), or a reply without one: internal, message kept
    newer = P.BackendError.from_reply({"type": "error", "error": {"code": "quota", "message": "later"}})
    assert newer.code is P.ErrorCode.INTERNAL and newer.message == "later"
    assert P.BackendError.from_reply({"type": "error"}).code is P.ErrorCode.INTERNAL
    client, server = set(P.CLIENT_CODES), set(P.SERVER_CODES)
    assert not client & server and client | server == set(P.ErrorCode)


def test_request_records_round_trip():
    image = P.Image(2, 1, "RGB8", bytes(6))
    plain = P.OpenRequest(image).fields()
    assert plain == {"image": image.to_dict(), "align": "none"}          # the rest: the daemon's defaults
    assert P.OpenRequest.from_message(plain) == P.OpenRequest(image)
    full = P.OpenRequest(image, model="demo", steps=20, align=True, face=1, preview_every=10, region=(0, 0, 2, 1),
                         time_limit_s=30.0)
    assert "face" not in P.OpenRequest(image, face=1).fields()            # a face index means nothing unaligned
    for record in (full, P.EditRequest("a" * 32, {"smile": 1.5}, 50.0, (64, 48)), P.EditRequest("b" * 32, {}),
                   P.RenderRequest("c" * 32, {"age": -1.0}, (300, 200), 2), P.RenderRequest("d" * 32, {})):
        back = P.unpack(P.pack(P.request("x", 1, **record.fields())))   # through the wire
        assert type(record).from_message(back) == record, record


@pytest.mark.parametrize("make,fields,code,words", [
    (P.OpenRequest, {"steps": 2001}, P.ErrorCode.BAD_REQUEST, "'steps' must be in 0..2000"),
    (P.OpenRequest, {"time_limit_s": 0}, P.ErrorCode.BAD_REQUEST, "time_limit_s"),
    (P.OpenRequest, {"align": "maybe"}, P.ErrorCode.BAD_REQUEST, "'align' must be one of none, auto"),
    (P.OpenRequest, {"region": [1, 0, 2, 1]}, P.ErrorCode.BAD_REQUEST, "outside"),
    (P.OpenRequest, {"image": None}, P.ErrorCode.BAD_REQUEST, "missing field 'image'"),
    (P.EditRequest, {"budget_ms": 0}, P.ErrorCode.BAD_REQUEST, "'budget_ms' must be positive"),
    (P.EditRequest, {"values": {"smile": "a lot"}}, P.ErrorCode.BAD_REQUEST, "must be a number"),
    (P.EditRequest, {"size": [0, 5]}, P.ErrorCode.BAD_REQUEST, "positive integers"),
    (P.EditRequest, {"session": "nope"}, P.ErrorCode.BAD_REQUEST, "not a session id"),
    (P.RenderRequest, {"size": [16385, 1]}, P.ErrorCode.TOO_LARGE, "over the limit"),
    (P.RenderRequest, {"supersample": 5}, P.ErrorCode.BAD_REQUEST, "'supersample' must be in 1..4"),
])
def test_request_records_refuse_what_the_spec_refuses(make, fields, code, words):
    base = {"image": P.Image(2, 1, "RGB8", bytes(6)).to_dict(), "session": "a" * 32}
    with pytest.raises(P.ProtocolError, match=words) as e:
        make.from_message({**base, **fields})
    assert e.value.code == code


def _spec() -> str:
    from pathlib import Path
    return (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_the_spec_lists_exactly_the_ops_and_error_codes_of_the_code():
    import re
    spec = _spec()
    envelope_ops = re.search(r"one of `([a-z ]+)`", spec).group(1).split()
    headed_ops = re.findall(r"^### `([a-z_]+)`", spec, re.M)
    assert envelope_ops == list(P.OPS) and headed_ops == list(P.OPS)
    table = spec.split("## Error codes", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([a-z_]+)` \|", table, re.M)
    assert sorted(listed) == sorted(c.value for c in P.SERVER_CODES)
    client_line = next(line for line in table.splitlines() if line.startswith("Clients report"))
    assert sorted(re.findall(r"`([a-z_]+)`", client_line)) == sorted(c.value for c in P.CLIENT_CODES)


def test_the_one_ready_wait_says_why_it_gave_up(tmp_path):
    from anycost.protocol.client import BackendTimeout, Client
    from anycost.protocol.spawn import free_port
    address = f"tcp://127.0.0.1:{free_port()}"                  # nothing listens there
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    gone.wait()
    with Client(address) as c:
        with pytest.raises(P.BackendError, match="exited with code 3 before it was ready") as e:
            c.wait_ready(timeout=5, proc=gone)
        assert e.value.code is P.ErrorCode.UNREACHABLE and not isinstance(e.value, BackendTimeout)
        with pytest.raises(BackendTimeout, match="no ready daemon") as t:
            c.wait_ready(timeout=0.3)
        assert t.value.code is P.ErrorCode.UNREACHABLE


def test_reply_records_round_trip_and_tolerate_an_older_daemon():
    img = P.Image(2, 1, "RGB8", bytes(6))
    opened = P.OpenResult("a" * 32, (3, 4, 20, 10), img, (P.DirectionInfo("smile", -3.0, 3.0),
                                                         P.DirectionInfo("PC1", -2.0, 2.0, 0.5, "pca")),
                          "demo", {"psnr": 21.5}, {"faces": [], "face": 0}, "")
    wire = P.unpack(P.pack(P.reply(1, P.RESULT, data=opened.to_dict())))["data"]
    assert P.OpenResult.from_dict(wire) == opened and "alignment_note" not in wire
    sparse = {"session": "b" * 32, "reconstruction": img.to_dict(), "directions": [{"name": "x", "min": -1, "max": 1}]}
    old = P.OpenResult.from_dict(sparse, (0, 0, 2, 1))        # no region, metrics, model or alignment
    assert old.region == (0, 0, 2, 1) and old.directions[0] == P.DirectionInfo("x", -1.0, 1.0) and old.alignment is None
    shown = P.RenderResult("a" * 32, img, 12.5, {"ratio": 0.5, "resolution": 32, "full": False}, True, {"smile": 1.0})
    assert P.RenderResult.from_dict(P.unpack(P.pack(shown.to_dict()))) == shown
    assert P.RenderResult.from_dict({"image": img.to_dict()}) == P.RenderResult("", img)


def test_the_other_ops_records_round_trip():
    info = P.ModelInfo("demo", 64, "anycost", 256, 10, False, True, False, None, "ffhq",
                       "MIT", (P.DirectionInfo("smile", -3.0, 3.0),), ({"ratio": 0.5, "resolution": 32},))
    records = [P.Hello("0.1.0", P.VERSION, "calibrating", ("demo",), "demo", "lpips-alex", ("a warning",), "cpu", 2,
                       {"max_queue": 64}),
               P.ModelsResult((info, P.ModelInfo("creps-demo", 128, "creps", any_size=True)), "demo"),
               P.Stats(3.5, {"edit": 4}, {"cancelled": 1}, 1, "open", 2, {"n": 4, "median": 9.5, "p95": 12.0}),
               P.CancelResult(7, "running", True), P.CancelResult("x", "unknown", False),
               P.CloseResult("a" * 32), P.ShutdownResult()]
    for record in records:
        back = P.unpack(P.pack(P.reply(1, P.RESULT, data=record.to_dict())))["data"]
        assert type(record).from_dict(back) == record, record
    assert not records[0].ready and P.Hello.from_dict({"state": "ready"}).ready
    for request in (P.CancelRequest(3), P.CancelRequest("x"), P.CloseRequest("c" * 32)):
        back = P.unpack(P.pack(P.request("x", 1, **request.fields())))
        assert type(request).from_message(back) == request
    with pytest.raises(P.ProtocolError, match="not a session id"):
        P.CloseRequest.from_message({"session": "../etc"})


def test_every_op_has_its_request_and_result_record():
    assert list(P.REQUESTS) == list(P.OPS) and list(P.RESULTS) == list(P.OPS)
    spec = _spec()
    for op, record in P.REQUESTS.items():
        section = spec.split(f"### `{op}`", 1)[1].split("\n### ", 1)[0]
        for name in getattr(record, "__dataclass_fields__", ()):
            assert f"`{name}`" in section, (op, name)     # every field a request record carries is in the spec
