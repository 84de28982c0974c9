"""The plugin's settings, persisted by the host (Krita: `kritarc`, group [anycost])."""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Protocol

from anycost.protocol import messages as P  # the backend's own module (vendored by install-plugin)

BUDGET_CHOICES = ("auto", "50", "100", "250", "1000")   # the preview-quality menu of both plugins
BUDGET_LABELS = {"auto": "Balanced (auto, about 100 ms)", "50": "Fastest (50 ms, coarser)",
                 "100": "Fast (100 ms)", "250": "Sharper (250 ms)", "1000": "Best (up to 1 s)"}
BUDGET_TIP = ("How long each preview may take while you drag a slider: the backend draws it with the largest "
              "sub-generator that fits that time on this machine. Apply always renders at full quality.")


class SettingsStore(Protocol):
    def read(self, key: str) -> str | None: ...
    def write(self, key: str, value: str) -> None: ...


@dataclass
class Settings:
    address: str = ""                     # "" = the backend's default endpoint (this user's private socket)
    executable: str = "anycost-backend"   # started when no backend answers (a path, or a name on PATH)
    autostart: bool = True
    budget: str = "auto"                  # preview latency budget: "auto" or milliseconds
    feather: int = 16                     # px of soft edge when Apply pastes the result back
    steps: int = 100                      # projection optimization steps
    model: str = ""                       # "" = the backend's default
    align_faces: bool = True              # find and align the face (models that declare an alignment)

    def endpoint(self) -> str:
        """The address to connect to (and to start a backend on): the set one, else the default."""
        return self.address or P.default_address()

    def budget_ms(self) -> float | None:
        """The fixed budget in ms, or None for "auto"."""
        return None if self.budget == "auto" else float(self.budget)

    def budget_index(self) -> int:
        """The position of this budget in BUDGET_CHOICES (a hand-set value shows as "auto")."""
        return BUDGET_CHOICES.index(self.budget) if self.budget in BUDGET_CHOICES else 0

    def model_among(self, names: list[str], default: str) -> str:
        """The model to preselect: the saved one if the backend serves it, else the backend's default."""
        return self.model if self.model in names else default

    @classmethod
    def load(cls, store: SettingsStore) -> "Settings":
        s = cls()
        for f in fields(cls):
            raw = store.read(f.name)
            if raw is None or raw == "":
                continue
            try:
                value = (raw.lower() in ("1", "true", "yes") if f.type in (bool, "bool")
                         else int(raw) if f.type in (int, "int") else raw)
            except ValueError:
                continue                  # a hand-edited bad value: keep the default
            setattr(s, f.name, value)
        s.validate(repair=True)
        return s

    def save(self, store: SettingsStore) -> None:
        self.validate()
        for key, value in asdict(self).items():
            store.write(key, str(value).lower() if isinstance(value, bool) else str(value))

    def validate(self, repair: bool = False) -> None:
        """Raise ValueError for a value the plugin cannot use (or, with `repair`, restore its default)."""
        problems = []
        if self.budget != "auto":
            try:
                if not 5 <= float(self.budget) <= 10000:
                    problems.append(("budget", "the preview budget must be 'auto' or 5..10000 ms"))
            except ValueError:
                problems.append(("budget", f"the preview budget must be 'auto' or a number, not {self.budget!r}"))
        if not 0 <= self.feather <= 512:
            problems.append(("feather", "the feather must be 0..512 px"))
        if not 0 <= self.steps <= 2000:
            problems.append(("steps", "projection steps must be 0..2000"))
        if self.address and not self.address.startswith(("tcp://", "ipc://")):
            problems.append(("address", f"the backend address must start with tcp:// or ipc://, not {self.address!r}"))
        for name, message in problems:
            if not repair:
                raise ValueError(message)
            setattr(self, name, getattr(type(self)(), name))


class MemoryStore:
    """A store in a dict (tests, and hosts without settings)."""

    def __init__(self, values: dict | None = None):
        self.values = dict(values or {})

    def read(self, key):
        return self.values.get(key)

    def write(self, key, value):
        self.values[key] = value


class JsonFileStore:
    """Settings in a JSON file (the GIMP plug-in's `settings.json`, which install-plugin fills in);
    a missing or unreadable file reads as empty, a write replaces the file whole."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        self.values = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}

    def read(self, key):
        return self.values.get(key)

    def write(self, key, value):
        if self.values.get(key) == value:
            return
        self.values[key] = value
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.values, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)


def budget_label(choice: str) -> str:
    """The preview-quality menu's entry for a choice (speed against quality, with its time)."""
    return BUDGET_LABELS.get(choice, f"{choice} ms")
