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
        QSlider,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )
    QT_MAJOR = 5
except ImportError:                                   # Krita 6 (mypy reads PyQt5's names: no-redef)
    from PyQt6.QtCore import QObject, QSocketNotifier, Qt, QTimer, pyqtSignal  # type: ignore[no-redef]
    from PyQt6.QtWidgets import (  # type: ignore[no-redef]
        QCheckBox,
        QComboBox,
        QFormLayout,
        QHBoxLayout,
        QLabel,
        QLineEdit,
        QProgressBar,
        QPushButton,
        QSlider,
        QSpinBox,
        QVBoxLayout,
        QWidget,
    )
    QT_MAJOR = 6

__all__ = ["QObject", "QSocketNotifier", "QTimer", "Qt", "pyqtSignal", "QCheckBox", "QComboBox", "QFormLayout",
           "QHBoxLayout", "QLabel", "QLineEdit", "QProgressBar", "QPushButton", "QSlider", "QSpinBox",
           "QVBoxLayout", "QWidget", "QT_MAJOR", "READ", "HORIZONTAL"]

# PyQt5 has the unscoped names too; its stubs list only the scoped ones (attr-defined)
READ = QSocketNotifier.Type.Read if QT_MAJOR == 6 else QSocketNotifier.Read  # type: ignore[attr-defined]
HORIZONTAL = Qt.Orientation.Horizontal if QT_MAJOR == 6 else Qt.Horizontal  # type: ignore[attr-defined]
