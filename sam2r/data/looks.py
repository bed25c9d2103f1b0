"""Looks of the synthetic data: which textures, colours, lighting and camera artefacts a video gets.

A `Look` is a table of ranges; `LOOKS` holds the two the engine offers:
* "train": the six training texture families, vivid colours (HSV saturation >= 0.45), mild
  lighting (brightness 0.8..1.2, contrast 0.85..1.15, +-6 % colour drift, a linear shading
  ramp) and clean frames;
* "unseen": the six other texture families, muted colours (saturation <= 0.35), lighting
  outside the training ranges (dark 0.55..0.8 or bright 1.2..1.3, low or high contrast, a
  +-18 % colour cast, vignetting and a moving spotlight), and camera artefacts on the RGB
  frames: Gaussian blur or a motion streak, sensor noise and JPEG compression (quality 12..40).

The two looks share nothing a model could memorise about appearance: their texture families and
colour families are disjoint and their base lighting ranges do not overlap, so validating on
"unseen" measures how well segmentation transfers to a new look.

What is left to others: the texture families (`sam2r.data.textures`), applying lighting and
artefacts (`sam2r.data.scene`), motion and objects (`sam2r.data.synthetic`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sam2r.data.scene import Degradation, Lighting
from sam2r.data.textures import TRAIN_TEXTURES, UNSEEN_TEXTURES

Range = tuple[float, float]


@dataclass(frozen=True)
class Look:
    """The appearance ranges of one look; every draw is uniform within a range."""

    name: str
    textures: tuple[str, ...]  # texture families of objects and backgrounds
    saturation: Range  # HSV saturation of palette colours
    value: Range  # HSV value (brightness) of palette colours
    gain: tuple[Range, ...]  # brightness factor ranges; one is picked per video
    contrast: tuple[Range, ...]  # contrast factor ranges; one is picked per video
    tint: float  # per-channel colour cast, +- this fraction
    ramp: float  # slope of the linear shading ramp, at most
    vignette: Range  # corner darkening
    spot: Range  # strength of a moving spotlight (0, 0) = none
    blur: Range  # Gaussian blur radius in pixels, (0, 0) = none
    streak_prob: float  # chance of a motion-blur streak instead of the Gaussian blur
    noise: Range  # sensor noise std in grey levels, (0, 0) = none
    jpeg: tuple[int, int]  # JPEG quality range, (0, 0) = no compression

    def palette(self, rng: np.random.Generator, k: int = 3) -> np.ndarray:
        """(k, 3) float32 RGB colours in [0, 1] from this look's colour family."""
        hue = rng.uniform(0, 1) + rng.uniform(-0.25, 0.25, k)  # near one another, mostly
        hue[rng.random(k) < 0.3] += 0.5  # sometimes a complementary accent
        sat = rng.uniform(*self.saturation, k)
        val = rng.uniform(*self.value, k)
        return hsv_to_rgb(hue % 1.0, sat, val)

    def sample_lighting(self, rng: np.random.Generator, num_frames: int, drift: float) -> Lighting:
        """Lighting for `num_frames` frames; `drift` scales how much it changes over time."""
        t = np.arange(num_frames, dtype=np.float64)

        def wave(amplitude: float) -> np.ndarray:  # (T,) a slow sinusoid, random phase
            omega, phase = rng.uniform(0.1, 0.45), rng.uniform(0, 2 * np.pi)
            return drift * amplitude * np.sin(omega * t + phase)

        gain = _pick(rng, self.gain) + wave(0.08)
        contrast = _pick(rng, self.contrast) + wave(0.06)
        tint = (
            1
            + rng.uniform(-self.tint, self.tint, 3)[None, :]
            + np.stack([wave(0.04) for _ in range(3)], axis=1)
        )
        angle = rng.uniform(0, 2 * np.pi) + drift * rng.uniform(-0.15, 0.15) * t
        slope = rng.uniform(0, self.ramp)
        ramp = np.stack([slope * np.cos(angle), slope * np.sin(angle)], axis=1)
        spot = np.zeros((num_frames, 4))
        strength = rng.uniform(*self.spot)
        if strength > 0:
            start, velocity = rng.uniform(-0.7, 0.7, 2), drift * rng.uniform(-0.06, 0.06, 2)
            spot[:, :2] = start[None, :] + velocity[None, :] * t[:, None]
            spot[:, 2] = rng.uniform(0.3, 0.7)
            spot[:, 3] = strength
        return Lighting(
            gain=gain,
            contrast=contrast,
            tint=tint,
            ramp=ramp,
            spot=spot,
            vignette=float(rng.uniform(*self.vignette)),
        )

    def sample_degradation(self, rng: np.random.Generator) -> Degradation | None:
        """The camera artefacts of one video, or None for a clean look."""
        if self.blur[1] <= 0 and self.noise[1] <= 0 and self.jpeg[1] <= 0:
            return None
        streak = float(rng.uniform(0, np.pi)) if rng.random() < self.streak_prob else None
        return Degradation(
            blur=float(rng.uniform(*self.blur)),
            streak=streak,
            noise=float(rng.uniform(*self.noise)),
            jpeg_quality=int(rng.integers(self.jpeg[0], self.jpeg[1] + 1)),
            seed=int(rng.integers(2**31)),
        )


def _pick(rng: np.random.Generator, ranges: tuple[Range, ...]) -> float:
    lo, hi = ranges[int(rng.integers(len(ranges)))]
    return float(rng.uniform(lo, hi))


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(k,) hue, saturation, value in [0, 1] -> (k, 3) float32 RGB in [0, 1]."""
    h6 = np.asarray(h, np.float64) * 6.0
    i = np.floor(h6).astype(np.int64) % 6
    f = h6 - np.floor(h6)
    p, q, r = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack(
        [
            np.stack([v, r, p], 1),
            np.stack([q, v, p], 1),
            np.stack([p, v, r], 1),
            np.stack([p, q, v], 1),
            np.stack([r, p, v], 1),
            np.stack([v, p, q], 1),
        ]
    )  # (6, k, 3)
    return table[i, np.arange(len(i))].astype(np.float32)


LOOKS: dict[str, Look] = {
    "train": Look(
        name="train",
        textures=TRAIN_TEXTURES,
        saturation=(0.45, 1.0),
        value=(0.3, 1.0),
        gain=((0.8, 1.2),),
        contrast=((0.85, 1.15),),
        tint=0.06,
        ramp=0.2,
        vignette=(0.0, 0.0),
        spot=(0.0, 0.0),
        blur=(0.0, 0.0),
        streak_prob=0.0,
        noise=(0.0, 0.0),
        jpeg=(0, 0),
    ),
    "unseen": Look(
        name="unseen",
        textures=UNSEEN_TEXTURES,
        saturation=(0.0, 0.35),
        value=(0.2, 0.95),
        gain=((0.55, 0.8), (1.2, 1.3)),
        contrast=((0.6, 0.85), (1.15, 1.35)),
        tint=0.18,
        ramp=0.35,
        vignette=(0.2, 0.6),
        spot=(0.1, 0.3),
        blur=(0.5, 1.4),
        streak_prob=0.3,
        noise=(2.0, 8.0),
        jpeg=(12, 40),
    ),
}
