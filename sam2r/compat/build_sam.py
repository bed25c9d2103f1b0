"""The official `sam2.build_sam` module under its own name: its four builders, so that

    from sam2.build_sam import build_sam2, build_sam2_video_predictor
becomes
    from sam2r.compat.build_sam import build_sam2, build_sam2_video_predictor

`build_sam2` and `build_sam2_hf` are defined in `sam2r.compat.builder`, the video builders
beside the class they return, in `sam2r.compat.video_predictor`. This module only names them,
and nothing in sam2r imports it, so it closes no import loop.
"""

from sam2r.compat.builder import build_sam2, build_sam2_hf
from sam2r.compat.video_predictor import (
    build_sam2_video_predictor,
    build_sam2_video_predictor_hf,
)

__all__ = [
    "build_sam2",
    "build_sam2_hf",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]
