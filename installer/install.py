#!/usr/bin/env python3
"""Install the Fixative engine and its GIMP/Krita plug-ins for the current user.

Standard library only and Python 3.8+, because it runs before anything else is installed.
Also reachable as ``fixative install-plugins`` (then the current environment is the engine).

    python installer/install.py              # engine venv + every editor found
    python installer/install.py --krita      # Krita only
    python installer/install.py --dry-run    # print the plan, write nothing
    python installer/install.py --uninstall  # remove what the manifest lists
    python installer/install.py --zip out.zip  # a zip for Krita's "Import Python Plugin from File"

Every file written is listed with its sha256 in a manifest, so running twice changes nothing,
uninstall removes exactly those files, and a file the user edited is backed up, never lost.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import hashlib
import json
import os
import plistlib
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

APP = "fixative"
MANIFEST_NAME = "install-manifest.json"
VENV_NAME = "engine-venv"
CLIENT_FILES = ("fixative_client.py", "fixative_png.py", "fixative_options.py", "fixative_plugin.py",
                "fixative_options_fallback.json")
KRITA_PLUGIN = "fixative_krita"
GIMP_PLUGIN = "fixative_protect"
KRITARC_SECTION = "python"
KRITARC_KEY = "enable_" + KRITA_PLUGIN
ENGINE_ARGS = ["-m", "fixative.cli", "serve", "--idle-exit", "30"]
PLATFORMS = ("linux", "macos", "windows")
SKIPPED_NAMES = ("__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache")
GIMP_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
EXECUTABLE = 0o755
REGULAR = 0o644


class InstallError(Exception):
    """A problem the user must fix; main() prints it as one clear line and exits 1."""


# ---------------------------------------------------------------------------------------------
# Where things go: one object knows the platform, the home folder and the environment, so tests
# can exercise the Linux, Flatpak, macOS and Windows layouts on any machine.


def host_platform() -> str:
    if sys.platform.startswith("win"):
        return "windows"
    if sys.platform == "darwin":
        return "macos"
    return "linux"


class Layout:
    """Every path the installer needs, for one platform and one (possibly pretend) home folder.

    ``target_home`` means "as if DIR were HOME for a user with default settings": XDG_*,
    APPDATA and LOCALAPPDATA from this process are then ignored, and so are editors on PATH.
    FIXATIVE_HOME is always honoured, because the plug-ins honour it too.
    """

    def __init__(self, platform: str | None = None, target_home: Path | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.platform = platform or os.environ.get("FIXATIVE_INSTALL_PLATFORM") or host_platform()
        if self.platform not in PLATFORMS:
            choices = ", ".join(PLATFORMS)
            raise InstallError(f"unknown platform {self.platform!r} (choose from {choices})")
        self.environ = dict(os.environ if environ is None else environ)
        self.pretend_home = target_home is not None
        self.home = Path(target_home).expanduser().resolve() if target_home else Path.home()

    def _env_dir(self, name: str, default: Path) -> Path:
        value = "" if self.pretend_home else self.environ.get(name, "").strip()
        return Path(value) if value else default

    # -- Windows roots ---------------------------------------------------------------------
    @property
    def appdata(self) -> Path:
        return self._env_dir("APPDATA", self.home / "AppData" / "Roaming")

    @property
    def localappdata(self) -> Path:
        return self._env_dir("LOCALAPPDATA", self.home / "AppData" / "Local")

    @property
    def mac_app_support(self) -> Path:
        return self.home / "Library" / "Application Support"

    # -- Fixative's own folders (mirror engine/fixative/paths.py and the plug-in client) -----
    def _fixative_dir(self, sub: str, xdg: str, xdg_default: str) -> Path:
        fixative_home = self.environ.get("FIXATIVE_HOME", "").strip()
        if fixative_home:
            return Path(fixative_home).expanduser() / sub
        if self.platform == "windows":
            return self.localappdata / APP
        if self.platform == "macos":
            return self.mac_app_support / APP
        return self._env_dir(xdg, self.home / xdg_default) / APP

    @property
    def config_dir(self) -> Path:
        return self._fixative_dir("config", "XDG_CONFIG_HOME", ".config")

    @property
    def state_dir(self) -> Path:
        return self._fixative_dir("state", "XDG_STATE_HOME", ".local/state")

    @property
    def data_dir(self) -> Path:
        return self._fixative_dir("data", "XDG_DATA_HOME", ".local/share")

    @property
    def plugin_config_file(self) -> Path:
        return self.config_dir / "plugin.json"

    @property
    def manifest_file(self) -> Path:
        return self.data_dir / MANIFEST_NAME

    @property
    def venv_dir(self) -> Path:
        return self.data_dir / VENV_NAME

    def venv_python(self, venv: Path) -> Path:
        if self.platform == "windows":
            return venv / "Scripts" / "python.exe"
        return venv / "bin" / "python"

    # -- Editors ---------------------------------------------------------------------------
    @property
    def flatpak_gimp(self) -> Path:
        return self.home / ".var" / "app" / "org.gimp.GIMP"

    @property
    def flatpak_krita(self) -> Path:
        return self.home / ".var" / "app" / "org.kde.krita"

    def gimp_roots(self) -> list[tuple[str, Path]]:
        """(variant, folder holding the X.Y config folders), native first."""
        if self.platform == "windows":
            return [("windows", self.appdata / "GIMP")]
        if self.platform == "macos":
            return [("macos", self.mac_app_support / "GIMP")]
        native = self._env_dir("XDG_CONFIG_HOME", self.home / ".config") / "GIMP"
        return [("native", native), ("flatpak", self.flatpak_gimp / "config" / "GIMP")]

    def krita_locations(self) -> list[tuple[str, Path, Path]]:
        """(variant, resource folder holding pykrita/ and actions/, kritarc), native first."""
        if self.platform == "windows":
            return [("windows", self.appdata / "krita", self.localappdata / "kritarc")]
        if self.platform == "macos":
            return [("macos", self.mac_app_support / "krita",
                     self.home / "Library" / "Preferences" / "kritarc")]
        data = self._env_dir("XDG_DATA_HOME", self.home / ".local" / "share")
        config = self._env_dir("XDG_CONFIG_HOME", self.home / ".config")
        flatpak = self.flatpak_krita
        return [("native", data / "krita", config / "kritarc"),
                ("flatpak", flatpak / "data" / "krita", flatpak / "config" / "kritarc")]


# ---------------------------------------------------------------------------------------------
# Finding editors


class EditorTarget:
    """One place to install into: a GIMP X.Y config folder or a Krita resource folder."""

    def __init__(self, editor: str, variant: str, root: Path, version: str = "",
                 kritarc: Path | None = None, reason: str = "",
                 sandbox: Path | None = None) -> None:
        self.editor = editor
        self.variant = variant
        self.root = root
        self.version = version
        self.kritarc = kritarc
        self.reason = reason
        self.sandbox = sandbox  # a Flatpak app's ~/.var/app/<id> folder

    @property
    def component(self) -> str:
        """The manifest key: installing one editor again never touches another's files."""
        return f"{self.editor}:{self.root}"

    @property
    def title(self) -> str:
        name = f"GIMP {self.version}" if self.editor == "gimp" else "Krita"
        return f"{name} ({self.variant}) {self.root}"


