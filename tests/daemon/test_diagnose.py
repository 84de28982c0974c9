"""`anycost-backend diagnose` and the plugins' Diagnostics button, against a real daemon: one zip
with the logs, versions, what the backend answers, the calibration and the plugins' settings, the
user's home folder written as `~`."""
from __future__ import annotations

import json
import zipfile

import pytest

from anycost.install.plugins import set_in_kritarc
from anycost_krita.qt_loop import QtLoop
from anycost_plugin.settings import Settings
from anycost_plugin.view_model import EditView

from ..conftest import CLI, run_cli
from ..daemon_helpers import Daemon
from ..krita_helpers import pump


@pytest.fixture(scope="module")
def daemon(tiny_model_file, tmp_path_factory):
    d = Daemon(tmp_path_factory.mktemp("diag-daemon"), tiny_model_file)
    d.wait_ready()
    yield d
    d.stop()


def user_home(tmp_path):
    """A home folder with what the plugins leave in it: kritarc, the GIMP plug-in's settings, the
    log of a backend Krita started (which names files in the home folder)."""
    home = tmp_path / "home"
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "XDG_DATA_HOME": str(home / ".local/share"),
           "XDG_CACHE_HOME": str(home / ".cache")}
    set_in_kritarc(home / ".config/kritarc", "General", {"recentFile": f"{home}/Pictures/secret.kra"})
    set_in_kritarc(home / ".config/kritarc", "anycost", {"executable": f"{home}/venv/bin/anycost-backend"})
    gimp = home / ".config/GIMP/3.0/plug-ins/anycost-edit/settings.json"
    gimp.parent.mkdir(parents=True)
    gimp.write_text(json.dumps({"feather": "9"}))
    log = home / ".local/share/krita/anycost/anycost-backend.log"
    log.parent.mkdir(parents=True)
    log.write_text(f"loading {home}/Pictures/portrait.png\n")
    return home, env


def test_diagnose_writes_one_redacted_zip(daemon, tmp_path):
    home, env = user_home(tmp_path)
    env["ANYCOST_STATE_DIR"] = daemon.env["ANYCOST_STATE_DIR"]        # the daemon's own log and calibration
    out = tmp_path / "report.zip"
    r = run_cli("diagnose", "--address", daemon.address, "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(out) as z:
        files = {n: z.read(n).decode() for n in z.namelist()}
    report = json.loads(files["report.json"])
    assert report["backend"]["hello"]["state"] == "ready"
    assert [m["name"] for m in report["backend"]["models"]["models"]] == ["tiny"]
    assert report["versions"]["torch"] != "not installed" and report["versions"]["pyzmq"] != "not installed"
    assert "logs/backend.log" in files and "ready: tiny" in files["logs/backend.log"]
    assert files["logs/krita-started-backend.log"] == "loading ~/Pictures/portrait.png\n"
    assert files["settings/kritarc-anycost.ini"] == "[anycost]\nexecutable=~/venv/bin/anycost-backend\n"
    assert json.loads(files["settings/gimp-settings.json"]) == {"feather": "9"}
    assert any(n.startswith("calibration/") for n in files)              # the preview measurements
    assert not any(str(home) in text for text in files.values())         # the home folder redacted everywhere
    assert "secret.kra" not in "".join(files.values())                   # kritarc's other groups stay out


def test_diagnose_without_a_backend_says_so_in_the_zip(tmp_path):
    _, env = user_home(tmp_path)
    out = tmp_path / "report.zip"
    r = run_cli("diagnose", "--address", "tcp://127.0.0.1:1", "--timeout", "0.5", "--out", str(out), env=env)
    assert r.returncode == 0, r.stderr
    with zipfile.ZipFile(out) as z:
        report = json.loads(z.read("report.json"))
    assert report["backend"]["error"] == "no answer within 0.5 s" and "hello" not in report["backend"]


def test_the_plugin_button_adds_the_editors_part(daemon, tmp_path):
    view = EditView(Settings(address=daemon.address, autostart=False, executable=str(CLI)), QtLoop(),
                    log_dir=tmp_path / "logs")
    try:
        view.start()
        pump(lambda: view.online, 30, "connected")
        out = tmp_path / "button.zip"
        view.diagnose("Krita 5.1.5 (test)", out=out)
        pump(lambda: view.message.text.startswith("Wrote"), 120, "the zip")
        assert not view.message.error and str(out) in view.message.text
        with zipfile.ZipFile(out) as z:
            plugin = json.loads(z.read("plugin.json"))
            report = json.loads(z.read("report.json"))
        assert plugin["editor"] == "Krita 5.1.5 (test)" and plugin["settings"]["address"] == daemon.address
        assert plugin["connection"]["state"] == "connected" and "anycost-plugin.log" in plugin["logs"]
        assert "connection: connected" in plugin["logs"]["anycost-plugin.log"]
        assert report["backend"]["hello"]["state"] == "ready"

        view.settings.executable = str(tmp_path / "missing")                # no backend program: the editor's part
        alone = tmp_path / "alone.zip"
        view.diagnose("Krita", out=alone)
        assert view.message.error and "editor's part only" in view.message.text
        with zipfile.ZipFile(alone) as z:
            assert z.namelist() == ["plugin.json"]
    finally:
        view.stop()
