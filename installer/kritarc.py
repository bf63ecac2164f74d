"""kritarc: the Qt ini file Krita rewrites on exit. Change one key, keep every other byte."""

from __future__ import annotations

from pathlib import Path

from installer.editors import EditorTarget
from installer.manifest import InstallManifest, file_mode, write_atomically
from installer.report import Reporter

KRITA_PLUGIN = "fixative_krita"
SECTION = "python"
KEY = "enable_" + KRITA_PLUGIN


def read_text_keep_bytes(path: Path) -> str:
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


def enable_plugin(target: EditorTarget, manifest: InstallManifest, report: Reporter) -> None:
    """Set enable_fixative_krita=true in the target's kritarc, remembering the old value."""
    assert target.kritarc is not None
    path = target.kritarc
    text = read_text_keep_bytes(path) if path.is_file() else ""
    previous = ini_get(text, SECTION, KEY)
    recorded = [e for e in manifest.ini if e["path"] == str(path) and e["key"] == KEY]
    if previous != "true":
        if not path.exists():
            manifest.add_created_dirs(path.parent, target.component)
        updated = ini_set(text, SECTION, KEY, "true")
        write_atomically(path, updated.encode("utf-8", errors="surrogateescape"),
                         file_mode(path) if path.exists() else 0o600)
        report.change("  enabled {} in {}{}".format(KRITA_PLUGIN, path,
                                                " (it was disabled)" if previous else ""))
    if not recorded:
        manifest.ini.append({"path": str(path), "section": SECTION, "key": KEY,
                             "value": "true", "previous": previous,
                             "created_file": not text, "component": target.component})


def restore(entry: dict, report: Reporter, dry_run: bool) -> None:
    """Give a recorded key its old value back, unless the user changed it since."""
    path = Path(entry["path"])
    if not path.is_file():
        return
    text = read_text_keep_bytes(path)
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
