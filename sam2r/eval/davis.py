"""J&F evaluation of a folder of predicted masks against a folder of annotations, under the
DAVIS 2017 semi-supervised convention or the SA-V one.

    result = evaluate("DAVIS", "my_predictions")          # DAVIS root or folder of sequences
    print(result.table()); result.write_csv("eval_out")   # global_results.csv, per-object_...

Both conventions score J and F per object and frame (`sam2r.eval.metrics`), never the first
and the last annotated frame of a sequence (of an object, in the SA-V per-object layout), and
report the mean over all objects of the dataset; J&F = (J + F) / 2. They differ in which
objects and frames are scored:

* objects: `davis` (davis2017-evaluation, semi-supervised) takes ids 1..max id of the first
  annotated frame, an id absent there still counting (with an empty GT); `sav` (sam2
  `sav_dataset/sav_evaluator.py`) takes every id seen in the GT of the scored frames;
* frames of an object: `davis` scores every scored frame; `sav` starts at the first scored frame
  where the object is in the GT or in the prediction (earlier frames are left out, not 1.0);
* GT pixels of value 255: `davis` makes them background (the toolkit zeroes its void label and
  passes no void mask to the semi-supervised metrics); `sav` treats 255 as an object id.

In the per-object layout (`<seq>/<obj>/<frame>.png`) every object folder is one object with its
own frames; `davis` scores all of them on every scored frame, `sav` as above.
Recall and decay (`J-Recall`, `J-Decay`, ...) are DAVIS statistics; under `sav` they are
computed the same way on the frames SA-V scores (the SA-V evaluator reports only means).

Departures from both tools, where they stop or crash instead:
* a prediction file that is absent is scored as an empty mask and listed in
  `EvalResult.missing_predictions` (both tools stop);
* prediction ids that are not a GT object are ignored (the DAVIS toolkit stops when a
  prediction holds an id above the number of objects);
* every GT sequence must have a prediction folder, else ValueError (`sav_evaluator` without
  `--strict` silently evaluates the sequences present in both);
* a sequence (or SA-V object) with fewer than 3 annotated frames has nothing to score:
  ValueError (both tools crash on it).
Masks of different sizes are an error, as in both tools (neither resizes).

What is left to others: the metrics (`sam2r.eval.metrics`), finding and reading the files
(`sam2r.eval.layout`), the result tables and CSV files (`sam2r.eval.results`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sam2r.eval.layout import (
    SequenceFiles,
    list_sequences,
    read_binary,
    read_label_map,
    read_prediction,
    scan_sequence,
)
from sam2r.eval.metrics import DEFAULT_BOUND_TH, contour_accuracy, region_similarity
from sam2r.eval.results import EvalResult, ObjectResult

CONVENTIONS = ("davis", "sav")
VOID_ID = 255  # DAVIS annotations: "void" (object boundaries, unlabelled); background here


def evaluate(
    gt_root: str | os.PathLike[str],
    pred_root: str | os.PathLike[str],
    convention: str = "davis",
    sequences: Sequence[str] | None = None,
    bound_th: float = DEFAULT_BOUND_TH,
    progress: bool = False,
) -> EvalResult:
    """Score every sequence of `gt_root` against `pred_root`.

    Args:
        gt_root: a DAVIS root (`Annotations/480p/`, `ImageSets/2017/val.txt`) or a folder of
            sequence folders; see `sam2r.eval.layout`.
        pred_root: a folder of sequence folders of predicted PNGs, in the layout of the GT and
            with the same file names.
        convention: "davis" (DAVIS 2017 semi-supervised) or "sav" (SA-V val/test); see the
            module docstring.
        sequences: names to evaluate, in order (default: the DAVIS val image set, or all).
        bound_th: contour tolerance, a fraction of the image diagonal (or pixels if >= 1).
        progress: show a progress bar over sequences (on stderr).

    Returns:
        EvalResult with one ObjectResult per scored object.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    pred = Path(pred_root)
    if not pred.is_dir():
        raise ValueError(
            f"prediction folder {pred} does not exist; pass the folder holding one folder of "
            "PNGs per sequence"
        )
    ann, names = list_sequences(gt_root, sequences)
    missing: list[str] = []
    objects: list[ObjectResult] = []
    iterator: Sequence[str] = names
    if progress:
        from tqdm import tqdm

        iterator = tqdm(names, desc="J&F", unit="seq", file=sys.stderr)
    for name in iterator:
        files = scan_sequence(ann, pred, name)
        if files.per_object:
            objects += _score_per_object(files, convention, bound_th, missing)
        elif convention == "davis":
            objects += _score_label_maps_davis(files, bound_th, missing)
        else:
            objects += _score_label_maps_sav(files, bound_th, missing)
    if not objects:
        raise ValueError(
            f"no object to score in {ann}: the annotations hold no object id (nonzero pixel) "
            "on the frames that are scored"
        )
    return EvalResult(convention, objects, missing)


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def _scored(frames: Sequence[str], where: Path) -> tuple[str, ...]:
    """The frames that are scored: all but the first and the last."""
    if len(frames) < 3:
        raise ValueError(
            f"{where} has {len(frames)} annotated frame(s); the first and the last are not "
            "scored, so at least 3 are needed (leave this sequence out with sequences=[...])"
        )
    return tuple(frames[1:-1])


