"""One zip for a support request: the backend's and the plugins' logs, versions, what a running
backend says (`hello`, models, stats), the preview calibration and the plugins' settings, with the
user's home folder and name written as `~` and `<user>` (`anycost-backend diagnose`, and the
Diagnostics button of both plugins, which adds the editor's own part with `--plugin-info`)."""
from __future__ import annotations

import getpass
import importlib.metadata
import json
import os
import platform
import re
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from anycost.core.paths import config_dir, models_dir, state_dir
from anycost.protocol import messages as P

from .plugins import GIMP_PLUGIN, GIMP_SETTINGS, SETTINGS_GROUP, default_gimp_plug_ins_dir, default_kritarc

LOG_TAIL_BYTES = 2 << 20                 # of each log: the end is what a report needs
PACKAGES = ("anycost-editor", "torch", "torchvision", "numpy", "pyzmq", "msgpack", "lpips", "mediapipe",
            "platformdirs", "pillow")


class Redactor:
    """Writes the user's home folder as `~` and their login name as `<user>` wherever they appear."""

    def __init__(self, home: Path | None = None, user: str | None = None):
        home_text = str(home or Path.home())
        try:
            user = user or getpass.getuser()
        except (KeyError, OSError):
            user = None
        self.pairs = [(home_text, "~")] if len(home_text) > 1 else []
        self.user = re.compile(rf"(?<![A-Za-z0-9]){re.escape(user)}(?![A-Za-z0-9])") if user and len(user) > 2 else None

    def __call__(self, text: str) -> str:
        for old, new in self.pairs:
            text = text.replace(old, new)
        return self.user.sub("<user>", text) if self.user else text


def plugin_log_paths() -> dict[str, Path]:
    """Where the plugins write the log of a backend they started (see each plugin's log_dir)."""
    if sys.platform == "win32":
        appdata = Path(os.environ.get("APPDATA", Path.home() / "AppData" / "Roaming"))
        krita, cache = appdata / "krita", Path(os.environ.get("LOCALAPPDATA", appdata))
    elif sys.platform == "darwin":
        krita, cache = Path.home() / "Library" / "Application Support" / "krita", Path.home() / "Library" / "Caches"
    else:
        krita = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "krita"
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return {"krita-started-backend.log": krita / "anycost" / "anycost-backend.log",
            "gimp-started-backend.log": cache / "anycost" / "anycost-backend.log",
            "other-started-backend.log": Path(tempfile.gettempdir()) / "anycost-backend.log"}


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0], "platform": platform.platform(), "machine": platform.machine(),
           "cpus": str(os.cpu_count())}
    for name in PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def ask_backend(address: str, timeout_s: float) -> dict:
    """What the backend at `address` says (or why it says nothing)."""
    from anycost.protocol.client import BackendTimeout, Client
    out: dict = {"address": address}
    try:
        with Client(address) as c:
            for op in ("hello", "models", "stats"):
                out[op] = c.call(op, timeout=timeout_s)
    except BackendTimeout:
        out["error"] = f"no answer within {timeout_s:g} s"
    except (P.BackendError, P.EndpointError, OSError) as e:
        out["error"] = f"{type(e).__name__}: {e}"
    return out


def kritarc_group(path: Path, group: str = SETTINGS_GROUP) -> str | None:
    """Only the plugin's `[group]` of kritarc (the rest is the user's business)."""
    if not path.is_file():
        return None
    lines, inside = [], False
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            inside = stripped == f"[{group}]"
            if inside:
                lines.append(line)
            continue
        if inside or (stripped.startswith("enable_anycost") and "=" in stripped):
            lines.append(line)
    return "\n".join(lines) + "\n"


def tail(path: Path, limit: int = LOG_TAIL_BYTES) -> str:
    with path.open("rb") as f:
        f.seek(max(0, path.stat().st_size - limit))
        return f.read().decode("utf-8", errors="replace")


def write_report(out: Path, address: str | None = None, plugin_info: dict | None = None,
                 timeout_s: float = 3.0, redact: Redactor | None = None) -> list[str]:
    """Write the zip to `out`; returns the names of its entries."""
    redact = redact or Redactor()
    address = address or P.default_address()
    report = {"written": time.strftime("%Y-%m-%d %H:%M:%S %z"), "versions": versions(),
              "environment": {k: v for k, v in os.environ.items() if k.startswith("ANYCOST_")},
              "folders": {"state": str(state_dir()), "config": str(config_dir()), "models": str(models_dir())},
              "backend": ask_backend(address, timeout_s)}
    models = models_dir()
    report["model_files"] = sorted(p.name for p in models.iterdir()) if models.is_dir() else []
    files: dict[str, str] = {}
    logs = state_dir() / "logs"
    for log in sorted(logs.glob("backend.log*")) if logs.is_dir() else []:
        files[f"logs/{log.name}"] = tail(log)
    for name, path in plugin_log_paths().items():
        if path.is_file():
            files[f"logs/{name}"] = tail(path)
    calibration = state_dir() / "calibration"
    for f in sorted(calibration.glob("*.json")) if calibration.is_dir() else []:
        files[f"calibration/{f.name}"] = f.read_text(encoding="utf-8", errors="replace")
    krita = kritarc_group(default_kritarc())
    if krita is not None:
        files["settings/kritarc-anycost.ini"] = krita
    gimp = default_gimp_plug_ins_dir() / GIMP_PLUGIN / GIMP_SETTINGS
    if gimp.is_file():
        files["settings/gimp-settings.json"] = gimp.read_text(encoding="utf-8", errors="replace")
    if plugin_info is not None:
        files["plugin.json"] = json.dumps(plugin_info, indent=1, sort_keys=True, default=str)
    files["report.json"] = json.dumps(report, indent=1, sort_keys=True, default=str)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, redact(text))
    tmp.replace(out)
    return list(files)


def default_report_path() -> Path:
    return Path.home() / f"anycost-diagnostics-{time.strftime('%Y%m%d-%H%M%S')}.zip"
