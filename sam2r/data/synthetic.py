"""Deterministic synthetic videos and images with exact masks, for training and testing SAM 2.

    video = make_video(7, SynthConfig(num_frames=8))  # frames (T, H, W, 3), masks (T, H, W)
    image = make_image(7)  # many objects in one frame: image (H, W, 3), masks (H, W)

`sample_scene` draws everything random about a video from `np.random.default_rng`-style
generators spawned from the seed (one stream each for camera, background, objects, lighting and
artefacts, so adding an object does not change the background), and `render_scene` draws it.
The same seed and config give byte-identical arrays; no global RNG, no clock.

A video has a textured background seen by a panning, zooming camera, and 1..K objects of eleven
shape families with their own textures. Objects move along smooth paths (a drift, two slow
sinusoids per axis, sometimes heading for another object so they cross and occlude), rotate,
grow or shrink, wobble non-rigidly, change depth order, and sometimes leave the frame and come
back. Every object covers at least `min_area_frac` of frame 0 after occlusion, so it can be
prompted there; later it may be hidden or gone. Lighting drifts over time. The `look` picks
textures, colours, lighting and camera artefacts (`sam2r.data.looks`).

What is left to others: shapes, textures, looks and rendering (`sam2r.data.shapes`,
`sam2r.data.textures`, `sam2r.data.looks`, `sam2r.data.scene`); files (`sam2r.data.davis_io`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from sam2r.data.looks import LOOKS, Look
from sam2r.data.scene import ObjectTrack, Scene, render_ids, render_scene
from sam2r.data.shapes import sample_shape, unit_area
from sam2r.data.textures import make_texture

_ATTEMPTS = 40  # redraws of hidden objects before they are dropped from a scene


@dataclass(frozen=True)
class SynthConfig:
    """What the synthetic videos look like. Scales of 1.0 are the defaults; 0 turns a motion off."""

    height: int = 192  # frame height in pixels
    width: int = 256  # frame width in pixels
    num_frames: int = 16  # frames per video
    min_objects: int = 1  # objects per video, at least (unless one can't be placed visibly)
    max_objects: int = 4  # objects per video, at most
    look: str = "train"  # "train" or "unseen": disjoint textures, colours, lighting (+ artefacts)
    min_area_frac: float = 0.01  # visible area of each object on frame 0, fraction of the frame
    max_area_frac: float = 0.12  # full area of an object on frame 0, fraction of the frame, at most
    speed: float = 1.0  # object speed scale (1.0: up to 2.5 % of the short side per frame)
    rotation: float = 1.0  # rotation speed scale (1.0: up to 6 degrees per frame)
    deform: float = 1.0  # non-rigid wobble scale (1.0: up to 6 % of the object's size)
    camera: float = 1.0  # camera motion scale (1.0: pans ~0.4 % of the width per frame, zooms)
    lighting: float = 1.0  # scale of the lighting drift over time (0: constant per video)
    leave_prob: float = 0.25  # chance that an object leaves the frame and comes back
    cross_prob: float = 0.35  # chance that an object heads for an earlier one (occlusion)
    depth_swap_prob: float = 0.3  # chance that an object's depth changes enough to reorder
    image_min_objects: int = 3  # objects per `make_image` sample, at least
    image_max_objects: int = 12  # objects per `make_image` sample, at most

    def __post_init__(self) -> None:
        ints = {
            "height": (32, 4096),
            "width": (32, 4096),
            "num_frames": (1, 100_000),
            "min_objects": (1, 50),
            "max_objects": (1, 50),
            "image_min_objects": (1, 100),
            "image_max_objects": (1, 100),
        }
        for name, (lo, hi) in ints.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise ValueError(f"SynthConfig.{name} must be an int, got {value!r}")
            _check(name, value, lo, hi)
        floats = {
            "min_area_frac": (1e-4, 0.25),
            "max_area_frac": (1e-4, 0.6),
            "speed": (0.0, 10.0),
            "rotation": (0.0, 10.0),
            "deform": (0.0, 5.0),
            "camera": (0.0, 5.0),
            "lighting": (0.0, 5.0),
            "leave_prob": (0.0, 1.0),
            "cross_prob": (0.0, 1.0),
            "depth_swap_prob": (0.0, 1.0),
        }
        for name, (lo, hi) in floats.items():
            _check(name, float(getattr(self, name)), lo, hi)
        for lo_name, hi_name in (
            ("min_objects", "max_objects"),
            ("image_min_objects", "image_max_objects"),
        ):
            lo, hi = getattr(self, lo_name), getattr(self, hi_name)
            if lo > hi:
                raise ValueError(
                    f"SynthConfig.{lo_name}={lo} is above {hi_name}={hi}; "
                    f"choose {lo_name} in [1, {hi}] or raise {hi_name}"
                )
        if self.look not in LOOKS:
            raise ValueError(
                f"SynthConfig.look={self.look!r} is unknown; choose one of {sorted(LOOKS)}"
            )
        if self.max_area_frac < 1.5 * self.min_area_frac:
            raise ValueError(
                f"SynthConfig.max_area_frac={self.max_area_frac} must be at least 1.5 x "
                f"min_area_frac={self.min_area_frac} (= {1.5 * self.min_area_frac:g})"
            )
        most = max(self.max_objects, self.image_max_objects)
        if self.min_area_frac * most > 0.5:
            raise ValueError(
                f"SynthConfig.min_area_frac={self.min_area_frac} x {most} objects needs more "
                f"than half the frame; use min_area_frac <= {0.5 / most:.4g} or fewer objects"
            )


def _check(name: str, value: float, lo: float, hi: float) -> None:
    if not lo <= value <= hi:
        raise ValueError(f"SynthConfig.{name}={value!r} is out of range; allowed [{lo}, {hi}]")


@dataclass
class SynthVideo:
    """One synthetic video: frames and the ids of the visible object at every pixel."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    masks: np.ndarray  # (T, H, W) uint8, 0 = background, 1..K = object ids (the front one)
    name: str


