"""`fixative doctor`: what this machine offers and what is installed (device, torch, models, plug-ins)."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check device, torch, model weights, engine and plug-in installs")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform

    import torch

    from fixative import __version__, paths
    from fixative.device import pick_device
    from fixative.models.registry import available_models

    device, dtype = pick_device("auto")
    manifest = paths.data_dir() / "install-manifest.json"
    plugins = []
    if manifest.exists():
        try:
            data = json.loads(manifest.read_text())
            plugins = sorted({entry.get("editor", "?") for entry in data.get("files", []) if isinstance(entry, dict)})
        except (OSError, ValueError):
            plugins = ["(manifest unreadable)"]
    engine = None
    if paths.discovery_file().exists():
        try:
            engine = json.loads(paths.discovery_file().read_text()).get("url")
        except (OSError, ValueError):
            engine = "(discovery file unreadable)"
    report = {
        "fixative": __version__, "python": platform.python_version(), "torch": torch.__version__,
        "device": str(device), "dtype": str(dtype).replace("torch.", ""),
        "cuda": torch.cuda.is_available(), "models": available_models(),
        "config_dir": str(paths.config_dir()), "state_dir": str(paths.state_dir()),
        "cache_dir": str(paths.cache_dir()), "engine": engine, "plugins_installed": plugins,
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    for key, value in report.items():
        if key == "models":
            for model in value:
                print(f"model {model['name']:10s} {'available' if model['available'] else 'missing'}"
                      f"{'  ' + model['path'] if model['path'] else ''}")
        else:
            print(f"{key:18s} {value}")
    return 0
