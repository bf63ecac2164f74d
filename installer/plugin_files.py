"""The plug-in files in a source checkout, what each editor gets, and the zip for Krita's importer.

Every plug-in folder gets the shared plug-in layer beside the plug-in: ``fixative_client.py``,
``fixative_png.py``, ``fixative_options.py`` (+ its fallback schema), ``fixative_plugin.py``,
``fixative_pixels.py`` (from plugins/common; GIMP 2.10 never imports the last one) and ``fixative_locations.py`` (the folder rules, from
engine/fixative/locations.py, so the plug-ins and the engine agree on where things are).
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

from installer.editors import EditorTarget, Layout, gimp_layout_for
from installer.kritarc import KRITA_PLUGIN
from installer.manifest import EXECUTABLE, REGULAR, PlannedFile
from installer.report import InstallError, Reporter

GIMP_PLUGIN = "fixative_protect"
CLIENT_FILES = ("fixative_client.py", "fixative_png.py", "fixative_options.py", "fixative_plugin.py",
                "fixative_pixels.py", "fixative_options_fallback.json")
SHARED_RULES_NAME = "fixative_locations.py"
SHARED_RULES_SOURCE = Path("engine") / "fixative" / "locations.py"
SKIPPED_NAMES = ("__pycache__", ".ruff_cache", ".pytest_cache", ".mypy_cache")
ZIP_TIME = (2020, 1, 1, 0, 0, 0)  # the same sources give the same zip, byte for byte


class Sources:
    """The plug-in files in a source checkout (the folder holding plugins/)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plugins = root / "plugins"
        if not (self.plugins / "common").is_dir():
            raise InstallError(f"no plug-in sources at {self.plugins} (expected plugins/common/); "
                               "pass --source with the Fixative checkout")

    def client_files(self) -> list[tuple[str, bytes]]:
        """(name, bytes) of the files every plug-in folder gets beside the plug-in."""
        found = []
        for name in CLIENT_FILES:
            path = self.plugins / "common" / name
            if path.is_file():
                found.append((name, path.read_bytes()))
        if not any(name == "fixative_client.py" for name, _ in found):
            client = self.plugins / "common" / "fixative_client.py"
            raise InstallError(f"{client} is missing: the plug-ins cannot talk to the engine "
                               "without it")
        rules = self.root / SHARED_RULES_SOURCE
        if rules.is_file():
            found.append((SHARED_RULES_NAME, rules.read_bytes()))
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
# What to write


def plan_plugin_files(targets: list[EditorTarget], sources: Sources) -> list[PlannedFile]:
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
    if layout.rules.fixative_home():
        return []  # the plug-in sees FIXATIVE_HOME only if the user passes it in: same file
    planned = []
    for target in targets:
        if target.sandbox is None:
            continue
        dest = Path(layout.rules.flatpak_plugin_config_file(target.sandbox.name))
        if any(item.dest == dest for item in planned):
            continue
        data = plugin_config_json(["flatpak-spawn", "--host"] + command, version,
                                  discovery_file=str(layout.discovery_file))
        planned.append(PlannedFile(dest, data, REGULAR, target.component))
    return planned


# ---------------------------------------------------------------------------------------------
# Zip for Krita's "Tools > Scripts > Import Python Plugin from File"


def build_zip(sources: Sources, output: Path, report: Reporter) -> int:
    if not sources.has("krita"):
        raise InstallError(f"no Krita plug-in in {sources.plugins / 'krita'} to zip")
    tree = sources.krita_tree()
    output.parent.mkdir(parents=True, exist_ok=True)
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
                    info = zipfile.ZipInfo(folder, ZIP_TIME)
                    info.external_attr = (0o40755 << 16) | 0x10
                    archive.writestr(info, b"")
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    report.say(f"Wrote {output} ({len(tree)} files). In Krita: Tools > Scripts > Import Python "
               "Plugin from File, then enable Fixative in Settings > Configure Krita > Python "
               "Plugin Manager and restart Krita.")
    return 0
