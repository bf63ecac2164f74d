"""The one place that imports Qt: PyQt6 (Krita 6) or PyQt5 (Krita 5).

A Qt5 Krita must never load PyQt6 (two Qt versions in one process crash), so a binding that is
already imported wins; only a fresh interpreter tries PyQt6 first. Code elsewhere uses scoped
enum names (``Qt.AlignmentFlag.AlignLeft``), which both bindings accept.
"""

from __future__ import annotations

import os
import sys


def _choose_binding() -> str:
    forced = os.environ.get("FIXATIVE_QT_API", "").strip().lower()
    if forced in ("pyqt5", "pyqt6"):
        return forced
    if "PyQt5.QtCore" in sys.modules:
        return "pyqt5"
    if "PyQt6.QtCore" in sys.modules:
        return "pyqt6"
    try:
        import PyQt6.QtCore  # noqa: F401
    except ImportError:
        return "pyqt5"
    return "pyqt6"


QT_API = _choose_binding()

if QT_API == "pyqt6":
    from PyQt6 import QtCore, QtGui, QtWidgets
    from PyQt6.QtCore import QByteArray, QObject, Qt, QTimer
    from PyQt6.QtGui import QImage, QPixmap
    from PyQt6.QtWidgets import QApplication

    QT_MAJOR = 6
else:
    from PyQt5 import QtCore, QtGui, QtWidgets  # type: ignore[no-redef]
    from PyQt5.QtCore import QByteArray, QObject, Qt, QTimer  # type: ignore[no-redef]
    from PyQt5.QtGui import QImage, QPixmap  # type: ignore[no-redef]
    from PyQt5.QtWidgets import QApplication  # type: ignore[no-redef]

    QT_MAJOR = 5


def exec_dialog(dialog: QtWidgets.QDialog) -> int:
    """``exec()`` in Qt6, ``exec_()`` in PyQt5."""
    runner = getattr(dialog, "exec", None) or dialog.exec_
    return runner()


def process_events() -> None:
    """Let Qt handle pending events (timers, repaints) while a script waits."""
    app = QApplication.instance() or QtCore.QCoreApplication.instance()
    if app is not None:
        app.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 50)


__all__ = ["QT_API", "QT_MAJOR", "QtCore", "QtGui", "QtWidgets", "QByteArray", "QObject", "Qt",
           "QTimer", "QImage", "QPixmap", "QApplication", "exec_dialog", "process_events"]
