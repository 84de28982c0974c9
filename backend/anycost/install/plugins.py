"""Copy an editor plugin where the editor looks for it, enable it, and make sure the editor's own
Python can import what the plugin needs (pyzmq, msgpack). Used by `anycost-backend install-plugin`."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from anycost.core.errors import AnycostError

KRITA_PLUGIN = "anycost_krita"
KRITA_DESKTOP = """[Desktop Entry]
Type=Service
ServiceTypes=Krita/PythonPlugin
X-KDE-Library=anycost_krita
X-Python-2-Compatible=false
X-Krita-Manual=README.md
Name=Anycost Editor
Comment=GAN photo editing: project a portrait, drag attribute sliders, apply as a new layer
"""
NEEDED = ("zmq", "msgpack")               # module names the plugin imports besides Qt
WHEELS = ("pyzmq", "msgpack")
SETTINGS_GROUP = "anycost"                # kritarc [anycost]; the GIMP plug-in's settings.json
GIMP_SETTINGS = "settings.json"           # in the GIMP plug-in's folder, kept across installs


@dataclass
class Report:
    installed_to: Path
    lines: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


def default_pykrita_dir() -> Path:
    """Krita's user resource folder + pykrita (Settings ▸ Manage Resources ▸ Open Resource Folder)."""
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "krita" / "pykrita"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "krita" / "pykrita"
    data = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data) / "krita" / "pykrita"


def default_kritarc() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local")) / "kritarc"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Preferences" / "kritarc"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "kritarc"


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise AnycostError(f"the package '{name}' is not installed with anycost-editor")
    return Path(list(spec.submodule_search_locations)[0])


