"""The frame source for what the user passed as a video: a folder of frames, a video file, an
array, a tensor or a list of frames.

    source = open_frames("frames/")        # FolderFrames
    source = open_frames("clip.mp4")       # VideoFileFrames (the `video` extra)
    source = open_frames(video_array)      # ArrayFrames

What is left to others: the sources themselves (`sam2r.io.frames`, `sam2r.io.video_file`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2r.io.frames import ArrayFrames, FolderFrames, FrameSource
from sam2r.io.video_file import VIDEO_EXTENSIONS, VideoFileFrames


def _tensor_frames(video: torch.Tensor) -> np.ndarray:
    """A uint8 video tensor (N, H, W, 3) or (N, 3, H, W) as a (N, H, W, 3) numpy array."""
    if video.dtype != torch.uint8 or video.ndim != 4:
        raise ValueError(
            "a video tensor must be uint8 of shape (N, H, W, 3) or (N, 3, H, W), got dtype "
            f"{video.dtype} and shape {tuple(video.shape)}"
        )
    if video.shape[-1] != 3 and video.shape[1] == 3:
        video = video.permute(0, 2, 3, 1)
    return np.ascontiguousarray(video.detach().cpu().numpy())


def open_frames(video: Any) -> FrameSource:
    """The frame source for a video given as a folder path, an array, a list or a source.

    Args:
        video: a `FrameSource`; a folder of frames or a video file (str or path); a uint8
            array (N, H, W, 3); a uint8 tensor (N, H, W, 3) or (N, 3, H, W); or a list of uint8
            (H, W, 3) arrays / PIL images.
    """
    if isinstance(video, FrameSource):
        return video
    if isinstance(video, (str, os.PathLike)):
        path = Path(video)
        if path.is_dir():
            return FolderFrames(path)
        if path.is_file():
            if path.suffix.lower() not in VIDEO_EXTENSIONS:
                raise ValueError(
                    f"{str(video)!r} is not a video file ({', '.join(VIDEO_EXTENSIONS)}) nor a "
                    "folder of frames"
                )
            return VideoFileFrames(path)
        raise ValueError(f"no such folder or video file: {str(video)!r}")
    if isinstance(video, torch.Tensor):
        video = _tensor_frames(video)
    if isinstance(video, (np.ndarray, Sequence)) and not isinstance(video, bytes):
        return ArrayFrames(video)
    raise TypeError(
        "video must be a folder of frames, a uint8 array (N, H, W, 3), a list of frames or a "
        f"FrameSource, got {type(video).__name__}"
    )
