"""Registration inside Krita: the Anycost docker (Settings ▸ Dockers ▸ Anycost)."""
from __future__ import annotations

from pathlib import Path

from krita import DockWidget, DockWidgetFactory, DockWidgetFactoryBase, Krita

from .qt import QLabel

DOCKER_ID = "anycost"

try:                                    # pyzmq/msgpack may be missing from Krita's Python
    from .krita_host import KritaHost
    from .panel import AnycostPanel
    MISSING = None
except ImportError as e:
    MISSING = e.name or str(e)


class KritaSettingsStore:
    """Settings in kritarc, group [anycost]: they persist across Krita restarts."""

    def read(self, key):
        return Krita.instance().readSetting("anycost", key, "") or None

    def write(self, key, value):
        Krita.instance().writeSetting("anycost", key, value)


class AnycostDocker(DockWidget):
    def __init__(self):
        super().__init__()
        self.setWindowTitle("Anycost")
        self.setObjectName(DOCKER_ID)
        if MISSING:
            self.panel = None
            label = QLabel(f"Anycost cannot start: Krita's Python lacks the module '{MISSING}'. Run "
                           "`anycost-backend install-plugin krita` again and follow what it says.")
            label.setWordWrap(True)
            self.setWidget(label)
            return
        log_dir = Path(Krita.instance().getAppDataLocation()) / "anycost"   # the started backend's log
        self.panel = AnycostPanel(KritaSettingsStore(), KritaHost.from_active, log_dir=log_dir,
                                  editor=f"Krita {Krita.instance().version()}")
        self.setWidget(self.panel)
        Krita.instance().notifier().applicationClosing.connect(self.panel.shutdown)

    def canvasChanged(self, canvas):
        # a session stays with its own document (the panel ends it when that document closes);
        # a message about another document is stale
        if self.panel is not None:
            self.panel.view.document_changed()


Krita.instance().addDockWidgetFactory(
    DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, AnycostDocker))