def write_vendor(vendor: Path) -> None:
    """What a plugin imports besides its editor's API: a minimal `anycost` package (the backend's
    own `protocol` package, which needs only pyzmq and msgpack) and `anycost_plugin`.
    Wheels unpacked by an earlier install are kept."""
    vendor.mkdir(parents=True, exist_ok=True)
    anycost = vendor / "anycost"
    if anycost.exists():
        shutil.rmtree(anycost)
    anycost.mkdir()
    here = package_dir("anycost")
    shutil.copy2(here / "__init__.py", anycost / "__init__.py")
    shutil.copytree(here / "protocol", anycost / "protocol", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shared = vendor / "anycost_plugin"
    if shared.exists():
        shutil.rmtree(shared)
    shutil.copytree(package_dir("anycost_plugin"), shared, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def find_backend_program() -> Path | None:
    """The anycost-backend program of this installation (the one running now, or the script beside
    this Python), recorded in the plugins' settings: an editor started from the desktop does not
    have a virtualenv on its PATH."""
    name = "anycost-backend.exe" if sys.platform == "win32" else "anycost-backend"
    here = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    candidates = [here] if here is not None and here.name.startswith("anycost-backend") else []
    candidates.append(Path(sys.executable).with_name(name))
    found = shutil.which("anycost-backend")
    candidates += [Path(found)] if found else []
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return c.absolute()                 # not resolved: a venv's bin/ is the point
    return None


def plugin_settings() -> dict[str, str]:
    """What an editor plugin needs to start this backend with no typing: its executable, autostart."""
    exe = find_backend_program()
    return {"executable": exe.as_posix(), "autostart": "true"} if exe is not None else {}


def clear_keeping_vendor(dest: Path) -> None:
    """Empty an installed plug-in folder except its `vendor/` and settings: wheels unpacked by an
    earlier install stay (re-downloading them may be impossible offline), so do the user's settings."""
    if dest.exists():
        for item in dest.iterdir():
            if item.name not in ("vendor", GIMP_SETTINGS):
                shutil.rmtree(item) if item.is_dir() else item.unlink()
    dest.mkdir(parents=True, exist_ok=True)


def set_in_kritarc(kritarc: Path, group: str, values: dict[str, str]) -> None:
    """Set `key=value` pairs in `[group]` of kritarc, adding the group or keys where missing.
    Edited line by line: kritarc is Qt's INI dialect, which configparser would rewrite."""
    lines = kritarc.read_text(encoding="utf-8").splitlines() if kritarc.exists() else []
    out: list[str] = []
    todo, inside, seen = dict(values), False, False
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            if inside:
                out += [f"{k}={v}" for k, v in todo.items()]
                todo = {}
            inside = stripped == f"[{group}]"
            seen = seen or inside
        elif inside and stripped.split("=", 1)[0].strip() in todo:
            key = stripped.split("=", 1)[0].strip()
            line = f"{key}={todo.pop(key)}"
        out.append(line)
    if inside:
        out += [f"{k}={v}" for k, v in todo.items()]
        todo = {}
    if todo:
        out += ([""] if out and out[-1].strip() else []) + [f"[{group}]"] + [f"{k}={v}" for k, v in todo.items()]
    kritarc.parent.mkdir(parents=True, exist_ok=True)
    kritarc.write_text("\n".join(out) + "\n", encoding="utf-8")


def enable_in_kritarc(kritarc: Path, name: str = KRITA_PLUGIN) -> None:
    """Set `[python] enable_<name>=true` (what the Python Plugin Manager's checkbox writes)."""
    set_in_kritarc(kritarc, "python", {f"enable_{name}": "true"})


def _run_python(python: str, imports: tuple[str, ...] = ()) -> tuple[bool, str]:
    """Run `python`, importing `imports`: (worked, its X.Y version, or the last line of the error)."""
    code = "".join(f"import {m}; " for m in imports) + "import sys; print('%d.%d' % sys.version_info[:2])"
    try:
        r = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError as e:
        return False, str(e)
    if r.returncode == 0:
        return True, r.stdout.strip()
    return False, (r.stderr.strip().splitlines() or ["failed"])[-1]


def distro_krita_python() -> str | None:
    """A Linux distribution's Krita runs plugins in the system python3."""
    if sys.platform.startswith("linux") and shutil.which("krita") and Path("/usr/bin/python3").exists():
        if any(Path("/usr/lib").glob("*/krita-python-libs")) or Path("/usr/lib/krita-python-libs").exists():
            return "/usr/bin/python3"
    return None


def vendor_wheels(vendor: Path, python_version: str, platform_tags: list[str]) -> None:
    """Download pyzmq and msgpack wheels for that Python and unpack them into `vendor`."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python_version, "--implementation", "cp", "-d", tmp, *WHEELS]
        for tag in platform_tags:
            cmd += ["--platform", tag]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        if r.returncode != 0:
            raise AnycostError("could not download pyzmq and msgpack wheels for Python "
                               f"{python_version}: {(r.stderr.strip().splitlines() or ['pip failed'])[-1]}")
        for wheel in Path(tmp).glob("*.whl"):
            with zipfile.ZipFile(wheel) as z:
                z.extractall(vendor)


def platform_tags() -> list[str]:
    """Wheel platforms for this operating system (the editor runs on the same machine)."""
    if sys.platform == "win32":
        return ["win_amd64"]
    if sys.platform == "darwin":
        return ["macosx_10_9_universal2", "macosx_10_15_universal2", "macosx_11_0_arm64", "macosx_10_9_x86_64"]
    return [f"manylinux_2_{n}_x86_64" for n in (28, 27, 26, 17)] + ["manylinux2014_x86_64"]


def install_krita(pykrita_dir: Path | None = None, kritarc: Path | None = None, krita_python: str | None = None,
                  krita_python_version: str | None = None, enable: bool = True) -> Report:
    pykrita = (pykrita_dir or default_pykrita_dir()).expanduser()
    if pykrita.name != "pykrita":
        raise AnycostError(f"Krita loads Python plugins only from a folder named 'pykrita', not {pykrita}")
    src = package_dir(KRITA_PLUGIN)
    dest = pykrita / KRITA_PLUGIN
    report = Report(dest)
    clear_keeping_vendor(dest)
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "vendor"), dirs_exist_ok=True)
    vendor = dest / "vendor"
    write_vendor(vendor)
    (pykrita / f"{KRITA_PLUGIN}.desktop").write_text(KRITA_DESKTOP, encoding="utf-8")
    report.say(f"copied the plugin to {dest}")
    if enable:
        rc = (kritarc or default_kritarc()).expanduser()
        enable_in_kritarc(rc)
        report.say(f"enabled it in {rc} ([python] enable_{KRITA_PLUGIN}=true)")
        _record_backend(report, lambda values: set_in_kritarc(rc, SETTINGS_GROUP, values), f"{rc} [anycost]")
    _check_dependencies(report, vendor, krita_python or (None if krita_python_version else distro_krita_python()),
                        krita_python_version)
    report.say("restart Krita, then open Settings ▸ Dockers ▸ Anycost")
    return report


def update_json(path: Path, values: dict[str, str]) -> None:
    """Merge `values` into a JSON object file (the user's other settings stay)."""
    try:
        current = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        current = {}
    current = current if isinstance(current, dict) else {}
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({**current, **values}, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(path)


def _record_backend(report: Report, write, where: str) -> None:
    values = plugin_settings()
    if not values:
        report.say("could not find the anycost-backend program to record: set it in the plugin's settings "
                   "(Executable), or put it on the editor's PATH")
        return
    write(values)
    report.say(f"recorded the backend {values['executable']} in {where}: the plugin starts it when none answers")


def _check_dependencies(report: Report, vendor: Path, python: str | None, version: str | None,
                        editor: str = "Krita", hint: str = "--krita-python-version 3.10 (Krita 5.2) or 3.13 (Krita 5.3)"
                        ) -> None:
    if python:
        ok, detail = _run_python(python, NEEDED)
        if ok:
            report.say(f"{editor}'s Python ({python}, {detail}) imports pyzmq and msgpack")
            return
        runs, own_version = _run_python(python)
        version = own_version if runs else version
        report.say(f"{editor}'s Python ({python}) cannot import them yet ({detail})")
    if not version:
        report.say(f"{editor}'s Python version is unknown: if the plug-in says pyzmq is missing, run again with "
                   + hint)
        return
    if (vendor / "zmq").is_dir() and (vendor / "msgpack").is_dir():
        report.say(f"pyzmq and msgpack are already unpacked in {vendor}")
        return
    try:
        vendor_wheels(vendor, version, platform_tags())
    except AnycostError as e:
        distro = ("apt install python3-zmq python3-msgpack (Debian/Ubuntu), dnf install python3-zmq "
                  "python3-msgpack (Fedora), or " if python == "/usr/bin/python3" else "")
        raise AnycostError(f"{e}. Install them for {editor}'s Python {version}: {distro}"
                           f"pip install --target {vendor} pyzmq msgpack with a Python {version}") from None
    report.say(f"unpacked pyzmq and msgpack wheels for Python {version} into {vendor}")


# ------------------------------------------------------------------------------------------ GIMP

GIMP_PLUGIN = "anycost-edit"          # GIMP 3 runs plug-ins/<name>/<name>.py, which must be executable


def default_gimp_plug_ins_dir() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming")) / "GIMP" / "3.0" / "plug-ins"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "GIMP" / "3.0" / "plug-ins"
    config = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config) / "GIMP" / "3.0" / "plug-ins"


def distro_gimp_python() -> str | None:
    """A Linux distribution's GIMP 3 runs Python plug-ins with the system python3."""
    if sys.platform.startswith("linux") and (shutil.which("gimp-3.0") or shutil.which("gimp-console-3.0")) \
            and Path("/usr/bin/python3").exists():
        return "/usr/bin/python3"
    return None


def install_gimp(plug_ins_dir: Path | None = None, gimp_python: str | None = None,
                 gimp_python_version: str | None = None) -> Report:
    root = (plug_ins_dir or default_gimp_plug_ins_dir()).expanduser()
    dest = root / GIMP_PLUGIN
    report = Report(dest)
    source = package_dir("anycost_gimp")
    script = source / f"{GIMP_PLUGIN}.py"
    clear_keeping_vendor(dest)
    for module in source.glob("*.py"):       # the plug-in and its GIMP-side modules
        if module.name != "__init__.py":
            shutil.copy2(module, dest / module.name)
    (dest / script.name).chmod(0o755)
    write_vendor(dest / "vendor")
    report.say(f"installed {dest / script.name} (executable)")
    _record_backend(report, lambda values: update_json(dest / GIMP_SETTINGS, values), str(dest / GIMP_SETTINGS))
    _check_dependencies(report, dest / "vendor", gimp_python or (None if gimp_python_version else distro_gimp_python()),
                        gimp_python_version, editor="GIMP",
                        hint="--gimp-python-version 3.12 (or the version GIMP's Python reports)")
    report.say("restart GIMP: Filters ▸ Generative ▸ Anycost Edit…")
    return report
