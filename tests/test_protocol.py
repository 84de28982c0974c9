import subprocess
import sys

import msgpack
import pytest

from anycost import protocol as P


def test_round_trip_and_envelope():
    msg = P.request("edit", 7, session="abc", values={"Smile": 0.5}, budget_ms=100)
    back = P.unpack(P.pack(msg))
    assert back == msg
    assert P.check_envelope(back) == (7, "edit")


@pytest.mark.parametrize("msg,code", [
    ({"v": 1, "id": 1, "op": "dance"}, P.UNKNOWN_OP),
    ({"v": 2, "id": 1, "op": "hello"}, P.VERSION_MISMATCH),
    ({"v": 1, "op": "hello"}, P.BAD_REQUEST),
    ({"v": 1, "id": 1}, P.BAD_REQUEST),
    ({"v": 1, "id": 1, "op": 5}, P.BAD_REQUEST),
])
def test_envelope_errors(msg, code):
    with pytest.raises(P.ProtocolError) as e:
        P.check_envelope(msg)
    assert e.value.code == code


def test_not_msgpack_and_not_a_map():
    for frame in (b"\xc1\xc1garbage", msgpack.packb([1, 2])):
        with pytest.raises(P.ProtocolError) as e:
            P.unpack(frame)
        assert e.value.code == P.BAD_REQUEST


def test_field_types():
    assert P.field({"a": 3}, "a", float) == 3.0
    assert P.field({}, "a", int, required=False, default=9) == 9
    for bad in ({"a": "x"}, {"a": True}, {}):
        with pytest.raises(P.ProtocolError, match="'a'"):
            P.field(bad, "a", int)


def test_image_validation():
    ok = {"w": 2, "h": 3, "mode": "RGB8", "data": bytes(18)}
    assert P.Image.from_dict(ok).to_dict() == ok
    cases = [({**ok, "data": bytes(17)}, P.BAD_REQUEST, "18 bytes"),
             ({**ok, "mode": "CMYK"}, P.BAD_REQUEST, "mode"),
             ({**ok, "w": 0}, P.BAD_REQUEST, "positive"),
             ({**ok, "w": "2"}, P.BAD_REQUEST, "'w'")]
    for d, code, text in cases:
        with pytest.raises(P.ProtocolError, match=text) as e:
            P.Image.from_dict(d)
        assert e.value.code == code
    with pytest.raises(P.ProtocolError) as e:
        P.Image.from_dict(ok, max_pixels=5)
    assert e.value.code == P.TOO_LARGE


def test_region():
    assert P.region({}, 10, 20) == (0, 0, 10, 20)
    assert P.region({"region": [1, 2, 3, 4]}, 10, 20) == (1, 2, 3, 4)
    for r in ([5, 5, 6, 1], [0, 0, 0, 1], [-1, 0, 2, 2], [0, 0, 2], [0, 0, 2.5, 2]):
        with pytest.raises(P.ProtocolError):
            P.region({"region": r}, 10, 10)


def test_protocol_and_client_import_no_torch():
    """The plugins reuse these inside Krita/GIMP, where there is no torch."""
    code = "import sys, anycost.protocol, anycost.client; print('torch' in sys.modules, 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
