"""Preview strips for people: original | protected | amplified difference | AI's-eye view."""

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
                 with_difference: bool = False) -> Image.Image:
    """Before | after | (amplified difference) | AI's-eye view, labelled, ``height`` pixels tall."""
    panels = [("original", result.original_rgb), ("protected", result.protected_rgb)]
    if with_difference:
        diff = 0.5 + amplify * (result.protected_rgb - result.original_rgb)
        panels.append((f"difference x{amplify:g}", diff))
    ai_view = result.ai_view()
    if ai_view is not None:
        panels.append(("AI's-eye view", ai_view))
    tiles = [(label, _tile(image, height)) for label, image in panels]
    strip = Image.new("RGB", (sum(t.width for _, t in tiles) + 4 * (len(tiles) - 1), height + 16), "white")
    draw = ImageDraw.Draw(strip)
    x = 0
    for label, tile in tiles:
        strip.paste(tile, (x, 16))
        draw.text((x + 3, 2), label, fill="black")
        x += tile.width + 4
    return strip
