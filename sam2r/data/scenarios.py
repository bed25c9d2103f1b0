"""Hard cases for tracking: synthetic videos where SAM 2's memory is known to struggle.

    video = make_scenario_video(7, "occlusion", SynthConfig(num_frames=48))

Each scenario is one target object (id 1 in the masks, the only object annotated) in an
ordinary synthetic scene (`sam2r.data.synthetic`), plus what makes it hard:

* `occlusion`: an opaque occluder (a rounded square of another texture) slides over the target,
  hides it completely for 10..40 frames (fewer when the video is short), then slides away;
* `distractor`: a look-alike (the same shape and the same texture, a slightly different size and
  spin) starts beside the target and crosses it halfway through, passing in front or behind;
* `fast`: the target darts around the frame on a Lissajous path (up to ~30 % of the width per
  frame) and spins twice as fast;
* `cut`: a shot change at a frame between 1/3 and 2/3 of the video: another background, camera
  and lighting, the same object (shape and texture) somewhere else in the new shot.

The ground truth is rendered, so it is exact: a hidden target's mask is empty. Frame 0 always
shows the target (at least `min_area_frac` of the frame) and nothing overlapping it, so it can
be prompted there. The same seed, scenario and config give byte-identical arrays.

What is left to others: drawing and rendering ordinary scenes (`sam2r.data.synthetic`,
`sam2r.data.scene`), files (`sam2r.data.davis_io`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sam2r.data.looks import LOOKS
from sam2r.data.scene import ObjectTrack, Scene, render_ids, render_scene
from sam2r.data.shapes import SuperEllipse
from sam2r.data.synthetic import SynthConfig, SynthVideo, sample_scene
from sam2r.data.textures import make_texture

SCENARIOS = ("occlusion", "distractor", "fast", "cut")
# frames per video the held-out sets and `sam2r synth --scenario` use by default
SCENARIO_FRAMES = {"occlusion": 48, "distractor": 32, "fast": 24, "cut": 24}
_MIN_FRAMES = {"occlusion": 24, "distractor": 8, "fast": 4, "cut": 4}
_TRIES = 24  # redraws of a scenario's extra object before the target is redrawn


def _radius(obj: ObjectTrack) -> np.ndarray:
    """(T,) world radius of a circle around the object's centre that holds all of it."""
    half_axes = np.linalg.norm(obj.pose[:, :, :2], axis=1)  # (T, 2) lengths of the local axes
    return np.linalg.norm(half_axes, axis=1) * (1 + np.abs(obj.wobble[:, 0]))


def _visible(scene: Scene, t: int, k: int = 0) -> int:
    return int((render_ids(scene, t) == k + 1).sum())


def _base(seed: int, cfg: SynthConfig, salt: int) -> Scene:
    """An ordinary one-object scene that stays in view (no leaving, nothing crossing)."""
    one = replace(cfg, min_objects=1, max_objects=1, leave_prob=0.0, cross_prob=0.0)
    return sample_scene(int(np.random.SeedSequence([seed, salt]).generate_state(1)[0]), one)


def _occlusion(seed: int, cfg: SynthConfig, rng: np.random.Generator) -> Scene:
    scene = _base(seed, cfg, 1)
    target = scene.objects[0]
    t_count = scene.num_frames
    hidden = int(rng.integers(10, min(40, t_count - 12) + 1))
    slide = 4  # frames the occluder takes to slide over the target (and away)
    start = int(rng.integers(slide + 1, t_count - hidden - slide + 1))
    end = start + hidden  # hidden on [start, end)
    radius = _radius(target)
    half = float(radius[start - 1 : end + 1].max()) * 1.15 + 2.0  # half-side of the occluder
    angle = rng.uniform(0, 2 * np.pi)
    direction = np.array([np.cos(angle), np.sin(angle)])
    speed = (half + float(radius.max()) + 4.0) / (slide - 0.5)
    t = np.arange(t_count)
    away = np.where(t < start, start - t, np.where(t >= end, t - end + 1, 0)).astype(np.float64)
    pose = np.zeros((t_count, 2, 3))
    pose[:, 0, 0] = pose[:, 1, 1] = half
    pose[:, :, 2] = target.pose[:, :, 2] + speed * away[:, None] * direction[None, :]
    look = LOOKS[cfg.look]
    family = str(look.textures[int(rng.integers(len(look.textures)))])
    occluder = ObjectTrack(
        shape=SuperEllipse("superellipse", 8.0),  # contains the unit disc
        texture=make_texture(family, rng, 64, 64, look.palette(rng, 3)),
        texture_family=family,
        pose=pose,
        depth=np.full(t_count, float(target.depth.max()) + 1.0),  # always in front
        wobble=np.zeros((t_count, 3)),
        wobble_freq=1.0,
    )
    return replace(scene, objects=(target, occluder))


