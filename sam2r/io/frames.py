"""Frame sources: random access to the frames of a video, decoded and preprocessed on demand.

A video predictor reads a frame only when it needs its image features, so a source never holds
decoded frames beyond the one it is returning (an array source holds the caller's array):

* `FolderFrames`: a folder of image files, ordered by the integer in the file name
  (`00000.jpg`, `00001.jpg`, ... as the official loader expects);
* `ArrayFrames`: a uint8 array (N, H, W, 3) or a list of frames (arrays or PIL images);
* `LiveFrames`: frames of a stream appended one at a time, only the last few held.

Preprocessing follows the official video loader, not the image predictor: Pillow's bicubic
resize of the uint8 frame to `size` x `size`, `/ 255` in float64, float32, then ImageNet
mean/std (`preprocess_frame`). It is bit-identical to `sam2.utils.misc.load_video_frames`.

What is left to others: caching image features (the predictor's session); video files and camera/URL
streams are decoded in `sam2r.io.video_file` (PyAV); picking the source for what the user passed
(`sam2r.io.open.open_frames`).
"""

from __future__ import annotations

import os
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from sam2r.ops.transforms import IMAGENET_MEAN, IMAGENET_STD, to_rgb_array

JPEG_EXTENSIONS = (".jpg", ".jpeg")
IMAGE_EXTENSIONS = JPEG_EXTENSIONS + (".png", ".bmp", ".webp", ".tif", ".tiff")


def preprocess_frame(frame: np.ndarray | Image.Image, size: int) -> torch.Tensor:
    """One video frame as the model's input, exactly as the official video loader makes it.

    Args:
        frame: uint8 (H, W, 3) RGB array (or anything `to_rgb_array` accepts), or a PIL image.
        size: side of the square model input (`image_size`).

    Returns:
        (3, size, size) float32: Pillow bicubic resize of the uint8 frame, `/ 255` (float64),
        cast to float32, then `(x - mean) / std` in float32.
    """
    image = frame.convert("RGB") if isinstance(frame, Image.Image) else None
    if image is None:
        image = Image.fromarray(to_rgb_array(frame))
    resized = np.array(image.resize((size, size), Image.Resampling.BICUBIC))  # (S, S, 3) uint8
    # the result for each of the 256 values, computed by those same operations, then looked up:
    # the same float32 numbers without the frame-sized float64 temporaries (3-4x faster)
    index = torch.from_numpy(resized).permute(2, 0, 1).reshape(3, -1).long()
    return _value_table().gather(1, index).view(3, size, size)


_VALUE_TABLE: list[torch.Tensor] = []


def _value_table() -> torch.Tensor:
    """(3, 256) float32: `preprocess_frame`'s output for each channel and uint8 value."""
    if not _VALUE_TABLE:
        x = torch.from_numpy(np.arange(256)[None].repeat(3, 0) / 255.0).to(torch.float32)
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(3, 1)
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(3, 1)
        _VALUE_TABLE.append((x - mean) / std)
    return _VALUE_TABLE[0]


class FrameSource(ABC):
    """A video as a sequence of frames with random access.

    Subclasses give the number of frames, the (height, width) of the video and one frame by
    index; `model_input` preprocesses it for the model.
    """

    @abstractmethod
    def __len__(self) -> int: ...

    @property
    @abstractmethod
    def hw(self) -> tuple[int, int]:
        """(height, width) of the video (that of its first frame)."""

    @abstractmethod
    def frame(self, index: int) -> np.ndarray | Image.Image:
        """Frame `index` as a uint8 (H, W, 3) RGB array or a PIL image."""

    def model_input(self, index: int, size: int) -> torch.Tensor:
        """Frame `index` preprocessed for the model: (3, size, size) float32."""
        return preprocess_frame(self.frame(self._check_index(index)), size)

    def _check_index(self, index: int) -> int:
        n = len(self)
        if not 0 <= index < n:
            raise IndexError(f"frame index {index} is out of range for a video of {n} frames")
        return index


def _sort_key_integer(path: Path) -> int:
    return int(path.stem)


def _sort_key_natural(path: Path) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


