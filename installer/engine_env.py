"""The engine's Python: its own virtual environment (the default) or the current one
(--use-current-env, and always for ``fixative install-plugins``), pip install of the checkout,
and the default models (``fixative models fetch``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from installer.editors import Layout
from installer.manifest import InstallManifest
from installer.report import InstallError, Reporter

ENGINE_ARGS = ["-m", "fixative.cli", "serve", "--idle-exit", "30"]


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
    """Which Python runs the engine and what it still needs (venv, pip install, models)."""

    def __init__(self, options: argparse.Namespace, layout: Layout, source_root: Path,
                 version: str, manifest: InstallManifest) -> None:
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

    def record_in(self, manifest: InstallManifest) -> None:
        """Note the engine's Python in the manifest; a venv an earlier run created stays listed
        (so uninstall removes it) even when this run uses another."""
        other_venvs = set(manifest.engine.get("other_venvs", []))
        earlier = manifest.engine.get("venv")
        if earlier and manifest.engine.get("created_venv") and earlier != str(self.venv):
            other_venvs.add(earlier)
        other_venvs.discard(str(self.venv))
        manifest.engine = {"python": str(self.python),
                           "venv": str(self.venv) if self.venv else None,
                           "created_venv": bool(self.create_venv or self.created_before),
                           "other_venvs": sorted(other_venvs)}
        if self.create_venv and self.venv is not None:
            manifest.add_created_dirs(self.venv.parent, "engine")
