"""Object shapes for the synthetic data engine: inside-tests on an object's local coordinates.

A shape lives in the square [-1, 1]^2 of its own (u, v) coordinates and answers
`inside(u, v) -> bool array` for arrays of any shape. The renderer maps screen pixels back to
(u, v) through the object's pose, so one vectorised call gives the object's mask on a pixel grid
at any position, rotation, scale or non-rigid deformation.

Five kinds of test cover eleven families (`SHAPE_KINDS`):
* `PolarShape`: star-shaped outlines given by a radius per angle (a lookup table): ellipse,
  regular and random polygons, stars, Fourier blobs, and rings (a hole at a fraction of the
  outer radius);
* `FieldShape`: thresholded smooth noise with a radial falloff: blobs with bays and holes;
* `SuperEllipse`: |u|^p + |v|^p <= 1, from pinched diamonds to rounded squares;
* `Bars`: one thin bar or a cross of two;
* `Crescent`: a disc with an offset disc cut out.

What is left to others: textures (`sam2r.data.textures`), poses and compositing
(`sam2r.data.scene`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from sam2r.data.textures import fbm

_TABLE = 720  # angles in a PolarShape radius table: 0.5 degree steps


class Shape(Protocol):
    """What the renderer needs from a shape."""

    kind: str

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Bool array, the shape of u and v: which local points (u, v) are in the object."""
        ...


@dataclass(frozen=True, eq=False)
class PolarShape:
    """A star-shaped outline: point (r, theta) is inside when hole * R(theta) <= r <= R(theta)."""

    kind: str
    radius: np.ndarray  # (_TABLE,) outer radius at angles 2 pi i / _TABLE, in (0, 1]
    hole: float = 0.0  # inner radius as a fraction of the outer one (rings); 0 = solid

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        n = len(self.radius)
        theta = np.arctan2(v, u) + np.float32(2 * np.pi)  # > 0, so int() is floor
        r = self.radius[(theta * np.float32(n / (2 * np.pi))).astype(np.int64) % n]
        rho2 = u * u + v * v
        inside = rho2 <= r * r
        if self.hole > 0:
            inside &= rho2 >= (np.float32(self.hole) * r) ** 2
        return inside


@dataclass(frozen=True, eq=False)
class FieldShape:
    """Inside where a smooth (n, n) field sampled over [-1, 1]^2 is positive."""

    kind: str
    field: np.ndarray  # (n, n) float32, negative on its border

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        n = self.field.shape[0]
        x = np.clip((u + 1) * np.float32((n - 1) / 2), 0, n - 1.001)
        y = np.clip((v + 1) * np.float32((n - 1) / 2), 0, n - 1.001)
        x0, y0 = x.astype(np.int64), y.astype(np.int64)
        fx, fy = x - x0, y - y0
        f = self.field
        top = f[y0, x0] + (f[y0, x0 + 1] - f[y0, x0]) * fx
        bottom = f[y0 + 1, x0] + (f[y0 + 1, x0 + 1] - f[y0 + 1, x0]) * fx
        value = top + (bottom - top) * fy
        return (value > 0) & (np.abs(u) < 1) & (np.abs(v) < 1)


@dataclass(frozen=True, eq=False)
class SuperEllipse:
    """|u|^p + |v|^p <= 1: p < 1 pinched star, p = 1 diamond, p = 2 disc, p > 2 rounded square."""

    kind: str
    power: float

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        p = np.float32(self.power)
        return np.abs(u) ** p + np.abs(v) ** p <= 1


@dataclass(frozen=True, eq=False)
class Bars:
    """A union of bars through the centre, each of length 2 and half-width w at an angle."""

    kind: str
    bars: tuple[tuple[float, float], ...]  # (angle in radians, half-width) per bar

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast_shapes(u.shape, v.shape), bool)
        for angle, half_width in self.bars:
            c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
            along, across = u * c + v * s, v * c - u * s
            out |= (np.abs(along) <= 1) & (np.abs(across) <= half_width)
        return out


@dataclass(frozen=True, eq=False)
class Crescent:
    """The unit disc minus a disc of radius `cut` centred at (offset, 0)."""

    kind: str
    offset: float
    cut: float

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        du = u - np.float32(self.offset)
        return (u * u + v * v <= 1) & (du * du + v * v > np.float32(self.cut) ** 2)


# ----------------------------------------------------------------------------------------------
# radius tables
# ----------------------------------------------------------------------------------------------
def _angles() -> np.ndarray:
    return np.arange(_TABLE, dtype=np.float64) * (2 * np.pi / _TABLE)


def polygon_radius(vertex_angles: np.ndarray, vertex_radii: np.ndarray) -> np.ndarray:
    """(_TABLE,) radius of the polygon through vertices (angle, radius), angles increasing.

    Each table ray is intersected with the edge between the vertices on either side of it;
    consecutive vertex angles must be less than pi apart, so the polygon is star-shaped.
    """
    a = np.asarray(vertex_angles, np.float64) % (2 * np.pi)
    order = np.argsort(a)
    a, r = a[order], np.asarray(vertex_radii, np.float64)[order]
    p = np.stack([r * np.cos(a), r * np.sin(a)], axis=1)  # (n, 2)
    theta = _angles()
    j = (np.searchsorted(a, theta, side="right") - 1) % len(a)  # edge j -> j + 1
    p1, p2 = p[j], p[(j + 1) % len(a)]
    e = p2 - p1
    d = np.stack([np.cos(theta), np.sin(theta)], axis=1)
    # ray t * d meets p1 + s * e where t = cross(p1, e) / cross(d, e)
    t = (p1[:, 0] * e[:, 1] - p1[:, 1] * e[:, 0]) / (d[:, 0] * e[:, 1] - d[:, 1] * e[:, 0])
    return t