def _check_shape(gt: np.ndarray, other: np.ndarray, gt_path: Path, other_path: Path) -> None:
    if gt.shape != other.shape:
        raise ValueError(
            f"{other_path} is {other.shape[1]}x{other.shape[0]} (WxH) but {gt_path} is "
            f"{gt.shape[1]}x{gt.shape[0]}; masks must have the size of the annotations"
        )


def _prediction(
    path: Path,
    gt: np.ndarray,
    gt_path: Path,
    per_object: bool,
    files: SequenceFiles,
    missing: list[str],
) -> np.ndarray:
    """The prediction at `path` checked against the GT shape; zeros (recorded) when absent."""
    pred = read_prediction(path, per_object)
    if pred is None:
        missing.append(path.relative_to(files.pred_dir.parent).as_posix())
        return np.zeros(gt.shape, dtype=bool if per_object else np.uint8)
    _check_shape(gt, pred, gt_path, path)
    return pred


def _scores(pred: np.ndarray, gt: np.ndarray, bound_th: float) -> tuple[float, float]:
    return region_similarity(pred, gt), contour_accuracy(pred, gt, bound_th)


# ----------------------------------------------------------------------------------------------
# label maps: <seq>/<frame>.png, pixel = object id
# ----------------------------------------------------------------------------------------------
def _score_label_maps_davis(
    files: SequenceFiles, bound_th: float, missing: list[str]
) -> list[ObjectResult]:
    """DAVIS: objects 1..max id of the first frame (void zeroed), all scored frames."""
    first_path = files.gt_dir / files.frames[0]
    first = read_label_map(first_path)
    first[first == VOID_ID] = 0
    n_objects = int(first.max())
    scored = _scored(files.frames, files.gt_dir)
    j = np.zeros((n_objects, len(scored)))  # (N, T)
    f = np.zeros((n_objects, len(scored)))  # (N, T)
    for t, frame in enumerate(scored):
        gt_path = files.gt_dir / frame
        gt = read_label_map(gt_path)
        _check_shape(first, gt, first_path, gt_path)
        pred = _prediction(files.pred_dir / frame, gt, gt_path, False, files, missing)
        for k in range(1, n_objects + 1):  # k <= 254, so GT void pixels never match
            j[k - 1, t], f[k - 1, t] = _scores(pred == k, gt == k, bound_th)
    return [
        ObjectResult(files.name, str(k), scored, j[k - 1], f[k - 1])
        for k in range(1, n_objects + 1)
    ]


def _score_label_maps_sav(
    files: SequenceFiles, bound_th: float, missing: list[str]
) -> list[ObjectResult]:
    """SA-V: objects seen in the scored GT frames, each from its first appearance."""
    scored = _scored(files.frames, files.gt_dir)
    start: dict[int, int] = {}  # id -> index of the first scored frame it appears in
    values: dict[int, list[tuple[float, float]]] = {}
    in_gt: set[int] = set()
    shape_ref: tuple[np.ndarray, Path] | None = None
    for t, frame in enumerate(scored):
        gt_path = files.gt_dir / frame
        gt = read_label_map(gt_path)
        if shape_ref is None:
            shape_ref = (gt, gt_path)
        _check_shape(shape_ref[0], gt, shape_ref[1], gt_path)
        pred = _prediction(files.pred_dir / frame, gt, gt_path, False, files, missing)
        gt_ids = {int(i) for i in np.unique(gt)} - {0}
        in_gt |= gt_ids
        # prediction-only ids are scored too (they may turn up in the GT later), then dropped
        for k in sorted(gt_ids | ({int(i) for i in np.unique(pred)} - {0})):
            start.setdefault(k, t)
        for k in start:
            values.setdefault(k, []).append(_scores(pred == k, gt == k, bound_th))
    out = []
    for k in sorted(in_gt):
        jf = np.array(values[k], dtype=np.float64).reshape(-1, 2)  # (T_k, 2)
        out.append(ObjectResult(files.name, str(k), scored[start[k] :], jf[:, 0], jf[:, 1]))
    return out


# ----------------------------------------------------------------------------------------------
# per-object masks: <seq>/<obj>/<frame>.png (SA-V)
# ----------------------------------------------------------------------------------------------
def _score_per_object(
    files: SequenceFiles, convention: str, bound_th: float, missing: list[str]
) -> list[ObjectResult]:
    """One result per object folder; `sav` starts each at the object's first appearance and
    drops an object absent from the GT of all its scored frames."""
    out = []
    for obj, frames in files.objects.items():
        scored = _scored(frames, files.gt_dir / obj)
        first: int | None = 0 if convention == "davis" else None
        seen_in_gt = False
        jf: list[tuple[float, float]] = []
        shape_ref: tuple[np.ndarray, Path] | None = None
        for t, frame in enumerate(scored):
            gt_path = files.gt_dir / obj / frame
            gt = read_binary(gt_path)
            if shape_ref is None:
                shape_ref = (gt, gt_path)
            _check_shape(shape_ref[0], gt, shape_ref[1], gt_path)
            pred = _prediction(files.pred_dir / obj / frame, gt, gt_path, True, files, missing)
            seen_in_gt |= bool(gt.any())
            if first is None and (gt.any() or pred.any()):
                first = t
            if first is not None:
                jf.append(_scores(pred, gt, bound_th))
        if convention == "sav" and not seen_in_gt:
            continue
        assert first is not None  # seen_in_gt, or davis
        values = np.array(jf, dtype=np.float64).reshape(-1, 2)  # (T_obj, 2)
        out.append(ObjectResult(files.name, obj, scored[first:], values[:, 0], values[:, 1]))
    return out
