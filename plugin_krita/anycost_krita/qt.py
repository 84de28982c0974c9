"""The one place that imports Qt: PyQt5 (Krita 5) or PyQt6 (Krita 6, which refuses PyQt5)."""
from __future__ import annotations

try:
    from PyQt5.QtCore import QObject, QSocketNotifier, Qt, QTimer, pyqtSignal
    from PyQt5.QtWidgets import (
        QCheckBox,
        QComboBox,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QProgressBar,
        QPushButton,
        QScrollArea,
        QSlider,
        QSpinBox,
        QToolButton,
        QVBoxLayout,
        QWidget,
    )
    QT_MAJOR = 5
except ImportError:                                   # Krita 6 (mypy reads PyQt5's names: PyQt6 types do not match)
    from PyQt6.QtCore import QObject, QSocketNotifier, Qt, QTimer, pyqtSignal  # type: ignore[assignment]
    from PyQt6.QtWidgets import (  # type: ignore[assignment]
        QCheckBox,
        QComboBox,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QProgressBar,
        QPushButton,
        QScrollArea,
        QSlider,
        QSpinBox,
        QToolButton,
        QVBoxLayout,
        QWidget,
    )
    QT_MAJOR = 6

__all__ = ["QObject", "QSocketNotifier", "QTimer", "Qt", "pyqtSignal", "QCheckBox", "QComboBox", "QFormLayout",
           "QHBoxLayout", "QLabel", "QLineEdit", "QProgressBar", "QPushButton", "QScrollArea", "QSlider", "QSpinBox",
           "QToolButton", "QVBoxLayout", "QWidget", "QT_MAJOR", "READ", "HORIZONTAL", "TAB_FOCUS", "TICKS_BELOW",
           "NO_FRAME", "SCROLL_OFF"]

# PyQt5 has the unscoped names too; its stubs list only the scoped ones (attr-defined)
READ = QSocketNotifier.Type.Read if QT_MAJOR == 6 else QSocketNotifier.Read  # type: ignore[attr-defined]
HORIZONTAL = Qt.Orientation.Horizontal if QT_MAJOR == 6 else Qt.Horizontal  # type: ignore[attr-defined]
TAB_FOCUS = Qt.FocusPolicy.TabFocus if QT_MAJOR == 6 else Qt.TabFocus  # type: ignore[attr-defined]
TICKS_BELOW = QSlider.TickPosition.TicksBelow if QT_MAJOR == 6 else QSlider.TicksBelow
NO_FRAME = QScrollArea.Shape.NoFrame if QT_MAJOR == 6 else QScrollArea.NoFrame
SCROLL_OFF = (Qt.ScrollBarPolicy.ScrollBarAlwaysOff if QT_MAJOR == 6
              else Qt.ScrollBarAlwaysOff)  # type: ignore[attr-defined]