@dataclass
class SynthImage:
    """One synthetic image with many objects."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    masks: np.ndarray  # (H, W) uint8 object ids, 0 = background


def split_seed(seed: int, split: str, index: int) -> int:
    """The seed of video `index` of `split` in a dataset made with `seed` (63-bit, no overlaps).

    Hashing (seed, index, split) with `np.random.SeedSequence` keeps the seeds of different
    splits apart; a collision among 2^63 values is not a practical concern.
    """
    if seed < 0 or index < 0:
        raise ValueError(f"seed and index must be >= 0, got seed={seed}, index={index}")
    state = np.random.SeedSequence([seed, index, *split.encode()]).generate_state(1, np.uint64)
    return int(state[0] >> np.uint64(1))


# ----------------------------------------------------------------------------------------------
# drawing a scene
# ----------------------------------------------------------------------------------------------
def _bounce(
    rng: np.random.Generator, t: np.ndarray, amplitude: float, period: tuple[float, float]
) -> np.ndarray:
    """(T,) a sinusoid that is 0 at t = 0: amplitude * (sin(w t + phi) - sin(phi))."""
    omega = 2 * np.pi / rng.uniform(*period)
    phase = rng.uniform(0, 2 * np.pi)
    return amplitude * (np.sin(omega * t + phase) - np.sin(phase))


def _sample_camera(rng: np.random.Generator, cfg: SynthConfig, num_frames: int) -> np.ndarray:
    """(T, 3) zoom, ox, oy with frame 0 at identity; zoom is about the frame centre."""
    t = np.arange(num_frames, dtype=np.float64)
    s = cfg.camera
    log_zoom = s * rng.uniform(-0.005, 0.005) * t + _bounce(
        rng, t, s * rng.uniform(0, 0.05), (12, 40)
    )
    zoom = np.exp(log_zoom)
    pan = np.stack(
        [
            s * rng.uniform(-0.004, 0.004) * size * t
            + _bounce(rng, t, s * rng.uniform(0, 0.03) * size, (10, 40))
            for size in (cfg.width, cfg.height)
        ],
        axis=1,
    )  # (T, 2)
    centre = np.array([cfg.width, cfg.height]) / 2
    offset = (1 - zoom)[:, None] * centre[None, :] + pan
    return np.concatenate([zoom[:, None], offset], axis=1)


def _leave_and_return(
    rng: np.random.Generator,
    path: np.ndarray,
    radius: np.ndarray,
    camera: np.ndarray,
    height: int,
    width: int,
) -> np.ndarray:
    """(T, 2) world path with a smooth excursion that takes the object out of view and back.

    At an integer frame `tp` the object is pushed out through the nearest edge by its screen
    radius plus a margin; the push rises and falls as cos^2 over `half` frames on either side,
    so frame 0 and the last frame are untouched.
    """
    t_count = len(path)
    tp = int(rng.integers(2, t_count - 2))
    half = min(tp - 0.5, t_count - 1.5 - tp) * rng.uniform(0.7, 1.0)
    zoom, ox, oy = camera[tp]
    q = zoom * path[tp] + np.array([ox, oy])  # screen position at the peak
    gaps = np.array([q[0], width - q[0], q[1], height - q[1]])
    exits = np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]])
    edge = int(np.argmin(gaps))
    push = (max(gaps[edge], 0.0) + zoom * radius[tp] + 2.0) / zoom
    x = (np.arange(t_count) - tp) / half
    bump = np.where(np.abs(x) < 1, np.cos(np.pi / 2 * np.clip(x, -1, 1)) ** 2, 0.0)
    return path + push * bump[:, None] * exits[edge][None, :]


def _sample_object(
    rng: np.random.Generator,
    cfg: SynthConfig,
    num_frames: int,
    area_range: tuple[float, float],
    anchors: list[np.ndarray],
    camera: np.ndarray,
) -> ObjectTrack:
    """An object's shape and motion (its texture is drawn later, by `_dress`)."""
    h, w = cfg.height, cfg.width
    side = min(h, w)
    t = np.arange(num_frames, dtype=np.float64)
    shape = sample_shape(rng)
    aspect = 1.0 if shape.kind in ("bar", "cross") else float(rng.uniform(0.55, 1.0))
    lo, hi = area_range
    area = np.exp(rng.uniform(np.log(lo), np.log(hi))) * h * w
    s0 = min(np.sqrt(area / (max(unit_area(shape), 1e-3) * aspect)), 0.45 * side)
    p0 = rng.uniform([0.15 * w, 0.15 * h], [0.85 * w, 0.85 * h])

    vmax = 0.025 * side * cfg.speed
    if anchors and rng.random() < cfg.cross_prob:
        target = anchors[int(rng.integers(len(anchors)))]
        meet = rng.uniform(0.4, 0.8) * max(num_frames - 1, 1)
        velocity = (target - p0) / meet
        norm = np.linalg.norm(velocity)
        if norm > 2 * vmax:
            velocity *= 2 * vmax / norm
    else:
        angle = rng.uniform(0, 2 * np.pi)
        velocity = rng.uniform(0, vmax) * np.array([np.cos(angle), np.sin(angle)])
    wander = np.stack(
        [_bounce(rng, t, rng.uniform(0, 0.04 * side * cfg.speed), (8, 32)) for _ in range(2)], 1
    )
    path = p0[None, :] + velocity[None, :] * t[:, None] + wander  # (T, 2)

    theta = rng.uniform(0, 2 * np.pi) + rng.uniform(-1, 1) * np.radians(6) * cfg.rotation * t
    scale = s0 * np.exp(
        rng.uniform(-0.015, 0.015) * t + _bounce(rng, t, rng.uniform(0, 0.08), (8, 30))
    )

    amp = rng.uniform(0, 0.06) * cfg.deform * (0.7 + 0.3 * np.sin(rng.uniform(0.1, 0.5) * t))
    spin = rng.uniform(0.15, 0.6) * rng.choice([-1.0, 1.0], 2)
    phases = rng.uniform(0, 2 * np.pi, 2)[None, :] + spin[None, :] * t[:, None]
    wobble = np.concatenate([amp[:, None], phases], axis=1)  # (T, 3)

    if num_frames >= 6 and rng.random() < cfg.leave_prob:
        radius = scale * (1 + amp) * np.sqrt(2)  # (T,) bounding radius (aspect <= 1)
        path = _leave_and_return(rng, path, radius, camera, h, w)

    c, s = np.cos(theta), np.sin(theta)
    pose = np.empty((num_frames, 2, 3))
    pose[:, 0, 0], pose[:, 0, 1] = c * scale, -s * scale * aspect
    pose[:, 1, 0], pose[:, 1, 1] = s * scale, c * scale * aspect
    pose[:, :, 2] = path

    swing = rng.uniform(-1.5, 1.5) if rng.random() < cfg.depth_swap_prob else 0.0
    depth = rng.uniform(0, 1) + swing * t / max(num_frames - 1, 1)
    return ObjectTrack(
        shape=shape,
        texture=np.zeros((2, 2, 3), np.float32),
        texture_family="",
        pose=pose,
        depth=depth,
        wobble=wobble,
        wobble_freq=float(rng.uniform(2.5, 6.0)),
    )


