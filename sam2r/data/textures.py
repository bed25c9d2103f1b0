"""Procedural textures for the synthetic data engine: noise fields and twelve texture families.

A texture is an (h, w, 3) float32 image with values in [0, 1], drawn from a named family with a
numpy `Generator` and a small palette of colours. Feature sizes are given in pixels, so the same
family works for a large background and for a small object texture. The families come in two
disjoint sets: `TRAIN_TEXTURES` (flat, gradient, stripes, checker, clouds, polka) and
`UNSEEN_TEXTURES` (marble, wood, cells, plaid, speckle, zigzag); the looks of
`sam2r.data.looks` choose between them, so a model trained on one set can be tested on the other.

Everything is elementwise numpy (no BLAS, no global RNG): the same generator state gives the
same bytes.

What is left to others: colours (`sam2r.data.looks`), where a texture is drawn and how it moves
(`sam2r.data.scene`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Texture = np.ndarray  # (h, w, 3) float32 in [0, 1]


# ----------------------------------------------------------------------------------------------
# noise
# ----------------------------------------------------------------------------------------------
def _smoothstep(f: np.ndarray) -> np.ndarray:
    return f * f * (3.0 - 2.0 * f)


def _upsample_axis(grid: np.ndarray, n: int, cell: float, offset: float, axis: int) -> np.ndarray:
    """Smoothly interpolate `grid` along `axis` to `n` samples spaced 1 / cell grid units."""
    pos = np.arange(n, dtype=np.float32) / np.float32(cell) + np.float32(offset)
    i0 = np.floor(pos).astype(np.int64)
    f = _smoothstep(pos - i0)
    a = np.take(grid, i0, axis=axis)
    b = np.take(grid, i0 + 1, axis=axis)
    shape = [1] * grid.ndim
    shape[axis] = n
    f = f.reshape(shape)
    return a + (b - a) * f


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float) -> np.ndarray:
    """(h, w) float32 smooth noise in [0, 1] with features about `cell` pixels wide."""
    cell = max(float(cell), 1.0)
    gh, gw = int(np.ceil(h / cell)) + 2, int(np.ceil(w / cell)) + 2
    grid = rng.random((gh, gw), dtype=np.float32)
    oy, ox = rng.random(2)
    rows = _upsample_axis(grid, h, cell, float(oy), axis=0)  # (h, gw)
    return _upsample_axis(rows, w, cell, float(ox), axis=1)  # (h, w)


def fbm(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 4) -> np.ndarray:
    """(h, w) float32 fractal noise in [0, 1]: octaves of `value_noise`, each half the size."""
    total = np.zeros((h, w), np.float32)
    weight, norm = 1.0, 0.0
    for _ in range(octaves):
        total += np.float32(weight) * value_noise(rng, h, w, cell)
        norm += weight
        weight *= 0.5
        cell /= 2.0
        if cell < 1.5:
            break
    return total / np.float32(norm)


def _stretch(field: np.ndarray) -> np.ndarray:
    """Rescale a field to span [0, 1] (noise sums crowd around the middle)."""
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / np.float32(max(hi - lo, 1e-6))


def palette_map(t: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """(h, w) values in [0, 1] -> (h, w, 3): piecewise-linear through the (k, 3) colours."""
    k = len(colours)
    pos = np.clip(t, 0.0, 1.0) * np.float32(k - 1)
    i0 = np.minimum(pos.astype(np.int64), k - 2) if k > 1 else np.zeros(t.shape, np.int64)
    f = (pos - i0)[..., None]
    c = colours.astype(np.float32)
    return c[i0] + (c[np.minimum(i0 + 1, k - 1)] - c[i0]) * f


def _coords(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates rotated by a random angle: (h, w) along and (h, w) across."""
    theta = rng.uniform(0.0, np.pi)
    y = np.arange(h, dtype=np.float32)[:, None]
    x = np.arange(w, dtype=np.float32)[None, :]
    c, s = np.float32(np.cos(theta)), np.float32(np.sin(theta))
    return x * c + y * s, y * c - x * s


