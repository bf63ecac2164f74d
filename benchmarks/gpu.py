"""GPU timing of protect() with an SD-VAE-sized encoder, for a machine with a CUDA GPU.

``python -m benchmarks.gpu --out benchmarks/results/gpu.json`` builds a diffusers ``AutoencoderKL``
with the Stable Diffusion VAE's configuration and random weights (timing does not depend on the
weights), saves it to a temporary folder, and protects 512², 1024² and 2048² images with the default
quality on CUDA (bf16). For each size it reports seconds per image (after a warm-up run) and the
achieved TFLOP/s: FLOPs counted by ``torch.utils.flop_counter`` over a second, identical run
(convolutions, matmuls and attention, forward and backward) divided by the timed run's wall time.
``--device cpu --tiny`` is a smoke test of the same code with a toy VAE (CI).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

SD_VAE_CONFIG = {
    "in_channels": 3, "out_channels": 3, "latent_channels": 4, "layers_per_block": 2, "norm_num_groups": 32,
    "block_out_channels": [128, 256, 512, 512], "sample_size": 512,
    "down_block_types": ["DownEncoderBlock2D"] * 4, "up_block_types": ["UpDecoderBlock2D"] * 4,
}
TINY_VAE_CONFIG = {**SD_VAE_CONFIG, "layers_per_block": 1, "norm_num_groups": 4, "block_out_channels": [8, 16],
                   "down_block_types": ["DownEncoderBlock2D"] * 2, "up_block_types": ["UpDecoderBlock2D"] * 2,
                   "sample_size": 64}


def build_vae_folder(config: dict, folder: Path) -> int:
    """Save a randomly initialised AutoencoderKL to ``folder``; returns its encoder's parameter count."""
    import torch
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(**config)
    vae.save_pretrained(folder)
    return sum(p.numel() for p in vae.encoder.parameters()) + sum(p.numel() for p in vae.quant_conv.parameters())


def test_image(side: int):  # noqa: ANN201 - numpy array
    """A deterministic textured RGB image (a painting is not needed for timing)."""
    import numpy as np

    y, x = np.mgrid[0:side, 0:side].astype(np.float32) / side
    rng = np.random.default_rng(side)
    image = np.stack([0.5 + 0.4 * np.sin(9 * x + 3 * y), 0.5 + 0.4 * np.cos(7 * y), 0.5 + 0.3 * np.sin(5 * (x + y))], 2)
    image += rng.normal(0, 0.05, image.shape)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def synchronise(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def time_sizes(model_name: str, device: str, sizes: list[int], quality: str, steps: int | None) -> list[dict]:
    from torch.utils.flop_counter import FlopCounterMode

    from fixative import protect

    rows = []
    for side in sizes:
        image = test_image(side)
        options = {"models": [model_name], "quality": quality, "device": device, "seed": 0}
        if steps is not None:
            options["steps"] = steps
        protect(image, {**options, "steps": 2})  # warm-up: kernels, allocator, model load
        synchronise(device)
        started = time.perf_counter()
        result = protect(image, options)
        synchronise(device)
        seconds = time.perf_counter() - started
        counter = FlopCounterMode(display=False)
        with counter:
            protect(image, options)
        flops = counter.get_total_flops()
        rows.append({"side": side, "seconds": round(seconds, 3), "steps": result.stats.steps,
                     "tflop": round(flops / 1e12, 6), "tflops": round(flops / seconds / 1e12, 6),
                     "dtype": result.stats.dtype})
        print(f"{side}²: {seconds:.2f} s/image, {flops / 1e12:.2f} TFLOP, {flops / seconds / 1e12:.1f} TFLOP/s",
              flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy VAE and 64² image (smoke test)")
    parser.add_argument("--sizes", default=None, help="comma-separated sides (default 512,1024,2048; tiny: 64)")
    parser.add_argument("--quality", default="default", choices=["fast", "default", "max"])
    parser.add_argument("--steps", type=int, default=None, help="override the quality's step count")
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device here; use --device cpu --tiny for a smoke test", file=sys.stderr)
        return 2
    os.environ.setdefault("FIXATIVE_OFFLINE", "1")
    sizes = [int(s) for s in (args.sizes or ("64" if args.tiny else "512,1024,2048")).split(",")]
    steps = args.steps if args.steps is not None else (2 if args.tiny else None)
    with tempfile.TemporaryDirectory(prefix="fixative-gpu-bench-") as folder:
        parameters = build_vae_folder(TINY_VAE_CONFIG if args.tiny else SD_VAE_CONFIG, Path(folder))
        rows = time_sizes(f"vae:{folder}", args.device, sizes, args.quality, steps)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else "CPU"
    results = {"device": device_name, "dtype": rows[0]["dtype"], "quality": args.quality,
               "model": f"{'toy' if args.tiny else 'SD-VAE-sized'} AutoencoderKL encoder, "
                        f"{parameters / 1e6:.3g} M parameters",
               "date": datetime.date.today().isoformat(), "torch": torch.__version__, "rows": rows}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
