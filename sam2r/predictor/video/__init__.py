"""The video predictor: prompt objects on any frame of a video, then track them through it.

    from sam2r.predictor.video import VideoPredictor
    predictor = VideoPredictor(model)
    session = predictor.init_session("frames/")

`VideoPredictor` (`predictor.py`) orders the work; the modules beside it hold its parts:

* `session`: the typed state of a session (`VideoSession`, `ObjectTrack`, `FrameState`,
  `FrameResult`), with `spill` keeping its stored tensors within a RAM budget;
* `prompts`, `checks`, `ids`: what the user passes, checked and mapped to model inputs (`ids`
  numpy only, shared with the ONNX tracker);
* `frame_step`: one frame of one object; `memory`: which stored frames it reads (the memory
  bank's read side); `bank`: where its output is filed (the write side), by the rules of
  `filing` (plain Python, shared with the ONNX tracker);
* `selection`: the opt-in memory modes, whose rules (`policy`, `kalman`) are numpy only and
  shared with the torch-free ONNX tracker;
* `tracking`: propagation passes, a live stream's frames, and clearing what they produced;
* `results`: the masks handed back (`non_overlapping`: one object per pixel);
* `persist`: saving a session to a file and reopening it;
* `allocator`: glibc malloc thresholds for CPU inference, set when a predictor is made.

The names below are loaded on first use (PEP 562), so that the numpy-only modules of this
package (`policy`, `kalman`, `ids`, `filing`, `memory`) can be imported without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "VideoPredictor": "sam2r.predictor.video.predictor",
    "non_overlapping": "sam2r.predictor.video.results",
    "FrameResult": "sam2r.predictor.video.session",
    "VideoSession": "sam2r.predictor.video.session",
}

if TYPE_CHECKING:
    from sam2r.predictor.video.predictor import VideoPredictor
    from sam2r.predictor.video.results import non_overlapping
    from sam2r.predictor.video.session import FrameResult, VideoSession

__all__ = ["FrameResult", "VideoPredictor", "VideoSession", "non_overlapping"]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'sam2r.predictor.video' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
