"""Where Fixative keeps its files, as Paths. ``FIXATIVE_HOME`` puts everything under one folder.

The rules themselves live in ``fixative/locations.py``, the one file the plug-in client and the
installer use too (the installer copies it beside the client), so all three always agree.
"""

from __future__ import annotations

from pathlib import Path

from fixative import locations

APP = locations.APP


def config_dir() -> Path:
    """Plugin config (engine command) lives here: ``plugin.json``."""
    return Path(locations.config_dir())


def state_dir() -> Path:
    """The engine discovery file ``engine.json`` lives here."""
    return Path(locations.state_dir())


def cache_dir() -> Path:
    """Downloaded model weights live in ``models/`` below this."""
    return Path(locations.cache_dir())


def data_dir() -> Path:
    """The installer's engine virtual environment and manifest live here."""
    return Path(locations.data_dir())


def discovery_file() -> Path:
    return Path(locations.discovery_file())


def plugin_config_file() -> Path:
    return Path(locations.plugin_config_file())


def model_cache_dir() -> Path:
    return cache_dir() / "models"


def identity_dir() -> Path:
    """The signing identity for C2PA content credentials (key and certificates, mode 0600)."""
    return config_dir() / "identity"


def credentials_settings_file() -> Path:
    """Creator name and contact URL written into content credentials: ``credentials.json``."""
    return config_dir() / "credentials.json"
