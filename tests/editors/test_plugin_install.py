"""`anycost-backend install-plugin krita`: files, kritarc, and pyzmq/msgpack for Krita's Python."""
from __future__ import annotations

import json
import subprocess
import sys
import venv

import pytest

from anycost.install.plugins import enable_in_kritarc, set_in_kritarc
from anycost_plugin.settings import JsonFileStore, Settings

from ..conftest import CLI, run_cli


def test_enable_in_kritarc_keeps_everything_else(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text("[General]\nfoo=1\n\n[python]\nenable_other=true\nenable_anycost_krita=false\n\n[theme]\nTheme=Dark\n")
    enable_in_kritarc(rc)
    enable_in_kritarc(rc)                                   # idempotent
    text = rc.read_text()
    assert text.count("enable_anycost_krita=true") == 1 and "enable_anycost_krita=false" not in text
    assert "enable_other=true" in text and "Theme=Dark" in text and "foo=1" in text
    assert text.index("enable_anycost_krita=true") < text.index("[theme]")   # inside [python]
    fresh = tmp_path / "new" / "kritarc"
    enable_in_kritarc(fresh)
    assert fresh.read_text() == "[python]\nenable_anycost_krita=true\n"


def test_set_in_kritarc_adds_and_replaces_keys_of_one_group(tmp_path):
    rc = tmp_path / "kritarc"
    rc.write_text("[anycost]\nfeather=6\nexecutable=old\n\n[python]\nenable_x=true\n")
    set_in_kritarc(rc, "anycost", {"executable": "/opt/venv/bin/anycost-backend", "autostart": "true"})
    text = rc.read_text()
    assert text.startswith("[anycost]\nfeather=6\nexecutable=/opt/venv/bin/anycost-backend\n")
    assert text.index("autostart=true") < text.index("[python]") and "old" not in text and "enable_x=true" in text


def test_install_records_the_backend_so_the_first_start_connects(tmp_path):
    """An editor started from the desktop has no virtualenv on its PATH: install-plugin writes
    where this backend is into the plugin's settings (kritarc [anycost]; GIMP's settings.json),
    and a reinstall keeps what the user set there."""
    rc = tmp_path / "kritarc"
    r = run_cli("install-plugin", "krita", "--pykrita-dir", str(tmp_path / "pykrita"), "--kritarc", str(rc),
                "--krita-python", sys.executable)
    assert r.returncode == 0, r.stderr
    assert f"[anycost]\nexecutable={CLI}\nautostart=true" in rc.read_text()
    assert f"recorded the backend {CLI}" in r.stdout
    plug_ins = tmp_path / "plug-ins"
    saved = plug_ins / "anycost-edit" / "settings.json"
    for round_ in range(2):
        r = run_cli("install-plugin", "gimp", "--plug-ins-dir", str(plug_ins), "--gimp-python", sys.executable)
        assert r.returncode == 0, r.stderr
        store = JsonFileStore(saved)
        settings = Settings.load(store)
        assert settings.executable == str(CLI) and settings.autostart
        assert settings.feather == (40 if round_ else Settings().feather)    # the reinstall kept the user's choice
        settings.feather = 40                                   # as the dialog saves a choice
        settings.save(store)
    assert json.loads(saved.read_text())["feather"] == "40"


def test_install_copies_plugin_and_protocol(tmp_path):
    pykrita = tmp_path / "pykrita"
    r = run_cli("install-plugin", "krita", "--pykrita-dir", str(pykrita), "--kritarc", str(tmp_path / "kritarc"),
                "--krita-python", sys.executable)
    assert r.returncode == 0, r.stderr
    plugin = pykrita / "anycost_krita"
    assert (pykrita / "anycost_krita.desktop").read_text().count("X-KDE-Library=anycost_krita") == 1
    assert (plugin / "panel.py").is_file() and not list(plugin.rglob("__pycache__"))
    from anycost.protocol import messages
    vendored = plugin / "vendor" / "anycost" / "protocol"
    assert (vendored / "messages.py").read_text() == open(messages.__file__).read()
    assert {p.name for p in vendored.glob("*.py")} == {"__init__.py", "messages.py", "client.py", "spawn.py"}
    assert (plugin / "vendor" / "anycost_plugin" / "pixels.py").is_file()
    assert "imports pyzmq and msgpack" in r.stdout
    # no torch, no numpy anywhere in the plugin
    source = "\n".join(p.read_text() for p in plugin.rglob("*.py"))
    assert "import torch" not in source and "import numpy" not in source


def test_install_refuses_a_folder_krita_does_not_read(tmp_path):
    r = run_cli("install-plugin", "krita", "--pykrita-dir", str(tmp_path / "plugins"), "--no-enable")
    assert r.returncode == 2 and "pykrita" in r.stderr


@pytest.mark.slow
def test_missing_dependencies_are_unpacked_for_kritas_python(tmp_path):
    """A Python without pyzmq/msgpack (like an official Krita build's): the installer unpacks
    wheels for its version, and that Python then imports them from the plugin's vendor folder."""
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)                  # no system site-packages: no zmq, no msgpack
    py = str(bare / "bin" / "python")
    assert subprocess.run([py, "-c", "import zmq"], capture_output=True).returncode != 0
    pykrita = tmp_path / "pykrita"
    r = run_cli("install-plugin", "krita", "--pykrita-dir", str(pykrita), "--no-enable", "--krita-python", py)
    if r.returncode != 0 and "could not download" in r.stderr:
        assert "pip install --target" in r.stderr           # offline: the message says what to do
        pytest.skip("no package index reachable: " + r.stderr.strip())
    assert r.returncode == 0, r.stderr
    assert "unpacked pyzmq and msgpack wheels" in r.stdout
    check = ("import sys; sys.path.insert(0, %r); import anycost_krita; "
             "from anycost.protocol import messages as protocol; from anycost_plugin import pixels; "
             "import zmq, msgpack; "
             "print(zmq.zmq_version(), protocol.unpack(protocol.pack({'a': 1})))" % str(pykrita))
    out = subprocess.run([py, "-c", check], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "{'a': 1}" in out.stdout


def test_install_gimp_plugin_folder(tmp_path):
    plug_ins = tmp_path / "plug-ins"
    (plug_ins / "anycost-edit" / "vendor" / "zmq").mkdir(parents=True)     # wheels from an earlier install
    r = run_cli("install-plugin", "gimp", "--plug-ins-dir", str(plug_ins), "--gimp-python", sys.executable)
    assert r.returncode == 0, r.stderr
    folder = plug_ins / "anycost-edit"
    script = folder / "anycost-edit.py"                    # GIMP 3: the file is named like its folder...
    assert script.stat().st_mode & 0o111                   # ...and executable
    assert script.read_text().startswith("#!/usr/bin/env python3")
    assert (folder / "vendor" / "anycost" / "protocol" / "client.py").is_file() and (folder / "vendor" / "zmq").is_dir()
    assert (folder / "vendor" / "anycost_plugin" / "batch_edit.py").is_file()
    assert {p.name for p in folder.glob("*.py")} == {"anycost-edit.py", "gimp_dialog.py", "gimp_host.py",
                                                     "glib_loop.py"}
    assert "GIMP's Python" in r.stdout and "imports pyzmq and msgpack" in r.stdout
