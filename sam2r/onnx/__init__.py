"""ONNX export of the whole model and a tracker that runs on ONNX Runtime alone.

    sam2r.onnx.export(model, "exported/")                 # needs torch (the onnx extra)
    tracker = sam2r.onnx.OnnxVideoTracker("exported/")    # numpy + onnxruntime only
    predictor = sam2r.onnx.OnnxImagePredictor("exported/")

Names are loaded on first use, so that importing the runtime never imports torch: `export`
comes from `sam2r.onnx.exporter` (torch), the rest from numpy-only modules.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "export": "sam2r.onnx.exporter",
    "OnnxImagePredictor": "sam2r.onnx.image",
    "OnnxVideoTracker": "sam2r.onnx.tracker",
    "OnnxFrameResult": "sam2r.onnx.session",
    "OnnxModel": "sam2r.onnx.runtime",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sam2r.onnx' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