class FolderFrames(FrameSource):
    """The image files of a folder, one per frame.

    Like the official loader, JPEG files (`.jpg`, `.jpeg`, any case) are the frames when the
    folder has any; otherwise PNG, BMP, WebP and TIFF files are. Frames are ordered by the
    integer in the file name (`00000.jpg`, `1.jpg`, ... as the official loader requires); when
    some names are not integers, by natural order of the names (`frame_2` before `frame_10`).

    Args:
        folder: path of the folder.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise ValueError(f"{str(folder)!r} is not a folder of frames")
        files = [p for p in root.iterdir() if p.is_file()]
        jpegs = [p for p in files if p.suffix.lower() in JPEG_EXTENSIONS]
        paths = jpegs or [p for p in files if p.suffix.lower() in IMAGE_EXTENSIONS]
        if not paths:
            raise ValueError(
                f"no image files found in {str(folder)!r}; expected frames such as 00000.jpg, "
                f"00001.jpg, ... (extensions {', '.join(IMAGE_EXTENSIONS)})"
            )
        if all(p.stem.isdigit() for p in paths):
            paths.sort(key=_sort_key_integer)
        else:
            paths.sort(key=_sort_key_natural)
        self.paths: list[Path] = paths
        with Image.open(paths[0]) as first:
            width, height = first.size  # reads the header only
        self._hw = (int(height), int(width))

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def hw(self) -> tuple[int, int]:
        return self._hw

    def frame(self, index: int) -> Image.Image:
        with Image.open(self.paths[self._check_index(index)]) as im:
            return im.convert("RGB")


class ArrayFrames(FrameSource):
    """Frames held in memory: a uint8 array (N, H, W, 3) or a list of frames.

    Args:
        frames: a uint8 numpy array (N, H, W, 3) RGB, or a non-empty sequence of uint8
            (H, W, 3) arrays and/or PIL images (frames may differ in size; the video size is
            that of the first frame).
    """

    def __init__(self, frames: np.ndarray | Sequence[np.ndarray | Image.Image]) -> None:
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
                raise ValueError(
                    "a video array must be uint8 of shape (N, H, W, 3) RGB, got dtype "
                    f"{frames.dtype} and shape {frames.shape}"
                )
            if frames.shape[0] == 0 or frames.shape[1] == 0 or frames.shape[2] == 0:
                raise ValueError(f"the video array is empty: shape {frames.shape}")
            self._frames: Sequence[np.ndarray | Image.Image] = frames
            self._hw = (int(frames.shape[1]), int(frames.shape[2]))
            return
        if isinstance(frames, (str, bytes, torch.Tensor)) or not isinstance(frames, Sequence):
            raise TypeError(
                "frames must be a uint8 array (N, H, W, 3) or a list of frames, "
                f"got {type(frames).__name__}"
            )
        if len(frames) == 0:
            raise ValueError("the list of frames is empty")
        for i, f in enumerate(frames):
            if isinstance(f, Image.Image):
                continue
            if not isinstance(f, np.ndarray) or f.dtype != np.uint8 or f.ndim not in (2, 3):
                what = (
                    f"{f.dtype} array of shape {f.shape}"
                    if isinstance(f, np.ndarray)
                    else type(f).__name__
                )
                raise ValueError(
                    f"frame {i} must be a uint8 (H, W, 3) RGB array or a PIL image, got {what}"
                )
        self._frames = list(frames)
        first = self._frames[0]
        if isinstance(first, Image.Image):
            self._hw = (first.height, first.width)
        else:
            self._hw = (int(first.shape[0]), int(first.shape[1]))

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def hw(self) -> tuple[int, int]:
        return self._hw

    def frame(self, index: int) -> np.ndarray | Image.Image:
        return self._frames[self._check_index(index)]


class LiveFrames(FrameSource):
    """Frames of a live stream, appended one by one; only the last `keep` are held.

    The length is the number of frames appended so far. Asking for a frame that was dropped is
    an error: a stream cannot go back.

    Args:
        keep: how many of the most recent frames stay readable (for prompts on them).
    """

    def __init__(self, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.keep = keep
        self._recent: dict[int, np.ndarray | Image.Image] = {}
        self._count = 0
        self._hw: tuple[int, int] | None = None

    def append(self, frame: np.ndarray | Image.Image) -> int:
        """Add the next frame (uint8 (H, W, 3) RGB or PIL); returns its index."""
        if isinstance(frame, Image.Image):
            hw = (frame.height, frame.width)
        else:
            frame = to_rgb_array(frame)
            hw = (int(frame.shape[0]), int(frame.shape[1]))
        if self._hw is None:
            self._hw = hw
        elif hw != self._hw:
            raise ValueError(f"stream frame of size {hw} differs from the stream's size {self._hw}")
        idx = self._count
        self._recent[idx] = frame
        self._recent.pop(idx - self.keep, None)
        self._count += 1
        return idx

    def held(self) -> dict[int, np.ndarray]:
        """The frames still held, index -> uint8 (H, W, 3) RGB array (PIL frames converted)."""
        return {i: to_rgb_array(f) for i, f in self._recent.items()}

    @classmethod
    def resume(cls, keep: int, count: int, held: dict[int, np.ndarray]) -> LiveFrames:
        """A stream that goes on after `count` frames, holding `held` (what `held()` gave):
        its next frame gets index `count`."""
        stream = cls(keep)
        if sorted(held) != list(range(max(count - keep, 0), count)):
            raise ValueError(
                f"a stream of {count} frames keeping {keep} holds frames "
                f"{max(count - keep, 0)}..{count - 1}, got {sorted(held)}"
            )
        for i in sorted(held):
            stream._count = i
            stream.append(held[i])
        stream._count = count
        return stream

    def __len__(self) -> int:
        return self._count

    @property
    def hw(self) -> tuple[int, int]:
        if self._hw is None:
            raise ValueError("the stream has no frame yet")
        return self._hw

    def frame(self, index: int) -> np.ndarray | Image.Image:
        index = self._check_index(index)
        if index not in self._recent:
            raise ValueError(
                f"frame {index} of the stream is no longer held (only the last {self.keep} are)"
            )
        return self._recent[index]
