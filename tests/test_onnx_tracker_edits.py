"""The ONNX tracker's session edits against `VideoPredictor` on the parity video: clearing an
object's prompts on a frame, removing an object (the masks handed back), and corrected frames
made conditioning (`add_all_frames_to_correct_as_cond`), each followed by re-propagation.
Bars as in `test_onnx_runtime.py`: per-frame mask IoU >= 0.99 for every object, object scores
within 1e-3."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FIXTURES

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import (  # noqa: E402
    compare,
    exported,
    parity_model,
    refuses_bad_propagations,
    replay,
)

from sam2r import VideoPredictor  # noqa: E402
from sam2r.onnx import OnnxVideoTracker  # noqa: E402

VIDEO = FIXTURES / "inputs" / "video"
IOU_MIN = 0.99
SCORE_TOL = 1e-3
ALL_COND = ("++model.add_all_frames_to_correct_as_cond=true",)


def _run_both(ops, overrides=()):
    """Replay `ops` on both; (ONNX tracker, its session, its replay, the torch replay)."""
    ref = VideoPredictor(parity_model(overrides))
    ours = OnnxVideoTracker(exported("parity", overrides), num_threads=2)
    session = ours.init_session(str(VIDEO))
    got = replay(ops, ours, session)
    want = replay(ops, ref, ref.init_session(str(VIDEO)))
    return ours, session, got, want


def _check(got, want):
    worst_iou, worst_score = compare(got, want)
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL, (worst_iou, worst_score)


# a second prompted frame of object 1 (5) cleared after tracking: its output stays as a tracked
# frame's until re-propagation; a pending correction (3) cleared before propagating; a mask
# prompt of object 2 on a frame of its own (6) cleared after tracking
CLEAR = [
    dict(op="points", frame_idx=0, obj_id=1, points=[[58, 84]], labels=[1]),
    dict(op="points", frame_idx=0, obj_id=2, box=[196, 34, 271, 106]),
    dict(op="points", frame_idx=5, obj_id=1, points=[[147, 128], [60, 84]], labels=[1, 0]),
    dict(op="propagate"),
    dict(op="clear", frame_idx=5, obj_id=1),
    dict(
        op="points", frame_idx=3, obj_id=1, points=[[125, 212]], labels=[0], clear_old_points=False
    ),
    dict(op="clear", frame_idx=3, obj_id=1),
    dict(op="propagate"),
    dict(op="propagate", start=7, reverse=True),
]


def test_clear_prompts_in_frame_matches_video_predictor():
    ours, session, got, want = _run_both(CLEAR)
    _check(got, want)
    assert [g[1] for g in got if g[0] in (4, 6)] == [5, 3]  # the clears' results are compared
    track = session.objects[1]
    assert list(track.cond_outputs) == [0] and not track.points.get(3) and 5 not in track.points
    assert ours.clear_prompts_in_frame(session, 0, 2, need_output=False) is None
    assert 0 not in session.objects[2].cond_outputs and 0 in session.objects[2].non_cond_outputs
    with pytest.raises(ValueError, match="unknown object id 9"):
        ours.clear_prompts_in_frame(session, 0, 9)
    with pytest.raises(RuntimeError, match="object 2 has no prompt"):
        next(ours.propagate(session))


def test_remove_object_matches_video_predictor():
    """Object 3 (clicked on frame 3, a mask on frame 6) removed after tracking: the others'
    masks on frames 3 and 6 come back, and re-propagating the others is unchanged."""
    blob = np.zeros((240, 320), bool)
    blob[100:160, 100:170] = True
    ops = [
        dict(op="points", frame_idx=0, obj_id=1, points=[[58, 84]], labels=[1]),
        dict(op="points", frame_idx=0, obj_id=2, box=[196, 34, 271, 106]),
        dict(op="points", frame_idx=3, obj_id=3, points=[[125, 212]], labels=[1]),
        dict(op="mask", frame_idx=6, obj_id=3, mask=blob),
        dict(op="propagate"),
        dict(op="remove", obj_id=3),
        dict(op="propagate", start=2),
    ]
    ours, session, got, want = _run_both(ops)
    _check(got, want)
    removed = [g for g in got if g[0] == 5]
    assert [(g[1], g[2]) for g in removed] == [(3, [1, 2]), (6, [1, 2])]
    frames = ours.propagate(session)
    next(frames)
    ours.remove_object(session, 1, need_output=False)
    with pytest.raises(RuntimeError, match="added or removed while propagating"):
        next(frames)  # as the torch predictor (the results would name the wrong objects)
    assert ours.remove_object(session, 9) == []
    with pytest.raises(ValueError, match="unknown object id 9"):
        ours.remove_object(session, 9, strict=True)
    assert ours.remove_object(session, np.int64(2)) == [] and session.obj_ids == []


def test_add_all_frames_to_correct_as_cond_matches_video_predictor():
    """With corrected frames made conditioning: a correction on a forward-tracked frame (4),
    clicked again once it is conditioning, one on a reverse-tracked frame (2), an object added
    later (3). The switch matters here: the torch outputs with and without it differ down to a
    per-frame IoU of 0.11."""
    ops = [
        dict(op="points", frame_idx=0, obj_id=1, points=[[58, 84]], labels=[1]),
        dict(op="points", frame_idx=0, obj_id=2, box=[196, 34, 271, 106]),
        dict(op="propagate"),
        dict(
            op="points",
            frame_idx=4,
            obj_id=1,
            points=[[147, 128]],
            labels=[0],
            clear_old_points=False,
        ),
        dict(op="propagate", start=4),
        dict(
            op="points",  # frame 4 is now conditioning: it reads its own memory and pointer
            frame_idx=4,
            obj_id=1,
            points=[[100, 100]],
            labels=[1],
            clear_old_points=False,
        ),
        dict(op="propagate", start=7, reverse=True),
        dict(op="points", frame_idx=2, obj_id=2, points=[[230, 70]], labels=[1]),
        dict(op="points", frame_idx=3, obj_id=3, points=[[125, 212], [60, 150]], labels=[1, 0]),
        dict(op="propagate", start=2),
        dict(op="propagate", start=3, reverse=True),
    ]
    ours, session, got, want = _run_both(ops, ALL_COND)
    assert ours.cfg["add_all_frames_to_correct_as_cond"]
    _check(got, want)
    assert list(session.objects[1].cond_outputs) == [0, 4]
    assert list(session.objects[2].cond_outputs) == [0, 2]


def test_propagate_refuses_bad_arguments_before_committing():
    """A bad start frame or `max_frame_num_to_track` raises as in `VideoPredictor.propagate`
    and leaves the click pending (its memory not yet encoded); the session then tracks."""
    tracker = OnnxVideoTracker(exported("parity"), num_threads=2)
    session = tracker.init_session(str(VIDEO))
    tracker.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    refuses_bad_propagations(tracker, session)
    frames = [r.frame_idx for r in tracker.propagate(session, max_frame_num_to_track=np.int64(1))]
    assert frames == [0, 1] and list(session.objects[1].cond_outputs) == [0]


# the torch side's processing-order table (`test_video_predictor.test_processing_order`), run
# as passes over one session: each pass's frames, on both sides
ORDER = [
    ((3, 2, False), [3, 4, 5]),
    ((3, 0, False), [3]),
    ((5, 1, True), [5, 4]),
    ((None, 2, True), [3, 2, 1]),
    ((0, None, True), []),
    ((6, 5, False), [6, 7]),
    ((None, None, False), [3, 4, 5, 6, 7]),
]


def test_max_frame_num_to_track_visits_the_same_frames_as_video_predictor():
    ops = [dict(op="points", frame_idx=3, obj_id=1, points=[[125, 212]], labels=[1])]
    ops += [
        dict(op="propagate", start=start, max=count, reverse=reverse)
        for (start, count, reverse), _ in ORDER
    ]
    _, _, got, want = _run_both(ops)
    _check(got, want)  # the same frames and objects in the same order, and the same masks
    for i, (_, expected) in enumerate(ORDER, start=1):
        assert [g[1] for g in got if g[0] == i] == expected, ops[i]
