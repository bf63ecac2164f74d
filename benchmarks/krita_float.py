"""Seconds and peak memory of the Krita plug-in's float pixel conversion (issue 14, item 6).

Runs ``pixels.krita_to_png`` and ``pixels.png_to_krita`` on a float RGBA layer with plain CPython
(Krita's interpreter has no numpy either), each in a fresh child process so its peak resident
memory (ru_maxrss) is the conversion's own. ``--pixels-module FILE`` measures another version
of pixels.py (e.g. the one before this change: ``git show main:plugins/krita/fixative_krita/pixels.py``).

    python benchmarks/krita_float.py --size 4096 --depth F32 --linear
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import resource
import struct
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_MODULE = Path(__file__).resolve().parents[1] / "plugins" / "krita" / "fixative_krita" / "pixels.py"


def load_pixels(path: str):
    spec = importlib.util.spec_from_file_location("bench_pixels", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def float_layer(size: int, depth: str) -> bytes:
    """A size² RGBA float layer: a ramp in 0..1.2 (some HDR values), alpha 1 (built in bulk)."""
    code = {"F32": "f", "F16": "e"}[depth]
    row = struct.pack(f"<{4 * size}{code}", *[(x % 4 == 3) or (x // 4) * 1.2 / size for x in range(4 * size)])
    return row * size


def measure(args: argparse.Namespace) -> dict:
    """In a child: build the layer, time both directions, report peak RSS above the start."""
    pixels = load_pixels(args.pixels_module)
    raw = float_layer(args.size, args.depth)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    encoded = pixels.krita_to_png(raw, args.depth, args.linear)
    forward = time.perf_counter() - started
    after_forward = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    changed = bytearray(encoded.samples)
    changed[1::8] = bytes((value + 3) & 0xFF for value in changed[1::8])  # the engine's small change
    started = time.perf_counter()
    back = pixels.png_to_krita(bytes(changed), encoded, raw, args.depth, args.linear)
    backward = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    assert len(back) == len(raw)
    return {"size": args.size, "depth": args.depth, "linear": args.linear,
            "layer_mib": round(len(raw) / 2**20, 1), "to_png_s": round(forward, 2),
            "from_png_s": round(backward, 2), "to_png_peak_extra_mib": round((after_forward - base) / 1024, 1),
            "peak_extra_mib": round((peak - base) / 1024, 1), "module": args.pixels_module}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--depth", choices=("F32", "F16"), default="F32")
    parser.add_argument("--linear", action="store_true", help="a linear-light profile (sRGB curve applied)")
    parser.add_argument("--pixels-module", default=str(DEFAULT_MODULE))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args)))
        return
    command = [sys.executable, __file__, "--child", "--size", str(args.size), "--depth", args.depth,
               "--pixels-module", args.pixels_module] + (["--linear"] if args.linear else [])
    result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    for key, value in result.items():
        print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