def _version_key(text: str) -> tuple[int, int]:
    match = GIMP_VERSION_RE.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def gimp_layout_for(version: str) -> str | None:
    """'gimp2', 'gimp3' or None for versions whose Python API we do not support (2.8, 2.99)."""
    major, minor = _version_key(version)
    if major == 2 and minor == 10:
        return "gimp2"
    if major >= 3:
        return "gimp3"
    return None


def gimp_versions_on_path(layout: Layout) -> list[str]:
    """GIMP versions installed as programs; their config folder may not exist yet."""
    if layout.pretend_home or layout.platform != host_platform():
        return []
    found = set()
    if layout.platform == "macos":
        for plist in glob.glob("/Applications/GIMP*.app/Contents/Info.plist"):
            try:
                with open(plist, "rb") as handle:
                    text = str(plistlib.load(handle).get("CFBundleShortVersionString", ""))
            except (OSError, ValueError, plistlib.InvalidFileException):
                continue
            found.add(".".join(text.split(".")[:2]))
    elif layout.platform == "windows":
        for base in (os.environ.get("ProgramFiles", r"C:\Program Files"),
                     os.environ.get("LOCALAPPDATA", "")):
            if not base:
                continue
            for exe in glob.glob(os.path.join(base, "*GIMP*", "bin", "gimp-*.exe")):
                match = re.match(r"gimp-(\d+\.\d+)\.exe$", os.path.basename(exe), re.I)
                if match:
                    found.add(match.group(1))
    else:
        for version in ("2.10", "3.0", "3.2"):
            if shutil.which("gimp-" + version, path=layout.environ.get("PATH")):
                found.add(version)
        plain = shutil.which("gimp", path=layout.environ.get("PATH"))
        if plain and not found:
            found.update(_ask_gimp_version(plain))
    return sorted((v for v in found if gimp_layout_for(v)), key=_version_key)


def _ask_gimp_version(program: str) -> list[str]:
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    match = re.search(r"version (\d+)\.(\d+)", done.stdout)
    return [f"{match.group(1)}.{match.group(2)}"] if match else []


def find_gimp(layout: Layout, forced_versions: list[str]) -> tuple[list[EditorTarget], list[str]]:
    """GIMP config folders that exist, plus native folders for versions on PATH or forced."""
    targets: list[EditorTarget] = []
    notes: list[str] = []
    seen = set()
    for variant, root in layout.gimp_roots():
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir(), key=lambda p: _version_key(p.name)):
            if not child.is_dir() or not GIMP_VERSION_RE.match(child.name):
                continue
            if gimp_layout_for(child.name) is None:
                notes.append(f"GIMP {child.name} ({variant}) at {child} is not supported "
                             "(GIMP 2.10 and 3.x are): skipped.")
                continue
            sandbox = layout.flatpak_gimp if variant == "flatpak" else None
            targets.append(EditorTarget("gimp", variant, child, child.name,
                                        reason="config folder exists", sandbox=sandbox))
            seen.add(child)
    native_variant, native_root = layout.gimp_roots()[0]
    wanted = [(v, "asked for with --gimp-version") for v in forced_versions]
    wanted += [(v, f"gimp-{v} is installed; folder created") for v in gimp_versions_on_path(layout)]
    for version, reason in wanted:
        if gimp_layout_for(version) is None:
            raise InstallError(f"GIMP {version} is not supported: use 2.10 or 3.x (e.g. 3.0, 3.2)")
        folder = native_root / version
        if folder not in seen:
            seen.add(folder)
            targets.append(EditorTarget("gimp", native_variant, folder, version, reason=reason))
    return targets, notes


def find_krita(layout: Layout, forced: bool) -> list[EditorTarget]:
    """Krita resource folders that exist (or whose kritarc does); native created when asked."""
    targets = []
    for variant, resources, kritarc in layout.krita_locations():
        present = resources.is_dir() or kritarc.is_file()
        if variant == "flatpak":
            present = layout.flatpak_krita.is_dir()
        if present:
            sandbox = layout.flatpak_krita if variant == "flatpak" else None
            targets.append(EditorTarget("krita", variant, resources, kritarc=kritarc,
                                        reason="Krita folder exists", sandbox=sandbox))
    if targets:
        return targets
    variant, resources, kritarc = layout.krita_locations()[0]
    if forced:
        return [EditorTarget("krita", variant, resources, kritarc=kritarc,
                             reason="asked for with --krita; folder created")]
    if _krita_program_installed(layout):
        return [EditorTarget("krita", variant, resources, kritarc=kritarc,
                             reason="Krita is installed; folder created")]
    return []


