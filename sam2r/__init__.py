"""sam2r: SAM 2 / SAM 2.1 — promptable segmentation of images and videos.

Public API:

    model = sam2r.build_model("sam2.1_hiera_t", checkpoint="sam2.1_hiera_tiny.pt")
    model = sam2r.from_pretrained("facebook/sam2.1-hiera-tiny")      # needs the `hub` extra
    model = sam2r.from_pretrained("sam2r_micro")                     # bundled, offline
    predictor = sam2r.ImagePredictor(model)
    video = sam2r.VideoPredictor(model)

`sam2r.compat` offers the official `sam2` names and signatures.
"""

from sam2r.build import (
    build_model,
    detect_variant,
    from_pretrained,
    load_checkpoint,
    save_checkpoint,
)
from sam2r.config import VARIANTS, SAM2Config, get_config
from sam2r.configs import config_from_yaml
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.automatic import MaskGenerator, MaskRecord
from sam2r.predictor.image import ImagePrediction, ImagePredictor
from sam2r.predictor.video import FrameResult, VideoPredictor, VideoSession

__version__ = "0.1.0"

__all__ = [
    "VARIANTS",
    "FrameResult",
    "VideoPredictor",
    "VideoSession",
    "ImagePrediction",
    "ImagePredictor",
    "MaskGenerator",
    "MaskRecord",
    "SAM2Config",
    "SAM2Model",
    "build_model",
    "config_from_yaml",
    "detect_variant",
    "from_pretrained",
    "get_config",
    "load_checkpoint",
    "save_checkpoint",
]
