"""The Export Protected save dialog: a file chooser with the "not for AI training" checkbox."""

from __future__ import annotations

from typing import Any

from .qt import QtWidgets, exec_dialog

CREDENTIALS_LABEL = "Add 'not for AI training' credentials"
CREDENTIALS_TIP = ("Writes the XMP 'Data Mining: prohibited' field and signed C2PA content credentials "
                   "(AI training, generative training, data mining and inference: not allowed). They "
                   "state your reservation to crawlers that read them; the cloak protects against the "
                   "ones that do not. Manage the signer with 'fixative identity'.")
FILTERS = "PNG (*.png);;JPEG (*.jpg *.jpeg);;WebP (*.webp)"
SRGB_TEXT = ("The file is saved in sRGB, as web browsers and social sites expect: an image in another "
             "colour space (grey, CMYK, a wide-gamut or linear profile) is converted, and its own "
             "profile is not embedded.")


def make_export_dialog(parent: Any = None) -> tuple[QtWidgets.QFileDialog, QtWidgets.QCheckBox]:
    """Qt's own (non-native) save dialog, so the checkbox (on by default) and a line saying the
    file is sRGB can sit under the file list."""
    dialog = QtWidgets.QFileDialog(parent, "Export protected image", "", FILTERS)
    dialog.setAcceptMode(QtWidgets.QFileDialog.AcceptMode.AcceptSave)
    dialog.setOption(QtWidgets.QFileDialog.Option.DontUseNativeDialog, True)
    checkbox = QtWidgets.QCheckBox(CREDENTIALS_LABEL, dialog)
    checkbox.setObjectName("fixative_credentials")
    checkbox.setChecked(True)
    checkbox.setToolTip(CREDENTIALS_TIP)
    note = QtWidgets.QLabel(SRGB_TEXT, dialog)
    note.setObjectName("fixative_srgb_note")
    note.setWordWrap(True)
    layout = dialog.layout()
    for widget in (checkbox, note):
        if isinstance(layout, QtWidgets.QGridLayout):
            layout.addWidget(widget, layout.rowCount(), 0, 1, layout.columnCount())
        elif layout is not None:
            layout.addWidget(widget)
    return dialog, checkbox


def ask_export_path(parent: Any = None) -> tuple[str, bool] | None:
    """(path, add credentials) chosen by the artist, or None if cancelled."""
    dialog, checkbox = make_export_dialog(parent)
    if not exec_dialog(dialog) or not dialog.selectedFiles():
        return None
    return dialog.selectedFiles()[0], checkbox.isChecked()
