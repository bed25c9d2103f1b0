"""Shared by the ONNX tests: models exported once per test process, a replay of the same
video prompts on the torch `VideoPredictor` and on the `OnnxVideoTracker`, and the bad
`propagate` calls both refuse alike."""

from __future__ import annotations

import functools
import hashlib
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

_TMP = tempfile.TemporaryDirectory(prefix="sam2r_onnx_tests_")


@functools.cache
def bundled_model() -> Any:
    import sam2r

    return sam2r.from_pretrained("sam2r_micro").eval()


@functools.cache
def parity_model(overrides: tuple[str, ...] = ()) -> Any:
    """The parity fixtures' micro config with the synthetic weights (and official
    `++model.x=value` overrides, e.g. a video knob)."""
    from conftest import synthetic_model

    return synthetic_model("micro", overrides)


@functools.cache
def exported(which: str, overrides: tuple[str, ...] = ()) -> Path:
    """The folder of an exported model ("bundled" or "parity", the latter with `overrides`),
    exported once per process."""
    from sam2r.onnx import export

    model = bundled_model() if which == "bundled" else parity_model(overrides)
    tag = "_" + hashlib.sha1("\n".join(overrides).encode()).hexdigest()[:8] if overrides else ""
    out = Path(_TMP.name) / f"{which}{tag}"
    export(model, out)
    return out


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def replay(ops: list[dict[str, Any]], predictor: Any, session: Any) -> list[tuple]:
    """Run prompt / clear / remove / propagation ops on a torch predictor or an ONNX tracker
    (same method names); every returned or yielded frame as (op index, frame, obj_ids, masks,
    scores)."""
    out = []

    def keep(i: int, r: Any) -> None:
        masks = r.masks.numpy() if hasattr(r.masks, "numpy") else r.masks
        scores = r.object_score_logits
        scores = scores.numpy() if hasattr(scores, "numpy") else scores
        out.append((i, r.frame_idx, list(r.obj_ids), np.asarray(masks), np.asarray(scores)))

    for i, op in enumerate(ops):
        kind = op["op"]
        if kind == "points":
            keep(
                i,
                predictor.add_points(
                    session,
                    op["frame_idx"],
                    op["obj_id"],
                    points=op.get("points"),
                    labels=op.get("labels"),
                    box=op.get("box"),
                    clear_old_points=op.get("clear_old_points", True),
                ),
            )
        elif kind == "mask":
            keep(i, predictor.add_mask(session, op["frame_idx"], op["obj_id"], op["mask"]))
        elif kind == "clear":
            r = predictor.clear_prompts_in_frame(session, op["frame_idx"], op["obj_id"])
            keep(i, r)
        elif kind == "remove":
            for r in predictor.remove_object(session, op["obj_id"]):
                keep(i, r)
        elif kind == "propagate":
            for r in predictor.propagate(
                session,
                start_frame_idx=op.get("start"),
                max_frame_num_to_track=op.get("max"),
                reverse=op.get("reverse", False),
            ):
                keep(i, r)
        else:
            raise ValueError(kind)
    return out


def compare(ours: list[tuple], ref: list[tuple]) -> tuple[float, float]:
    """(min per-frame per-object mask IoU, max object-score difference) of two replays, after
    checking they returned the same frames and objects in the same order."""
    assert [(i, f, ids) for i, f, ids, _, _ in ours] == [(i, f, ids) for i, f, ids, _, _ in ref]
    worst_iou, worst_score = 1.0, 0.0
    for (_, _, _, ma, sa), (_, _, _, mb, sb) in zip(ours, ref, strict=True):
        for k in range(ma.shape[0]):
            worst_iou = min(worst_iou, iou(ma[k, 0] > 0, mb[k, 0] > 0))
        worst_score = max(worst_score, float(np.abs(sa - sb).max()) if sa.size else 0.0)
    return worst_iou, worst_score


def refuses_bad_propagations(predictor: Any, session: Any) -> None:
    """Check that `propagate` refuses a bad start frame or `max_frame_num_to_track` before it
    changes anything, on a torch predictor or an ONNX tracker whose `session` holds one click
    of object 1 on frame 0, not yet propagated: the click stays pending, its memory not
    encoded. The messages are the same on both sides."""
    bad = [
        (dict(start_frame_idx=8), ValueError, "frame_idx 8 is out of range: the video has 8"),
        (dict(start_frame_idx=-1), ValueError, "out of range"),
        (dict(start_frame_idx=1.0), TypeError, "frame_idx must be an int"),
        (dict(max_frame_num_to_track=-1), ValueError, r"must be an int >= 0 or None, got -1"),
        (dict(max_frame_num_to_track=2.0), ValueError, "max_frame_num_to_track"),
        (dict(max_frame_num_to_track=True), ValueError, "max_frame_num_to_track"),
    ]
    for kwargs, exc, match in bad:
        with pytest.raises(exc, match=match):
            predictor.propagate(session, **kwargs)
        track = session.objects[1]
        assert list(track.temp_cond_outputs) == [0] and not track.cond_outputs, kwargs
        assert not track.temp_cond_outputs[0].has_memory, kwargs
