"""Session files: `VideoPredictor.save_session` / `load_session` round-trip exactly.

A reopened session must give the same masks on every frame, the same pending prompts, and the
same later tracking and correction clicks as the session it was saved from (bit for bit: the
same kernels run on the same numbers). Bad files and mismatched videos or models are refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_model

from sam2r import SAM2Model
from sam2r.predictor.video import VideoPredictor

VIDEO = FIXTURES / "inputs" / "video"


def _all(predictor: VideoPredictor, session, **kw) -> dict[int, torch.Tensor]:  # noqa: ANN001
    return {r.frame_idx: r.masks.clone() for r in predictor.propagate(session, **kw)}


def _equal(a: dict[int, torch.Tensor], b: dict[int, torch.Tensor]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"frame {k} differs"


@pytest.mark.parametrize("budget", [None, 0])  # 0: every stored tensor spilled to disk
def test_round_trip_is_exact(model: SAM2Model, tmp_path: Path, budget: float | None) -> None:
    predictor = VideoPredictor(model)
    s = predictor.init_session(VIDEO, state_budget_mb=budget)
    predictor.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
    predictor.add_points(s, 0, "car", box=[150, 60, 260, 160])
    _all(predictor, s)
    predictor.add_points(s, 5, 1, points=[[70, 90]], labels=[0])  # pending (not propagated)
    path = predictor.save_session(s, tmp_path / "s.pt", metadata={"names": {"1": "dog"}})

    t = predictor.load_session(path, VIDEO, state_budget_mb=budget)
    assert t.obj_ids == s.obj_ids == [1, "car"]
    assert VideoPredictor.session_metadata(path) == {"names": {"1": "dog"}}
    for a, b in zip(s.objects.values(), t.objects.values(), strict=True):
        for name in ("cond_outputs", "non_cond_outputs", "temp_cond_outputs"):
            assert list(getattr(a, name)) == list(getattr(b, name))  # memory-bank order kept
        assert list(a.temp_non_cond_outputs) == list(b.temp_non_cond_outputs)
        assert a.tracked == b.tracked
    assert 5 in t.objects[1].temp_non_cond_outputs  # the correction click is still pending
    # the pending click, then the re-propagation, give the same numbers
    r1 = predictor.add_points(s, 5, 1, points=[[40, 60]], labels=[1], clear_old_points=False)
    r2 = predictor.add_points(t, 5, 1, points=[[40, 60]], labels=[1], clear_old_points=False)
    assert torch.equal(r1.masks, r2.masks)
    _equal(_all(predictor, s), _all(predictor, t))
    _equal(_all(predictor, s, reverse=True), _all(predictor, t, reverse=True))


def test_round_trip_of_an_untracked_session(model: SAM2Model, tmp_path: Path) -> None:
    predictor = VideoPredictor(model)
    s = predictor.init_session(VIDEO)
    mask = np.zeros((240, 320), bool)
    mask[60:120, 100:200] = True
    predictor.add_mask(s, 2, 7, mask)
    t = predictor.load_session(predictor.save_session(s, tmp_path / "m.pt"), VIDEO)
    assert torch.equal(t.objects[7].masks[2], s.objects[7].masks[2])
    _equal(_all(predictor, s), _all(predictor, t))


def test_refusals(model: SAM2Model, tmp_path: Path) -> None:
    predictor = VideoPredictor(model)
    s = predictor.init_session(VIDEO)
    predictor.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
    path = predictor.save_session(s, tmp_path / "s.pt")
    frames = np.zeros((3, 240, 320, 3), np.uint8)
    with pytest.raises(ValueError, match="8 frames"):
        predictor.load_session(path, frames)
    other = VideoPredictor(synthetic_model("micro"))
    with torch.no_grad():
        next(other.model.parameters()).add_(1.0)
    with pytest.raises(ValueError, match="another model"):
        other.load_session(path, VIDEO)
    assert other.load_session(path, VIDEO, check_model=False).obj_ids == [1]
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="not a readable"):
        predictor.load_session(tmp_path / "junk.pt", VIDEO)
    torch.save({"hello": 1}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a sam2r session"):
        predictor.load_session(tmp_path / "other.pt", VIDEO)
    with pytest.raises(ValueError, match="no such"):
        predictor.load_session(tmp_path / "missing.pt", VIDEO)
    s.objects[(1, 2)] = s.objects.pop(1)
    with pytest.raises(ValueError, match="int or str"):
        predictor.save_session(s, tmp_path / "t.pt")
    live = predictor.init_stream()
    with pytest.raises(ValueError, match="live"):
        predictor.save_session(live, tmp_path / "l.pt")
    assert not (tmp_path / "t.pt").exists() and not (tmp_path / "l.pt").exists()


def test_opt_in_memory_modes_are_refused(model: SAM2Model, tmp_path: Path) -> None:
    predictor = VideoPredictor(model, memory="motion")
    s = predictor.init_session(VIDEO)
    predictor.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
    for _ in predictor.propagate(s, max_frame_num_to_track=2):
        pass
    with pytest.raises(ValueError, match="memory mode"):
        predictor.save_session(s, tmp_path / "s.pt")
    assert not (tmp_path / "s.pt").exists()
