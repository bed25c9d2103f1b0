"""Input and output of videos and masks: frame sources (folders, arrays) for the predictors."""

from sam2r.io.frames import (
    ArrayFrames,
    FolderFrames,
    FrameSource,
    LiveFrames,
    preprocess_frame,
)
from sam2r.io.open import open_frames

__all__ = [
    "ArrayFrames",
    "FolderFrames",
    "FrameSource",
    "LiveFrames",
    "open_frames",
    "preprocess_frame",
]
