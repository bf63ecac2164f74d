"""Run a command inside a fresh Linux network namespace that has only loopback.

Why: Ray binds and talks on every non-loopback address it finds; inside a namespace whose only
interface is ``lo`` a local Ray cluster lives entirely on 127.0.0.1. Needs root and ``ip netns``.

    python tests/helpers/netns.py -- python benchmarks/batch_throughput.py
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence


def unavailable_reason() -> str | None:
    """None when namespaces can be made here, else why not (for pytest.skip)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces are Linux-only"
    if os.geteuid() != 0:
        return "creating a network namespace needs root"
    if not shutil.which("ip"):
        return "the `ip` command (iproute2) is missing"
    name = f"fxprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def _pids_in(name: str) -> list[int]:
    listed = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    return [int(p) for p in listed.stdout.split() if p.isdigit()]


def _end_processes(name: str, grace_s: float = 10.0,
                   signals: Sequence[int] = (signal.SIGTERM, signal.SIGKILL)) -> None:
    """Processes we started in the namespace (Ray's raylet, GCS, workers) that outlived their driver:
    SIGTERM each by pid, then SIGKILL what is left, so the namespace can be deleted."""
    for sig in signals:
        pids = _pids_in(name)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and _pids_in(name):
            time.sleep(0.2)


@contextlib.contextmanager
def network_namespace(prefix: str = "fixative") -> Iterator[str]:
    """A namespace with loopback up, unique per call; removed (with its processes) afterwards."""
    name = f"{prefix}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    _ip("netns", "add", name)
    try:
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        yield name
    finally:
        _end_processes(name)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def linked_namespaces(prefix: str = "fixative", addresses: tuple[str, str] = ("10.213.7.1", "10.213.7.2"),
                      prefix_len: int = 24) -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair, as two machines on one private network.

    The pair is made inside the namespaces (never in the caller's), each end gets one of
    ``addresses``; loopback is up in both. Afterwards their processes are ended by pid and both
    namespaces (with the veth pair in them) are deleted, also when setting them up failed."""
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
    names = (f"{prefix}-a-{tag}", f"{prefix}-b-{tag}")
    made: list[str] = []
    try:
        for name in names:
            _ip("netns", "add", name)
            made.append(name)
            _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
        _ip("netns", "exec", names[0], "ip", "link", "add", "fxveth0", "type", "veth", "peer", "name", "fxveth1",
            "netns", names[1])
        for name, device, address in zip(names, ("fxveth0", "fxveth1"), addresses, strict=True):
            _ip("netns", "exec", name, "ip", "addr", "add", f"{address}/{prefix_len}", "dev", device)
            _ip("netns", "exec", name, "ip", "link", "set", device, "up")
        yield names
    finally:
        for name in made:
            _end_processes(name)
        if made:  # deleting one end's namespace removes the pair; say so explicitly anyway
            subprocess.run(["ip", "netns", "exec", made[0], "ip", "link", "del", "fxveth0"], capture_output=True)
        for name in made:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


def kill_processes(name: str) -> None:
    """SIGKILL every process in namespace ``name`` (one we made) by pid: a machine that dies."""
    _end_processes(name, grace_s=10.0, signals=(signal.SIGKILL,))


def exec_argv(name: str, argv: Sequence[str]) -> list[str]:
    """The argv that runs ``argv`` inside namespace ``name``."""
    return ["ip", "netns", "exec", name, *argv]


def run_in(name: str, argv: Sequence[str], *, env: dict[str, str] | None = None, timeout: float | None = None,
           cwd: str | None = None) -> subprocess.CompletedProcess:
    """Run ``argv`` inside the namespace, capturing its output."""
    full_env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", **(env or {})}
    return subprocess.run(exec_argv(name, argv), env=full_env, cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def main(argv: list[str]) -> int:
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        print("usage: python tests/helpers/netns.py -- COMMAND [ARGS...]", file=sys.stderr)
        return 2
    reason = unavailable_reason()
    if reason:
        print(f"netns: {reason}", file=sys.stderr)
        return 2
    with network_namespace() as name:
        env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
        return subprocess.run(exec_argv(name, argv), env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
