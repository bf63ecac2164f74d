"""The folder rules in one file (engine/fixative/locations.py): the engine, the plug-in client (in
the checkout and as installed, on Python 3 and 2.7) and the installer must find the same folders."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import platformdirs.macos
import platformdirs.unix
import platformdirs.windows
import pytest

from fixative import locations, paths
from tests.conftest import REPO
from tests.helpers.install import run_installer
from tests.test_gimp2 import find_python27

RULES = REPO / "engine" / "fixative" / "locations.py"
FOLDER_VARIABLES = ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME",
                    "FIXATIVE_HOME", "APPDATA", "LOCALAPPDATA")
# What a plug-in prints: its client's idea of the folders, one JSON line.
CLIENT_PROBE = ("import json, sys; sys.path.insert(0, sys.argv[1]); import fixative_client as c; "
                "print(json.dumps([c.state_dir(), c.config_dir(), c.discovery_file(), "
                "c.plugin_config_file(), c._locations.__file__]))")


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


PYTHON27 = find_python27()  # before the tests change HOME


@pytest.fixture
def bare_env(tmp_path, monkeypatch):
    """A home folder of our own and none of the folder variables set."""
    home = tmp_path / "home"
    home.mkdir()
    for name in FOLDER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    return monkeypatch, home


ENVIRONMENTS = {
    "defaults": {},
    "xdg": {"XDG_STATE_HOME": "xs", "XDG_CONFIG_HOME": "xc", "XDG_DATA_HOME": "xd",
            "XDG_CACHE_HOME": "xk"},
    "blank-xdg": {"XDG_STATE_HOME": "  ", "XDG_CONFIG_HOME": ""},
    "fixative-home": {"FIXATIVE_HOME": "fx", "XDG_STATE_HOME": "xs"},
}


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_engine_client_and_installer_agree(name, tmp_path, bare_env):
    monkeypatch, home = bare_env
    for variable, value in ENVIRONMENTS[name].items():
        monkeypatch.setenv(variable, str(tmp_path / value) if value.strip() else value)
    client = load(REPO / "plugins" / "common" / "fixative_client.py", "client_under_test")
    installer = load(REPO / "installer" / "install.py", "installer_under_test")
    from installer.editors import Layout

    layout = Layout()
    assert client.state_dir() == str(paths.state_dir()) == str(layout.state_dir)
    assert client.config_dir() == str(paths.config_dir()) == str(layout.config_dir)
    assert client.discovery_file() == str(paths.discovery_file()) == str(layout.discovery_file)
    assert client.plugin_config_file() == str(paths.plugin_config_file())
    assert str(paths.data_dir()) == str(layout.data_dir)
    expected_state = {"defaults": home / ".local/state/fixative", "xdg": tmp_path / "xs/fixative",
                      "blank-xdg": home / ".local/state/fixative",
                      "fixative-home": tmp_path / "fx/state"}[name]
    assert paths.state_dir() == expected_state
    assert installer.Reporter is not None  # the entry script still exports its public names


@pytest.mark.parametrize("name", sorted(ENVIRONMENTS))
def test_linux_folders_did_not_move_from_platformdirs(name, tmp_path, bare_env):
    """The engine used platformdirs before the rules were shared: existing users keep their
    folders (model cache, engine.json)."""
    monkeypatch, _ = bare_env
    for variable, value in ENVIRONMENTS[name].items():
        if variable != "FIXATIVE_HOME":
            monkeypatch.setenv(variable, str(tmp_path / value) if value.strip() else value)
    rules = locations.Locations("linux")
    dirs = platformdirs.unix.Unix(locations.APP, appauthor=False)
    assert rules.config_dir() == dirs.user_config_dir
    assert rules.state_dir() == dirs.user_state_dir
    assert rules.data_dir() == dirs.user_data_dir
    assert rules.cache_dir() == dirs.user_cache_dir


def test_macos_and_windows_folders_match_platformdirs(tmp_path, bare_env, monkeypatch):
    _, home = bare_env
    mac = locations.Locations("macos")
    dirs = platformdirs.macos.MacOS(locations.APP, appauthor=False)
    assert (mac.config_dir(), mac.state_dir(), mac.data_dir(), mac.cache_dir()) == (
        dirs.user_config_dir, dirs.user_state_dir, dirs.user_data_dir, dirs.user_cache_dir)
    assert mac.state_dir() == str(home / "Library/Application Support/fixative")

    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "Local"))
    monkeypatch.setattr(platformdirs.windows, "get_win_folder",
                        platformdirs.windows.get_win_folder_from_env_vars)
    windows = locations.Locations("windows")
    dirs = platformdirs.windows.Windows(locations.APP, appauthor=False)
    assert (windows.config_dir(), windows.state_dir(), windows.data_dir(),
            windows.cache_dir()) == (dirs.user_config_dir, dirs.user_state_dir,
                                     dirs.user_data_dir, dirs.user_cache_dir)


def test_editor_folders_per_platform(tmp_path):
    home = str(tmp_path)
    linux = locations.Locations("linux", home, {"XDG_CONFIG_HOME": "/cfg"})
    assert linux.gimp_config_roots() == [
        ("native", "/cfg/GIMP"), ("flatpak", home + "/.var/app/org.gimp.GIMP/config/GIMP")]
    assert linux.krita_locations()[0] == ("native", home + "/.local/share/krita", "/cfg/kritarc")
    windows = locations.Locations("windows", home, {"APPDATA": "/R", "LOCALAPPDATA": "/L"})
    assert windows.gimp_config_roots() == [("windows", "/R/GIMP")]
    assert windows.krita_locations() == [("windows", "/R/krita", "/L/kritarc")]
    assert windows.discovery_file() == "/L/fixative/engine.json"
    with pytest.raises(ValueError, match="unknown platform"):
        locations.Locations("beos")


def test_installed_plugins_carry_the_rules_and_find_the_engine(tmp_path, bare_env):
    """Installed copies (Krita, GIMP 3, GIMP 2.10 on Python 2.7) use the copy beside the client
    and see the folders the engine sees for the same environment."""
    _, _ = bare_env
    home = tmp_path / "target"
    run_installer(home, "--krita", "--gimp-version", "3.0", "--gimp-version", "2.10")
    folders = {
        "krita": home / ".local/share/krita/pykrita/fixative_krita",
        "gimp3": home / ".config/GIMP/3.0/plug-ins/fixative_protect",
        "gimp2": home / ".config/GIMP/2.10/plug-ins",
    }
    env = {k: v for k, v in os.environ.items() if k not in FOLDER_VARIABLES}
    env.update(HOME=str(home), XDG_STATE_HOME=str(tmp_path / "state"), PYTHONPATH="")
    engine = subprocess.run(
        [sys.executable, "-c", "from fixative import paths; print(paths.discovery_file())"],
        capture_output=True, text=True, env=dict(env, PYTHONPATH=str(REPO / "engine")),
        check=True).stdout.strip()
    assert engine == str(tmp_path / "state/fixative/engine.json")
    for editor, folder in folders.items():
        rules = folder / "fixative_locations.py"
        assert rules.read_bytes() == RULES.read_bytes()
        assert not os.access(rules, os.X_OK), "GIMP must not take it for a plug-in"
        interpreters = [sys.executable] + ([PYTHON27] if editor == "gimp2" and PYTHON27 else [])
        for python in interpreters:
            done = subprocess.run([python, "-c", CLIENT_PROBE, str(folder)], capture_output=True,
                                  text=True, env=env, cwd=str(tmp_path))
            assert done.returncode == 0, done.stderr
            state, config, discovery, _, loaded_from = json.loads(done.stdout)
            assert discovery == engine, (editor, python)
            assert config == str(home / ".config/fixative")
            assert Path(loaded_from) == rules, "the installed copy, not the checkout's"


def test_client_without_the_rules_says_how_to_fix_it(tmp_path):
    lonely = tmp_path / "plug-ins"
    lonely.mkdir()
    shutil.copy2(REPO / "plugins" / "common" / "fixative_client.py", lonely)
    done = subprocess.run([sys.executable, "-c", CLIENT_PROBE, str(lonely)], capture_output=True,
                          text=True, cwd=str(tmp_path))
    assert done.returncode != 0
    assert "fixative_locations.py is missing" in done.stderr and "installer" in done.stderr


@pytest.mark.skipif(shutil.which("vermin") is None, reason="vermin is not installed")
def test_rules_run_on_python_27_and_36():
    done = subprocess.run(["vermin", "--no-tips", "--violations", "-t=2.7-", "-t=3.6-",
                           str(RULES), str(REPO / "plugins" / "common" / "fixative_client.py")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
