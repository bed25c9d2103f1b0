"""Segment and track everything in a video (micro model, synthetic weights)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FIXTURES

from sam2r import SAM2Model
from sam2r.predictor.automatic import MaskGenerator
from sam2r.predictor.everything import track_everything
from sam2r.predictor.video import VideoPredictor

VIDEO = FIXTURES / "inputs" / "video"


def _generator(model: SAM2Model) -> MaskGenerator:
    # with random weights masks need a high threshold and no NMS to differ (see the AMG tests)
    return MaskGenerator(
        model, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0,
        box_nms_thresh=1.0, mask_threshold=3.0,
    )  # fmt: skip


def test_objects_found_then_tracked_with_stable_ids(model: SAM2Model) -> None:
    pred = VideoPredictor(model, fill_hole_area=0)
    session = pred.init_session(VIDEO)
    results = list(track_everything(pred, _generator(model), session, every=3, max_objects=6))
    assert [r.frame_idx for r in results] == list(range(8))
    first_ids = results[0].obj_ids
    assert len(first_ids) >= 1 and first_ids == list(range(1, len(first_ids) + 1))
    for a, b in zip(results, results[1:], strict=False):
        assert b.obj_ids[: len(a.obj_ids)] == a.obj_ids  # ids are never renumbered
    assert len(results[-1].obj_ids) <= 6
    for r in results:
        assert r.masks.shape[0] == len(r.obj_ids) and torch.isfinite(r.masks).all()


def test_equals_manual_tracking_without_new_objects(model: SAM2Model) -> None:
    gen = _generator(model)
    pred = VideoPredictor(model, fill_hole_area=0)
    auto = list(track_everything(pred, gen, pred.init_session(VIDEO), every=0, max_objects=3))
    manual = pred.init_session(VIDEO)
    from PIL import Image

    frame0 = np.array(Image.open(sorted(VIDEO.glob("*.jpg"))[0]).convert("RGB"))
    masks = sorted(
        (np.asarray(r["segmentation"]) for r in gen.generate(frame0)), key=lambda m: -int(m.sum())
    )
    for i, m in enumerate(masks[:3], start=1):
        pred.add_mask(manual, 0, i, m)
    expected = list(pred.propagate(manual))
    assert len(auto) == len(expected)
    for a, e in zip(auto, expected, strict=True):
        assert a.obj_ids == e.obj_ids and torch.equal(a.masks, e.masks)


def test_bad_options(model: SAM2Model) -> None:
    pred = VideoPredictor(model)
    session = pred.init_session(VIDEO)
    with pytest.raises(ValueError, match="every"):
        next(track_everything(pred, _generator(model), session, every=-1))
    with pytest.raises(ValueError, match="max_overlap"):
        next(track_everything(pred, _generator(model), session, max_overlap=2.0))
    pred.add_points(session, 0, 1, points=[[10, 10]], labels=[1])
    with pytest.raises(ValueError, match="fresh session"):
        next(track_everything(pred, _generator(model), session))


def test_new_objects_join_at_generator_frames(model: SAM2Model) -> None:
    pred = VideoPredictor(model, fill_hole_area=0)
    session = pred.init_session(VIDEO)
    # max_overlap=1: any proposal not fully covered by tracked objects is new
    results = list(
        track_everything(pred, _generator(model), session, every=3, max_overlap=1.0, max_objects=60)
    )
    counts = [len(r.obj_ids) for r in results]
    assert [r.frame_idx for r in results] == list(range(8))
    assert counts[0] == counts[1] == counts[2] < counts[3] <= 60  # objects added on frame 3
    assert counts[3] == counts[4] == counts[5]
