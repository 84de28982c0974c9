"""The GIMP plug-in's editor-independent part (anycost_plugin.batch_edit) against a real daemon.
Real GIMP 3 runs in test_gimp_real.py."""
from __future__ import annotations

import pytest

from anycost.protocol.spawn import free_port
from anycost_plugin.batch_edit import EditError, connect, edit_region, parse_edits

from ..daemon_helpers import face_image


@pytest.fixture(scope="module")
def daemon(tiny_daemon):
    return tiny_daemon


def test_parse_edits():
    assert parse_edits(" smile=1.5, age = -0.5; glasses=2 ") == {"smile": 1.5, "age": -0.5, "glasses": 2.0}
    assert parse_edits("") == {}
    for bad in ("smile", "smile=much", "=1"):
        with pytest.raises(EditError, match="look like"):
            parse_edits(bad)


def test_no_backend_and_no_executable_is_a_clear_error(tmp_path):
    with pytest.raises(EditError, match="no backend answers"):
        connect(f"tcp://127.0.0.1:{free_port()}", None, tmp_path / "log")


def test_edit_region_renders_and_closes_its_session(daemon, tmp_path):
    img = face_image(70, 60, "RGBA8")
    with connect(daemon.address, None, tmp_path / "log") as c:
        names = [d["name"] for d in c.call("models")["models"][0]["directions"]]
        with pytest.raises(EditError, match="has no direction nope"):
            edit_region(c, img["data"], 70, 60, {"nope": 1.0}, steps=2)
        progress = []
        out, rect = edit_region(c, img["data"], 70, 60, {names[0]: 2.0}, steps=3, on_progress=progress.append)
        plain, _ = edit_region(c, img["data"], 70, 60, {}, steps=3)
        assert c.call("stats")["sessions"] == 0
    assert len(out) == len(plain) == 70 * 60 * 3 and progress and rect == (0, 0, 70, 60)
    assert out != plain                                 # the edit changed the picture


def test_every_gi_namespace_is_pinned_before_it_is_imported():
    """PyGObject warns (PyGIWarning, in GIMP's error console) for a namespace imported without
    gi.require_version first; the interactive path imports GimpUi, so every plug-in module pins
    every namespace it imports, before its first import."""
    import ast
    import re

    from ..conftest import REPO
    for path in sorted((REPO / "plugin_gimp" / "anycost_gimp").glob("*.py")):
        text = path.read_text()
        pinned: set[str] = set()
        for node in sorted(ast.walk(ast.parse(text)), key=lambda n: getattr(n, "lineno", 0)):   # source order
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "require_version":
                pinned.add(node.args[0].value)
            if isinstance(node, ast.ImportFrom) and node.module == "gi.repository":
                names = {a.name for a in node.names}
                assert names <= pinned | {"GLib", "GObject"}, f"{path.name}:{node.lineno} imports {names - pinned}"
        assert re.search(r"require_version\(\"GimpUi\"", text) or "GimpUi" not in text, path.name