def _normalise(radius: np.ndarray) -> np.ndarray:
    return (radius / radius.max()).astype(np.float32)


def _random_polygon(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(4, 10))
    gaps = rng.uniform(0.5, 1.5, n)
    angles = np.cumsum(gaps / gaps.sum() * 2 * np.pi) + rng.uniform(0, 2 * np.pi)
    return polygon_radius(angles, rng.uniform(0.55, 1.0, n))


def _regular_polygon(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(3, 9))
    angles = np.arange(n) * (2 * np.pi / n) + rng.uniform(0, 2 * np.pi)
    return polygon_radius(angles, np.ones(n))


def _star(rng: np.random.Generator) -> np.ndarray:
    n = int(rng.integers(4, 9))
    angles = np.arange(2 * n) * (np.pi / n) + rng.uniform(0, 2 * np.pi)
    radii = np.where(np.arange(2 * n) % 2 == 0, 1.0, rng.uniform(0.35, 0.65))
    return polygon_radius(angles, radii)


def _fourier(rng: np.random.Generator, strength: float) -> np.ndarray:
    theta = _angles()
    radius = np.ones_like(theta)
    for k in range(2, 6):
        radius += strength * rng.uniform(-1, 1) / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return np.maximum(radius, 0.3)


def _noise_field(rng: np.random.Generator, n: int = 48) -> np.ndarray:
    y, x = np.mgrid[-1 : 1 : n * 1j, -1 : 1 : n * 1j].astype(np.float32)
    falloff = 1 - (x * x + y * y)  # 1 at the centre, 0 on the unit circle
    noise = fbm(rng, n, n, rng.uniform(8.0, 20.0), octaves=3) * 2 - 1
    f = falloff + np.float32(rng.uniform(0.4, 0.8)) * noise - np.float32(rng.uniform(0.15, 0.35))
    f[0, :] = f[-1, :] = f[:, 0] = f[:, -1] = -1.0  # nothing reaches the square's edge
    f[n // 2 - 1 : n // 2 + 1, n // 2 - 1 : n // 2 + 1] = 1.0  # the centre is always inside
    return f.astype(np.float32)


SHAPE_KINDS = (
    "ellipse",
    "polygon",
    "regular_polygon",
    "star",
    "blob",
    "noise_blob",
    "ring",
    "superellipse",
    "bar",
    "cross",
    "crescent",
)


def sample_shape(rng: np.random.Generator, kinds: tuple[str, ...] = SHAPE_KINDS) -> Shape:
    """A random shape of a kind drawn uniformly from `kinds` (a subset of `SHAPE_KINDS`)."""
    unknown = sorted(set(kinds) - set(SHAPE_KINDS))
    if unknown or not kinds:
        raise ValueError(f"shape kinds must be a non-empty subset of {SHAPE_KINDS}, got {kinds}")
    kind = str(kinds[int(rng.integers(len(kinds)))])
    if kind == "ellipse":
        return PolarShape(kind, np.ones(_TABLE, np.float32))
    if kind == "polygon":
        return PolarShape(kind, _normalise(_random_polygon(rng)))
    if kind == "regular_polygon":
        return PolarShape(kind, _normalise(_regular_polygon(rng)))
    if kind == "star":
        return PolarShape(kind, _normalise(_star(rng)))
    if kind == "blob":
        return PolarShape(kind, _normalise(_fourier(rng, 0.9)))
    if kind == "ring":
        return PolarShape(kind, _normalise(_fourier(rng, 0.3)), hole=float(rng.uniform(0.35, 0.6)))
    if kind == "noise_blob":
        return FieldShape(kind, _noise_field(rng))
    if kind == "superellipse":
        return SuperEllipse(kind, float(np.exp(rng.uniform(np.log(0.6), np.log(5.0)))))
    if kind == "bar":
        return Bars(kind, ((0.0, float(rng.uniform(0.08, 0.2))),))
    if kind == "cross":
        second = float(rng.uniform(np.pi / 4, np.pi / 2))
        w1, w2 = rng.uniform(0.1, 0.22, 2)
        return Bars(kind, ((0.0, float(w1)), (second, float(w2))))
    return Crescent(kind, float(rng.uniform(0.35, 0.7)), float(rng.uniform(0.55, 0.85)))


# cell centres of a 64 x 64 grid over [-1, 1]^2, for measuring areas
_AREA_GRID = (np.arange(64, dtype=np.float32) + 0.5) * np.float32(2 / 64) - 1


def unit_area(shape: Shape) -> float:
    """The shape's area in local units (the square [-1, 1]^2 has area 4), measured on a grid."""
    return float(shape.inside(_AREA_GRID[None, :], _AREA_GRID[:, None]).mean()) * 4.0
