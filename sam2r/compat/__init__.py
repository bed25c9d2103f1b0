"""The official `sam2` names and signatures on top of sam2r.

A script written for the official package runs after changing its imports, e.g.

    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor
becomes
    from sam2r.compat import build_sam2, SAM2ImagePredictor

and `from sam2.build_sam import build_sam2_video_predictor` becomes
`from sam2r.compat import build_sam2_video_predictor` (masks stay torch tensors there, as in the
official video predictor). The official module names work too where a script imports from
them: `sam2r.compat.build_sam` holds the four builders, as `sam2.build_sam` does.

Return values are the official ones (numpy tuples). New code should use `sam2r.ImagePredictor`.
"""

from sam2r.compat.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2r.compat.builder import build_sam2, build_sam2_hf
from sam2r.compat.image_predictor import SAM2ImagePredictor
from sam2r.compat.video_predictor import (
    SAM2VideoPredictor,
    build_sam2_video_predictor,
    build_sam2_video_predictor_hf,
)

__all__ = [
    "build_sam2",
    "build_sam2_hf",
    "SAM2AutomaticMaskGenerator",
    "SAM2ImagePredictor",
    "SAM2VideoPredictor",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]