def _dress(
    rng: np.random.Generator, obj: ObjectTrack, look: Look, bg_mean: np.ndarray, zoom_max: float
) -> ObjectTrack:
    """The object with a texture whose mean colour stands out from the background's."""
    family = str(look.textures[int(rng.integers(len(look.textures)))])
    best, colours = -1.0, look.palette(rng, 3)
    for _ in range(12):  # the best of a few palettes: camouflage is rare, not impossible
        candidate = look.palette(rng, 3)
        distance = float(np.linalg.norm(candidate.mean(0) - bg_mean))
        if distance > best:
            best, colours = distance, candidate
        if best >= 0.3:
            break
    size = float(np.abs(obj.pose[:, :, :2]).sum(axis=2).max()) * zoom_max  # screen half-width
    n = int(np.clip(np.ceil(2 * size) + 2, 16, 256))
    return replace(obj, texture=make_texture(family, rng, n, n, colours), texture_family=family)


def _sample(
    seed: int,
    cfg: SynthConfig,
    num_frames: int,
    n_range: tuple[int, int],
    area_range: tuple[float, float],
) -> Scene:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    look = LOOKS[cfg.look]
    cam_rng, bg_rng, obj_rng, light_rng, deg_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)
    )
    h, w = cfg.height, cfg.width
    camera = _sample_camera(cam_rng, cfg, num_frames) if num_frames > 1 else np.array([[1.0, 0, 0]])

    # the background covers the world seen by every frame, one texture pixel per world unit
    zoom, ox, oy = camera[:, 0], camera[:, 1], camera[:, 2]
    x_lo, x_hi = np.floor((-ox / zoom).min()) - 2, np.ceil(((w - ox) / zoom).max()) + 2
    y_lo, y_hi = np.floor((-oy / zoom).min()) - 2, np.ceil(((h - oy) / zoom).max()) + 2
    bg_family = str(look.textures[int(bg_rng.integers(len(look.textures)))])
    background = make_texture(
        bg_family, bg_rng, int(y_hi - y_lo), int(x_hi - x_lo), look.palette(bg_rng, 3)
    )

    n = int(obj_rng.integers(n_range[0], n_range[1] + 1))
    objects: list[ObjectTrack] = []
    for _ in range(n):
        anchors = [o.pose[0, :, 2] for o in objects]
        objects.append(_sample_object(obj_rng, cfg, num_frames, area_range, anchors, camera))
    scene = Scene(
        height=h,
        width=w,
        background=background,
        background_origin=(float(x_lo), float(y_lo)),
        background_family=bg_family,
        camera=camera,
        objects=tuple(objects),
        lighting=look.sample_lighting(light_rng, num_frames, cfg.lighting),
        degradation=look.sample_degradation(deg_rng),
    )

    # every object must be promptable on frame 0: redraw the hidden ones, then drop the rest
    min_px = cfg.min_area_frac * h * w
    for attempt in range(_ATTEMPTS + 1):
        counts = np.bincount(render_ids(scene, 0).ravel(), minlength=len(objects) + 1)
        bad = [k for k in range(len(objects)) if counts[k + 1] < min_px]
        if not bad or attempt == _ATTEMPTS:
            break
        for k in bad:
            anchors = [o.pose[0, :, 2] for i, o in enumerate(objects) if i != k]
            objects[k] = _sample_object(obj_rng, cfg, num_frames, area_range, anchors, camera)
        scene = replace(scene, objects=tuple(objects))
    if bad:  # rare: dropping hidden objects only uncovers the others
        objects = [o for k, o in enumerate(objects) if k not in bad]
        if not objects:
            raise RuntimeError(
                f"seed {seed}: no object reached min_area_frac={cfg.min_area_frac} on frame 0 "
                f"after {_ATTEMPTS} draws; lower min_area_frac or raise max_area_frac"
            )

    bg_mean = background.reshape(-1, 3).mean(0)
    zoom_max = float(camera[:, 0].max())
    dressed = tuple(_dress(obj_rng, o, look, bg_mean, zoom_max) for o in objects)
    return replace(scene, objects=dressed)


