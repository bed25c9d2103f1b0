"""Video frames for the ONNX tracker, without torch: a folder of images, an array, a list, or a
live stream, each giving uint8 frames and their model input (`numpy_ops.preprocess_frame`).

Folders are read as sam2r's torch frame sources read them (`sam2r.io.frames`): JPEG files when
there are any, else PNG / BMP / WebP / TIFF; ordered by the integer file name, else naturally.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam2r.onnx.numpy_ops import to_rgb

_JPEG = (".jpg", ".jpeg")
_IMAGES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


class Frames:
    """Random access to a video's frames.

    Args:
        video: a folder path, a uint8 array (N, H, W, 3), a list of uint8 (H, W, 3) arrays
            / PIL images, or any object with `frame(i)`, `hw` and `len()` (the frame sources of
            `sam2r.io`, e.g. a video file).
    """

    def __init__(self, video: Any) -> None:
        self.paths: list[Path] | None = None
        self.items: Sequence[Any] | None = None
        self.source: Any = None
        if hasattr(video, "frame") and hasattr(video, "hw") and hasattr(video, "__len__"):
            self.source = video  # a frame source of sam2r.io (folder, video file)
            self.hw = tuple(video.hw)
        elif isinstance(video, (str, os.PathLike)):
            root = Path(video)
            if not root.is_dir():
                raise ValueError(f"{str(video)!r} is not a folder of frames")
            files = [p for p in root.iterdir() if p.is_file()]
            paths = [p for p in files if p.suffix.lower() in _JPEG] or [
                p for p in files if p.suffix.lower() in _IMAGES
            ]
            if not paths:
                raise ValueError(f"no image files in {str(video)!r} (expected 00000.jpg, ...)")
            if all(p.stem.isdigit() for p in paths):
                paths.sort(key=lambda p: int(p.stem))
            else:
                paths.sort(
                    key=lambda p: [
                        int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)
                    ]
                )
            self.paths = paths
            with Image.open(paths[0]) as im:
                self.hw = (im.height, im.width)
        elif isinstance(video, np.ndarray):
            if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
                raise ValueError(
                    f"a video array must be uint8 (N, H, W, 3), got {video.dtype} {video.shape}"
                )
            self.items = video
            self.hw = (int(video.shape[1]), int(video.shape[2]))
        elif isinstance(video, Sequence) and len(video) > 0:
            self.items = list(video)
            first = self.items[0]
            self.hw = (
                (first.height, first.width)
                if isinstance(first, Image.Image)
                else tuple(to_rgb(first).shape[:2])
            )
        else:
            raise TypeError(
                "video must be a folder, a uint8 array (N, H, W, 3) or a non-empty list of "
                f"frames, got {type(video).__name__}"
            )

    def __len__(self) -> int:
        if self.source is not None:
            return len(self.source)
        if self.paths is not None:
            return len(self.paths)
        return 0 if self.items is None else len(self.items)  # `or` would fail on an array

    def frame(self, index: int) -> np.ndarray | Image.Image:
        if not 0 <= index < len(self):
            raise IndexError(f"frame {index} is out of range for a video of {len(self)} frames")
        if self.source is not None:
            return self.source.frame(index)
        if self.paths is not None:
            with Image.open(self.paths[index]) as im:
                return im.convert("RGB")
        assert self.items is not None
        return self.items[index]


class LiveFrames:
    """Frames of a live stream appended one by one; only the last `keep` stay readable."""

    def __init__(self, keep: int = 2) -> None:
        self.keep = keep
        self.recent: dict[int, np.ndarray | Image.Image] = {}
        self.count = 0
        self.hw: tuple[int, int] = (0, 0)

    def append(self, frame: np.ndarray | Image.Image) -> int:
        if not isinstance(frame, Image.Image):
            frame = to_rgb(frame)
        hw = (frame.height, frame.width) if isinstance(frame, Image.Image) else frame.shape[:2]
        hw = (int(hw[0]), int(hw[1]))
        if self.count == 0:
            self.hw = hw
        elif hw != self.hw:
            raise ValueError(f"stream frame of size {hw} differs from the stream's {self.hw}")
        idx = self.count
        self.recent[idx] = frame
        self.recent.pop(idx - self.keep, None)
        self.count += 1
        return idx

    def __len__(self) -> int:
        return self.count

    def frame(self, index: int) -> np.ndarray | Image.Image:
        if index not in self.recent:
            raise ValueError(
                f"frame {index} of the stream is not held (only the last {self.keep} are)"
            )
        return self.recent[index]
