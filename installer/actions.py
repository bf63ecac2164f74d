"""What ``install`` and ``uninstall`` do, step by step: find the editors, plan every file, print
the plan, set up the engine (a failure there stops before any plug-in file is written), then
write and record each file in the manifest."""

from __future__ import annotations

import argparse
import os
import shutil
from pathlib import Path

from installer import kritarc
from installer.editors import EditorTarget, Layout, find_gimp, find_krita
from installer.engine_env import EnginePlan
from installer.manifest import REGULAR, InstallManifest, PlannedFile, remove_dir_if_ours
from installer.plugin_files import (
    Sources,
    plan_plugin_files,
    plan_sandbox_configs,
    plugin_config_json,
    project_version,
)
from installer.report import InstallError, Reporter


def find_targets(options: argparse.Namespace, layout: Layout,
                 sources: Sources) -> tuple[list[EditorTarget], list[str]]:
    """The editor folders to install into, and notes about the ones skipped."""
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
                               "GIMP once and quit it (it creates the folder, copying your "
                               "settings from an older GIMP), then run this again")
    if want_krita:
        targets += find_krita(layout, forced=bool(options.krita))
    usable = []
    for target in targets:
        if sources.has(target.editor, target.version):
            usable.append(target)
        else:
            notes.append(f"{target.title}: this source tree has no plug-in for it yet: skipped.")
    if not usable:
        waiting = "".join("\n  " + note for note in notes)
        raise InstallError("no editor to install into: no GIMP 2.10/3.x or Krita user folder was "
                           f"found for {layout.platform} (home {layout.home}). Start the editor "
                           f"once, or pass --krita{waiting}")
    return usable, notes


def install(options: argparse.Namespace, layout: Layout, report: Reporter) -> int:
    source_root = Path(options.source).resolve()
    sources = Sources(source_root)
    version = project_version(source_root)
    manifest = InstallManifest(layout.manifest_file)
    dry_run = bool(options.dry_run)
    targets, notes = find_targets(options, layout, sources)

    engine = EnginePlan(options, layout, source_root, version, manifest)
    planned = [manifest.plan(item) for item in plan_plugin_files(targets, sources)]
    config = manifest.plan(PlannedFile(layout.plugin_config_file,
                                       plugin_config_json(engine.command, version), REGULAR,
                                       "config"))
    sandbox_configs = [manifest.plan(item) for item in
                       plan_sandbox_configs(targets, layout, engine.command, version)]
    stale = manifest.stale_files([t.component for t in targets],
                                 [p.dest for p in planned + sandbox_configs])

    report.say("Fixative {} installer{} ({}, home {})".format(
        version, " - dry run, nothing is written" if dry_run else "", layout.platform, layout.home))
    for note in notes:
        report.say("Note: " + note)
    engine.describe(report)
    for target in targets:
        report.say(f"{target.title} [{target.reason}]")
        for item in planned:
            if item.component == target.component:
                extra = " (changed by someone else: backed up first)" if item.action == "replace" \
                    else ""
                report.say(f"  {item.words} {item.dest}{extra}")
        if target.kritarc is not None:
            report.say(f"  enable  {kritarc.KEY} in {target.kritarc} [{kritarc.SECTION}]")
    for entry in stale:
        report.say("  remove  {} (no longer part of the plug-in)".format(entry["path"]))
    report.say(f"Plug-in config: {config.words.strip()} {config.dest}")
    for item in sandbox_configs:
        report.say(f"  {item.words} {item.dest} (inside the Flatpak sandbox)")
    if sandbox_configs:
        apps = " ".join(sorted({t.sandbox.name for t in targets if t.sandbox is not None}))
        report.say("Note: a Flatpak editor can start the engine only if allowed to: run "
                   f"'flatpak override --user --talk-name=org.freedesktop.Flatpak {apps}' "
                   "(one app id per command), or start 'fixative serve' yourself.")
    report.say(f"Manifest: {manifest.path}")
    if dry_run:
        return 0

    report.say("")
    manifest.version = version
    engine.record_in(manifest)
    try:
        engine.run(report)
        for item in planned + [config] + sandbox_configs:
            manifest.write(item, report)
        for entry in stale:
            manifest.remove_file(entry, report, dry_run=False)
        for target in targets:
            if target.kritarc is not None:
                kritarc.enable_plugin(target, manifest, report)
    finally:
        manifest.save()
    if report.changes == 0:
        report.say("Everything was already installed; nothing changed.")
    else:
        report.say("Done. Restart GIMP/Krita to load the plug-in.")
        if any(t.editor == "krita" for t in targets):
            report.say("Krita: if it was running, quit it before restarting; it rewrites kritarc "
                       "on exit. The plug-in is listed under Settings > Configure Krita > "
                       "Python Plugin Manager.")
    return 0


def uninstall(options: argparse.Namespace, layout: Layout, report: Reporter) -> int:
    manifest = InstallManifest(layout.manifest_file)
    dry_run = bool(options.dry_run)
    if not manifest.exists:
        report.say(f"Nothing to uninstall: no manifest at {manifest.path}")
        return 0
    mode = " - dry run" if dry_run else ""
    report.say(f"Uninstalling Fixative {manifest.version}{mode} (manifest {manifest.path})")
    for entry in list(manifest.files):
        manifest.remove_file(entry, report, dry_run)
    for entry in list(manifest.ini):
        kritarc.restore(entry, report, dry_run)
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
