"""The panel's choices, remembered between Krita sessions in Krita's own settings (kritarc)."""

from __future__ import annotations

import json
from typing import Any

GROUP = "fixative"
KEY = "panel"


def _krita() -> Any:
    from krita import Krita

    return Krita.instance()


def load() -> dict:
    """The saved panel values by option name ({} when none, or unreadable)."""
    try:
        text = _krita().readSetting(GROUP, KEY, "")
        values = json.loads(text) if text else {}
    except (ImportError, AttributeError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def save(values: dict) -> None:
    """Store the panel values (JSON in one kritarc entry)."""
    try:
        _krita().writeSetting(GROUP, KEY, json.dumps(values, sort_keys=True))
    except (ImportError, AttributeError):
        pass
