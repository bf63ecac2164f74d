"""Where Fixative keeps its files. ``FIXATIVE_HOME`` puts everything under one folder (tests use it).

The stdlib plugin client (plugins/common/fixative_client.py) mirrors these rules; keep them in step.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "fixative"


def _home() -> Path | None:
    value = os.environ.get("FIXATIVE_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    """Plugin config (engine command) lives here: ``plugin.json``."""
    home = _home()
    return home / "config" if home else Path(platformdirs.user_config_dir(APP, appauthor=False))


def state_dir() -> Path:
    """The engine discovery file ``engine.json`` lives here."""
    home = _home()
    return home / "state" if home else Path(platformdirs.user_state_dir(APP, appauthor=False))


def cache_dir() -> Path:
    """Downloaded model weights live in ``models/`` below this."""
    home = _home()
    return home / "cache" if home else Path(platformdirs.user_cache_dir(APP, appauthor=False))


def data_dir() -> Path:
    """The installer's engine virtual environment and manifest live here."""
    home = _home()
    return home / "data" if home else Path(platformdirs.user_data_dir(APP, appauthor=False))


def discovery_file() -> Path:
    return state_dir() / "engine.json"


def plugin_config_file() -> Path:
    return config_dir() / "plugin.json"


def model_cache_dir() -> Path:
    return cache_dir() / "models"


def identity_dir() -> Path:
    """The signing identity for C2PA content credentials (key and certificates, mode 0600)."""
    return config_dir() / "identity"


def credentials_settings_file() -> Path:
    """Creator name and contact URL written into content credentials: ``credentials.json``."""
    return config_dir() / "credentials.json"
