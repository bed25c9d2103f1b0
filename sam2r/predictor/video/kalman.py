"""A constant-velocity Kalman filter on an object's box, for motion-aware memory selection.

    kf = BoxKalman.start(box)          # box: (x0, y0, x1, y1) in any pixel unit
    predicted = kf.predict()           # (4,) box expected on the next frame
    kf.update(measured_box)            # correct the state with the box of the chosen mask

The state is (cx, cy, w, h, vcx, vcy, vw, vh): the box centre and size, and their velocities
in pixels per frame. Each `predict` moves the state one frame on (x += v) and grows the
uncertainty; each `update` blends in a measured box by the Kalman gain. The noise is
proportional to the box size (a box twice as large moves and jitters twice as much in pixels),
so the filter behaves the same at every resolution. This follows the motion model described
in the SAMURAI paper (Yang et al., 2024, section 4.1), written here from the equations; the
noise levels are our own choice.

`box_iou` scores how well a candidate mask's box agrees with the prediction (the "motion
score"). Both are plain numpy on 8-vectors: the filter costs microseconds per frame.

What is left to others: when the filter is started, updated or trusted, and how its score is
combined with the mask decoder's (`sam2r.predictor.video.selection`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_POS_NOISE = 0.05  # std of the position / size process noise, in box sizes per frame
_VEL_NOISE = 0.01  # std of the velocity process noise, in box sizes per frame^2
_MEAS_NOISE = 0.05  # std of a measured box's centre and size, in box sizes


def box_to_state(box: np.ndarray) -> np.ndarray:
    """(4,) x0, y0, x1, y1 -> (4,) cx, cy, w, h."""
    x0, y0, x1, y1 = (float(v) for v in box)
    return np.array([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0])


def state_to_box(s: np.ndarray) -> np.ndarray:
    """(>= 4,) cx, cy, w, h, ... -> (4,) x0, y0, x1, y1 (sizes clamped at 0)."""
    w, h = max(float(s[2]), 0.0), max(float(s[3]), 0.0)
    return np.array([s[0] - w / 2, s[1] - h / 2, s[0] + w / 2, s[1] + h / 2])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) x0, y0, x1, y1 against boxes (..., 4), broadcast; 0 for empty."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih
    area_a = np.clip(a[..., 2] - a[..., 0], 0, None) * np.clip(a[..., 3] - a[..., 1], 0, None)
    area_b = np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


@dataclass
class BoxKalman:
    """Kalman filter state of one box.

    Args:
        mean: (8,) cx, cy, w, h and their velocities.
        cov: (8, 8) covariance of `mean`.
        updates: measurements taken since the filter was (re)started.
    """

    mean: np.ndarray
    cov: np.ndarray
    updates: int = 0

    @classmethod
    def start(cls, box: np.ndarray) -> BoxKalman:
        """A filter at a measured box with zero velocity (uncertain velocity)."""
        s = box_to_state(box)
        size = max(s[2], s[3], 1.0)
        std = np.array([_MEAS_NOISE] * 4 + [10 * _VEL_NOISE] * 4) * size * 2
        return cls(mean=np.concatenate([s, np.zeros(4)]), cov=np.diag(std**2), updates=1)

    @staticmethod
    def _transition() -> np.ndarray:
        f = np.eye(8)
        f[:4, 4:] = np.eye(4)  # x_{t+1} = x_t + v_t
        return f

    def _size(self) -> float:
        return max(float(self.mean[2]), float(self.mean[3]), 1.0)

    def predict(self) -> np.ndarray:
        """Move the state one frame on; returns the predicted (4,) box x0, y0, x1, y1."""
        f = self._transition()
        size = self._size()
        q = np.diag(np.array([_POS_NOISE] * 4 + [_VEL_NOISE] * 4) ** 2) * size**2
        self.mean = f @ self.mean
        self.cov = f @ self.cov @ f.T + q
        return state_to_box(self.mean)

    def predicted_box(self) -> np.ndarray:
        """The (4,) box of the current state (after `predict`), without changing it."""
        return state_to_box(self.mean)

    def update(self, box: np.ndarray) -> None:
        """Correct the state with a measured (4,) box x0, y0, x1, y1."""
        z = box_to_state(box)
        h = np.eye(4, 8)
        r = np.eye(4) * (_MEAS_NOISE * self._size()) ** 2
        s = h @ self.cov @ h.T + r
        gain = np.linalg.solve(s, h @ self.cov).T  # (8, 4) = P H^T S^-1 (S symmetric)
        self.mean = self.mean + gain @ (z - h @ self.mean)
        self.cov = (np.eye(8) - gain @ h) @ self.cov
        self.updates += 1

    def stop(self) -> None:
        """Forget the velocity (the object is lost: do not extrapolate its motion further)."""
        self.mean[4:] = 0.0
        self.updates = 0