def _distractor(seed: int, cfg: SynthConfig, rng: np.random.Generator) -> Scene:
    scene = _base(seed, cfg, 2)
    target = scene.objects[0]
    t_count = scene.num_frames
    meet = int(rng.integers(int(0.35 * t_count), int(0.65 * t_count) + 1))
    size = float(rng.uniform(0.85, 1.15))
    gap = float(_radius(target)[0]) * (1 + size) * 0.8 + 4.0  # mostly apart; checked below
    spin = rng.uniform(-1, 1) * np.radians(6) * cfg.rotation
    t = np.arange(t_count)
    for _ in range(_TRIES):
        angle = rng.uniform(0, 2 * np.pi)
        p0 = target.pose[0, :, 2] + gap * np.array([np.cos(angle), np.sin(angle)])
        lo, hi = np.zeros(2), np.array([cfg.width, cfg.height], np.float64)
        if not np.all((lo < p0) & (p0 < hi)):
            continue
        velocity = (target.pose[meet, :, 2] - p0) / meet  # centres meet at frame `meet`
        c, s = np.cos(spin * t), np.sin(spin * t)
        rot = np.stack([np.stack([c, -s], 1), np.stack([s, c], 1)], 1)  # (T, 2, 2)
        pose = np.empty((t_count, 2, 3))
        pose[:, :, :2] = size * rot @ target.pose[:1, :, :2]
        pose[:, :, 2] = p0[None, :] + velocity[None, :] * t[:, None]
        front = rng.random() < 0.5
        twin = replace(
            target,
            pose=pose,
            depth=target.depth + (1.0 if front else -1.0),
            wobble=target.wobble[::-1].copy(),
        )
        candidate = replace(scene, objects=(target, twin))
        if _visible(candidate, 0) == _visible(scene, 0):  # the twin leaves frame 0's target whole
            return candidate
    return replace(scene, objects=(target,))  # rare: no room beside it, a plain video


def _fast(seed: int, cfg: SynthConfig, rng: np.random.Generator) -> Scene:
    scene = _base(seed, replace(cfg, rotation=2 * cfg.rotation), 3)
    target = scene.objects[0]
    t = np.arange(scene.num_frames, dtype=np.float64)
    size = np.array([cfg.width, cfg.height], np.float64)
    margin = min(float(_radius(target).max()), 0.3 * float(size.min()))
    amp = (size / 2 - margin) * rng.uniform(0.6, 1.0, 2)
    omega = 2 * np.pi / rng.uniform(8, 16, 2)
    phase = rng.uniform(0, 2 * np.pi, 2)
    path = size / 2 + amp * np.sin(omega * t[:, None] + phase)  # (T, 2) screen of frame 0
    pose = target.pose.copy()
    pose[:, :, 2] = path
    return replace(scene, objects=(replace(target, pose=pose),))


def _cut(seed: int, cfg: SynthConfig, rng: np.random.Generator) -> tuple[Scene, Scene]:
    t_count = cfg.num_frames
    cut = int(rng.integers(max(t_count // 3, 1), max(2 * t_count // 3, 1) + 1))
    first = _base(seed, replace(cfg, num_frames=cut), 4)
    target = first.objects[0]
    min_px = cfg.min_area_frac * cfg.height * cfg.width
    for attempt in range(_TRIES):
        second = _base(seed, replace(cfg, num_frames=t_count - cut), 100 + attempt)
        other = second.objects[0]
        scale = float(np.linalg.norm(target.pose[-1, :, 0])) / max(
            float(np.linalg.norm(other.pose[0, :, 0])), 1e-6
        )
        pose = other.pose.copy()
        pose[:, :, :2] *= scale * rng.uniform(0.8, 1.25)  # the same object, seen anew
        moved = replace(
            target, pose=pose, depth=other.depth, wobble=other.wobble[: t_count - cut].copy()
        )
        second = replace(second, objects=(moved,))
        if _visible(second, 0) >= min_px:
            break
    return first, second  # rarely the target starts the new shot small: the truth says so


def make_scenario_video(
    seed: int,
    scenario: str,
    cfg: SynthConfig = SynthConfig(),  # noqa: B008 (frozen: a shared default is safe)
) -> SynthVideo:
    """Video `seed` of a hard-case scenario: (T, H, W, 3) frames, (T, H, W) target masks (id 1).

    Args:
        seed: the video's seed (>= 0).
        scenario: one of `SCENARIOS`.
        cfg: size, frames, look and motion scales; its object counts, `leave_prob` and
            `cross_prob` are replaced by the scenario's own.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {SCENARIOS}")
    if cfg.num_frames < _MIN_FRAMES[scenario]:
        raise ValueError(
            f"scenario {scenario!r} needs at least {_MIN_FRAMES[scenario]} frames, got "
            f"num_frames={cfg.num_frames} (its held-out set uses {SCENARIO_FRAMES[scenario]})"
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), SCENARIOS.index(scenario)]))
    if scenario == "cut":
        parts = _cut(int(seed), cfg, rng)
    else:
        draw = {"occlusion": _occlusion, "distractor": _distractor, "fast": _fast}[scenario]
        parts = (draw(int(seed), cfg, rng),)
    frames, masks = zip(*(render_scene(p) for p in parts), strict=True)
    target = (np.concatenate(masks) == 1).astype(np.uint8)
    return SynthVideo(
        frames=np.concatenate(frames), masks=target, name=f"{scenario}_{cfg.look}_{seed}"
    )
