"""Bounded memory: live streams keep only what the model can read; file sessions spill stored
masks and memories beyond a RAM budget to disk with unchanged results; video files as input.

Micro config with the synthetic weights.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image

from sam2r import SAM2Model
from sam2r.predictor.video import VideoPredictor

VIDEO = FIXTURES / "inputs" / "video"


def _frames() -> list[np.ndarray]:
    return [np.array(Image.open(p).convert("RGB")) for p in sorted(VIDEO.glob("*.jpg"))]


def _clip(n: int) -> np.ndarray:
    """n frames: the fixture clip played forward and backward (ping-pong)."""
    f = _frames()
    cycle = f + f[-2:0:-1]
    return np.stack([cycle[i % len(cycle)] for i in range(n)])


def test_stream_equals_offline_propagation(model: SAM2Model) -> None:
    clip = _clip(20)  # > 16 frames: offline pointer normalisation equals the stream's
    pred = VideoPredictor(model, fill_hole_area=0)
    offline = pred.init_session(clip)
    pred.add_points(offline, 0, 1, points=[[58, 84]], labels=[1])
    pred.add_points(offline, 0, 2, box=[140, 20, 220, 100])
    expected = {r.frame_idx: r for r in pred.propagate(offline)}

    live = pred.init_stream()
    first = pred.track(live, clip[0])
    assert first.obj_ids == [] and first.masks.shape[0] == 0
    pred.add_points(live, 0, 1, points=[[58, 84]], labels=[1])
    r0 = pred.add_points(live, 0, 2, box=[140, 20, 220, 100])
    assert torch.equal(r0.masks, expected[0].masks)
    for t in range(1, 20):
        r = pred.track(live, clip[t])
        assert r.frame_idx == t and r.obj_ids == [1, 2]
        assert torch.allclose(r.masks, expected[t].masks, atol=1e-5), t
        assert torch.allclose(r.object_score_logits, expected[t].object_score_logits, atol=1e-5)


def test_stream_accepts_prompts_between_frames(model: SAM2Model) -> None:
    pred = VideoPredictor(model)
    live = pred.init_stream()
    clip = _clip(6)
    pred.track(live, clip[0])
    pred.add_points(live, 0, 1, points=[[58, 84]], labels=[1])
    pred.track(live, clip[1])
    r = pred.add_points(live, 1, 2, points=[[170, 60]], labels=[1])  # a new object on frame 1
    assert r.obj_ids == [1, 2]
    pred.add_points(live, 1, 1, points=[[60, 90]], labels=[0], clear_old_points=False)
    r = pred.track(live, clip[2])
    assert r.obj_ids == [1, 2] and torch.isfinite(r.masks).all()
    with pytest.raises(ValueError, match="no longer held"):
        pred.add_points(live, 0, 1, points=[[5, 5]], labels=[1])  # frame 0 was dropped
    with pytest.raises(ValueError, match="differs from the stream"):
        pred.track(live, clip[0][:100])
    assert pred.track(live, clip[3]).frame_idx == 3  # still usable
    with pytest.raises(ValueError, match="init_stream"):
        pred.track(pred.init_session(clip), clip[0])


def test_long_stream_state_stops_growing(model: SAM2Model) -> None:
    """Thousands of frames: stored outputs, cached features and memories stay bounded.

    The micro model at a 64-px input (same weights) keeps this fast; the bookkeeping is the
    same at any size.
    """
    small = SAM2Model(model.cfg.replace(image_size=64)).eval()
    small.load_state_dict(model.state_dict())
    pred = VideoPredictor(small, fill_hole_area=0)
    live = pred.init_stream()
    rng = np.random.default_rng(0)
    base = np.array(Image.fromarray(_frames()[0]).resize((64, 48)))
    counts = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: threading costs more than it gives
    try:
        _run_long_stream(pred, live, base, rng, counts)
    finally:
        torch.set_num_threads(threads)
    assert all(c == counts[-1] for c in counts[2:]), counts  # flat after frame 600
    cfg = small.cfg
    window = max(cfg.max_obj_ptrs_in_encoder, cfg.num_maskmem + 2)
    for non_cond, cond, tracked, masks, points in counts[-1][:2]:
        assert non_cond <= window + 1 and cond == 1 and tracked <= window + 1 and masks == 0
        assert points == 1
    assert counts[-1][2] <= pred.feature_cache_size and counts[-1][3] <= 2


def _run_long_stream(
    pred: VideoPredictor, live: object, base: np.ndarray, rng: np.random.Generator, counts: list
) -> None:
    for t in range(2000):
        frame = np.roll(base, t % 64, axis=1)
        if t % 97 == 0:  # some noise so frames differ
            frame = np.clip(frame + rng.integers(-8, 8, frame.shape), 0, 255).astype(np.uint8)
        r = pred.track(live, frame)
        assert r.frame_idx == t
        if t == 0:
            pred.add_points(live, 0, 1, points=[[20, 20]], labels=[1])
        if t == 300:  # an object added late, and a correction later still
            pred.add_points(live, t, 2, points=[[40, 30]], labels=[1])
        if t == 1000:
            pred.add_points(live, t, 1, points=[[30, 20]], labels=[0], clear_old_points=False)
        if t % 200 == 199:
            counts.append(
                tuple(
                    (
                        len(tr.non_cond_outputs),
                        len(tr.cond_outputs),
                        len(tr.tracked),
                        len(tr.masks),
                        len(tr.points),
                    )
                    for tr in live.objects.values()
                )
                + (len(live._features), len(live.frames._recent))  # type: ignore[attr-defined]
            )


def test_spilled_session_gives_identical_results(model: SAM2Model, tmp_path: Path) -> None:
    pred = VideoPredictor(model, fill_hole_area=0)
    results = {}
    for budget in (None, 0.05):  # 50 KB holds about one frame state of the micro model
        s = pred.init_session(VIDEO, state_budget_mb=budget, spill_dir=str(tmp_path))
        pred.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
        pred.add_points(s, 0, 2, box=[140, 20, 220, 100])
        out = [r.masks.clone() for r in pred.propagate(s)]
        pred.add_points(s, 5, 1, points=[[80, 90]], labels=[0])  # needs a spilled frame back
        out += [r.masks.clone() for r in pred.propagate(s, start_frame_idx=5, reverse=True)]
        results[budget] = out
        if budget is not None:
            pool = s.pool
            assert pool is not None and pool.spilled_writes > 0 and pool.spilled_reads > 0
            assert pool.resident_bytes <= pool.budget_bytes + 64 * 64 * 4 + 32 * 16 * 16 * 2
        s.close()
    for a, b in zip(results[None], results[0.05], strict=True):
        assert torch.equal(a, b)


def test_video_file_session(model: SAM2Model, tmp_path: Path) -> None:
    pytest.importorskip("av")
    from sam2r.io.video_file import VideoSink

    path = tmp_path / "clip.mp4"
    with VideoSink(path, fps=8) as sink:
        for f in _frames():
            sink.write(f)
    pred = VideoPredictor(model)
    s = pred.init_session(str(path))
    assert s.num_frames == 8 and s.frames.hw == (240, 320)
    pred.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
    got = [r.frame_idx for r in pred.propagate(s, start_frame_idx=3, max_frame_num_to_track=2)]
    assert got == [3, 4, 5]


def test_live_iterator_and_tensor_inputs(model: SAM2Model) -> None:
    pred = VideoPredictor(model, fill_hole_area=0)
    clip = _clip(5)

    def camera():  # a generator of unknown length
        yield from clip

    live = pred.init_stream()
    results = []
    for r in pred.track_iter(live, camera()):
        results.append(r)
        if r.frame_idx == 0:
            pred.add_points(live, 0, 1, points=[[58, 84]], labels=[1])
    assert [r.frame_idx for r in results] == [0, 1, 2, 3, 4]
    assert results[-1].obj_ids == [1]

    as_array = pred.init_session(clip)
    nhwc = pred.init_session(torch.from_numpy(clip))
    nchw = pred.init_session(torch.from_numpy(clip).permute(0, 3, 1, 2))
    for s in (nhwc, nchw):
        assert s.num_frames == 5 and s.frames.hw == (240, 320)
        assert torch.equal(s.frames.model_input(2, 256), as_array.frames.model_input(2, 256))
    with pytest.raises(ValueError, match="uint8"):
        pred.init_session(torch.zeros(2, 8, 8, 3))
