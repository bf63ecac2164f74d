"""Memory layout of the encoders' convolutions: one forward + backward (the optimiser's unit of
work) in the default NCHW layout and in channels-last (NHWC), alternated so load hits both alike.

    python -m benchmarks.layout              # taef2 at 256² (the CPU view size), 12 rounds
    python -m benchmarks.layout --small      # CI: 64², 3 rounds

Fixative loads its TAESD-family encoders channels-last (``fixative.models.tae``); this prints what
that buys on the machine at hand, and how far the two layouts' input gradients differ.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch

from benchmarks.data import configure_environment


def forward_backward_seconds(encode, image: torch.Tensor) -> tuple[float, torch.Tensor]:  # noqa: ANN001
    """Seconds for one encode + backward of a latent loss, and the input gradient."""
    started = time.perf_counter()
    x = image.clone().requires_grad_(True)
    (encode(x) ** 2).mean().backward()
    return time.perf_counter() - started, x.grad


def measure(model_name: str, side: int, rounds: int) -> dict:
    from fixative.models.registry import load_encoder

    channels_last = load_encoder(model_name, "cpu", torch.float32, with_decoder=False)
    contiguous = copy.deepcopy(channels_last).to(memory_format=torch.contiguous_format)
    image = torch.rand(1, 3, side, side, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {"nchw": [], "channels_last": []}
    forward_backward_seconds(contiguous.encoder, image)  # warm both
    forward_backward_seconds(channels_last.encode, image)
    for _ in range(rounds):
        seconds, grad_nchw = forward_backward_seconds(contiguous.encoder, image)
        times["nchw"].append(seconds)
        seconds, grad_last = forward_backward_seconds(channels_last.encode, image)
        times["channels_last"].append(seconds)
    nchw, last = statistics.median(times["nchw"]), statistics.median(times["channels_last"])
    return {"model": model_name, "side": side, "rounds": rounds, "threads": torch.get_num_threads(),
            "nchw_s": round(nchw, 4), "channels_last_s": round(last, 4), "saving": round(1 - last / nchw, 3),
            "gradient_difference": float((grad_nchw - grad_last).abs().max() / grad_nchw.abs().max())}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="CI size: 64², 3 rounds")
    parser.add_argument("--models", default="taef2,taesana")
    parser.add_argument("--side", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=12)
    args = parser.parse_args(argv)
    configure_environment()
    side, rounds = (64, 3) if args.small else (args.side, args.rounds)
    for name in args.models.split(","):
        row = measure(name.strip(), side, rounds)
        print(f"{row['model']} {side}² fwd+bwd: NCHW {row['nchw_s']:.3f} s, channels-last "
              f"{row['channels_last_s']:.3f} s ({row['saving']:.0%} saved, {row['threads']} threads); "
              f"gradients differ by {row['gradient_difference']:.1e} of their largest value")
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
