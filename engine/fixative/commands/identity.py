"""`fixative identity`: who signs the 'not for AI training' content credentials, and what they say."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("identity", help="the signing identity and creator name for content credentials",
                            description="Fixative signs a C2PA 'not for AI training' manifest into every "
                                        "protected file. It signs with your own certificate once imported, "
                                        "else with a self-signed identity made on first use.")
    verbs = parser.add_subparsers(dest="identity_command", metavar="ACTION")
    show = verbs.add_parser("show", help="what readers of your files will see (the default)")
    show.set_defaults(func=run_show)
    imported = verbs.add_parser("import", help="sign with your own certificate chain (PEM) and private key (PEM)")
    imported.add_argument("cert", metavar="CERT", help="PEM certificate chain, signing certificate first")
    imported.add_argument("key", metavar="KEY", help="PEM private key (not password-protected)")
    imported.set_defaults(func=run_import)
    settings = verbs.add_parser("set", help="the creator name and contact URL written into the credentials")
    settings.add_argument("--creator", metavar="NAME", help="your name as the creator ('' to remove)")
    settings.add_argument("--contact", metavar="URL",
                          help="where to ask about AI use, e.g. a licence page or mailto: ('' to remove)")
    settings.set_defaults(func=run_set)
    reset = verbs.add_parser("reset", help="forget the current identity and make a new self-signed one")
    reset.set_defaults(func=run_reset)
    parser.set_defaults(func=run_show)


def run_show(args: argparse.Namespace) -> int:
    from fixative import paths
    from fixative.identity import UNTRUSTED_NOTE, load_identity, load_settings

    identity = load_identity(create=True)
    assert identity is not None
    settings = load_settings()
    print(f"signer:      {identity.signer_name()}")
    print(f"issued by:   {identity.issuer_name()}")
    print(f"kind:        {identity.kind} ({identity.algorithm}), valid until {identity.not_after():%Y-%m-%d}")
    print(f"creator:     {settings.creator or '(not set: fixative identity set --creator NAME)'}")
    print(f"contact:     {settings.contact or '(not set: fixative identity set --contact URL)'}")
    print(f"stored in:   {paths.identity_dir()} (readable only by you)")
    if identity.kind == "self-signed":
        print(f"readers see: {UNTRUSTED_NOTE}")
    else:
        print("readers see: your certificate's name if its issuer is on the reader's C2PA trust list, "
              "else 'unrecognised signer'.")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from fixative.identity import import_identity

    identity = import_identity(args.cert, args.key)
    print(f"fixative: now signing as {identity.signer_name()} (issued by {identity.issuer_name()})")
    return 0


def run_set(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from fixative.errors import BadOptions
    from fixative.identity import load_settings, save_settings

    if args.creator is None and args.contact is None:
        raise BadOptions("give --creator NAME and/or --contact URL")
    settings = load_settings()
    if args.creator is not None:
        settings = replace(settings, creator=args.creator.strip() or None)
    if args.contact is not None:
        contact = args.contact.strip() or None
        if contact and ":" not in contact:
            raise BadOptions(f"--contact {contact!r}: give a URL such as https://example.org/ai-policy "
                             "or mailto:me@example.org")
        settings = replace(settings, contact=contact)
    path = save_settings(settings)
    print(f"fixative: creator {settings.creator or '(none)'}, contact {settings.contact or '(none)'} ({path})")
    return 0


def run_reset(args: argparse.Namespace) -> int:
    from fixative.identity import reset_identity

    identity = reset_identity()
    print(f"fixative: new self-signed identity {identity.signer_name()}")
    return 0
