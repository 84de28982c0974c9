"""A bounded, seeded fuzz of a real daemon: thousands of messages mutated from valid requests (wrong
types, missing fields, huge, negative and non-finite numbers, bad ids, long strings, image bytes
that do not match, several frames, random bytes). Every request gets exactly one final reply,
none is `internal`, and afterwards the daemon still projects, edits and renders."""
from __future__ import annotations

import collections
import math
import random
import time

import msgpack
import pytest

from anycost.protocol import messages as P
from anycost.protocol.client import Client

from ..daemon_helpers import Daemon, face_image

SEED, MESSAGES = 20261201, 3000
FINAL = (P.RESULT, P.ERROR)

# Values that break assumptions: every type msgpack carries, extremes, non-finite floats.
ODD = [None, True, False, 0, -1, 1, 2, 255, 2 ** 31, 2 ** 63 - 1, -2 ** 63, 2 ** 64 - 1, 0.0, -0.0, 0.5, 1e-300,
       1e308, -1e308, math.nan, math.inf, -math.inf, "", "x", "\u00e9\u0000", "a" * 10_000, b"", b"\x00" * 7, [], [1],
       [1, 2, 3, 4], [-1, 0, 5, 5], [2 ** 40, 1], {}, {"a": 1}, {"": None}, [[[[[[]]]]]]]


def base_requests(session: str, rng: random.Random) -> list[dict]:
    name = rng.choice(["PC1", "PC2", "nope"])
    small = face_image(24, 20, rng.choice(["RGB8", "RGBA8"]))
    return [
        {"op": "hello"}, {"op": "models"}, {"op": "stats"},
        {"op": "open", "image": small, "steps": rng.choice([0, 1]), "region": [2, 2, 20, 16], "preview_every": 1,
         "time_limit_s": 5.0, "align": rng.choice(["none", "auto"]), "model": "tiny"},
        {"op": "edit", "session": session, "values": {name: rng.uniform(-3, 3)}, "budget_ms": 50.0, "size": [16, 12]},
        {"op": "render", "session": session, "values": {name: 1.0}, "size": [20, 18]},
        {"op": "cancel", "target": rng.randrange(1000, 1000 + MESSAGES)},
        {"op": "close", "session": "f" * 32},
    ]


def mutate(value, rng: random.Random, depth: int = 0):
    """One random change somewhere inside `value` (a map, list or scalar)."""
    if isinstance(value, dict) and value and depth < 3 and rng.random() < 0.8:
        out = dict(value)
        key = rng.choice(list(out))
        r = rng.random()
        if r < 0.25:
            del out[key]
        elif r < 0.35:
            out[rng.choice(["extra", "v2", "a" * 300, "image", "session"])] = rng.choice(ODD)
        else:
            out[key] = mutate(out[key], rng, depth + 1)
        return out
    if isinstance(value, list) and value and depth < 3 and rng.random() < 0.7:
        out = list(value)
        i = rng.randrange(len(out))
        r = rng.random()
        if r < 0.2:
            del out[i]
        elif r < 0.3:
            out.append(rng.choice(ODD))
        else:
            out[i] = mutate(out[i], rng, depth + 1)
        return out
    if isinstance(value, bytes) and value and rng.random() < 0.5:
        return value[: rng.randrange(len(value))] if rng.random() < 0.5 else value + b"\x01" * rng.randrange(1, 9)
    if isinstance(value, str) and value and rng.random() < 0.3:
        return value + rng.choice(["0", "/..", "\u00e9", "x" * 300])
    return rng.choice(ODD)


def make_frames(i: int, session: str, rng: random.Random) -> tuple[list[bytes], object]:
    """One fuzzed message (its frames) and the id its final reply must carry (None: unreadable)."""
    r = rng.random()
    if r < 0.03:
        return [rng.randbytes(rng.randrange(0, 64))], None
    if r < 0.05:
        return [msgpack.packb(rng.choice(ODD), use_bin_type=True)], None
    rid = i if rng.random() < 0.7 else f"s{i}"
    msg = {"v": 1, "id": rid, **rng.choice(base_requests(session, rng))}
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        changed = mutate(msg, rng)
        msg = changed if isinstance(changed, dict) else msg     # messages that are not maps: above
    if msg.get("op") == "shutdown":
        msg["op"] = "hello"
    want = P.request_id(msg)
    frame = msgpack.packb(msg, use_bin_type=True)
    r = rng.random()
    if r < 0.03:
        return [frame, b"more"], None                           # several frames
    if r < 0.05:
        return [frame[: rng.randrange(len(frame))]], None        # truncated msgpack
    return [frame], want


@pytest.mark.slow
def test_fuzzed_requests_each_get_one_final_reply_and_never_break_the_daemon(tiny_model_file, tmp_path):
    d = Daemon(tmp_path, tiny_model_file, "--max-image-pixels", "250000")
    d.wait_ready()
    rng = random.Random(SEED)
    with Client(d.address) as c:
        session = c.call("open", image=face_image(), steps=1, timeout=120)["session"]
        expected = collections.Counter()         # id -> how many final replies it must get
        finals = collections.Counter()
        codes = collections.Counter()

        def take(msg: dict) -> None:
            if msg.get("type") in FINAL:
                finals[msg.get("id")] += 1
                if msg["type"] == P.ERROR:
                    codes[msg["error"]["code"]] += 1
                    assert msg["error"]["code"] != P.ErrorCode.INTERNAL, msg

        for i in range(1000, 1000 + MESSAGES):
            frames, want = make_frames(i, session, rng)
            expected[want] += 1
            c.socket.send_multipart(frames)
            if i % 40 == 0:                      # bursts, then read what has come back
                while c.socket.poll(0):
                    take(c.recv())
        deadline = time.monotonic() + 300
        while sum(finals.values()) < MESSAGES and time.monotonic() < deadline:
            if c.socket.poll(1000):
                take(c.recv())
        assert finals == expected, {k: (finals[k], expected[k]) for k in set(finals) | set(expected)
                                    if finals[k] != expected[k]}
        assert not c.socket.poll(1500) or c.recv()["type"] not in FINAL     # nothing more than one each
        print(f"fuzz: {sum(finals.values())} final replies; results {sum(finals.values()) - sum(codes.values())}, "
              f"errors {dict(codes)}")
        assert codes[P.ErrorCode.BAD_REQUEST] > MESSAGES // 4 and d.proc.poll() is None

        # the daemon still does real work
        s = c.call("open", image=face_image(), steps=2, timeout=120)
        name = s["directions"][0]["name"]
        e = c.call("edit", session=s["session"], values={name: 2.0}, budget_ms=100)
        r = c.call("render", session=s["session"], values={name: 2.0})
        assert len(e["image"]["data"]) == e["image"]["w"] * e["image"]["h"] * 3 and r["config"]["full"]
        stats = c.call("stats")
        assert P.ErrorCode.INTERNAL not in stats["errors"]
    assert d.stop() == 0
    assert "internal error" not in d.log_text()
