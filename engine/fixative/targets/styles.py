"""Built-in target styles, drawn procedurally (no images from elsewhere), deterministic.

Each is a distinct visual language far from most paintings in some direction of an encoder's
feature space: flat shards, dots, hard stripes, soft washes, hatching, tiles, neon lines, glitch.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SIZE = 256


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return y, x


def cubist_shards(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Voronoi cells of flat earthy colour with dark edges."""
    points = rng.random((40, 2)).astype(np.float32)
    palette = np.array([[0.55, 0.42, 0.3], [0.3, 0.33, 0.38], [0.75, 0.62, 0.42], [0.2, 0.22, 0.2],
                        [0.62, 0.35, 0.22], [0.82, 0.78, 0.66]], np.float32)
    colours = palette[rng.integers(0, len(palette), len(points))]
    y, x = _grid(size)
    d = (y[..., None] - points[:, 0]) ** 2 + (x[..., None] - points[:, 1]) ** 2
    order = np.argsort(d, axis=-1)
    nearest, second = np.take_along_axis(d, order[..., :2], -1).transpose(2, 0, 1)
    img = colours[order[..., 0]]
    edge = np.sqrt(second) - np.sqrt(nearest) < 0.006
    img[edge] = 0.08
    return img


def pointillist_dots(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Dense saturated dots on a pale ground."""
    img = np.full((size, size, 3), 0.93, np.float32)
    y, x = np.mgrid[0:size, 0:size]
    hues = np.array([[0.9, 0.2, 0.2], [0.2, 0.4, 0.9], [0.95, 0.8, 0.1], [0.2, 0.7, 0.3], [0.6, 0.2, 0.7]],
                    np.float32)
    for _ in range(900):
        cy, cx, r = rng.integers(0, size), rng.integers(0, size), rng.integers(2, 5)
        mask = (y - cy) ** 2 + (x - cx) ** 2 <= r * r
        img[mask] = hues[rng.integers(0, len(hues))]
    return img


def op_art_stripes(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Hard black-and-white stripes bent by a slow wave (optical art)."""
    y, x = _grid(size)
    phase = 14 * x + 2.5 * np.sin(6.28 * (y * rng.uniform(1, 2) + rng.random()))
    value = (np.sin(6.28 * phase) > 0).astype(np.float32)
    return np.repeat(value[..., None], 3, axis=2)


def watercolour_wash(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Soft overlapping pastel blobs with no edges at all."""
    y, x = _grid(size)
    img = np.ones((size, size, 3), np.float32)
    for _ in range(9):
        cy, cx, r = rng.random(), rng.random(), rng.uniform(0.12, 0.35)
        colour = rng.uniform(0.5, 1.0, 3).astype(np.float32)
        alpha = 0.45 * np.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r))
        img = img * (1 - alpha[..., None]) + colour * alpha[..., None]
    return img


def ink_hatching(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Black cross-hatching on white, denser where a hidden shape is darker."""
    y, x = _grid(size)
    shade = 0.5 + 0.5 * np.sin(6.28 * (x * rng.uniform(0.5, 1.5))) * np.cos(6.28 * y * rng.uniform(0.5, 1.5))
    lines1 = (np.mod((x + y) * size, 6) < 1.2)
    lines2 = (np.mod((x - y) * size, 6) < 1.2) & (shade > 0.5)
    ink = (lines1 & (shade > 0.2)) | lines2
    value = np.where(ink, 0.05, 0.97).astype(np.float32)
    return np.repeat(value[..., None], 3, axis=2)


def mosaic_tiles(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Square tiles of bright colour with light grout."""
    tile = 16
    grid = rng.uniform(0.1, 0.95, (size // tile, size // tile, 3)).astype(np.float32)
    img = np.kron(grid, np.ones((tile, tile, 1), np.float32))
    mask = (np.arange(size) % tile < 2)
    img[mask, :, :] = 0.85
    img[:, mask, :] = 0.85
    return img


def neon_lines(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Glowing magenta and cyan curves on black."""
    y, x = _grid(size)
    img = np.zeros((size, size, 3), np.float32)
    for colour in ([1.0, 0.1, 0.9], [0.1, 0.9, 1.0], [1.0, 0.9, 0.1]):
        for _ in range(3):
            a, b, c = rng.uniform(2, 8), rng.random(), rng.uniform(0.2, 0.8)
            curve = c + 0.15 * np.sin(6.28 * (a * x + b))
            glow = np.exp(-((y - curve) ** 2) / (2 * 0.004**2))
            img += glow[..., None] * np.array(colour, np.float32)
    return np.clip(img, 0, 1)


def glitch_bands(rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Horizontal bands of shifted RGB noise, like a corrupted digital signal."""
    img = np.zeros((size, size, 3), np.float32)
    top = 0
    while top < size:
        h = int(rng.integers(3, 24))
        base = rng.random(3).astype(np.float32)
        noise = rng.random((min(h, size - top), size, 1)).astype(np.float32)
        img[top:top + h] = np.clip(base * 0.7 + 0.5 * noise * rng.random(3), 0, 1)
        top += h
    return img


STYLES: dict[str, Callable[[np.random.Generator, int], np.ndarray]] = {
    "cubist-shards": cubist_shards,
    "pointillist-dots": pointillist_dots,
    "op-art-stripes": op_art_stripes,
    "watercolour-wash": watercolour_wash,
    "ink-hatching": ink_hatching,
    "mosaic-tiles": mosaic_tiles,
    "neon-lines": neon_lines,
    "glitch-bands": glitch_bands,
}


def builtin_style_names() -> list[str]:
    return list(STYLES)


def render_style(name: str, size: int = SIZE) -> np.ndarray:
    """The named style as float32 RGB (size, size, 3) in [0, 1]; the same every time."""
    from fixative.errors import UnknownStyle

    if name not in STYLES:
        raise UnknownStyle(f"unknown style '{name}'; built-in styles: {', '.join(STYLES)}, or 'auto', "
                           "or a style image")
    seed = sum(ord(ch) for ch in name)
    return STYLES[name](np.random.default_rng(seed), size).astype(np.float32)
