"""The official module `sam2.sam2_video_predictor` under its own name:
`from sam2r.compat.sam2_video_predictor import SAM2VideoPredictor` (defined in
`sam2r.compat.video_predictor`)."""

from sam2r.compat.video_predictor import SAM2VideoPredictor

__all__ = ["SAM2VideoPredictor"]
