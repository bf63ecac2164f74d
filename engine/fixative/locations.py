# -*- coding: utf-8 -*-
# Python 2.7 syntax on purpose: GIMP 2.10 runs the plug-ins, and this file with them, on 2.7
# (pyproject.toml turns ruff's pyupgrade rules off for this file).
"""Where Fixative and the editors keep their files, on Linux (native and Flatpak), macOS and Windows.

The one copy of these rules. The engine imports it as ``fixative.locations`` (paths.py wraps it in
pathlib), the installer loads it from the checkout, and the installer copies it beside the plug-in
client as ``fixative_locations.py``, so the plug-ins, the engine and the installer can never
disagree about where ``engine.json`` or ``plugin.json`` is. Hence: standard library only, Python
2.7 and 3.6+, strings rather than pathlib.

    locations.state_dir()                        # this process: os.environ, this OS, ~
    Locations("windows", home, environ).gimp_config_roots()   # any OS, for the installer

``FIXATIVE_HOME`` puts Fixative's own folders under one folder (tests, portable setups). The
defaults match platformdirs' ``user_*_dir(appname, appauthor=False)`` on Linux and Windows and
without XDG variables on macOS (macOS ignores XDG_* here, as the editors do).
"""

from __future__ import absolute_import, division, print_function, unicode_literals

import os
import sys

APP = "fixative"
PLATFORMS = ("linux", "macos", "windows")
GIMP_FLATPAK_ID = "org.gimp.GIMP"
KRITA_FLATPAK_ID = "org.kde.krita"


def host_platform():
    """'linux', 'macos' or 'windows' for the machine this runs on (other Unixes count as linux)."""
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


class Locations(object):
    """Every folder Fixative and the editors use, for one OS, home folder and environment.

    ``platform``: one of PLATFORMS (default: this machine's). ``home``: the user's home folder
    (default ``~``). ``environ``: where XDG_*, APPDATA, LOCALAPPDATA and FIXATIVE_HOME are read
    (default ``os.environ``); pass ``{}`` for "a user with default settings".
    """

    def __init__(self, platform=None, home=None, environ=None):
        self.platform = platform or host_platform()
        if self.platform not in PLATFORMS:
            raise ValueError("unknown platform %r (choose from %s)"
                             % (self.platform, ", ".join(PLATFORMS)))
        self.home = home or os.path.expanduser("~")
        self.environ = os.environ if environ is None else environ

    def _variable(self, name, default):
        """An environment folder such as XDG_CONFIG_HOME, or ``default`` when unset or blank."""
        value = (self.environ.get(name) or "").strip()
        return value or default

    def _home_path(self, *parts):
        return os.path.join(self.home, *parts)

    # -- Base folders --------------------------------------------------------------------------
    def xdg_config_home(self):
        return self._variable("XDG_CONFIG_HOME", self._home_path(".config"))

    def xdg_data_home(self):
        return self._variable("XDG_DATA_HOME", self._home_path(".local", "share"))

    def appdata(self):
        """Windows' roaming folder (%APPDATA%): GIMP and Krita keep their user folders there."""
        return self._variable("APPDATA", self._home_path("AppData", "Roaming"))

    def localappdata(self):
        """Windows' local folder (%LOCALAPPDATA%): Fixative's folders and kritarc live there."""
        return self._variable("LOCALAPPDATA", self._home_path("AppData", "Local"))

    def mac_app_support(self):
        return self._home_path("Library", "Application Support")

    # -- Fixative's own folders ------------------------------------------------------------------
    def fixative_home(self):
        """$FIXATIVE_HOME (expanded), or None when unset."""
        value = (self.environ.get("FIXATIVE_HOME") or "").strip()
        return os.path.expanduser(value) if value else None

    def _fixative_dir(self, sub, xdg_variable, xdg_default):
        override = self.fixative_home()
        if override:
            return os.path.join(override, sub)
        if self.platform == "windows":
            base = os.path.join(self.localappdata(), APP)
            return os.path.join(base, "Cache") if sub == "cache" else base
        if self.platform == "macos":
            if sub == "cache":
                return self._home_path("Library", "Caches", APP)
            return os.path.join(self.mac_app_support(), APP)
        return os.path.join(self._variable(xdg_variable, self._home_path(*xdg_default)), APP)

    def config_dir(self):
        """plugin.json (the command that starts the engine) lives here."""
        return self._fixative_dir("config", "XDG_CONFIG_HOME", (".config",))

    def state_dir(self):
        """The engine's discovery file engine.json (and its lock) live here."""
        return self._fixative_dir("state", "XDG_STATE_HOME", (".local", "state"))

    def data_dir(self):
        """The installer's engine virtual environment and manifest live here."""
        return self._fixative_dir("data", "XDG_DATA_HOME", (".local", "share"))

    def cache_dir(self):
        """Downloaded model weights live below this (models/)."""
        return self._fixative_dir("cache", "XDG_CACHE_HOME", (".cache",))

    def discovery_file(self):
        return os.path.join(self.state_dir(), "engine.json")

    def plugin_config_file(self):
        return os.path.join(self.config_dir(), "plugin.json")

    # -- Editors ---------------------------------------------------------------------------------
    def flatpak_app_dir(self, app_id):
        """A Flatpak app's private folder ~/.var/app/<id> (Linux only)."""
        return self._home_path(".var", "app", app_id)

    def flatpak_plugin_config_file(self, app_id):
        """plugin.json as a plug-in inside that Flatpak sandbox sees it (its XDG_CONFIG_HOME)."""
        return os.path.join(self.flatpak_app_dir(app_id), "config", APP, "plugin.json")

    def gimp_config_roots(self):
        """[(variant, folder)] where GIMP keeps one X.Y folder per version (2.10, 3.0, 3.2...),
        native first. GIMP creates X.Y itself on its first run (copying an older version's
        settings): nobody else should."""
        if self.platform == "windows":
            return [("windows", os.path.join(self.appdata(), "GIMP"))]
        if self.platform == "macos":
            return [("macos", os.path.join(self.mac_app_support(), "GIMP"))]
        flatpak = os.path.join(self.flatpak_app_dir(GIMP_FLATPAK_ID), "config", "GIMP")
        return [("native", os.path.join(self.xdg_config_home(), "GIMP")), ("flatpak", flatpak)]

    def krita_locations(self):
        """[(variant, resource folder holding pykrita/ and actions/, kritarc)], native first."""
        if self.platform == "windows":
            return [("windows", os.path.join(self.appdata(), "krita"),
                     os.path.join(self.localappdata(), "kritarc"))]
        if self.platform == "macos":
            return [("macos", os.path.join(self.mac_app_support(), "krita"),
                     self._home_path("Library", "Preferences", "kritarc"))]
        flatpak = self.flatpak_app_dir(KRITA_FLATPAK_ID)
        return [("native", os.path.join(self.xdg_data_home(), "krita"),
                 os.path.join(self.xdg_config_home(), "kritarc")),
                ("flatpak", os.path.join(flatpak, "data", "krita"),
                 os.path.join(flatpak, "config", "kritarc"))]


# Shortcuts for this process (read os.environ on every call, so tests can change it).


def config_dir():
    return Locations().config_dir()


def state_dir():
    return Locations().state_dir()


def data_dir():
    return Locations().data_dir()


def cache_dir():
    return Locations().cache_dir()


def discovery_file():
    return Locations().discovery_file()


def plugin_config_file():
    return Locations().plugin_config_file()
