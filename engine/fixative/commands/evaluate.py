"""`fixative evaluate`: how much protection survives JPEG, resizing, noise and blur."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fixative.options import DEFAULT_MODEL


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("evaluate", help="measure what a mimic's model sees (AI's-eye gain over noise) and f",
                            description="Headline: the AI's-eye metric (docs/metric.md): after the mimic's "
                                        "preprocessing (resize to 512/1024, JPEG 75, noise + resample, blur), how "
                                        "much more the cloak changes D(E(P(x))) than Gaussian noise of the same "
                                        "PSNR, and the latent shift vs that noise for every encoder on disk (held-out "
                                        "ones included). Secondary: f = 1 − ‖E(x′)−E(t)‖/‖E(x)−E(t)‖ clean and "
                                        "after JPEG 75/90, 0.5x resize, noise and blur; plus PSNR/SSIM/LPIPS.")
    parser.add_argument("original")
    parser.add_argument("protected")
    parser.add_argument("--target", metavar="IMG|STYLE",
                        help="target image or built-in style (default: the style recorded in the protected file)")
    parser.add_argument("--models", default=DEFAULT_MODEL, help="comma-separated encoders")
    parser.add_argument("--max-area", type=int, default=1024 * 1024,
                        help="larger images are resized to this many pixels before encoding")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--no-f", action="store_true", help="only the AI's-eye metric (skip the closing fraction f)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fixative.errors import BadImage
    from fixative.evaluate import evaluate
    from fixative.imageio import load_image
    from fixative.models.registry import check_model_name
    from fixative.targets import builtin_style_names

    models = [check_model_name(m.strip()) for m in args.models.split(",") if m.strip()]
    original = load_image(args.original)
    protected = load_image(args.protected)
    if original.array.shape[:2] != protected.array.shape[:2]:
        raise BadImage(f"sizes differ: {args.original} is {original.width}x{original.height}, "
                       f"{args.protected} is {protected.width}x{protected.height}")
    target = args.target
    if target and Path(target).is_file():
        target = _float(load_image(target).array)
    elif target and target.removeprefix("style:") not in builtin_style_names():
        raise BadImage(f"--target {target}: not a file and not a built-in style")
    elif target is None and protected.fixative_info:
        recorded = str(protected.fixative_info.get("target", ""))
        target = recorded if recorded.startswith("style:") else None
    from fixative import mimicry

    clean, cloaked = _float(original.array), _float(protected.array)
    optimised = [str(m) for m in (protected.fixative_info or {}).get("models", [])] or models
    encoders, held_out = mimicry.available_models(sorted(set(models) | set(optimised)))
    held_out |= {m.name for m in encoders if m.name not in optimised}
    seen = mimicry.measure(clean, cloaked, encoders, held_out)
    result = None if args.no_f else evaluate(clean, cloaked, target, models, max_area=args.max_area)
    if args.json:
        print(json.dumps({"mimicry": seen.as_dict(), **({"f": result.as_dict()} if result else {})}, indent=2))
    else:
        from rich.console import Console
        from rich.markdown import Markdown

        text = f"## What a mimic's model sees\n\n{seen.table()}\n\n{seen.summary()}\n"
        if result is not None:
            text += f"\n## Closing fraction f toward the target (secondary)\n\n{result.table()}\n"
        Console().print(Markdown(text))
    return 0


def _float(array):
    import numpy as np

    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(array.dtype, 1.0)
    return array.astype(np.float32) / scale
