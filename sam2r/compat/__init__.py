"""The official `sam2` names, signatures and internals on top of sam2r: adapters only.

A script written for the official package runs after changing its imports, e.g.

    from sam2.build_sam import build_sam2
    from sam2.sam2_image_predictor import SAM2ImagePredictor
becomes
    from sam2r.compat import build_sam2, SAM2ImagePredictor

or, module for module, `from sam2r.compat.build_sam import build_sam2`,
`from sam2r.compat.sam2_image_predictor import SAM2ImagePredictor` (the official tree is
mirrored for what scripts import: `build_sam`, `sam2_image_predictor`, `sam2_video_predictor`,
`automatic_mask_generator`, `modeling.sam2_base`, `utils.transforms`, `utils.misc`,
`utils.amg`). `python -m sam2r.compat SCRIPT.py` runs an unmodified script with `import sam2`
resolving here for that run only (`run.py`).

What the builders return is the official model surface: `build_sam2` gives a `SAM2Base`
(`modeling/`), the official internals (`forward_image`, `_forward_sam_heads`, `track_step`,
the sub-modules' official call forms, ...) over the sam2r model's own parameters (official
state-dict keys, no copies); the video predictor is such a model too, and its `init_state`
returns the official state dict as a live view of sam2r's typed session (`video_state.py`).
Return values are the official ones (numpy tuples for images, tensors for video).

sam2r's own typed API (`sam2r.ImagePredictor`, `sam2r.VideoPredictor`, `sam2r.model`) knows
nothing of these adapters; new code should use it.
"""

from sam2r.compat.automatic_mask_generator import SAM2AutomaticMaskGenerator
from sam2r.compat.builder import build_sam2, build_sam2_hf
from sam2r.compat.image_predictor import SAM2ImagePredictor
from sam2r.compat.modeling.sam2_base import SAM2Base
from sam2r.compat.video_predictor import (
    SAM2VideoPredictor,
    build_sam2_video_predictor,
    build_sam2_video_predictor_hf,
)

__all__ = [
    "build_sam2",
    "build_sam2_hf",
    "SAM2AutomaticMaskGenerator",
    "SAM2Base",
    "SAM2ImagePredictor",
    "SAM2VideoPredictor",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]