def _krita_program_installed(layout: Layout) -> bool:
    if layout.pretend_home or layout.platform != host_platform():
        return False
    if layout.platform == "macos":
        return bool(glob.glob("/Applications/[kK]rita*.app"))
    if layout.platform == "windows":
        base = os.environ.get("ProgramFiles", r"C:\Program Files")
        return bool(glob.glob(os.path.join(base, "Krita*", "bin", "krita.exe")))
    return shutil.which("krita", path=layout.environ.get("PATH")) is not None


# ---------------------------------------------------------------------------------------------
# What to write: (destination, bytes, mode) per editor, from the plug-in sources


class PlannedFile:
    def __init__(self, dest: Path, data: bytes, mode: int, component: str) -> None:
        self.dest = dest
        self.data = data
        self.mode = mode
        self.component = component
        self.sha256 = sha256_bytes(data)
        self.action = ""  # create | update | replace | unchanged | chmod


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


class Sources:
    """The plug-in files in a source checkout (the folder holding plugins/)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plugins = root / "plugins"
        if not (self.plugins / "common").is_dir():
            raise InstallError(f"no plug-in sources at {self.plugins} (expected plugins/common/); "
                               "pass --source with the Fixative checkout")

    def client_files(self) -> list[tuple[str, bytes]]:
        found = []
        for name in CLIENT_FILES:
            path = self.plugins / "common" / name
            if path.is_file():
                found.append((name, path.read_bytes()))
        if not any(name == "fixative_client.py" for name, _ in found):
            client = self.plugins / "common" / "fixative_client.py"
            raise InstallError(f"{client} is missing: the plug-ins cannot talk to the engine "
                               "without it")
        return found

    @property
    def krita_desktop(self) -> Path:
        return self.plugins / "krita" / (KRITA_PLUGIN + ".desktop")

    @property
    def krita_package(self) -> Path:
        return self.plugins / "krita" / KRITA_PLUGIN

    @property
    def krita_action(self) -> Path:
        return self.plugins / "krita" / (KRITA_PLUGIN + ".action")

    @property
    def gimp3_script(self) -> Path:
        return self.plugins / "gimp" / "gimp3" / GIMP_PLUGIN / (GIMP_PLUGIN + ".py")

    @property
    def gimp2_script(self) -> Path:
        return self.plugins / "gimp" / "gimp2" / (GIMP_PLUGIN + ".py")

    def has(self, editor: str, version: str = "") -> bool:
        if editor == "krita":
            return self.krita_desktop.is_file() and (self.krita_package / "__init__.py").is_file()
        return (self.gimp2_script if gimp_layout_for(version) == "gimp2"
                else self.gimp3_script).is_file()

    def krita_tree(self) -> list[tuple[str, bytes, int]]:
        """(path relative to the resource folder, bytes, mode) for Krita; the zip uses it too."""
        files = [(f"pykrita/{KRITA_PLUGIN}.desktop", self.krita_desktop.read_bytes(), REGULAR)]
        for path in sorted(self.krita_package.rglob("*")):
            relative = path.relative_to(self.krita_package)
            if not path.is_file() or _skipped(relative):
                continue
            files.append((f"pykrita/{KRITA_PLUGIN}/{relative.as_posix()}",
                          path.read_bytes(), REGULAR))
        for name, data in self.client_files():
            files.append((f"pykrita/{KRITA_PLUGIN}/{name}", data, REGULAR))
        if self.krita_action.is_file():
            files.append((f"actions/{KRITA_PLUGIN}.action", self.krita_action.read_bytes(),
                          REGULAR))
        return files

    def gimp_tree(self, version: str) -> list[tuple[str, bytes, int]]:
        """(path relative to the GIMP X.Y folder, bytes, mode): the script is executable."""
        if gimp_layout_for(version) == "gimp2":
            # gimpfu puts plug-ins/ on sys.path; the client files must not be executable there,
            # or GIMP 2.10 would try to run them as plug-ins.
            files = [(f"plug-ins/{GIMP_PLUGIN}.py", self.gimp2_script.read_bytes(), EXECUTABLE)]
            folder = "plug-ins"
        else:
            folder = "plug-ins/" + GIMP_PLUGIN
            files = [(folder + f"/{GIMP_PLUGIN}.py", self.gimp3_script.read_bytes(), EXECUTABLE)]
        files += [(folder + "/" + name, data, REGULAR) for name, data in self.client_files()]
        return files


def _skipped(relative: Path) -> bool:
    return any(part in SKIPPED_NAMES or part.startswith(".") for part in relative.parts) or \
        relative.suffix in (".pyc", ".pyo")


def project_version(source_root: Path) -> str:
    """The version in pyproject.toml (the installer must not import the engine to learn it)."""
    pyproject = source_root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return "0"
    match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', text)
    return match.group(1) if match else "0"


# ---------------------------------------------------------------------------------------------
# The manifest: every file written, its hash and which install it belongs to


class Manifest:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[dict] = []
        self.dirs: list[dict] = []
        self.ini: list[dict] = []
        self.engine: dict = {}
        self.version = ""
        self.exists = False
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise InstallError(f"cannot read the install manifest {path} ({exc}); move it "
                                   "away to start afresh") from exc
            self.files = list(data.get("files", []))
            self.dirs = list(data.get("dirs", []))
            self.ini = list(data.get("ini", []))
            self.engine = dict(data.get("engine", {}))
            self.version = str(data.get("version", ""))
            self.exists = True

    def file_entry(self, path: Path) -> dict | None:
        for entry in self.files:
            if entry["path"] == str(path):
                return entry
        return None

    def add_dir(self, path: Path, component: str) -> None:
        if not any(entry["path"] == str(path) for entry in self.dirs):
            self.dirs.append({"path": str(path), "component": component})

    def to_json(self) -> str:
        data = {"format": 1, "version": self.version, "engine": self.engine,
                "files": sorted(self.files, key=lambda e: e["path"]),
                "dirs": self.dirs, "ini": self.ini}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def created_venvs(self) -> list[Path]:
        venvs = [Path(p) for p in self.engine.get("other_venvs", [])]
        if self.engine.get("created_venv") and self.engine.get("venv"):
            venvs.append(Path(self.engine["venv"]))
        return venvs

    def is_empty(self) -> bool:
        return not (self.files or self.dirs or self.ini or self.created_venvs())


# ---------------------------------------------------------------------------------------------
# Output


class Reporter:
    """Prints the plan or what happened; tests read ``lines``."""

    def __init__(self, quiet: bool = False, stream=None) -> None:
        self.quiet = quiet
        self.stream = stream
        self.lines: list[str] = []
        self.changes = 0

    def say(self, text: str = "") -> None:
        self.lines.append(text)
        if self.quiet:
            return
        try:
            print(text, file=self.stream or sys.stdout, flush=True)
        except BrokenPipeError:
            # `install.py | head`: stop printing but finish the work (never stop half-way).
            self.quiet = True
            if self.stream is None:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())

    def change(self, text: str) -> None:
        self.changes += 1
        self.say(text)


def timestamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def backup_path(path: Path) -> Path:
    """A free ``<name>.fixative-backup-<timestamp>[-N]`` beside ``path``."""
    base = f"{path.name}.fixative-backup-{timestamp()}"
    candidate = path.with_name(base)
    counter = 1
    while candidate.exists() or candidate.is_symlink():
        candidate = path.with_name(f"{base}-{counter}")
        counter += 1
    return candidate


def move_to_backup(path: Path) -> Path:
    """Rename a user-changed file or folder out of the way, non-executable so no editor runs it."""
    target = backup_path(path)
    os.replace(str(path), str(target))
    if target.is_file() and not target.is_symlink():
        mode = stat.S_IMODE(target.stat().st_mode)
        os.chmod(str(target), mode & ~0o111)
    return target


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.fixative-tmp")
    with open(str(temporary), "wb") as handle:
        handle.write(data)
    os.chmod(str(temporary), mode)
    os.replace(str(temporary), str(path))


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# ---------------------------------------------------------------------------------------------
# kritarc: a Qt ini file that Krita rewrites; change one key and keep every other byte


def _read_text_keep_bytes(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def ini_get(text: str, section: str, key: str) -> str | None:
    current = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
        elif current == section and "=" in stripped and not stripped.startswith((";", "#")):
            name, _, value = stripped.partition("=")
            if name.strip() == key:
                return value.strip()
    return None


def ini_set(text: str, section: str, key: str, value: str | None) -> str:
    """``text`` with ``key`` set in ``[section]`` (or removed when value is None), rest untouched."""
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(True)
    current = None
    section_end = None  # index after the last line of the section
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped[1:-1]
            if current == section:
                section_end = index + 1
            continue
        if current != section:
            continue
        if stripped:
            section_end = index + 1
        name, sep, _ = stripped.partition("=")
        if sep and name.strip() == key and not stripped.startswith((";", "#")):
            ending = line[len(line.rstrip("\r\n")):] or newline
            lines[index] = "" if value is None else f"{key}={value}{ending}"
            return "".join(lines)
    if value is None:
        return text
    entry = f"{key}={value}{newline}"
    if section_end is None:
        prefix = "".join(lines)
        if prefix and not prefix.endswith(("\n", "\r")):
            prefix += newline
        if prefix.strip():
            prefix += newline
        return prefix + f"[{section}]{newline}" + entry
    if not lines[section_end - 1].endswith(("\n", "\r")):
        lines[section_end - 1] += newline
    lines.insert(section_end, entry)
    return "".join(lines)


# ---------------------------------------------------------------------------------------------
# Engine: a virtual environment (or the current interpreter), pip and the model download


def run_quiet(command: list[str], timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def installed_engine_version(python: Path) -> str | None:
    """The fixative version installed for that Python, or None."""
    if not python.exists():
        return None
    try:
        # The distribution's metadata, not an import: importing would load torch (slow) and
        # fail on a half-installed environment that pip can still repair.
        done = run_quiet([str(python), "-c", "from importlib.metadata import version; "
                          "print(version('fixative'))"], timeout=120)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


def tail(text: str, lines: int = 6) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


class EnginePlan:
    def __init__(self, options: argparse.Namespace, layout: Layout, source_root: Path,
                 version: str, manifest: Manifest) -> None:
        self.use_current_env = bool(options.use_current_env)
        self.skip = bool(options.skip_engine)
        self.fetch_models = not options.no_models
        self.pip_args = list(options.pip_arg or [])
        self.source_spec = options.engine_source or str(source_root)
        self.version = version
        if self.use_current_env:
            self.venv: Path | None = None
            self.python = Path(options.python or sys.executable)
        else:
            self.venv = Path(options.venv_dir) if options.venv_dir else layout.venv_dir
            self.python = layout.venv_python(self.venv)
        self.create_venv = self.venv is not None and not self.python.exists()
        self.base_python = Path(options.python or sys.executable)
        self.installed_version = None if self.skip else installed_engine_version(self.python)
        # A venv is ours to upgrade; the current environment is the user's, so only fill a gap.
        if self.use_current_env:
            self.needs_pip = not self.skip and self.installed_version is None
        else:
            self.needs_pip = not self.skip and self.installed_version != version
        recorded = manifest.engine.get("venv")
        self.created_before = bool(manifest.engine.get("created_venv")) and \
            recorded == (str(self.venv) if self.venv else None)

    @property
    def command(self) -> list[str]:
        return [str(self.python)] + ENGINE_ARGS

    def describe(self, report: Reporter) -> None:
        if self.skip:
            report.say(f"Engine: not touched (--skip-engine); plug-ins will run {self.python}")
            return
        where = (f"current environment {self.python}" if self.use_current_env
                 else f"virtual environment {self.venv}")
        report.say(f"Engine: {where}")
        if self.create_venv:
            report.say(f"  create  virtual environment with {self.base_python}")
        if self.needs_pip:
            have = f"fixative {self.installed_version} installed" if self.installed_version \
                else "fixative not installed"
            report.say(f"  pip     install {self.source_spec} ({have}, want {self.version})")
        else:
            report.say(f"  ok      fixative {self.installed_version} already installed")
            if self.installed_version != self.version:
                report.say(f"Note: the plug-ins are version {self.version} but this environment "
                           f"has fixative {self.installed_version}; upgrade it if they disagree.")
        if self.fetch_models:
            report.say("  models  fixative models fetch (the default models)")

    def run(self, report: Reporter) -> None:
        if self.skip:
            return
        if self.create_venv:
            if sys.version_info < (3, 10) and not self.base_python_is_other():
                version = "{}.{}".format(*sys.version_info[:2])
                raise InstallError(f"the engine needs Python 3.10 or newer; this is {version}. Run "
                                   "the installer with a newer Python or pass --python PATH")
            report.change(f"Creating the engine's virtual environment {self.venv}")
            assert self.venv is not None
            done = run_quiet([str(self.base_python), "-m", "venv", str(self.venv)])
            if done.returncode != 0 or not self.python.exists():
                raise InstallError(f"creating the virtual environment {self.venv} failed:\n"
                                   + tail(done.stderr or done.stdout))
        if self.needs_pip:
            command = [str(self.python), "-m", "pip", "install", "--upgrade",
                       self.source_spec] + self.pip_args
            report.change("Installing the engine: {}".format(" ".join(command)))
            report.say("  (the first time this downloads PyTorch, about 1-5 GB; please wait)")
            done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True)
            if done.returncode != 0:
                raise InstallError(f"pip could not install the engine (exit {done.returncode}):\n"
                                   f"{tail(done.stdout, 12)}\nFix the problem above and run the "
                                   "installer again; nothing else was changed.")
            self.installed_version = installed_engine_version(self.python)
            if self.installed_version is None:
                raise InstallError(f"pip finished but {self.python} does not list fixative")
        if self.fetch_models:
            self.fetch(report)

    def base_python_is_other(self) -> bool:
        return Path(self.base_python).resolve() != Path(sys.executable).resolve()

    def fetch(self, report: Reporter) -> None:
        if os.environ.get("FIXATIVE_OFFLINE", "").strip() not in ("", "0"):
            report.say("Note: FIXATIVE_OFFLINE is set, so the models were not downloaded. Run "
                       "'fixative models fetch' once online (protecting works offline only "
                       "with models already present).")
            return
        report.say("Fetching the default models (fixative models fetch)...")
        try:
            done = run_quiet([str(self.python), "-m", "fixative.cli", "models", "fetch"])
        except (OSError, subprocess.SubprocessError) as exc:
            done = subprocess.CompletedProcess([], 1, "", str(exc))
        if done.returncode == 0:
            report.say("  models ready")
        else:
            report.say("Note: the models could not be downloaded now (offline?). The install "
                       "continues; run 'fixative models fetch' later.\n"
                       + tail(done.stderr or done.stdout, 4))


# ---------------------------------------------------------------------------------------------
# Install


def plan_files(targets: list[EditorTarget], sources: Sources) -> list[PlannedFile]:
    planned = []
    for target in targets:
        if target.editor == "krita":
            tree = sources.krita_tree()
        else:
            tree = sources.gimp_tree(target.version)
        for relative, data, mode in tree:
            planned.append(PlannedFile(target.root / relative, data, mode, target.component))
    return planned


def plugin_config_json(command: list[str], version: str, **extra: str) -> bytes:
    data = {"engine_command": command, "version": version}
    data.update(extra)
    return (json.dumps(data, indent=2) + "\n").encode("utf-8")


def plan_sandbox_configs(targets: list[EditorTarget], layout: Layout,
                         command: list[str], version: str) -> list[PlannedFile]:
    """plugin.json inside each Flatpak sandbox, whose XDG_CONFIG_HOME is ~/.var/app/<id>/config.

    The sandbox cannot run the host's Python directly, so the command goes through
    ``flatpak-spawn --host``; ``discovery_file`` says where the host engine announces itself.
    """
    if layout.environ.get("FIXATIVE_HOME", "").strip():
        return []  # the plug-in sees FIXATIVE_HOME only if the user passes it in: same file
    planned = []
    for target in targets:
        if target.sandbox is None:
            continue
        dest = target.sandbox / "config" / APP / "plugin.json"
        if any(item.dest == dest for item in planned):
            continue
        data = plugin_config_json(["flatpak-spawn", "--host"] + command, version,
                                  discovery_file=str(layout.state_dir / "engine.json"))
        planned.append(PlannedFile(dest, data, REGULAR, target.component))
    return planned


def classify(planned: PlannedFile, manifest: Manifest) -> None:
    """create / unchanged / chmod / update (ours, untouched) / replace (someone else's: backup)."""
    dest = planned.dest
    if not dest.exists() and not dest.is_symlink():
        planned.action = "create"
        return
    if dest.is_dir() or dest.is_symlink():
        planned.action = "replace"
        return
    current = sha256_file(dest)
    if current == planned.sha256:
        planned.action = "unchanged" if _mode_ok(dest, planned.mode) else "chmod"
        return
    entry = manifest.file_entry(dest)
    planned.action = "update" if entry and entry.get("sha256") == current else "replace"


def _mode_ok(path: Path, mode: int) -> bool:
    if os.name == "nt":
        return True
    return bool(file_mode(path) & 0o100) == bool(mode & 0o100)


ACTION_WORDS = {"create": "create ", "update": "update ", "replace": "replace", "chmod": "chmod  ",
                "unchanged": "ok     "}


def stale_entries(manifest: Manifest, components: list[str], keep: list[Path]) -> list[dict]:
    """Files a previous install of these editors wrote that the new plug-in no longer has."""
    keep_set = {str(p) for p in keep}
    return [e for e in manifest.files
            if e.get("component") in components and e["path"] not in keep_set]


def remove_recorded_file(entry: dict, report: Reporter, dry_run: bool) -> bool:
    """Delete a file we wrote; a file changed since is moved to a backup instead. True if gone."""
    path = Path(entry["path"])
    if not path.exists() and not path.is_symlink():
        return True
    if path.is_file() and not path.is_symlink() and sha256_file(path) == entry.get("sha256"):
        if dry_run:
            report.say(f"  remove  {path}")
            return True
        path.unlink()
        _remove_python2_bytecode(path)
        report.change(f"  removed {path}")
        return True
    if dry_run:
        report.say(f"  backup  {path} (changed since Fixative installed it)")
        return True
    saved = move_to_backup(path)
    report.change(f"  kept    {path}: it was changed after Fixative installed it, so it was "
                  f"moved to {saved} instead of being deleted")
    return True


def _remove_python2_bytecode(path: Path) -> None:
    if path.suffix == ".py":
        for compiled in (path.with_suffix(".pyc"), path.with_suffix(".pyo")):
            if compiled.is_file():
                compiled.unlink()


def remove_dir_if_ours(path: Path, report: Reporter, dry_run: bool) -> None:
    """Remove a folder we created once it is empty (Python bytecode caches count as empty)."""
    if not path.is_dir():
        return
    if dry_run:
        report.say(f"  remove  {path}/ (if nothing else is in it)")
        return
    cache = path / "__pycache__"
    if cache.is_dir() and all(child.suffix in (".pyc", ".pyo") for child in cache.iterdir()):
        shutil.rmtree(str(cache))
    leftovers = sorted(child.name for child in path.iterdir())
    if leftovers:
        names = ", ".join(leftovers[:5])
        report.say(f"  left    {path}: it holds files Fixative did not install ({names})")
        return
    path.rmdir()
    report.change(f"  removed {path}/")


def created_dirs(path: Path) -> list[Path]:
    """The folders mkdir -p would create for ``path``, outermost first (uninstall removes them
    again when they are empty, so an install leaves no trace)."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return list(reversed(missing))


def install(options: argparse.Namespace, layout: Layout, report: Reporter) -> int:
    source_root = Path(options.source).resolve()
    sources = Sources(source_root)
    version = project_version(source_root)
    manifest = Manifest(layout.manifest_file)
    dry_run = bool(options.dry_run)

    want_gimp = options.gimp or bool(options.gimp_version) or not options.krita
    want_krita = options.krita or not options.gimp
    targets: list[EditorTarget] = []
    notes: list[str] = []
    if want_gimp:
        gimp_targets, gimp_notes = find_gimp(layout, options.gimp_version or [])
        targets += gimp_targets
        notes += gimp_notes
        if options.gimp and not gimp_targets:
            looked = ", ".join(str(root) for _, root in layout.gimp_roots())
            raise InstallError(f"no GIMP 2.10/3.x user folder found (looked in {looked}). Start "
                               "GIMP once, or pass --gimp-version 3.0 (or 3.2, 2.10) to create it")
    if want_krita:
        targets += find_krita(layout, forced=bool(options.krita))
    usable = []
    for target in targets:
        if sources.has(target.editor, target.version):
            usable.append(target)
        else:
            notes.append(f"{target.title}: this source tree has no plug-in for it yet: skipped.")
    if not usable:
        raise InstallError("no editor to install into: no GIMP 2.10/3.x or Krita user folder was "
                           f"found for {layout.platform} (home {layout.home}). Start the editor "
                           "once, or pass --krita / --gimp-version X.Y")

    engine = EnginePlan(options, layout, source_root, version, manifest)
    planned = plan_files(usable, sources)
    for item in planned:
        classify(item, manifest)
    components = [t.component for t in usable]
    config = PlannedFile(layout.plugin_config_file, plugin_config_json(engine.command, version),
                         REGULAR, "config")
    classify(config, manifest)
    sandbox_configs = plan_sandbox_configs(usable, layout, engine.command, version)
    for item in sandbox_configs:
        classify(item, manifest)
    stale = stale_entries(manifest, components, [p.dest for p in planned + sandbox_configs])

    report.say("Fixative {} installer{} ({}, home {})".format(
        version, " - dry run, nothing is written" if dry_run else "", layout.platform, layout.home))
    for note in notes:
        report.say("Note: " + note)
    engine.describe(report)
    for target in usable:
        report.say(f"{target.title} [{target.reason}]")
        for item in planned:
            if item.component == target.component:
                extra = " (changed by someone else: backed up first)" if item.action == "replace" \
                    else ""
                report.say(f"  {ACTION_WORDS[item.action]} {item.dest}{extra}")
        if target.kritarc is not None:
            report.say(f"  enable  {KRITARC_KEY} in {target.kritarc} [{KRITARC_SECTION}]")
    for entry in stale:
        report.say("  remove  {} (no longer part of the plug-in)".format(entry["path"]))
    report.say(f"Plug-in config: {ACTION_WORDS[config.action].strip()} {config.dest}")
    for item in sandbox_configs:
        report.say(f"  {ACTION_WORDS[item.action]} {item.dest} (inside the Flatpak sandbox)")
    if sandbox_configs:
        apps = " ".join(sorted({t.sandbox.name for t in usable if t.sandbox is not None}))
        report.say("Note: a Flatpak editor can start the engine only if allowed to: run "
                   f"'flatpak override --user --talk-name=org.freedesktop.Flatpak {apps}' "
                   "(one app id per command), or start 'fixative serve' yourself.")
    report.say(f"Manifest: {manifest.path}")
    if dry_run:
        return 0

    report.say("")
    manifest.version = version
    # A venv an earlier run created stays listed (for uninstall) even if this run uses another.
    other_venvs = set(manifest.engine.get("other_venvs", []))
    earlier = manifest.engine.get("venv")
    if earlier and manifest.engine.get("created_venv") and earlier != str(engine.venv):
        other_venvs.add(earlier)
    other_venvs.discard(str(engine.venv))
    manifest.engine = {"python": str(engine.python),
                       "venv": str(engine.venv) if engine.venv else None,
                       "created_venv": bool(engine.create_venv or engine.created_before),
                       "other_venvs": sorted(other_venvs)}
    if engine.create_venv and engine.venv is not None:
        for folder in created_dirs(engine.venv.parent):
            manifest.add_dir(folder, "engine")
    try:
        engine.run(report)
        for item in planned + [config] + sandbox_configs:
            write_planned(item, manifest, report)
        for entry in stale:
            remove_recorded_file(entry, report, dry_run=False)
            manifest.files.remove(entry)
        for target in usable:
            if target.kritarc is not None:
                enable_in_kritarc(target, manifest, report)
    finally:
        save_manifest(manifest, report)
    if report.changes == 0:
        report.say("Everything was already installed; nothing changed.")
    else:
        report.say("Done. Restart GIMP/Krita to load the plug-in.")
        if any(t.editor == "krita" for t in usable):
            report.say("Krita: if it was running, quit it before restarting; it rewrites kritarc "
                       "on exit. The plug-in is listed under Settings > Configure Krita > "
                       "Python Plugin Manager.")
    return 0


def write_planned(item: PlannedFile, manifest: Manifest, report: Reporter) -> None:
    for folder in created_dirs(item.dest.parent):
        manifest.add_dir(folder, item.component)
    if item.action == "replace":
        saved = move_to_backup(item.dest)
        report.change(f"  backed up {item.dest} to {saved}: it was not Fixative's or was changed "
                      "after install")
    if item.action in ("create", "update", "replace"):
        write_atomically(item.dest, item.data, item.mode)
        verb = "updated" if item.action == "update" else "wrote  "
        report.change(f"  {verb} {item.dest}")
    elif item.action == "chmod":
        os.chmod(str(item.dest), item.mode)
        report.change(f"  chmod   {item.dest}")
    entry = manifest.file_entry(item.dest)
    record = {"path": str(item.dest), "sha256": item.sha256, "component": item.component,
              "mode": oct(item.mode)}
    if entry is None:
        manifest.files.append(record)
    else:
        entry.update(record)


def enable_in_kritarc(target: EditorTarget, manifest: Manifest, report: Reporter) -> None:
    assert target.kritarc is not None
    path = target.kritarc
    text = _read_text_keep_bytes(path) if path.is_file() else ""
    previous = ini_get(text, KRITARC_SECTION, KRITARC_KEY)
    recorded = [e for e in manifest.ini if e["path"] == str(path) and e["key"] == KRITARC_KEY]
    if previous != "true":
        if not path.exists():
            for folder in created_dirs(path.parent):
                manifest.add_dir(folder, target.component)
        updated = ini_set(text, KRITARC_SECTION, KRITARC_KEY, "true")
        write_atomically(path, updated.encode("utf-8", errors="surrogateescape"),
                         file_mode(path) if path.exists() else 0o600)
        report.change("  enabled {} in {}{}".format(KRITA_PLUGIN, path,
                                                " (it was disabled)" if previous else ""))
    if not recorded:
        manifest.ini.append({"path": str(path), "section": KRITARC_SECTION, "key": KRITARC_KEY,
                             "value": "true", "previous": previous,
                             "created_file": not text, "component": target.component})


def save_manifest(manifest: Manifest, report: Reporter) -> None:
    path = manifest.path
    if not manifest.is_empty():
        for folder in created_dirs(path.parent):
            manifest.add_dir(folder, "manifest")
    text = manifest.to_json()
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    if manifest.is_empty():
        if path.is_file():
            path.unlink()
        return
    write_atomically(path, text.encode("utf-8"), REGULAR)


# ---------------------------------------------------------------------------------------------
# Uninstall


def uninstall(options: argparse.Namespace, layout: Layout, report: Reporter) -> int:
    manifest = Manifest(layout.manifest_file)
    dry_run = bool(options.dry_run)
    if not manifest.exists:
        report.say(f"Nothing to uninstall: no manifest at {manifest.path}")
        return 0
    mode = " - dry run" if dry_run else ""
    report.say(f"Uninstalling Fixative {manifest.version}{mode} (manifest {manifest.path})")
    for entry in list(manifest.files):
        remove_recorded_file(entry, report, dry_run)
        if not dry_run:
            manifest.files.remove(entry)
    for entry in list(manifest.ini):
        restore_ini(entry, report, dry_run)
        if not dry_run:
            manifest.ini.remove(entry)
    for venv_path in [] if options.keep_engine else manifest.created_venvs():
        if venv_path.is_dir() and (venv_path / "pyvenv.cfg").is_file():
            if dry_run:
                report.say(f"  remove  {venv_path}/ (the engine's virtual environment)")
            else:
                shutil.rmtree(str(venv_path))
                report.change(f"  removed {venv_path}/ (the engine's virtual environment)")
    # Deepest first; the folders holding the manifest go last, after the manifest itself.
    folders = sorted((Path(e["path"]) for e in manifest.dirs),
                     key=lambda p: len(p.parts), reverse=True)
    holding = [f for f in folders if str(manifest.path).startswith(str(f) + os.sep)]
    for folder in folders:
        if folder not in holding:
            remove_dir_if_ours(folder, report, dry_run)
    if dry_run:
        return 0
    manifest.path.unlink()
    for folder in holding:
        remove_dir_if_ours(folder, report, dry_run)
    report.say("Fixative's plug-ins are uninstalled. Downloaded models stay in the cache folder.")
    return 0


def restore_ini(entry: dict, report: Reporter, dry_run: bool) -> None:
    path = Path(entry["path"])
    if not path.is_file():
        return
    text = _read_text_keep_bytes(path)
    current = ini_get(text, entry["section"], entry["key"])
    if current != entry["value"]:
        report.say(f"  left    {entry['key']}={current} in {path}: changed since install")
        return
    previous = entry.get("previous")
    if dry_run:
        report.say("  restore {} in {} ({})".format(entry["key"], path,
                                                "remove" if previous is None else previous))
        return
    updated = ini_set(text, entry["section"], entry["key"], previous)
    if entry.get("created_file") and ini_get(updated, entry["section"], entry["key"]) is None \
            and updated.strip() in ("", "[{}]".format(entry["section"])):
        path.unlink()
        report.change(f"  removed {path} (Fixative created it)")
        return
    write_atomically(path, updated.encode("utf-8", errors="surrogateescape"), file_mode(path))
    report.change("  restored {} in {}".format(entry["key"], path))


# ---------------------------------------------------------------------------------------------
# Zip for Krita's "Tools > Scripts > Import Python Plugin from File"


def build_zip(sources: Sources, output: Path, report: Reporter) -> int:
    if not sources.has("krita"):
        raise InstallError(f"no Krita plug-in in {sources.plugins / 'krita'} to zip")
    tree = sources.krita_tree()
    output.parent.mkdir(parents=True, exist_ok=True)
    fixed_time = (2020, 1, 1, 0, 0, 0)  # the same sources give the same zip, byte for byte
    written_dirs = set()
    with zipfile.ZipFile(str(output), "w", zipfile.ZIP_DEFLATED) as archive:
        for relative, data, mode in tree:
            # Krita's importer looks for <pykrita>/ and <actions> file names at the top level and
            # needs explicit folder entries ("fixative_krita/") to find the package.
            name = relative.split("/", 1)[1]
            parts = name.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                folder = "/".join(parts[:depth]) + "/"
                if folder not in written_dirs:
                    written_dirs.add(folder)
                    info = zipfile.ZipInfo(folder, fixed_time)
                    info.external_attr = (0o40755 << 16) | 0x10
                    archive.writestr(info, b"")
            info = zipfile.ZipInfo(name, fixed_time)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    report.say(f"Wrote {output} ({len(tree)} files). In Krita: Tools > Scripts > Import Python "
               "Plugin from File, then enable Fixative in Settings > Configure Krita > Python "
               "Plugin Manager and restart Krita.")
    return 0


# ---------------------------------------------------------------------------------------------
# Command line


def default_source() -> Path:
    return Path(__file__).resolve().parent.parent


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """All options; ``fixative install-plugins`` adds the same ones to its subcommand."""
    editors = parser.add_argument_group("editors (default: every editor found)")
    editors.add_argument("--gimp", action="store_true", help="install only into GIMP")
    editors.add_argument("--krita", action="store_true",
                         help="install only into Krita (creates its folder if Krita never ran)")
    editors.add_argument("--gimp-version", action="append", metavar="X.Y",
                         help="also create and install into the GIMP X.Y folder (2.10, 3.0, "
                              "3.2), even with --krita; repeatable")
    modes = parser.add_argument_group("what to do (default: install)")
    modes.add_argument("--dry-run", action="store_true", help="print the plan; write nothing")
    modes.add_argument("--uninstall", action="store_true",
                       help="remove exactly what the install manifest lists")
    modes.add_argument("--zip", metavar="FILE", nargs="?", const="",
                       help="build a zip for Krita's 'Import Python Plugin from File' and stop "
                            "(default name: fixative_krita-VERSION.zip here)")
    engine = parser.add_argument_group("engine")
    where = engine.add_mutually_exclusive_group()
    where.add_argument("--use-current-env", dest="use_current_env", action="store_true",
                       help="run the engine with this Python (pip-installs it there if missing)")
    where.add_argument("--venv", dest="use_current_env", action="store_false",
                       help="run the engine from its own virtual environment (the default)")
    engine.add_argument("--venv-dir", metavar="DIR",
                        help="where the virtual environment goes (default: DATA/engine-venv)")
    engine.add_argument("--python", metavar="PATH",
                        help="the Python (3.10+) that creates the venv or runs the engine")
    engine.add_argument("--engine-source", metavar="SPEC",
                        help="what pip installs (default: this checkout)")
    engine.add_argument("--pip-arg", action="append", metavar="ARG",
                        help="extra argument for pip install, e.g. --pip-arg=--no-deps; repeatable")
    engine.add_argument("--no-models", action="store_true",
                        help="do not run 'fixative models fetch'")
    engine.add_argument("--skip-engine", action="store_true",
                        help="install plug-ins and config only; do not check or pip-install the "
                             "engine")
    engine.add_argument("--keep-engine", action="store_true",
                        help="with --uninstall: keep the engine's virtual environment")
    other = parser.add_argument_group("other")
    other.add_argument("--source", default=str(default_source()), metavar="DIR",
                       help="the Fixative checkout holding plugins/ (default: %(default)s)")
    other.add_argument("--target-home", metavar="DIR",
                       help="install as if DIR were the home folder of a user with default "
                            "settings (tests, chroots)")
    other.add_argument("--quiet", action="store_true", help="print nothing")
    other.add_argument("--platform", choices=PLATFORMS, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="install.py",
        description="Install the Fixative engine and its GIMP and Krita plug-ins for this user.")
    add_arguments(parser)
    return parser


def run(options: argparse.Namespace, report: Reporter | None = None) -> int:
    """Do what the parsed options say; returns the exit code (errors are printed, not raised)."""
    report = report or Reporter(quiet=bool(getattr(options, "quiet", False)))
    try:
        target_home = Path(options.target_home) if options.target_home else None
        layout = Layout(options.platform, target_home)
        if options.zip is not None:
            sources = Sources(Path(options.source).resolve())
            name = options.zip or f"{KRITA_PLUGIN}-{project_version(sources.root)}.zip"
            return build_zip(sources, Path(name).resolve(), report)
        action: Callable[[argparse.Namespace, Layout, Reporter], int]
        action = uninstall if options.uninstall else install
        return action(options, layout, report)
    except InstallError as exc:
        print(f"install: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = getattr(exc, "filename", "") or ""
        print(f"install: error: {where}: {exc.strerror or exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    return run(options)


if __name__ == "__main__":
    sys.exit(main())
