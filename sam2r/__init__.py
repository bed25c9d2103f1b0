"""sam2r: SAM 2 / SAM 2.1 — promptable segmentation of images and videos.

Public API:

    model = sam2r.build_model("sam2.1_hiera_t", checkpoint="sam2.1_hiera_tiny.pt")
    model = sam2r.from_pretrained("facebook/sam2.1-hiera-tiny")      # needs the `hub` extra
    model = sam2r.from_pretrained("sam2r_micro")                     # bundled, offline
    predictor = sam2r.ImagePredictor(model)
    video = sam2r.VideoPredictor(model)

`sam2r.compat` offers the official `sam2` names and signatures.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# The public names are loaded on first use (PEP 562), so that `import sam2r` costs nothing and
# the torch-free ONNX runtime (`sam2r.onnx.OnnxVideoTracker`) can be imported where torch is
# not installed, or without loading it.
_PUBLIC = {
    "build_model": "sam2r.build",
    "detect_variant": "sam2r.build",
    "from_pretrained": "sam2r.build",
    "load_checkpoint": "sam2r.build",
    "save_checkpoint": "sam2r.build",
    "VARIANTS": "sam2r.config",
    "SAM2Config": "sam2r.config",
    "get_config": "sam2r.config",
    "config_from_yaml": "sam2r.configs",
    "SAM2Model": "sam2r.model.sam2",
    "MaskGenerator": "sam2r.predictor.automatic",
    "MaskRecord": "sam2r.predictor.automatic",
    "ImagePrediction": "sam2r.predictor.image",
    "ImagePredictor": "sam2r.predictor.image",
    "FrameResult": "sam2r.predictor.video",
    "VideoPredictor": "sam2r.predictor.video",
    "VideoSession": "sam2r.predictor.video",
}

if TYPE_CHECKING:
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


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is not None:
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value
        return value
    if not name.startswith("_"):  # a sub-package used as an attribute (`sam2r.predictor`)
        try:
            return importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"{__name__}.{name}":
                raise
    raise AttributeError(f"module 'sam2r' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_PUBLIC))


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