def sample_scene(seed: int, cfg: SynthConfig = SynthConfig()) -> Scene:
    """Everything random about video `seed` under `cfg`, drawn but not rendered."""
    area = (1.5 * cfg.min_area_frac, cfg.max_area_frac)
    return _sample(seed, cfg, cfg.num_frames, (cfg.min_objects, cfg.max_objects), area)


def sample_image_scene(seed: int, cfg: SynthConfig = SynthConfig()) -> Scene:
    """A one-frame scene with `image_min_objects..image_max_objects` smaller objects."""
    lo = 1.5 * cfg.min_area_frac
    hi = max(1.5 * lo, min(cfg.max_area_frac, 0.5 / cfg.image_max_objects))
    return _sample(seed, cfg, 1, (cfg.image_min_objects, cfg.image_max_objects), (lo, hi))


def make_video(seed: int, cfg: SynthConfig = SynthConfig()) -> SynthVideo:
    """Video `seed`: frames (T, H, W, 3) uint8 and masks (T, H, W) uint8 ids, named by look+seed."""
    frames, masks = render_scene(sample_scene(seed, cfg))
    return SynthVideo(frames=frames, masks=masks, name=f"synth_{cfg.look}_{seed}")


def make_image(seed: int, cfg: SynthConfig = SynthConfig()) -> SynthImage:
    """Image `seed`: (H, W, 3) uint8 with many objects and their (H, W) uint8 id map."""
    frames, masks = render_scene(sample_image_scene(seed, cfg))
    return SynthImage(image=frames[0], masks=masks[0])
