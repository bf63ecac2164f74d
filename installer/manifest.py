"""The install manifest: every file Fixative wrote, with its sha256, the folders it created and the
kritarc edits. It is what makes a second run change nothing, an upgrade replace only our own
untouched files, and uninstall remove exactly what we wrote (anything the user changed is moved to
a backup, never deleted).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import stat
from pathlib import Path

from installer.report import InstallError, Reporter

EXECUTABLE = 0o755
REGULAR = 0o644
FORMAT = 1
ACTION_WORDS = {"create": "create ", "update": "update ", "replace": "replace", "chmod": "chmod  ",
                "unchanged": "ok     "}


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str | None:
    try:
        return sha256_bytes(path.read_bytes())
    except OSError:
        return None


class PlannedFile:
    """One file to write: destination, bytes, mode, the editor it belongs to, and what writing
    it means given what is there now (``action``, set by InstallManifest.plan)."""

    def __init__(self, dest: Path, data: bytes, mode: int, component: str) -> None:
        self.dest = dest
        self.data = data
        self.mode = mode
        self.component = component
        self.sha256 = sha256_bytes(data)
        self.action = ""  # create | update | replace | unchanged | chmod

    @property
    def words(self) -> str:
        return ACTION_WORDS[self.action]


class InstallManifest:
    """install-manifest.json in Fixative's data folder (not the batch runner's job manifest)."""

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

    # -- Reading -------------------------------------------------------------------------------
    def file_entry(self, path: Path) -> dict | None:
        for entry in self.files:
            if entry["path"] == str(path):
                return entry
        return None

    def created_venvs(self) -> list[Path]:
        venvs = [Path(p) for p in self.engine.get("other_venvs", [])]
        if self.engine.get("created_venv") and self.engine.get("venv"):
            venvs.append(Path(self.engine["venv"]))
        return venvs

    def is_empty(self) -> bool:
        return not (self.files or self.dirs or self.ini or self.created_venvs())

    def stale_files(self, components: list[str], keep: list[Path]) -> list[dict]:
        """Files a previous install of these editors wrote that the new plug-in no longer has."""
        keep_set = {str(p) for p in keep}
        return [e for e in self.files
                if e.get("component") in components and e["path"] not in keep_set]

    # -- Planning ------------------------------------------------------------------------------
    def plan(self, item: PlannedFile) -> PlannedFile:
        """Set ``item.action``: create / unchanged / chmod / update (ours, untouched since) /
        replace (someone else's, or changed by the user: it is backed up first)."""
        dest = item.dest
        if not dest.exists() and not dest.is_symlink():
            item.action = "create"
        elif dest.is_dir() or dest.is_symlink():
            item.action = "replace"
        else:
            current = sha256_file(dest)
            if current == item.sha256:
                item.action = "unchanged" if _mode_ok(dest, item.mode) else "chmod"
            else:
                entry = self.file_entry(dest)
                item.action = "update" if entry and entry.get("sha256") == current else "replace"
        return item

    # -- Changing files and recording them -----------------------------------------------------
    def add_dir(self, path: Path, component: str) -> None:
        if not any(entry["path"] == str(path) for entry in self.dirs):
            self.dirs.append({"path": str(path), "component": component})

    def add_created_dirs(self, path: Path, component: str) -> None:
        """Record the folders that creating ``path`` will create (uninstall removes them)."""
        for folder in created_dirs(path):
            self.add_dir(folder, component)

    def write(self, item: PlannedFile, report: Reporter) -> None:
        """Carry out a planned file and record it with its hash."""
        self.add_created_dirs(item.dest.parent, item.component)
        if item.action == "replace":
            saved = move_to_backup(item.dest)
            report.change(f"  backed up {item.dest} to {saved}: it was not Fixative's or was "
                          "changed after install")
        if item.action in ("create", "update", "replace"):
            write_atomically(item.dest, item.data, item.mode)
            verb = "updated" if item.action == "update" else "wrote  "
            report.change(f"  {verb} {item.dest}")
        elif item.action == "chmod":
            os.chmod(str(item.dest), item.mode)
            report.change(f"  chmod   {item.dest}")
        record = {"path": str(item.dest), "sha256": item.sha256, "component": item.component,
                  "mode": oct(item.mode)}
        entry = self.file_entry(item.dest)
        if entry is None:
            self.files.append(record)
        else:
            entry.update(record)

    def remove_file(self, entry: dict, report: Reporter, dry_run: bool) -> None:
        """Delete a file we wrote (and forget it); one changed since is moved to a backup."""
        path = Path(entry["path"])
        if path.exists() or path.is_symlink():
            unchanged = path.is_file() and not path.is_symlink() and \
                sha256_file(path) == entry.get("sha256")
            if dry_run:
                report.say(f"  remove  {path}" if unchanged
                           else f"  backup  {path} (changed since Fixative installed it)")
            elif unchanged:
                path.unlink()
                _remove_python2_bytecode(path)
                report.change(f"  removed {path}")
            else:
                saved = move_to_backup(path)
                report.change(f"  kept    {path}: it was changed after Fixative installed it, "
                              f"so it was moved to {saved} instead of being deleted")
        if not dry_run:
            self.files.remove(entry)

    def to_json(self) -> str:
        data = {"format": FORMAT, "version": self.version, "engine": self.engine,
                "files": sorted(self.files, key=lambda e: e["path"]),
                "dirs": self.dirs, "ini": self.ini}
        return json.dumps(data, indent=2, sort_keys=True) + "\n"

    def save(self) -> None:
        """Write the manifest if it changed; delete it once it lists nothing."""
        if not self.is_empty():
            self.add_created_dirs(self.path.parent, "manifest")
        text = self.to_json()
        if self.path.is_file() and self.path.read_text(encoding="utf-8") == text:
            return
        if self.is_empty():
            if self.path.is_file():
                self.path.unlink()
            return
        write_atomically(self.path, text.encode("utf-8"), REGULAR)


def _mode_ok(path: Path, mode: int) -> bool:
    if os.name == "nt":
        return True
    return bool(file_mode(path) & 0o100) == bool(mode & 0o100)


def _remove_python2_bytecode(path: Path) -> None:
    if path.suffix == ".py":
        for compiled in (path.with_suffix(".pyc"), path.with_suffix(".pyo")):
            if compiled.is_file():
                compiled.unlink()


# ---------------------------------------------------------------------------------------------
# File helpers: atomic writes, backups, folders


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.fixative-tmp")
    with open(str(temporary), "wb") as handle:
        handle.write(data)
    os.chmod(str(temporary), mode)
    os.replace(str(temporary), str(path))


def backup_path(path: Path) -> Path:
    """A free ``<name>.fixative-backup-<timestamp>[-N]`` beside ``path``."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{path.name}.fixative-backup-{stamp}"
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
        os.chmod(str(target), file_mode(target) & ~0o111)
    return target


def created_dirs(path: Path) -> list[Path]:
    """The folders mkdir -p would create for ``path``, outermost first (uninstall removes them
    again when they are empty, so an install leaves no trace)."""
    missing = []
    current = path
    while not current.exists() and current != current.parent:
        missing.append(current)
        current = current.parent
    return list(reversed(missing))


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
