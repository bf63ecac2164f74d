"""`fixative models list|fetch|verify`: which encoders exist, download and check their weights."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, fetch or verify encoder weights")
    verbs = parser.add_subparsers(dest="models_command", metavar="list|fetch|verify")
    verbs.add_parser("list", help="known encoders and whether their weights are here")
    fetch = verbs.add_parser("fetch", help="download weights into the user cache (checksummed)")
    fetch.add_argument("names", nargs="*", help="models (default: the default set)")
    verify = verbs.add_parser("verify", help="check weight files against their pinned checksums")
    verify.add_argument("names", nargs="*")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from fixative.errors import FixativeError
    from fixative.models.registry import (
        TAE_MODELS,
        available_models,
        check_model_name,
    )
    from fixative.models.weights import find_weight, search_dirs, verify
    from fixative.options import DEFAULT_MODELS

    console = Console()
    command = args.models_command or "list"
    if command == "list":
        table = Table("model", "kind", "latent space", "available", "file")
        for row in available_models():
            default = " (default)" if row["name"] in DEFAULT_MODELS else ""
            table.add_row(row["name"] + default, row["kind"], row["latent_space"],
                          "yes" if row["available"] else "no", row["path"] or "")
        console.print(table)
        console.print("weight folders searched: " + ", ".join(str(d) for d in search_dirs()))
        return 0
    names = [check_model_name(n) for n in (args.names or DEFAULT_MODELS)]
    failed = 0
    for name in names:
        if name not in TAE_MODELS:
            console.print(f"{name}: diffusers VAEs are fetched by diffusers on first use")
            continue
        spec = TAE_MODELS[name]
        parts = ["encoder"] + (["decoder"] if spec.decoder_pin else [])
        for part in parts:
            weight = spec.weight(part)
            try:
                path = find_weight(weight, download=(command == "fetch"))
            except FixativeError as exc:
                failed += 1
                console.print(f"[red]{weight.filename}: {exc}[/red]")
                continue
            ok = verify(path, weight)
            failed += 0 if ok else 1
            console.print(f"{weight.filename}: {path} — {'checksum ok' if ok else '[red]CHECKSUM MISMATCH[/red]'}")
    return 1 if failed else 0
