"""Which editors to install into: the GIMP X.Y and Krita user folders that exist for this user.

The per-OS folder rules (XDG, Flatpak, macOS, Windows) are not written here: they live in
``engine/fixative/locations.py``, the one file the engine and the plug-in client use too. This
module adds what only the installer needs: a pretend home for tests and chroots, the editors
installed as programs, and the rule that a GIMP X.Y folder is never created by us (GIMP copies an
older version's settings into it on its first run, and skips that when the folder exists).
"""

from __future__ import annotations

import glob
import importlib.util
import os
import plistlib
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

from installer.report import InstallError

CHECKOUT = Path(__file__).resolve().parent.parent
SHARED_RULES = CHECKOUT / "engine" / "fixative" / "locations.py"
GIMP_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
KNOWN_GIMP_PROGRAMS = ("2.10", "3.0", "3.2")
VENV_NAME = "engine-venv"
MANIFEST_NAME = "install-manifest.json"


def load_shared_rules(path: Path = SHARED_RULES) -> ModuleType:
    """engine/fixative/locations.py, loaded by path: importing the ``fixative`` package would
    need the engine's dependencies, which the installer runs before."""
    spec = importlib.util.spec_from_file_location("fixative_locations", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise InstallError(f"the shared folder rules {path} are missing: is this a complete "
                           "Fixative checkout?")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


locations = load_shared_rules()
PLATFORMS: tuple[str, ...] = locations.PLATFORMS
host_platform = locations.host_platform


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
        rules_environ = self.environ
        if self.pretend_home:
            rules_environ = {k: v for k, v in self.environ.items() if k == "FIXATIVE_HOME"}
        self.rules = locations.Locations(self.platform, str(self.home), rules_environ)

    # -- Fixative's own folders ----------------------------------------------------------------
    @property
    def config_dir(self) -> Path:
        return Path(self.rules.config_dir())

    @property
    def state_dir(self) -> Path:
        return Path(self.rules.state_dir())

    @property
    def data_dir(self) -> Path:
        return Path(self.rules.data_dir())

    @property
    def plugin_config_file(self) -> Path:
        return Path(self.rules.plugin_config_file())

    @property
    def discovery_file(self) -> Path:
        return Path(self.rules.discovery_file())

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

    # -- Editors -------------------------------------------------------------------------------
    @property
    def flatpak_gimp(self) -> Path:
        return Path(self.rules.flatpak_app_dir(locations.GIMP_FLATPAK_ID))

    @property
    def flatpak_krita(self) -> Path:
        return Path(self.rules.flatpak_app_dir(locations.KRITA_FLATPAK_ID))

    def gimp_roots(self) -> list[tuple[str, Path]]:
        """(variant, folder holding the X.Y config folders), native first."""
        return [(variant, Path(root)) for variant, root in self.rules.gimp_config_roots()]

    def krita_locations(self) -> list[tuple[str, Path, Path]]:
        """(variant, resource folder holding pykrita/ and actions/, kritarc), native first."""
        return [(variant, Path(resources), Path(kritarc))
                for variant, resources, kritarc in self.rules.krita_locations()]

    def finds_programs(self) -> bool:
        """Programs on PATH or in /Applications say something only about this machine's user."""
        return not self.pretend_home and self.platform == host_platform()


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


def version_key(text: str) -> tuple[int, int]:
    match = GIMP_VERSION_RE.match(text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


def gimp_layout_for(version: str) -> str | None:
    """'gimp2', 'gimp3' or None for versions whose Python API we do not support (2.8, 2.99)."""
    major, minor = version_key(version)
    if major == 2 and minor == 10:
        return "gimp2"
    if major >= 3:
        return "gimp3"
    return None


# ---------------------------------------------------------------------------------------------
# GIMP


def find_gimp(layout: Layout, asked_versions: list[str]) -> tuple[list[EditorTarget], list[str]]:
    """The GIMP X.Y config folders that exist, plus notes for the versions that are installed or
    asked for (--gimp-version) but have not run yet: those folders are left for GIMP to create."""
    for version in asked_versions:
        if gimp_layout_for(version) is None:
            raise InstallError(f"GIMP {version} is not supported: use 2.10 or 3.x (e.g. 3.0, 3.2)")
    targets: list[EditorTarget] = []
    notes: list[str] = []
    for variant, root in layout.gimp_roots():
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir(), key=lambda p: version_key(p.name)):
            if not child.is_dir() or not GIMP_VERSION_RE.match(child.name):
                continue
            if gimp_layout_for(child.name) is None:
                notes.append(f"GIMP {child.name} ({variant}) at {child} is not supported "
                             "(GIMP 2.10 and 3.x are): skipped.")
                continue
            sandbox = layout.flatpak_gimp if variant == "flatpak" else None
            targets.append(EditorTarget("gimp", variant, child, child.name,
                                        reason="config folder exists", sandbox=sandbox))
    found = {t.version for t in targets}
    waiting = sorted(set(asked_versions) | set(gimp_versions_installed(layout)), key=version_key)
    native_root = layout.gimp_roots()[0][1]
    for version in waiting:
        if version not in found:
            notes.append(first_run_note(version, native_root / version))
    return targets, notes


def first_run_note(version: str, folder: Path) -> str:
    return (f"GIMP {version} has not run yet for this user (no {folder}). Fixative does not create "
            "that folder: GIMP would then skip copying your settings from an older version. "
            f"Start GIMP {version} once, quit it, then run 'fixative install-plugins' (or "
            "'python installer/install.py') again to add the plug-in.")


def gimp_versions_installed(layout: Layout) -> list[str]:
    """GIMP versions installed as programs on this machine; their folders may not exist yet."""
    if not layout.finds_programs():
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
        for version in KNOWN_GIMP_PROGRAMS:
            if shutil.which("gimp-" + version, path=layout.environ.get("PATH")):
                found.add(version)
        plain = shutil.which("gimp", path=layout.environ.get("PATH"))
        if plain and not found:
            found.update(_ask_gimp_version(plain))
    return sorted((v for v in found if gimp_layout_for(v)), key=version_key)


def _ask_gimp_version(program: str) -> list[str]:
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return []
    match = re.search(r"version (\d+)\.(\d+)", done.stdout)
    return [f"{match.group(1)}.{match.group(2)}"] if match else []


# ---------------------------------------------------------------------------------------------
# Krita: its resource folder has no per-version copy and Krita fills an existing one on its first
# start, so creating it (for --krita, or a Krita installed as a program) is safe.


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
    if not layout.finds_programs():
        return False
    if layout.platform == "macos":
        return bool(glob.glob("/Applications/[kK]rita*.app"))
    if layout.platform == "windows":
        base = os.environ.get("ProgramFiles", r"C:\Program Files")
        return bool(glob.glob(os.path.join(base, "Krita*", "bin", "krita.exe")))
    return shutil.which("krita", path=layout.environ.get("PATH")) is not None