def _mix(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Blend colours a and b (3,) by t (h, w) in [0, 1] -> (h, w, 3)."""
    a32, b32 = a.astype(np.float32), b.astype(np.float32)
    return a32 + (b32 - a32) * t[..., None]


def _shade(rng: np.random.Generator, tex: np.ndarray, amount: float, cell: float) -> np.ndarray:
    """Multiply a texture by low-frequency brightness noise of +-amount (keeps flat areas alive)."""
    h, w = tex.shape[:2]
    n = value_noise(rng, h, w, cell) * np.float32(2 * amount) + np.float32(1 - amount)
    return tex * n[..., None]


# ----------------------------------------------------------------------------------------------
# families seen in training
# ----------------------------------------------------------------------------------------------
def flat(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """One colour with a faint, large brightness variation."""
    tex = np.broadcast_to(colours[0].astype(np.float32), (h, w, 3)).copy()
    return _shade(rng, tex, 0.06, max(h, w) / 2)


def gradient(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """A linear ramp between two colours along a random direction."""
    along, _ = _coords(rng, h, w)
    return _mix(colours[0], colours[1], _stretch(along))


def stripes(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Parallel bands of two colours, soft or sharp, at a random angle and period."""
    along, _ = _coords(rng, h, w)
    period = rng.uniform(5.0, 24.0)
    sharp = rng.uniform(1.0, 8.0)
    t = np.tanh(sharp * np.sin(along * np.float32(2 * np.pi / period))) * 0.5 + 0.5
    return _mix(colours[0], colours[1], t.astype(np.float32))


def checker(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """A rotated checkerboard of two colours."""
    along, across = _coords(rng, h, w)
    k = np.float32(np.pi / rng.uniform(5.0, 20.0))
    t = (np.sin(along * k) * np.sin(across * k) > 0).astype(np.float32)
    return _shade(rng, _mix(colours[0], colours[1], t), 0.05, max(h, w) / 2)


def clouds(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Fractal noise mapped through the palette."""
    t = _stretch(fbm(rng, h, w, rng.uniform(12.0, 48.0)))
    return palette_map(t, colours)


def polka(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Dots of a second colour on a jittered grid over a base colour."""
    cell = rng.uniform(8.0, 26.0)
    gh, gw = int(h / cell) + 2, int(w / cell) + 2
    centre = rng.uniform(0.25, 0.75, (gh, gw, 2)).astype(np.float32)
    radius = rng.uniform(0.15, 0.4, (gh, gw)).astype(np.float32)
    y = np.arange(h, dtype=np.float32)[:, None] / np.float32(cell)
    x = np.arange(w, dtype=np.float32)[None, :] / np.float32(cell)
    iy, ix = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    dy = (y - iy) - centre[iy, ix, 0]
    dx = (x - ix) - centre[iy, ix, 1]
    dot = (dy * dy + dx * dx) < radius[iy, ix] ** 2
    return _mix(colours[0], colours[1], dot.astype(np.float32))


# ----------------------------------------------------------------------------------------------
# families kept for testing ("unseen")
# ----------------------------------------------------------------------------------------------
def marble(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Veins: a sine along a random direction, bent by fractal turbulence."""
    along, _ = _coords(rng, h, w)
    turb = fbm(rng, h, w, rng.uniform(16.0, 48.0)) * np.float32(rng.uniform(4.0, 10.0))
    t = np.sin(along * np.float32(2 * np.pi / rng.uniform(15.0, 50.0)) + turb) * 0.5 + 0.5
    return palette_map(t.astype(np.float32) ** 2, colours)


def wood(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Growth rings around an off-centre point, with noisy spacing."""
    cy, cx = rng.uniform(-0.5, 1.5) * h, rng.uniform(-0.5, 1.5) * w
    y = np.arange(h, dtype=np.float32)[:, None] - np.float32(cy)
    x = np.arange(w, dtype=np.float32)[None, :] - np.float32(cx)
    r = np.sqrt(y * y + x * x) / np.float32(rng.uniform(4.0, 12.0))
    r = r + fbm(rng, h, w, rng.uniform(10.0, 30.0)) * np.float32(2.0)
    t = (r - np.floor(r)) ** 3
    return palette_map(t.astype(np.float32), colours)


def cells(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Voronoi cells of palette colours with dark borders (one seed per jittered grid cell)."""
    cell = rng.uniform(10.0, 32.0)
    gh, gw = int(h / cell) + 3, int(w / cell) + 3
    seed = rng.uniform(0.0, 1.0, (gh, gw, 2)).astype(np.float32)
    pick = rng.integers(0, len(colours), (gh, gw))
    jitter = rng.uniform(0.8, 1.2, (gh, gw, 1)).astype(np.float32)
    cell_colour = colours.astype(np.float32)[pick] * jitter  # (gh, gw, 3)
    y = np.arange(h, dtype=np.float32)[:, None] / np.float32(cell) + 1
    x = np.arange(w, dtype=np.float32)[None, :] / np.float32(cell) + 1
    iy, ix = np.floor(y).astype(np.int64), np.floor(x).astype(np.int64)
    best = np.full((h, w), np.inf, np.float32)
    second = np.full((h, w), np.inf, np.float32)
    owner_y = np.zeros((h, w), np.int64)
    owner_x = np.zeros((h, w), np.int64)
    for oy in (-1, 0, 1):
        for ox in (-1, 0, 1):
            cy, cx = iy + oy, ix + ox  # (h, 1), (1, w)
            d = (y - cy - seed[cy, cx, 0]) ** 2 + (x - cx - seed[cy, cx, 1]) ** 2
            closer = d < best
            second = np.where(closer, best, np.minimum(second, d))
            best = np.where(closer, d, best)
            owner_y = np.where(closer, cy, owner_y)
            owner_x = np.where(closer, cx, owner_x)
    tex = cell_colour[owner_y, owner_x]
    edge = np.clip((np.sqrt(second) - np.sqrt(best)) * 8.0, 0.0, 1.0)
    return tex * (0.35 + 0.65 * edge[..., None])


def plaid(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Tartan: two crossing sets of bands of different colours and widths, blended."""
    along, across = _coords(rng, h, w)
    p1, p2 = rng.uniform(10.0, 30.0, 2)
    a = (np.sin(along * np.float32(2 * np.pi / p1)) > rng.uniform(-0.3, 0.5)).astype(np.float32)
    b = (np.sin(across * np.float32(2 * np.pi / p2)) > rng.uniform(-0.3, 0.5)).astype(np.float32)
    base = _mix(colours[0], colours[1], a * 0.6)
    return base * (1 - 0.4 * b[..., None]) + colours[-1].astype(np.float32) * 0.4 * b[..., None]


def speckle(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Granite: fine grains of the palette colours, high-frequency by design."""
    grain = value_noise(rng, h, w, rng.uniform(1.5, 3.0))
    coarse = value_noise(rng, h, w, rng.uniform(10.0, 30.0))
    t = np.clip(grain * 0.7 + coarse * 0.3, 0.0, 1.0)
    return palette_map(_stretch(t), colours)


def zigzag(rng: np.random.Generator, h: int, w: int, colours: np.ndarray) -> Texture:
    """Chevrons: bands whose phase follows a triangle wave across them."""
    along, across = _coords(rng, h, w)
    tooth = np.float32(rng.uniform(6.0, 20.0))
    tri = np.abs((across / tooth) % 2.0 - 1.0) * tooth * np.float32(rng.uniform(0.5, 1.5))
    t = ((along + tri) / np.float32(rng.uniform(6.0, 18.0))) % 1.0
    return palette_map(np.abs(t * 2 - 1).astype(np.float32), colours)


TEXTURES: dict[str, Callable[[np.random.Generator, int, int, np.ndarray], Texture]] = {
    "flat": flat,
    "gradient": gradient,
    "stripes": stripes,
    "checker": checker,
    "clouds": clouds,
    "polka": polka,
    "marble": marble,
    "wood": wood,
    "cells": cells,
    "plaid": plaid,
    "speckle": speckle,
    "zigzag": zigzag,
}
TRAIN_TEXTURES = ("flat", "gradient", "stripes", "checker", "clouds", "polka")
UNSEEN_TEXTURES = ("marble", "wood", "cells", "plaid", "speckle", "zigzag")


def make_texture(
    family: str, rng: np.random.Generator, h: int, w: int, colours: np.ndarray
) -> Texture:
    """An (h, w, 3) float32 texture in [0, 1] of `family`, coloured from (k, 3) `colours` in [0, 1].

    Args:
        family: a key of `TEXTURES`.
        rng: the generator all randomness is drawn from.
        h, w: size in pixels (>= 1).
        colours: (k, 3) palette, k >= 2, values in [0, 1].
    """
    if family not in TEXTURES:
        raise ValueError(f"unknown texture family {family!r}; choose one of {sorted(TEXTURES)}")
    if h < 1 or w < 1:
        raise ValueError(f"texture size must be at least 1x1, got {h}x{w}")
    colours = np.asarray(colours, np.float32)
    if colours.ndim != 2 or colours.shape[1] != 3 or len(colours) < 2:
        raise ValueError(f"colours must have shape (k >= 2, 3), got {colours.shape}")
    tex = TEXTURES[family](rng, h, w, colours)
    return np.clip(tex, 0.0, 1.0).astype(np.float32, copy=False)
