"""Video predictor behaviour beyond parity: frame sources, input errors, session bookkeeping,
options, and the memory-selection rules (table-driven, no model needed).

Model tests use the `micro` config with the synthetic weights (seconds on a CPU).
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_model
from onnx_helpers import refuses_bad_propagations
from PIL import Image

from sam2r import SAM2Model
from sam2r.io.frames import ArrayFrames, FolderFrames, preprocess_frame
from sam2r.io.open import open_frames
from sam2r.model.common import Linear
from sam2r.ops.masks import fill_holes_in_mask_scores
from sam2r.predictor.video import VideoPredictor, non_overlapping
from sam2r.predictor.video.memory import plan_memory, previous_memory_frame, select_cond_frames
from sam2r.predictor.video.order import propagation_order
from sam2r.predictor.video.session import FrameState

VIDEO = FIXTURES / "inputs" / "video"
H, W = 240, 320


@pytest.fixture
def predictor(model: SAM2Model) -> VideoPredictor:
    return VideoPredictor(model, fill_hole_area=0)


def _frames() -> np.ndarray:
    return np.stack([np.array(Image.open(p).convert("RGB")) for p in sorted(VIDEO.glob("*.jpg"))])


# ----------------------------------------------------------------------------------------------
# frame sources
# ----------------------------------------------------------------------------------------------
def test_array_source_equals_folder(predictor: VideoPredictor) -> None:
    folder = predictor.init_session(VIDEO)
    array = predictor.init_session(_frames())
    listed = predictor.init_session(list(_frames()))
    assert folder.num_frames == array.num_frames == listed.num_frames == 8
    assert folder.frames.hw == array.frames.hw == (H, W)
    for t in (0, 7):
        x = folder.frames.model_input(t, 256)
        assert torch.equal(x, array.frames.model_input(t, 256))
        assert torch.equal(x, listed.frames.model_input(t, 256))
    a = predictor.add_points(folder, 0, 1, points=[[58, 84]], labels=[1])
    b = predictor.add_points(array, 0, 1, points=[[58, 84]], labels=[1])
    assert torch.equal(a.masks, b.masks)


def _write(folder: Path, names: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    for i, name in enumerate(names):
        Image.fromarray(np.full((4, 6, 3), i * 20, np.uint8)).save(folder / name)


@pytest.mark.parametrize(
    "names,expected",
    [
        (["10.jpg", "2.jpg", "1.jpg"], ["1.jpg", "2.jpg", "10.jpg"]),  # integer order
        (["f10.png", "f2.png", "f1.png"], ["f1.png", "f2.png", "f10.png"]),  # natural order
        (["00001.jpg", "00000.JPEG", "mask.png"], ["00000.JPEG", "00001.jpg"]),  # JPEGs win
    ],
)
def test_folder_order(tmp_path: Path, names: list[str], expected: list[str]) -> None:
    _write(tmp_path / "v", names)
    src = FolderFrames(tmp_path / "v")
    assert [p.name for p in src.paths] == expected
    assert src.hw == (4, 6) and len(src) == len(expected)


def test_frame_source_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        open_frames(tmp_path / "empty")
    with pytest.raises(ValueError, match="no such folder"):
        open_frames(tmp_path / "missing")
    (tmp_path / "clip.mp4").write_bytes(b"")
    with pytest.raises((ValueError, ImportError), match="not a readable video|sam2r\\[video\\]"):
        open_frames(tmp_path / "clip.mp4")  # an empty video file
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a video file"):
        open_frames(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="uint8"):
        ArrayFrames(np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(ValueError, match="empty"):
        ArrayFrames([])
    with pytest.raises(ValueError, match="frame 1"):
        ArrayFrames([np.zeros((4, 4, 3), np.uint8), np.zeros((4, 4, 3), np.float64)])
    with pytest.raises(TypeError):
        open_frames(3)
    with pytest.raises(IndexError):
        ArrayFrames(np.zeros((2, 4, 4, 3), np.uint8)).model_input(2, 32)


def test_preprocess_frame_is_pil_bicubic() -> None:
    rgb = _frames()[0]
    x = preprocess_frame(rgb, 64)
    ref = np.asarray(Image.fromarray(rgb).resize((64, 64), Image.Resampling.BICUBIC)) / 255.0
    mean = np.array([0.485, 0.456, 0.406])[:, None, None]
    std = np.array([0.229, 0.224, 0.225])[:, None, None]
    assert x.shape == (3, 64, 64) and x.dtype == torch.float32
    assert np.abs(x.numpy() - (ref.transpose(2, 0, 1) - mean) / std).max() < 1e-5


# ----------------------------------------------------------------------------------------------
# input errors: a clear exception, and the session is untouched and still usable
# ----------------------------------------------------------------------------------------------
BAD_CALLS: list[tuple[str, dict[str, Any], type[Exception], str]] = [
    ("add_points", {"frame_idx": 8, "points": [[5, 5]], "labels": [1]}, ValueError, "range"),
    ("add_points", {"frame_idx": -1, "points": [[5, 5]], "labels": [1]}, ValueError, "range"),
    ("add_points", {"frame_idx": 1.0, "points": [[5, 5]], "labels": [1]}, TypeError, "int"),
    ("add_points", {"points": [[400, 10]], "labels": [1]}, ValueError, "outside"),
    ("add_points", {"points": [[10, -1]], "labels": [1]}, ValueError, "outside"),
    (
        "add_points",
        {"points": [[50, 50]], "labels": [1], "normalize_coords": False},
        ValueError,
        "outside",
    ),
    ("add_points", {"points": [[5, 5], [6, 6]], "labels": [1]}, ValueError, "one label"),
    ("add_points", {"points": [[5, 5]], "labels": [7]}, ValueError, "labels"),
    ("add_points", {"points": [5, 5, 6]}, ValueError, "together"),
    ("add_points", {}, ValueError, "points and labels, a box"),
    ("add_points", {"points": [[5, 5, 5]], "labels": [1]}, ValueError, "shape"),
    ("add_points", {"points": np.zeros((0, 2)), "labels": []}, ValueError, "empty"),
    ("add_points", {"points": [[np.nan, 5]], "labels": [1]}, ValueError, "NaN"),
    ("add_points", {"box": [10, 10, 50, 50], "clear_old_points": False}, ValueError, "box"),
    ("add_points", {"box": [50, 10, 10, 50]}, ValueError, "x0 <= x1"),
    ("add_points", {"box": [10, 10, 50]}, ValueError, "4 numbers"),
    ("add_points", {"obj_id": None, "points": [[5, 5]], "labels": [1]}, TypeError, "obj_id"),
    ("add_mask", {"mask": np.ones((100, 100), bool)}, ValueError, "video's size"),
    ("add_mask", {"mask": np.ones((2, H, W), bool)}, ValueError, "video's size"),
    ("add_mask", {"frame_idx": 9, "mask": np.ones((H, W), bool)}, ValueError, "range"),
    ("clear_prompts_in_frame", {"obj_id": 5}, ValueError, "unknown object id 5"),
    ("remove_object", {"obj_id": 5, "strict": True}, ValueError, "unknown object id 5"),
]


@pytest.mark.parametrize(
    "method,kwargs,exc,match",
    BAD_CALLS,
    ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(BAD_CALLS)],
)
def test_bad_input_raises_and_session_survives(
    predictor: VideoPredictor, method: str, kwargs: dict[str, Any], exc: type, match: str
) -> None:
    session = predictor.init_session(VIDEO)
    kwargs = {"frame_idx": 0, "obj_id": 1, **kwargs}
    if method == "remove_object":
        kwargs.pop("frame_idx")
    with pytest.raises(exc, match=match):
        getattr(predictor, method)(session, **kwargs)
    assert session.obj_ids == []
    res = predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    assert res.obj_ids == [1] and res.masks.shape == (1, 1, H, W)
    assert next(predictor.propagate(session)).frame_idx == 0


def test_propagate_argument_errors(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    with pytest.raises(RuntimeError, match="no object"):
        predictor.propagate(session)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    refuses_bad_propagations(predictor, session)  # as the ONNX tracker does
    frames = [r.frame_idx for r in predictor.propagate(session, max_frame_num_to_track=np.int64(1))]
    assert frames == [0, 1] and list(session.objects[1].cond_outputs) == [0]
    assert predictor.remove_object(session, 5) == []  # unknown id, not strict: nothing happens


# ----------------------------------------------------------------------------------------------
# session bookkeeping
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "start,count,reverse,expected",
    [
        (None, None, False, [3, 4, 5, 6, 7]),
        (3, 2, False, [3, 4, 5]),
        (3, 0, False, [3]),
        (3, None, True, [3, 2, 1, 0]),
        (5, 1, True, [5, 4]),
        (0, None, True, []),
    ],
)
def test_processing_order(
    predictor: VideoPredictor, start: int | None, count: int | None, reverse: bool, expected: list
) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 3, 1, points=[[125, 212]], labels=[1])
    frames = [r.frame_idx for r in predictor.propagate(session, start, count, reverse)]
    assert frames == expected
    assert sorted(session.objects[1].tracked) == sorted(expected)
    assert all(v == reverse for v in session.objects[1].tracked.values())


@pytest.mark.parametrize(
    "cond,start,count,reverse,expected",
    [
        ({1: [4], 2: [6, 2]}, None, None, False, [2, 3, 4, 5, 6, 7, 8, 9]),  # earliest of all
        ({1: [4], 2: [6, 2]}, None, 3, True, [2, 1, 0]),  # stops at frame 0
        ({1: [4]}, 8, 5, False, [8, 9]),  # stops at the last frame
        ({1: [4]}, 9, 0, True, [9]),
        ({1: [4]}, 0, 0, True, []),  # reversing from frame 0 visits nothing
    ],
)
def test_propagation_order_no_model(
    cond: dict, start: int | None, count: int | None, reverse: bool, expected: list
) -> None:
    """The rule itself (shared with the ONNX tracker), on a stub 10-frame session."""
    objects = {k: SimpleNamespace(cond_outputs=dict.fromkeys(v)) for k, v in cond.items()}
    session = SimpleNamespace(num_frames=10, objects=objects)
    assert propagation_order(session, start, count, reverse) == expected


def test_objects_are_tracked_independently(predictor: VideoPredictor) -> None:
    alone = predictor.init_session(VIDEO)
    predictor.add_points(alone, 0, 1, points=[[58, 84]], labels=[1])
    ref = [r.masks[0] for r in predictor.propagate(alone, max_frame_num_to_track=3)]
    both = predictor.init_session(VIDEO)
    predictor.add_points(both, 0, 1, points=[[58, 84]], labels=[1])
    predictor.add_points(both, 2, 2, box=[196, 34, 271, 106])
    results = list(predictor.propagate(both, max_frame_num_to_track=3))
    assert [r.frame_idx for r in results] == list(range(4))
    for r, m in zip(results, ref, strict=True):
        assert r.obj_ids == [1, 2]
        assert torch.equal(r.masks[0], m)
    assert float(results[0].object_score_logits[1]) > 0  # obj 2 tracked back from frame 2
    assert session_cond_frames(both) == {1: [0], 2: [2]}


def session_cond_frames(session: Any) -> dict:
    return {k: list(t.cond_outputs) for k, t in session.objects.items()}


def test_new_object_after_tracking_and_absent_score(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    list(predictor.propagate(session))
    res = predictor.add_points(session, 5, 2, points=[[125, 212]], labels=[1])
    assert res.obj_ids == [1, 2]
    res = predictor.add_points(session, 6, 3, points=[[20, 20]], labels=[1])
    # obj 2 has no output on frame 6 yet: NO_OBJ_SCORE everywhere
    assert torch.all(res.masks[1] == -1024.0) and float(res.object_score_logits[1]) == -1024.0
    assert float(res.object_score_logits[0]) != -1024.0  # obj 1 was tracked there


def test_clear_old_points_false_appends(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, box=[40, 60, 80, 110])
    predictor.add_points(session, 0, 1, points=[[60, 84]], labels=[0], clear_old_points=False)
    prompt = session.objects[1].points[0]
    assert prompt.labels.tolist() == [[2, 3, 0]]
    assert torch.allclose(prompt.coords[0, 2], torch.tensor([60 / W * 256, 84 / H * 256]))
    predictor.add_points(session, 0, 1, points=[[60, 84]], labels=[1])
    assert session.objects[1].points[0].labels.tolist() == [[1]]


def test_clear_prompts_downgrades_conditioning_frame(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    list(predictor.propagate(session))
    track = session.objects[1]
    res = predictor.clear_prompts_in_frame(session, 0, 1)
    assert res is not None and res.frame_idx == 0
    assert not track.cond_outputs and 0 in track.non_cond_outputs and 0 not in track.tracked
    assert not track.points
    with pytest.raises(RuntimeError, match="no prompt"):
        predictor.propagate(session)
    # a click on a tracked frame with no conditioning frame left starts afresh
    predictor.add_points(session, 2, 1, points=[[60, 84]], labels=[1])
    assert 2 in track.temp_cond_outputs
    assert [r.frame_idx for r in predictor.propagate(session)] == [2, 3, 4, 5, 6, 7]


def test_remove_object(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    predictor.add_mask(session, 3, 2, np.ones((H, W), bool))
    predictor.add_points(session, 1, 3, points=[[125, 212]], labels=[1])
    list(predictor.propagate(session))
    with pytest.raises(TypeError, match="obj_id must be an int"):
        predictor.remove_object(session, 2.0)  # a float id is refused, as by add_points
    assert session.obj_ids == [1, 2, 3]
    results = predictor.remove_object(session, np.int64(2))
    assert session.obj_ids == [1, 3]
    assert [r.frame_idx for r in results] == [3]
    assert results[0].obj_ids == [1, 3] and results[0].masks.shape == (2, 1, H, W)
    assert predictor.remove_object(session, 1, need_output=False) == []
    assert predictor.remove_object(session, 3) == [] and session.obj_ids == []


def test_changing_objects_while_propagating_is_an_error(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    gen = predictor.propagate(session)
    next(gen)
    predictor.add_points(session, 4, 2, points=[[125, 212]], labels=[1])
    with pytest.raises(RuntimeError, match="propagate"):
        next(gen)


def test_reset(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    predictor.reset(session)
    assert session.obj_ids == [] and not session.has_tracked


def test_clear_tracking_keeps_prompts_and_tracks_again_as_new(model: SAM2Model) -> None:
    """After `clear_tracking` (and a switch to another memory mode) the session tracks as a
    fresh session given the same prompts would."""
    official, motion = VideoPredictor(model), VideoPredictor(model, memory="motion")

    def prompted(p: VideoPredictor) -> Any:
        s = p.init_session(VIDEO)
        p.add_mask(s, 3, 2, np.ones((H, W), bool))
        return s, p.add_points(s, 0, 1, points=[[58, 84]], labels=[1]).masks

    session, prompt0 = prompted(official)
    list(official.propagate(session))
    results = motion.clear_tracking(session)
    assert [r.frame_idx for r in results] == [0, 3] and torch.equal(results[0].masks, prompt0)
    assert not session.has_tracked
    assert all(not t.non_cond_outputs and t.prompted_frames() for t in session.objects.values())
    fresh, _ = prompted(motion)
    for a, b in zip(motion.propagate(session), motion.propagate(fresh), strict=True):
        assert a.frame_idx == b.frame_idx and torch.equal(a.masks, b.masks)


# ----------------------------------------------------------------------------------------------
# options
# ----------------------------------------------------------------------------------------------
def test_mask_prompt_sizes(predictor: VideoPredictor) -> None:
    session = predictor.init_session(VIDEO)
    disc = np.zeros((H, W), bool)
    disc[60:110, 30:90] = True
    a = predictor.add_mask(session, 0, 1, disc)
    assert session.objects[1].masks[0].shape == (1, 1, 256, 256)
    assert float(a.object_score_logits[0]) == 10.0
    square = np.zeros((256, 256), np.uint8)
    square[50:100, 50:100] = 1
    predictor.add_mask(session, 0, 2, square)  # model-size masks are taken as they are
    assert torch.equal(session.objects[2].masks[0][0, 0].bool(), torch.from_numpy(square > 0))
    assert a.mask(1).shape == (H, W) and a.binary_masks().shape == (1, H, W)


def test_non_overlapping_keeps_the_best_object() -> None:
    masks = torch.tensor([[3.0, -1.0, 2.0], [1.0, 4.0, 5.0]]).view(2, 1, 1, 3)
    out = non_overlapping(masks)
    assert out.view(2, 3).tolist() == [[3.0, -10.0, -10.0], [-10.0, 4.0, 5.0]]
    assert torch.equal(non_overlapping(masks[:1]), masks[:1])


def test_non_overlap_option(model: SAM2Model) -> None:
    predictor = VideoPredictor(model, fill_hole_area=0, non_overlap_masks=True)
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    res = predictor.add_points(session, 0, 2, box=[30, 40, 120, 130])
    assert int(((res.masks > 0).sum(0) > 1).sum()) == 0
    for r in predictor.propagate(session, max_frame_num_to_track=2):
        assert int(((r.masks > 0).sum(0) > 1).sum()) == 0


def test_hole_filling_defaults_to_config(model: SAM2Model) -> None:
    predictor = VideoPredictor(model)
    assert predictor.fill_hole_area == model.cfg.fill_hole_area == 8
    session = predictor.init_session(VIDEO)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    for r in predictor.propagate(session, max_frame_num_to_track=3):
        low = session.objects[1].latest_output(r.frame_idx, True)
        assert low is not None
        assert torch.equal(fill_holes_in_mask_scores(low.low_res_masks, 8), low.low_res_masks)
    with pytest.raises(ValueError, match="fill_hole_area"):
        VideoPredictor(model, fill_hole_area=-1)


def test_cpu_video_predictor_packs_the_linear_weights() -> None:
    model = synthetic_model("micro")
    VideoPredictor(model, pack_weights=False)
    linears = [m for m in model.modules() if isinstance(m, Linear)]
    assert linears and not any(getattr(m, "pack_weight", False) for m in linears)
    VideoPredictor(model)  # the default, on the CPU
    assert all(m.pack_weight for m in linears)


def test_feature_cache_is_bounded_and_state_offloads(model: SAM2Model) -> None:
    predictor = VideoPredictor(model, fill_hole_area=0, feature_cache_size=2)
    session = predictor.init_session(VIDEO, offload_state_to_cpu=True)
    predictor.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    list(predictor.propagate(session))
    assert len(session._features) == 2
    state = session.objects[1].non_cond_outputs[5]
    assert state.maskmem_features is not None
    assert state.maskmem_features.dtype == torch.bfloat16
    assert state.maskmem_features.device.type == "cpu"
    assert state.low_res_masks.shape == (1, 1, 64, 64)


# ----------------------------------------------------------------------------------------------
# memory selection (no model)
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "frame,cond,limit,selected",
    [
        (5, [0, 3, 9], -1, [0, 3, 9]),
        (5, [0, 3, 9], 3, [0, 3, 9]),
        (5, [0, 3, 9, 20], 2, [3, 9]),  # closest before and at/after
        (5, [0, 3, 9, 20], 3, [3, 9, 0]),  # then the closest of the rest
        (5, [0, 3, 4], 2, [4, 3]),  # nothing after: the two closest
        (0, [0, 6, 9], 2, [0, 6]),
    ],
)
def test_select_cond_frames(frame: int, cond: list, limit: int, selected: list) -> None:
    sel, rest = select_cond_frames(frame, cond, limit)
    assert sel == selected and sorted(rest) == sorted(set(cond) - set(selected))


@pytest.mark.parametrize(
    "frame,steps_back,stride,reverse,expected",
    [
        (10, 1, 1, False, 9),
        (10, 2, 1, False, 8),
        (10, 6, 1, False, 4),
        (10, 1, 3, False, 9),
        (10, 2, 3, False, 6),  # floor(8 / 3) * 3
        (10, 3, 3, False, 3),
        (10, 1, 1, True, 11),
        (10, 2, 3, True, 12),  # ceil(12 / 3) * 3
        (10, 3, 3, True, 15),
    ],
)
def test_previous_memory_frame(
    frame: int, steps_back: int, stride: int, reverse: bool, expected: int
) -> None:
    assert previous_memory_frame(frame, steps_back, stride, reverse) == expected


def _state() -> FrameState:
    z = torch.zeros(1, 1)
    return FrameState(z, z, z, torch.zeros(1, 1, dtype=torch.bfloat16))


def test_plan_memory_forward_and_reverse() -> None:
    cond = {0: _state(), 9: _state()}
    non_cond = {t: _state() for t in range(1, 9)}
    kw = dict(num_maskmem=7, stride=1, max_cond_frames=-1, max_obj_ptrs=16)
    plan = plan_memory(8, False, cond, non_cond, 20, signed_ptr_distance=True, **kw)
    ids = {id(s): t for t, s in {**cond, **non_cond}.items()}
    assert [(p, ids[id(s)]) for p, s in plan.spatial] == [
        (0, 0),
        (0, 9),
        (1, 2),
        (2, 3),
        (3, 4),
        (4, 5),
        (5, 6),
        (6, 7),
    ]
    # pointers: conditioning frames in the past only (frame 9 is ahead), then 7 .. 1
    assert [(d, ids[id(s)]) for d, s in plan.pointers] == [(8, 0)] + [
        (k, 8 - k) for k in range(1, 8)
    ]
    assert plan.max_ptrs == 16
    back = plan_memory(8, True, cond, non_cond, 10, signed_ptr_distance=True, **kw)
    # reverse: only frame 9 (a conditioning frame) is ahead; the distance is counted backwards
    assert [(d, ids[id(s)]) for d, s in back.pointers] == [(1, 9)]
    assert [(p, ids[id(s)]) for p, s in back.spatial] == [(0, 0), (0, 9)]
    assert back.max_ptrs == 10
    limited = plan_memory(
        8,
        False,
        cond,
        non_cond,
        20,
        signed_ptr_distance=True,
        **{**kw, "max_cond_frames": 2, "max_obj_ptrs": 4},
    )
    assert [(p, ids[id(s)]) for p, s in limited.spatial][:2] == [(0, 0), (0, 9)]
    assert [(d, ids[id(s)]) for d, s in limited.pointers] == [(8, 0), (1, 7), (2, 6), (3, 5)]


def test_plan_memory_reads_left_out_conditioning_frames_as_recent() -> None:
    cond = {3: _state(), 6: _state(), 7: _state()}
    ids = {id(s): t for t, s in cond.items()}
    plan = plan_memory(
        8,
        False,
        cond,
        {},
        20,
        num_maskmem=7,
        stride=1,
        max_cond_frames=2,
        max_obj_ptrs=16,
        signed_ptr_distance=True,
    )
    assert [(p, ids[id(s)]) for p, s in plan.spatial] == [(0, 7), (0, 6), (2, 3)]
    assert [(d, ids[id(s)]) for d, s in plan.pointers] == [(1, 7), (2, 6), (5, 3)]
