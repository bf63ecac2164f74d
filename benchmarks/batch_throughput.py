"""Batch throughput: images per minute in-process and on Ray with 1 and 2 (or more) CPU workers.

    python benchmarks/batch_throughput.py                   # re-runs itself in a loopback-only netns
    python benchmarks/batch_throughput.py --images 4 --size 48 --steps 2 --no-in-process  # small (CI)
    python benchmarks/batch_throughput.py --nodes            # 1 node vs 2 nodes (`ray start`, see below)
    python -m benchmarks.run --size small|full   # includes it through section()

``--nodes``: a real two-node cluster, as tests/test_batch_ray_cluster.py makes it: two network
namespaces joined by a veth pair, ``ray start --head`` in one and ``ray start --address`` in the
other (clean environments, no weights on the nodes: the driver ships them), one CPU and one worker
per node. The batch runs once with the head alone (1 node) and once with both (2 nodes); the
scaling factor is rate(2 nodes) / rate(1 node). Both "machines" share this host's cores.

Why a network namespace: a local Ray cluster binds every address it finds; inside a fresh
namespace (root + ``ip netns``) it can only use 127.0.0.1. ``--host-network`` skips that on a
machine of your own. "Steady" throughput counts from when every worker has its models loaded;
scaling efficiency = rate(N workers) / (N × rate(1 worker)). "s/file" is a worker's mean time
per file (read + protect + encode); "busy" = the workers' summed file time / (workers × steady
time): near 100 % means the scheduler kept every worker fed, so any missing speed-up comes from
the workers themselves (cores shared with other work), not from the batch machinery.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IN_NETNS = "FIXATIVE_BENCH_IN_NETNS"
PAINTINGS = ["starry_night_van_gogh_1889.jpg", "great_wave_hokusai_1831.jpg", "the_scream_munch_1893.jpg",
             "udnie_picabia_1913.jpg", "woman_with_a_hat_matisse_1905.jpg", "shipwreck_turner_1805.jpg"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--size", type=int, default=64, help="square crop size in pixels")
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--no-in-process", action="store_true", help="skip the in-process baseline")
    parser.add_argument("--art", default=str(REPO.parent / "shared" / "art"))
    parser.add_argument("--models-dir", default=str(REPO.parent / "shared" / "models" / "taesd"))
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--host-network", action="store_true",
                        help="run Ray in this network namespace (your own machine only)")
    parser.add_argument("--nodes", action="store_true",
                        help="1 node vs 2 nodes: a two-node `ray start` cluster in two linked namespaces")
    parser.add_argument("--address", help="join this Ray cluster (HOST:6379) instead of starting a local one")
    return parser.parse_args(argv)


def reexec_in_netns(argv: list[str]) -> int:
    sys.path.insert(0, str(REPO))
    from tests.helpers import netns

    reason = netns.unavailable_reason()
    if reason:
        print(f"batch_throughput: cannot make a network namespace ({reason}); run as root, or pass "
              "--host-network on a machine of your own", file=sys.stderr)
        return 2
    env = {**os.environ, IN_NETNS: "1", "RAY_USAGE_STATS_ENABLED": "0"}
    with netns.network_namespace("fxbench") as name:
        return subprocess.run(netns.exec_argv(name, [sys.executable, __file__, *argv]), env=env).returncode


HEAD_IP, WORKER_IP = "10.213.7.1", "10.213.7.2"


def compare_nodes(args: argparse.Namespace, raw: list[str]) -> int:
    """Start the head, measure with 1 worker; add a worker node, measure with 2 (one per node)."""
    sys.path.insert(0, str(REPO))
    from tests.helpers import netns, ray_cluster

    reason = ray_cluster.unavailable_reason()
    if reason:
        print(f"batch_throughput: cannot make a two-node cluster here ({reason})", file=sys.stderr)
        return 2
    inner = [a for a in raw if a != "--nodes"]
    inner = [a for i, a in enumerate(inner) if a != "--json" and (i == 0 or inner[i - 1] != "--json")]
    runs: dict = {}
    with tempfile.TemporaryDirectory(prefix="fxbn-") as tmp, \
            netns.linked_namespaces("fxbn", (HEAD_IP, WORKER_IP)) as (head_ns, worker_ns):
        root = Path(tmp)
        address = ray_cluster.start_head(head_ns, HEAD_IP, root, cpus=1)
        driver_env = {**ray_cluster.node_env(root / "driver-home"), IN_NETNS: "1",
                      "FIXATIVE_MODEL_DIR": args.models_dir, "FIXATIVE_OFFLINE": "1",
                      "PYTHONPATH": os.pathsep.join([str(REPO / "engine"), str(REPO)])}
        for nodes in (1, 2):
            if nodes == 2:
                ray_cluster.start_worker(worker_ns, WORKER_IP, address, root, cpus=1)
            alive = ray_cluster.wait_for_nodes(head_ns, address, nodes, root)
            out = root / f"nodes{nodes}.json"
            argv = [sys.executable, __file__, *inner, "--no-in-process", "--address", address,
                    "--workers", str(nodes), "--json", str(out)]
            done = subprocess.run(netns.exec_argv(head_ns, argv), env=driver_env)
            if done.returncode != 0 or not out.exists():
                print(f"batch_throughput: the {nodes}-node run failed ({done.returncode})", file=sys.stderr)
                return 1
            measured = json.loads(out.read_text())
            runs[f"{nodes} node(s) × 1 worker"] = {**measured["runs"][f"ray x{nodes}"], "nodes": alive}
    one, two = runs["1 node(s) × 1 worker"], runs["2 node(s) × 1 worker"]
    factor = two["images_per_min"] / one["images_per_min"]
    print(f"\n{args.images} images of {args.size}² px, quality {args.quality}, {args.steps} steps; "
          f"`ray start` nodes in two network namespaces sharing this host's {os.cpu_count()} CPU core(s)")
    for key, run in runs.items():
        print(f"{key:<24}{run['images_per_min']:>8.2f} img/min (steady)  {run['images_per_min_incl_startup']:>8.2f} "
              f"with start-up  {run['mean_file_s']:>6.2f} s/file  busy {run['busy']:.0%}  files per node "
              f"{run['done_per_node']}")
    print(f"scaling factor 2 nodes / 1 node: {factor:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"images": args.images, "size": args.size, "steps": args.steps,
                                               "quality": args.quality, "cpus": os.cpu_count(), "runs": runs,
                                               "scaling_factor": round(factor, 3)}, indent=2))
    return 0


def make_images(folder: Path, count: int, size: int, art: Path) -> list[Path]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        with Image.open(art / PAINTINGS[i % len(PAINTINGS)]) as im:
            im = im.convert("RGB")
            left = int((im.width - size) * (0.15 + 0.1 * (i // len(PAINTINGS)) % 0.7))
            top = int((im.height - size) * 0.4)
            crop = im.crop((left, top, left + size, top + size))
        path = folder / f"bench{i:03d}.png"
        crop.save(path)
        paths.append(path)
    return paths


def timed_batch(sources: list[Path], out_dir: Path, options: dict, executor) -> dict:
    """Run one batch; time it whole and from the moment every worker was ready."""
    from fixative.batch.manifest import Manifest
    from fixative.batch.runner import BatchRunner
    from fixative.batch.work import JobSpec
    from fixative.imageio import default_output_path

    marks: dict[str, float] = {}
    original_start = executor.start

    def start(spec):
        original_start(spec)
        marks["ready"] = time.perf_counter()

    executor.start = start
    began = time.perf_counter()
    with Manifest.open(out_dir) as manifest:
        runner = BatchRunner(sources, out_dir, JobSpec(options=options), executor, manifest,
                             output_for=lambda s: default_output_path(s, out_dir))
        summary = runner.run()
    ended = time.perf_counter()
    if summary.failed:
        raise SystemExit(f"benchmark batch had failures: {summary.failures}")
    steady_s = ended - marks.get("ready", began)
    from fixative.batch.manifest import read_records

    worker_s = [r["seconds"] for r in read_records(manifest.path) if r["status"] == "done"]
    slots = getattr(executor, "workers", 0) or 1
    return {"mean_file_s": round(sum(worker_s) / max(1, len(worker_s)), 3),
            "busy": round(sum(worker_s) / (slots * steady_s), 3),
            "images": summary.done, "wall_s": round(ended - began, 2), "startup_s": round(marks["ready"] - began, 2),
            "steady_s": round(steady_s, 2), "images_per_min": round(60 * summary.done / steady_s, 2),
            "images_per_min_incl_startup": round(60 * summary.done / (ended - began), 2),
            "done_per_node": summary.done_per_node}


SIZES = {"small": ["--images", "4", "--size", "48", "--steps", "2", "--no-in-process"],
         "full": ["--images", "16", "--size", "64", "--steps", "4"]}


def section(size: str) -> str:
    """Markdown for ``python -m benchmarks.run``: this script in its own process and namespace."""
    with tempfile.TemporaryDirectory(prefix="fixative-bench-batch-") as tmp:
        out = Path(tmp) / "batch.json"
        done = subprocess.run([sys.executable, __file__, *SIZES[size], "--json", str(out)], cwd=REPO,
                              capture_output=True, text=True, timeout=1800)
        if done.returncode == 2 and "network namespace" in done.stderr:
            return f"## Batch throughput (Ray)\n\nNot measured: {done.stderr.strip()}\n"
        if done.returncode != 0 or not out.exists():
            raise RuntimeError(f"batch_throughput.py exited {done.returncode}: {done.stderr[-2000:]}")
        results = json.loads(out.read_text())
    lines = ["## Batch throughput (Ray)", "",
             f"{results['images']} crops of {results['size']}² px, TAEF2, {results['options']['quality']} quality, "
             f"{results['options']['steps']} steps, {results['cpus']} CPU(s); `fixative batch` code path "
             "(see docs/batch.md).", "",
             "| run | images/min (steady) | with start-up | s/file | workers busy | scaling efficiency |",
             "|---|---|---|---|---|---|"]
    for key, run in results["runs"].items():
        efficiency = f"{run['scaling_efficiency']:.0%}" if "scaling_efficiency" in run else ""
        lines.append(f"| {key} | {run['images_per_min']:.1f} | {run['images_per_min_incl_startup']:.1f} | "
                     f"{run['mean_file_s']:.2f} | {run['busy']:.0%} | {efficiency} |")
    if size == "full":
        lines += ["", *_nodes_section()]
    return "\n".join(lines) + "\n"


def _nodes_section() -> list[str]:
    """1 node vs 2 nodes (``--nodes``): a `ray start` cluster in two linked namespaces."""
    with tempfile.TemporaryDirectory(prefix="fixative-bench-nodes-") as tmp:
        out = Path(tmp) / "nodes.json"
        done = subprocess.run([sys.executable, __file__, "--nodes", "--images", "12", "--size", "64", "--steps", "4",
                               "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=1800)
        if done.returncode != 0 or not out.exists():
            return [f"1 node vs 2 nodes: not measured ({done.stderr.strip()[-500:]})"]
        results = json.loads(out.read_text())
    lines = [f"1 node vs 2 nodes (`ray start` in two linked network namespaces that share this host's "
             f"{results['cpus']} CPU core(s); 1 worker per node; {results['images']} crops of {results['size']}² px, "
             f"{results['steps']} steps):", "",
             "| run | images/min (steady) | with start-up | s/file | files per node |", "|---|---|---|---|---|"]
    for key, run in results["runs"].items():
        per_node = ", ".join(f"{node} {count}" for node, count in sorted(run["done_per_node"].items()))
        lines.append(f"| {key} | {run['images_per_min']:.1f} | {run['images_per_min_incl_startup']:.1f} | "
                     f"{run['mean_file_s']:.2f} | {per_node} |")
    lines += ["", f"Scaling factor 2 nodes / 1 node: {results['scaling_factor']:.2f}."]
    return lines


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    args = parse_args(raw)
    if args.nodes:
        return compare_nodes(args, raw)
    if not args.host_network and os.environ.get(IN_NETNS) != "1":
        return reexec_in_netns(raw)
    os.environ.setdefault("FIXATIVE_MODEL_DIR", args.models_dir)
    os.environ.setdefault("FIXATIVE_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    counts = [int(c) for c in args.workers.split(",") if c.strip()]
    options = {"models": ["taef2"], "quality": args.quality, "steps": args.steps, "device": args.device}
    results: dict = {"images": args.images, "size": args.size, "options": options, "cpus": os.cpu_count(),
                     "runs": {}}
    with tempfile.TemporaryDirectory(prefix="fixative-bench-") as tmp:
        root = Path(tmp)
        sources = make_images(root / "in", args.images, args.size, Path(args.art))
        if not args.no_in_process:
            import torch

            from fixative.batch.runner import InProcessExecutor

            for label, threads in ((f"in-process ({torch.get_num_threads()} threads)", None),
                                   ("in-process (1 thread)", 1)):
                folder = root / f"out-inproc-{threads or 'default'}"
                results["runs"][label] = timed_batch(sources, folder, options, InProcessExecutor(threads=threads))
                print(f"{label}: {results['runs'][label]}", flush=True)
        import ray

        from fixative.batch.ray_executor import RayExecutor

        if args.address:
            ray.init(address=args.address, logging_level="warning")
        else:
            ray.init(num_cpus=int(max(counts) * max(1.0, args.cpus_per_worker)), include_dashboard=False,
                     _node_ip_address="127.0.0.1", logging_level="warning")
        try:
            for count in counts:
                executor = RayExecutor(workers=count, gpus_per_worker=args.gpus_per_worker,
                                       cpus_per_worker=args.cpus_per_worker)
                key = f"ray x{count}"
                results["runs"][key] = timed_batch(sources, root / f"out-ray{count}", options, executor)
                print(f"{key}: {results['runs'][key]}", flush=True)
        finally:
            ray.shutdown()
    one = results["runs"].get("ray x1")
    print(f"\n{args.images} images of {args.size}² px, quality {args.quality}, {args.steps} steps, "
          f"{os.cpu_count()} CPU(s)")
    print(f"{'run':<28}{'img/min (steady)':>18}{'img/min (with startup)':>24}{'s/file':>8}{'busy':>6}"
          f"{'efficiency':>12}")
    for key, run in results["runs"].items():
        efficiency = ""
        if one and key.startswith("ray x"):
            count = int(key.split("x")[1])
            value = run["images_per_min"] / (count * one["images_per_min"])
            results["runs"][key]["scaling_efficiency"] = round(value, 3)
            efficiency = f"{value:.0%}"
        print(f"{key:<28}{run['images_per_min']:>18.2f}{run['images_per_min_incl_startup']:>24.2f}"
              f"{run['mean_file_s']:>8.2f}{run['busy']:>6.0%}{efficiency:>12}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
