"""A synthetic scene and its renderer: background, object layers, lighting, camera degradations.

A `Scene` holds everything random about one video, already drawn: a world background texture,
the camera per frame, one `ObjectTrack` per object (shape, texture, pose, depth and wobble per
frame), the `Lighting` per frame and an optional `Degradation`. `render_scene` turns it into
frames and masks with no randomness of its own except the degradation's noise, which is seeded
from the scene; so a scene renders to the same bytes every time, and a scene with objects
removed renders the same background pixels.

Masks and frames come from the same layers. Per frame, objects are painted back to front (by
depth); each one writes its texture and its id into the pixels its shape covers, so the id map
holds exactly the visible pixels of each object. Lighting multiplies the whole frame and the
degradations (blur, sensor noise, JPEG) touch only the RGB frame, never the ids.

Coordinates: pixel (row i, column j) has its centre at (x, y) = (j + 0.5, i + 0.5). World
coordinates are screen coordinates of frame 0 when the camera starts at identity; the camera maps
world to screen as `screen = zoom * world + (ox, oy)`. An object maps its local square
[-1, 1]^2 to world with a 2x3 affine pose; its shape and texture are evaluated at the local
coordinates of each pixel, after a sinusoidal wobble (the non-rigid part).

What is left to others: drawing the random parameters (`sam2r.data.synthetic`,
`sam2r.data.looks`), shapes and textures (`sam2r.data.shapes`, `sam2r.data.textures`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from sam2r.data.shapes import Shape


@dataclass(frozen=True, eq=False)
class ObjectTrack:
    """One object through a video of T frames."""

    shape: Shape
    texture: np.ndarray  # (n, n, 3) float32 in [0, 1], spanning the local square [-1, 1]^2
    texture_family: str  # the family the texture was drawn from
    pose: np.ndarray  # (T, 2, 3) float64 local (u, v, 1) -> world (x, y)
    depth: np.ndarray  # (T,) larger is nearer the camera (painted later)
    wobble: np.ndarray  # (T, 3) amplitude (local units), phase of the u and v waves
    wobble_freq: float  # spatial frequency of the wobble, radians per local unit


@dataclass(frozen=True, eq=False)
class Lighting:
    """Global light per frame: `out = ((img - .5) * contrast + .5) * gain * tint * shade`.

    shade = (1 + ramp_x * x + ramp_y * y) * (1 - vignette * r^2 / 2) + spot, with x, y in
    [-1, 1] across the frame, r^2 = x^2 + y^2 and spot a Gaussian light.
    """

    gain: np.ndarray  # (T,) brightness factor
    contrast: np.ndarray  # (T,) contrast around mid-grey, 1 = unchanged
    tint: np.ndarray  # (T, 3) per-channel factor (colour drift)
    ramp: np.ndarray  # (T, 2) slope of a linear shading ramp along x and y
    spot: np.ndarray  # (T, 4) x, y, radius (frame units) and strength of a spotlight
    vignette: float  # darkening of the corners, 0 = none


@dataclass(frozen=True)
class Degradation:
    """Camera artefacts applied to the RGB frames only, in this order."""

    blur: float  # Gaussian blur radius in pixels, 0 = none
    streak: float | None  # angle (radians) of a 5-pixel motion-blur streak instead, None = none
    noise: float  # sensor noise standard deviation in grey levels (0..255)
    jpeg_quality: int  # quality of an in-memory JPEG round trip, 0 = none
    seed: int  # seed of the noise


@dataclass(frozen=True, eq=False)
class Scene:
    """Everything drawn for one video; `render_scene` makes its frames and masks."""

    height: int
    width: int
    background: np.ndarray  # (Hb, Wb, 3) float32 world texture, one pixel per world unit
    background_origin: tuple[float, float]  # world (x, y) of the background's top-left corner
    background_family: str
    camera: np.ndarray  # (T, 3) zoom, ox, oy: screen = zoom * world + (ox, oy)
    objects: tuple[ObjectTrack, ...]  # object i has id i + 1 in the masks
    lighting: Lighting
    degradation: Degradation | None

    @property
    def num_frames(self) -> int:
        return int(self.camera.shape[0])


# ----------------------------------------------------------------------------------------------
# layers
# ----------------------------------------------------------------------------------------------
def _background(scene: Scene, t: int) -> np.ndarray:
    """(H, W, 3) float32 background seen by the camera at frame t (separable bilinear)."""
    zoom, ox, oy = scene.camera[t]
    bx, by = scene.background_origin
    bg = scene.background
    hb, wb = bg.shape[:2]
    col = (np.arange(scene.width) + 0.5 - ox) / zoom - bx - 0.5
    row = (np.arange(scene.height) + 0.5 - oy) / zoom - by - 0.5
    col = np.clip(col, 0, wb - 1.001)
    row = np.clip(row, 0, hb - 1.001)
    c0, r0 = col.astype(np.int64), row.astype(np.int64)
    fc = (col - c0).astype(np.float32)[None, :, None]
    fr = (row - r0).astype(np.float32)[:, None, None]
    top, bottom = bg[r0], bg[r0 + 1]  # (H, Wb, 3)
    rows = top + (bottom - top) * fr
    left, right = rows[:, c0], rows[:, c0 + 1]  # (H, W, 3)
    return left + (right - left) * fc


def object_layer(
    obj: ObjectTrack, t: int, camera: np.ndarray, height: int, width: int
) -> tuple[tuple[int, int, int, int], np.ndarray, np.ndarray, np.ndarray] | None:
    """Where object `obj` covers the frame at t, on the grid of its screen bounding box.

    Args:
        camera: (3,) zoom, ox, oy of frame t.

    Returns:
        None when the box misses the frame, else ((y0, y1, x0, x1), inside (h, w) bool,
        u (h, w), v (h, w)) with the local coordinates after the wobble.
    """
    zoom, ox, oy = camera
    a = zoom * obj.pose[t, :, :2]  # (2, 2) local -> screen
    b = zoom * obj.pose[t, :, 2] + np.array([ox, oy])
    amp, phase_u, phase_v = obj.wobble[t]
    e = 1.0 + abs(amp)  # the wobble moves a point by at most amp in each local axis
    corners = a @ np.array([[-e, e, e, -e], [-e, -e, e, e]]) + b[:, None]  # (2, 4)
    x0, x1 = max(int(np.floor(corners[0].min())), 0), min(int(np.ceil(corners[0].max())), width)
    y0, y1 = max(int(np.floor(corners[1].min())), 0), min(int(np.ceil(corners[1].max())), height)
    if x0 >= x1 or y0 >= y1:
        return None
    inv = np.linalg.inv(a).astype(np.float32)
    xs = (np.arange(x0, x1) + 0.5 - b[0]).astype(np.float32)[None, :]
    ys = (np.arange(y0, y1) + 0.5 - b[1]).astype(np.float32)[:, None]
    u = inv[0, 0] * xs + inv[0, 1] * ys  # (h, w)
    v = inv[1, 0] * xs + inv[1, 1] * ys
    if amp:
        k, amp32 = np.float32(obj.wobble_freq), np.float32(amp)
        u, v = (
            u + amp32 * np.sin(k * v + np.float32(phase_u)),
            v + amp32 * np.sin(k * u + np.float32(phase_v)),
        )
    return (y0, y1, x0, x1), obj.shape.inside(u, v), u, v


def _sample_texture(tex: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear colours (N, 3) of the texture spanning [-1, 1]^2 at local points (N,)."""
    n = tex.shape[0]
    x = np.clip((u + 1) * np.float32((n - 1) / 2), 0, n - 1.001)
    y = np.clip((v + 1) * np.float32((n - 1) / 2), 0, n - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    top = tex[y0, x0] + (tex[y0, x0 + 1] - tex[y0, x0]) * fx
    bottom = tex[y0 + 1, x0] + (tex[y0 + 1, x0 + 1] - tex[y0 + 1, x0]) * fx
    return top + (bottom - top) * fy


def _composite(scene: Scene, t: int, ids: np.ndarray, image: np.ndarray | None) -> None:
    """Paint the objects of frame t back to front into ids (H, W) and, if given, image."""
    camera = scene.camera[t]
    depths = np.array([obj.depth[t] for obj in scene.objects])
    for k in np.argsort(depths, kind="stable"):
        obj = scene.objects[k]
        layer = object_layer(obj, t, camera, scene.height, scene.width)
        if layer is None:
            continue
        (y0, y1, x0, x1), inside, u, v = layer
        ids[y0:y1, x0:x1][inside] = k + 1
        if image is not None:
            image[y0:y1, x0:x1][inside] = _sample_texture(obj.texture, u[inside], v[inside])


def render_ids(scene: Scene, t: int) -> np.ndarray:
    """(H, W) uint8 object ids of frame t (0 = background), without colours."""
    ids = np.zeros((scene.height, scene.width), np.uint8)
    _composite(scene, t, ids, None)
    return ids


# ----------------------------------------------------------------------------------------------
# light and camera
# ----------------------------------------------------------------------------------------------
def apply_lighting(image: np.ndarray, light: Lighting, t: int, scale: float = 1.0) -> np.ndarray:
    """Light (H, W, 3) float32 `image` in [0, 1] as frame t of `light`, times `scale`, in place.

    Returns the same array (not clipped).
    """
    h, w = image.shape[:2]
    x = np.linspace(-1, 1, w, dtype=np.float32)[None, :]
    y = np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    ramp_x, ramp_y = light.ramp[t].astype(np.float32)
    shade = 1 + ramp_x * x + ramp_y * y  # (H, W)
    if light.vignette:
        shade = shade * (1 - np.float32(light.vignette / 2) * (x * x + y * y))
    sx, sy, radius, strength = light.spot[t].astype(np.float32)
    if strength:
        d2 = (x - sx) ** 2 + (y - sy) ** 2
        shade = shade + strength * np.exp(-d2 / (2 * radius * radius))
    contrast = np.float32(light.contrast[t])
    image *= contrast
    image += np.float32(0.5 - 0.5 * contrast)
    image *= shade[..., None]
    image *= (np.float32(light.gain[t] * scale) * light.tint[t].astype(np.float32))[None, None, :]
    return image


def _streak_kernel(angle: float) -> ImageFilter.Kernel:
    """A 5x5 kernel averaging along a line through the centre at `angle`."""
    k = np.zeros((5, 5))
    for s in np.linspace(-2, 2, 9):
        k[int(round(2 + s * np.sin(angle))), int(round(2 + s * np.cos(angle)))] += 1
    return ImageFilter.Kernel((5, 5), k.ravel().tolist(), scale=float(k.sum()))


def degrade(frame: np.ndarray, deg: Degradation, grain: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 frame -> blurred, noisy, JPEG-compressed (H, W, 3) uint8.

    Args:
        grain: (H, W, 3) float32 sensor noise in grey levels to add (None: no noise).
    """
    image = Image.fromarray(frame)
    if deg.streak is not None:
        image = image.filter(_streak_kernel(deg.streak))
    elif deg.blur > 0:
        image = image.filter(ImageFilter.GaussianBlur(deg.blur))
    out = np.asarray(image, dtype=np.float32)
    if grain is not None:
        out = out + grain
    out = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if deg.jpeg_quality > 0:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(deg.jpeg_quality))
        buf.seek(0)
        with Image.open(buf) as decoded:
            out = np.array(decoded.convert("RGB"))
    return out


class _Grain:
    """Sensor noise per frame: random windows of one noise field drawn per video (cheap)."""

    PAD = 32

    def __init__(self, deg: Degradation, height: int, width: int) -> None:
        self.rng = np.random.default_rng(deg.seed)
        shape = (height + self.PAD, width + self.PAD)
        field = self.rng.standard_normal((*shape, 3), dtype=np.float32)
        field += self.rng.standard_normal((*shape, 1), dtype=np.float32) * np.float32(0.5)
        self.field = field * np.float32(deg.noise)
        self.height, self.width = height, width

    def __call__(self) -> np.ndarray:
        dy, dx = self.rng.integers(0, self.PAD + 1, 2)
        window = self.field[dy : dy + self.height, dx : dx + self.width]
        return window if self.rng.random() < 0.5 else -window


def render_scene(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    """Frames (T, H, W, 3) uint8 RGB and masks (T, H, W) uint8 ids of a scene."""
    t_count, h, w = scene.num_frames, scene.height, scene.width
    frames = np.empty((t_count, h, w, 3), np.uint8)
    masks = np.zeros((t_count, h, w), np.uint8)
    deg = scene.degradation
    grain = _Grain(deg, h, w) if deg is not None and deg.noise > 0 else None
    for t in range(t_count):
        image = _background(scene, t)
        _composite(scene, t, masks[t], image)
        lit = apply_lighting(image, scene.lighting, t, scale=255.0)
        lit += np.float32(0.5)
        frames[t] = np.clip(lit, 0, 255, out=lit)  # uint8 cast truncates: + 0.5 rounds
        if deg is not None:
            frames[t] = degrade(frames[t], deg, grain() if grain is not None else None)
    return frames, masks
