"""Preview strips for people: original | AI's-eye view before | AI's-eye view after | target.

The AI's-eye views are D(E(P(x))) at training size (``fixative.mimicry``): what a model fine-tuned
on the file would draw, before and after protection. If they look alike, the model learns the
artwork as it is; the strip is where a person sees how much the cloak changes that.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from fixative.result import ProtectResult


def _tile(image: np.ndarray, height: int) -> Image.Image:
    image = np.clip(image, 0, 1)
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    tile = Image.fromarray((image[..., :3] * 255 + 0.5).astype(np.uint8))
    width = max(1, round(tile.width * height / tile.height))
    return tile.resize((width, height), Image.Resampling.LANCZOS)


def make_preview(result: ProtectResult, height: int = 256, amplify: float = 10.0,
                 with_difference: bool = False, preprocess: str = "resize512") -> Image.Image:
    """original | (protected | amplified difference) | AI's-eye before | AI's-eye after | target.

    ``height``: pixels per tile (512 shows the AI's-eye views at their training size)."""
    panels = [("original", result.original_rgb)]
    if with_difference:
        panels.append(("protected", result.protected_rgb))
        panels.append((f"difference x{amplify:g}", 0.5 + amplify * (result.protected_rgb - result.original_rgb)))
    before, after = result.ai_view("original", preprocess), result.ai_view("protected", preprocess)
    if before is not None and after is not None:
        panels += [("AI's-eye view, before", before), ("AI's-eye view, after", after)]
    target = result.target_image()
    if target is not None:
        panels.append(("target", target))
    tiles = [(label, _tile(image, height)) for label, image in panels]
    strip = Image.new("RGB", (sum(t.width for _, t in tiles) + 4 * (len(tiles) - 1), height + 16), "white")
    draw = ImageDraw.Draw(strip)
    x = 0
    for label, tile in tiles:
        strip.paste(tile, (x, 16))
        draw.text((x + 3, 2), label, fill="black")
        x += tile.width + 4
    return strip
