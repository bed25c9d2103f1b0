"""Evaluation of video object segmentation: J (region similarity), F (contour accuracy) and
J&F over a dataset, under the DAVIS 2017 semi-supervised or the SA-V convention.

    from sam2r.eval import evaluate
    result = evaluate("DAVIS", "predictions", convention="davis")
    print(result.table()); result.write_csv("eval_out")

Modules: `metrics` (per-frame J and F, per-object statistics), `layout` (finding and reading
mask files), `davis` (`evaluate`, the two conventions), `results` (`EvalResult`, CSV files);
`vos_infer` (producing predictions over a dataset) is imported from its own module.
"""

from sam2r.eval.davis import CONVENTIONS, evaluate
from sam2r.eval.metrics import (
    Statistics,
    boundary_map,
    boundary_tolerance,
    contour_accuracy,
    decay,
    dilate_disk,
    disk,
    mean,
    recall,
    region_similarity,
    statistics,
)
from sam2r.eval.results import EvalResult, ObjectResult

__all__ = [
    "CONVENTIONS",
    "EvalResult",
    "ObjectResult",
    "Statistics",
    "boundary_map",
    "boundary_tolerance",
    "contour_accuracy",
    "decay",
    "dilate_disk",
    "disk",
    "evaluate",
    "mean",
    "recall",
    "region_similarity",
    "statistics",
]
