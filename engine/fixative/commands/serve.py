"""`fixative serve`: the local engine the editor plug-ins talk to (see docs/engine-api.md)."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve", help="run the local engine for the GIMP/Krita plug-ins",
        description="Run the local engine: loopback HTTP API, one job at a time, discovery file "
                    "engine.json in the state folder. Exits 0 at once if an engine is already running.")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port; 0 = a free one (default)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="allow a non-loopback --host (other machines can then reach the engine); "
                             "needs --allowed-host and TLS (or --insecure-remote)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                        help="Host header value accepted besides loopback (name or name:port; repeatable)")
    parser.add_argument("--ssl-certfile", default=None, metavar="PEM", help="TLS certificate (serve https)")
    parser.add_argument("--ssl-keyfile", default=None, metavar="PEM", help="TLS private key")
    parser.add_argument("--insecure-remote", action="store_true",
                        help="with --allow-remote: serve plain HTTP (token in clear) instead of refusing")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="browser Origin allowed to call the API (repeatable; none by default)")
    parser.add_argument("--idle-exit", type=float, default=None, metavar="MINUTES",
                        help="exit after this many minutes without jobs or requests")
    parser.add_argument("--max-queue", type=int, default=16, help="jobs queued or running at once (16)")
    parser.add_argument("--max-pixels", type=int, default=100_000_000,
                        help="largest image in pixels, checked from the header (100000000)")
    parser.add_argument("--max-body-mb", type=float, default=None,
                        help="largest request body in MiB (default: the largest 16-bit RGBA image --max-pixels "
                             "allows plus 1%% and 16 MiB; 787 MiB at the default)")
    parser.add_argument("--max-jobs", type=int, default=256,
                        help="job records kept, finished ones included; the oldest finished is dropped (256)")
    parser.add_argument("--max-connections", type=int, default=100,
                        help="open connections at once; more get 503 (100)")
    parser.add_argument("--header-timeout", type=float, default=10.0,
                        help="seconds a client has to send its request headers (10)")
    parser.add_argument("--min-upload-rate", type=float, default=8.0, metavar="KIB_PER_S",
                        help="slowest average upload accepted once a body takes longer than --header-timeout, "
                             "in KiB/s (8)")
    parser.add_argument("--lease-seconds", type=float, default=30.0,
                        help="cancel a job whose client has not polled for this long (30)")
    parser.add_argument("--result-ttl", type=float, default=600.0,
                        help="seconds a finished job's result is kept (600)")
    parser.add_argument("--pipeline", default=None,
                        help="diffusers pipeline (repo id or folder) used by all jobs for targets/anchors")
    parser.add_argument("--allow-model", action="append", default=[], metavar="NAME",
                        help="model jobs may use besides the built-in names, e.g. vae:/path/to/vae (repeatable)")
    parser.add_argument("--no-preload", action="store_true",
                        help="do not load the default encoders at start (first job is slower)")
    parser.add_argument("--log-level", default="warning",
                        choices=["critical", "error", "warning", "info", "debug"])
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from fixative.errors import FixativeError
    from fixative.server.config import ServerConfig
    from fixative.server.process import serve

    checks = [(args.port < 0 or args.port > 65535, "--port must be 0–65535"),
              (args.max_queue < 1, "--max-queue must be at least 1"),
              (args.max_pixels < 1, "--max-pixels must be positive"),
              (args.max_body_mb is not None and args.max_body_mb <= 0, "--max-body-mb must be positive"),
              (args.max_jobs < args.max_queue, "--max-jobs must be at least --max-queue"),
              (args.max_connections < 1, "--max-connections must be at least 1"),
              (args.header_timeout <= 0, "--header-timeout must be positive"),
              (args.min_upload_rate < 0, "--min-upload-rate must not be negative"),
              (args.lease_seconds <= 0, "--lease-seconds must be positive"),
              (args.result_ttl <= 0, "--result-ttl must be positive"),
              (args.idle_exit is not None and args.idle_exit <= 0, "--idle-exit must be positive")]
    for failed, message in checks:
        if failed:
            raise FixativeError(message)
    logging.basicConfig(level=args.log_level.upper(), format="fixative serve: %(levelname)s %(message)s")
    config = ServerConfig(
        host=args.host, port=args.port, allow_remote=args.allow_remote, extra_hosts=list(args.allowed_host),
        insecure_remote=args.insecure_remote, ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile,
        allowed_origins=list(args.allow_origin), max_queue=args.max_queue, max_pixels=args.max_pixels,
        max_body_bytes=0 if args.max_body_mb is None else int(args.max_body_mb * 1024 * 1024),
        max_jobs=args.max_jobs, lease_seconds=args.lease_seconds,
        result_ttl=args.result_ttl, idle_exit_s=None if args.idle_exit is None else args.idle_exit * 60,
        max_connections=args.max_connections, header_timeout=args.header_timeout,
        min_upload_rate=args.min_upload_rate * 1024,
        preload=not args.no_preload, pipeline=args.pipeline, allowed_models=list(args.allow_model))
    return serve(config, log_level=args.log_level)
