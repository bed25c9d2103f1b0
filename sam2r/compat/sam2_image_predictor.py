"""The official module `sam2.sam2_image_predictor` under its own name:
`from sam2r.compat.sam2_image_predictor import SAM2ImagePredictor` (defined in
`sam2r.compat.image_predictor`)."""

from sam2r.compat.image_predictor import SAM2ImagePredictor

__all__ = ["SAM2ImagePredictor"]
