"""`fixative options-schema`: print the option schema (SCHEMA) as JSON, the same as /v1/info's."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("options-schema", help="print every protection option as JSON (for front ends)",
                            description="Print SCHEMA: every option's kind, label, help, default and "
                                        "choices, as the plug-ins and /v1/info use it.")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json

    from fixative.options import options_schema

    print(json.dumps(options_schema(), indent=2, ensure_ascii=False))
    return 0
