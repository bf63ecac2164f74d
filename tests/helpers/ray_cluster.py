"""Ray nodes started with `ray start` inside network namespaces (see netns.linked_namespaces).

Each node gets a clean environment: PATH, an empty HOME and PYTHONPATH to this checkout's engine
(standing in for the installed wheel), nothing else of ours: no FIXATIVE_MODEL_DIR, no
FIXATIVE_OFFLINE. Each node keeps its own ``--temp-dir``, so nothing is written to /tmp/ray (where
a bare ``ray.init()`` elsewhere on this machine would find it). The namespaces' owner ends the
processes by pid; never ``ray stop``, which ends every Ray process of the machine.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import netns

REPO = Path(__file__).resolve().parents[2]
RAY_BIN = Path(sys.executable).parent / "ray"


def unavailable_reason() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "ray is not installed (pip install 'ray[default]')"
    if not RAY_BIN.exists():
        return f"the `ray` command is not beside {sys.executable}"
    return netns.unavailable_reason()


def node_env(home: Path) -> dict[str, str]:
    """A node's whole environment. 1 s health checks: a killed node is declared dead in about 5 s."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO / "engine"), "RAY_USAGE_STATS_ENABLED": "0",
            "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "5"}


def start_head(namespace: str, ip: str, root: Path, cpus: int, timeout: float = 150) -> str:
    """`ray start --head` in ``namespace``; returns the cluster address (ip:6379)."""
    _ray_start(namespace, ["--head", "--node-ip-address", ip, "--port", "6379", "--include-dashboard=false",
                           "--num-cpus", str(cpus), "--temp-dir", str(root / "ray-head")], root / "head-home", timeout)
    return f"{ip}:6379"


def start_worker(namespace: str, ip: str, address: str, root: Path, cpus: int, timeout: float = 150) -> None:
    """`ray start --address HEAD:6379` in ``namespace``."""
    _ray_start(namespace, ["--address", address, "--node-ip-address", ip, "--num-cpus", str(cpus),
                           "--temp-dir", str(root / f"ray-worker-{ip}")], root / f"worker-home-{ip}", timeout)


def _ray_start(namespace: str, args: list[str], home: Path, timeout: float) -> None:
    done = subprocess.run(netns.exec_argv(namespace, [str(RAY_BIN), "start", "--disable-usage-stats", *args]),
                          env=node_env(home), capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"ray start {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def wait_for_nodes(namespace: str, address: str, count: int, root: Path, timeout: float = 150) -> list[str]:
    """The IPs of the alive nodes once ``count`` have joined (or whatever joined within a minute)."""
    script = ("import json, ray, time\n"
              f"ray.init(address={address!r}, logging_level='warning')\n"
              "deadline = time.monotonic() + 60\n"
              f"while len([n for n in ray.nodes() if n['Alive']]) < {count} and time.monotonic() < deadline:\n"
              "    time.sleep(0.5)\n"
              "print(json.dumps(sorted(n['NodeManagerAddress'] for n in ray.nodes() if n['Alive'])))\n")
    done = subprocess.run(netns.exec_argv(namespace, [sys.executable, "-c", script]), env=node_env(root / "probe"),
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"could not list the Ray nodes: {done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
