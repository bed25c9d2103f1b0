"""Opt-in memory modes ("motion", "distractor", re-detection) and the unchanged default.

Unit tests of the Kalman filter, candidate choice, admission and the read plan on hand-made
inputs (no model); then the bundled model on the example clip: "official" gives today's numbers
bit for bit, and every mode runs in `propagate` and in a stream with bounded state.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import sam2r
from sam2r.config import SAM2Config
from sam2r.model.sam2 import NO_OBJ_SCORE, FrameOutput
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video import selection as selection_mod
from sam2r.predictor.video.kalman import BoxKalman, box_iou
from sam2r.predictor.video.selection import MemorySelection, mask_boxes
from sam2r.predictor.video.session import FrameState, ObjectTrack

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
FIRST_MASKS = REPO / "examples" / "synth_davis" / "Annotations" / "480p" / "val_00000" / "00000.png"
GOLDEN = Path(__file__).parent / "fixtures" / "video_memory_official.pt"
CFG = SAM2Config(num_maskmem=7, max_obj_ptrs_in_encoder=16)


# ----------------------------------------------------------------------------------------------
# Kalman filter
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("velocity", [(0.0, 0.0), (3.0, -2.0), (-6.0, 1.5)])
def test_kalman_converges_on_constant_velocity(velocity: tuple[float, float]) -> None:
    vx, vy = velocity
    box0 = np.array([50.0, 60.0, 90.0, 100.0])
    shift = np.array([vx, vy, vx, vy])
    kf = BoxKalman.start(box0)
    for t in range(1, 20):
        kf.predict()
        kf.update(box0 + t * shift)
    predicted = kf.predict()  # frame 20
    truth = box0 + 20 * shift
    assert np.abs(predicted - truth).max() < 0.5, (predicted, truth)
    assert np.allclose(kf.mean[4:6], velocity, atol=0.1)
    assert box_iou(predicted, truth) > 0.97


def test_kalman_follows_a_growing_box_and_forgets_velocity_when_stopped() -> None:
    kf = BoxKalman.start(np.array([0.0, 0.0, 20.0, 20.0]))
    for t in range(1, 15):
        kf.predict()
        kf.update(np.array([2.0 * t, 0.0, 20.0 + 3.0 * t, 20.0 + t]))
    assert kf.mean[4] == pytest.approx(2.5, abs=0.1)  # centre x moves 2.5 px per frame
    assert kf.mean[6] == pytest.approx(1.0, abs=0.1)  # width grows 1 px per frame
    kf.stop()
    before = kf.predicted_box()
    assert np.allclose(kf.predict(), before) and kf.updates == 0


def test_box_iou_and_mask_boxes() -> None:
    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == pytest.approx(1.0)
    assert box_iou([0, 0, 10, 10], [5, 0, 15, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 30, 30]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    masks = torch.full((3, 16, 16), -5.0)
    masks[0, 2:5, 3:9] = 5.0
    masks[1, 10, 15] = 1.0
    boxes = mask_boxes(masks)
    assert boxes.tolist() == [[3, 2, 9, 5], [15, 10, 16, 11], [0, 0, 0, 0]]


# ----------------------------------------------------------------------------------------------
# candidate choice and admission, on hand-made candidates
# ----------------------------------------------------------------------------------------------
def _candidates(*boxes: tuple[int, int, int, int]) -> Tensor:
    masks = torch.full((len(boxes), 32, 32), -8.0)
    for k, (x0, y0, x1, y1) in enumerate(boxes):
        masks[k, y0:y1, x0:x1] = 8.0
    return masks


Tensor = torch.Tensor


@pytest.mark.parametrize(
    ("ious", "predicted", "expected"),
    [
        ([0.9, 0.8, 0.1], None, 0),  # no prediction: the official argmax
        ([0.9, 0.8, 0.1], [16, 16, 26, 26], 1),  # motion agreement outweighs 0.1 of IoU
        ([0.9, 0.5, 0.1], [16, 16, 26, 26], 0),  # but not 0.4 of it (weight 0.25)
        ([0.6, 0.6, 0.9], [2, 2, 12, 12], 2),  # the best of both
    ],
)
def test_motion_choice_weighs_predicted_iou_with_motion_agreement(
    ious: list[float], predicted: list[float] | None, expected: int
) -> None:
    masks = _candidates((2, 2, 12, 12), (16, 16, 26, 26), (2, 2, 12, 12))
    sel = MemorySelection("motion")
    pred = None if predicted is None else np.array(predicted, dtype=np.float64)
    choice = sel.choose(masks, torch.tensor(ious), pred)
    assert choice.index == expected
    assert (choice.motion is None) == (predicted is None)


def test_distractor_is_a_good_candidate_apart_from_the_kept_one() -> None:
    sel = MemorySelection("distractor")
    apart = _candidates((2, 2, 12, 12), (18, 18, 28, 28), (4, 4, 8, 8))
    assert sel.choose(apart, torch.tensor([0.9, 0.7, 0.2]), None).distractor
    assert not sel.choose(apart, torch.tensor([0.9, 0.3, 0.2]), None).distractor  # weak
    nested = _candidates((2, 2, 12, 12), (2, 2, 10, 10), (4, 4, 8, 8))  # sub-parts of it
    assert not sel.choose(nested, torch.tensor([0.9, 0.8, 0.7]), None).distractor
    assert (
        not MemorySelection("motion").choose(apart, torch.tensor([0.9, 0.7, 0.2]), None).distractor
    )


def _output(iou: float, score: float, masks: Tensor | None = None) -> FrameOutput:
    m = _candidates((2, 2, 12, 12)) if masks is None else masks
    if score <= 0:
        m = torch.full_like(m, NO_OBJ_SCORE)
    low = m[None, :1]
    return FrameOutput(
        low, low, torch.tensor([[iou]]), torch.zeros(1, 8), torch.tensor([[score]]), m[None]
    )


def _state() -> FrameState:
    return FrameState(torch.zeros(1, 1, 32, 32), torch.zeros(1, 8), torch.zeros(1, 1), None)


def _run(sel: MemorySelection, track: ObjectTrack, t: int, out: FrameOutput) -> FrameState:
    """One tracked frame through the policy, as `run_frame` drives it."""
    choose = sel.chooser(track, CFG)
    choose(out.low_res_multimasks, out.iou)
    state = _state()
    sel.observe(track, t, out, state, CFG)
    return state


@pytest.mark.parametrize(
    ("iou", "score", "admitted", "pointer"),
    [
        (0.9, 3.0, True, True),
        (0.4, 3.0, False, True),  # mask not trusted: no memory, the pointer is kept
        (0.9, -2.0, False, False),  # object absent: neither
        (0.9, 0.5, True, True),
    ],
)
@pytest.mark.parametrize("mode", ["motion", "distractor"])
def test_admission_rules(
    mode: str, iou: float, score: float, admitted: bool, pointer: bool
) -> None:
    sel, track = MemorySelection(mode), ObjectTrack(1)
    _run(sel, track, 1, _output(0.95, 5.0))
    state = _run(sel, track, 2, _output(iou, score))
    ms = track.selection
    assert ms is not None
    assert (ms.memories[-1][1] is state) == admitted
    assert (ms.pointers[-1][1] is state) == pointer


def test_motion_admission_refuses_a_mask_far_from_the_prediction() -> None:
    sel, track = MemorySelection("motion", warmup=3), ObjectTrack(1)
    for t in range(1, 6):  # a still object, the filter warms up
        _run(sel, track, t, _output(0.95, 5.0))
    assert len(track.selection.memories) == 5
    far = _candidates((20, 20, 30, 30))
    state = _run(sel, track, 6, _output(0.95, 5.0, far))  # jumps: motion IoU 0
    assert track.selection.memories[-1][1] is not state
    assert track.selection.pointers[-1][1] is state  # present, so its pointer is still read


def test_distractor_bank_is_bounded_and_spaced() -> None:
    sel = MemorySelection("distractor", distractor_slots=2, distractor_gap=5)
    track = ObjectTrack(1)
    apart = _candidates((2, 2, 12, 12), (18, 18, 28, 28), (4, 4, 8, 8))
    for t in range(1, 40):
        out = FrameOutput(
            apart[None, :1],
            apart[None, :1],
            torch.tensor([[0.9, 0.8, 0.1]]),
            torch.zeros(1, 8),
            torch.tensor([[4.0]]),
            apart[None],
        )
        _run(sel, track, t, out)
    ms = track.selection
    frames = [t for t, _ in ms.distractors]
    assert len(frames) == 2 and frames[1] - frames[0] >= 5
    assert len(ms.memories) == CFG.num_maskmem - 1
    assert len(ms.pointers) == CFG.max_obj_ptrs_in_encoder - 1


@pytest.mark.parametrize("mode", ["motion", "distractor"])
def test_re_detection_keeps_the_last_good_memories_while_lost(mode: str) -> None:
    sel, track = MemorySelection(mode), ObjectTrack(1)
    good = [_run(sel, track, t, _output(0.9, 4.0)) for t in range(1, 9)]
    lost = [_run(sel, track, t, _output(0.9, -6.0)) for t in range(9, 40)]  # 31 frames: more
    # than the memory and pointer windows
    ms = track.selection
    assert [s for _, s in ms.memories] == good[-6:]
    assert [s for _, s in ms.pointers] == good
    assert [s for _, s in ms.absent] == lost[-6:]  # absent_slots=6: the newest lost frames
    assert ms.lost == 31
    if mode == "motion":
        assert ms.kalman is not None and ms.kalman.updates == 0  # stopped extrapolating
    for s in good + lost:
        s.maskmem_features = torch.zeros(1, 2, 2, 2)
    plan = sel.plan(40, False, track, 100, CFG)
    # lost for longer than the memory: the lost frames fill it, as in the official memory
    assert [slot for slot, _ in plan.spatial] == [1, 2, 3, 4, 5, 6]
    assert [s for _, s in plan.spatial] == lost[-6:]
    # lost for 2 frames only: the 4 newest good memories, then the 2 lost frames
    ms2 = sel.new_memory(CFG.num_maskmem, CFG.max_obj_ptrs_in_encoder)
    ms2.memories.extend((t, s) for t, s in zip(range(1, 9), good, strict=True))
    ms2.absent.extend([(9, lost[0]), (10, lost[1])])
    track2 = ObjectTrack(2)
    track2.selection = ms2
    assert [s for _, s in sel.plan(11, False, track2, 100, CFG).spatial] == good[-4:] + lost[:2]
    assert [d for d, _ in plan.pointers] == [15] * 8  # capped at max_ptrs - 1
    # seen again but not admitted (predicted IoU under the threshold): read as the official
    # memory would, after the lost frames, instead of the same lost frames on every frame
    seen = [_run(sel, track, t, _output(0.3, 4.0)) for t in (40, 41)]
    assert ms.lost == 0 and [s for _, s in ms.memories] == good[-6:]
    assert [s for _, s in ms.absent] == lost[-4:] + seen
    for s in seen:
        s.maskmem_features = torch.zeros(1, 2, 2, 2)
    assert [s for _, s in sel.plan(42, False, track, 100, CFG).spatial] == lost[-4:] + seen
    back = _run(sel, track, 42, _output(0.9, 4.0))  # admitted: the filter restarts on its box
    assert ms.lost == 0 and not ms.absent  # admitted again: the frames filed as lost go
    if mode == "motion":
        assert ms.kalman.updates == 3  # restarted on frame 40, then 41 and 42
    back.maskmem_features = torch.zeros(1, 2, 2, 2)
    # found again: its good memories at once (the official memory would still read lost ones)
    assert [s for _, s in sel.plan(43, False, track, 100, CFG).spatial] == good[-5:] + [back]


def test_absent_slots_bound_the_lost_frames_read() -> None:
    """More absent slots: more of the newest lost frames replace the oldest good ones; 0: none
    (only good memories are read); never more than the memory holds."""
    for slots, want_good, want_lost in ((0, 6, 0), (3, 3, 3), (9, 0, 6)):
        sel, track = MemorySelection("distractor", absent_slots=slots), ObjectTrack(1)
        good = [_run(sel, track, t, _output(0.9, 4.0)) for t in range(1, 9)]
        lost = [_run(sel, track, t, _output(0.9, -6.0)) for t in range(9, 20)]
        for s in good + lost:
            s.maskmem_features = torch.zeros(1, 2, 2, 2)
        plan = sel.plan(20, False, track, 100, CFG)
        want = good[len(good) - want_good :] + lost[len(lost) - want_lost :]
        assert [s for _, s in plan.spatial] == want, slots
        assert [slot for slot, _ in plan.spatial] == list(range(7 - len(want), 7))
        # read backwards from frame 10, only frames after it count: the 9 lost frames after 10
        back = sel.plan(10, True, track, 100, CFG)
        assert all(s in lost[2:] for _, s in back.spatial)
    with pytest.raises(ValueError, match="absent_slots must be >= 0"):
        MemorySelection("motion", absent_slots=-1)


def test_a_pass_that_goes_on_keeps_the_mode_state_and_any_other_starts_again() -> None:
    """`start_pass`: a pass from the frame after the last one filed keeps everything, filter
    included; any other (backwards, or again from an earlier frame) starts from the prompts."""
    sel, track = MemorySelection("motion"), ObjectTrack(1)
    for t in range(1, 10):
        _run(sel, track, t, _output(0.9, 4.0 if t < 8 else -6.0))
    ms = track.selection
    assert ms.lost == 2 and [t for t, _ in ms.absent] == [8, 9]
    kalman, memories = ms.kalman, list(ms.memories)
    sel.start_pass(ms, 10, False)  # goes on from frame 9: one pass in two
    assert ms.kalman is kalman and ms.lost == 2 and list(ms.memories) == memories
    assert [t for t, _ in ms.memories] == [2, 3, 4, 5, 6, 7]
    assert [t for t, _ in ms.absent] == [8, 9]
    for start, reverse in ((8, True), (5, False), (11, False)):
        sel2, track2 = MemorySelection("motion"), ObjectTrack(1)
        for t in range(1, 10):
            _run(sel2, track2, t, _output(0.9, 4.0))
        ms2 = track2.selection
        sel2.start_pass(ms2, start, reverse)
        assert ms2.kalman is None and ms2.lost == 0, (start, reverse)
        assert not (ms2.memories or ms2.pointers or ms2.absent or ms2.distractors)
    # backwards from frame 0 after a reverse pass that stopped at frame 1: goes on
    sel3, track3 = MemorySelection("distractor"), ObjectTrack(1)
    for t in range(6, 0, -1):
        _run(sel3, track3, t, _output(0.9, 4.0))
    sel3.start_pass(track3.selection, 0, True)
    assert [t for t, _ in track3.selection.pointers] == [6, 5, 4, 3, 2, 1]


def test_plan_reads_prompts_distractors_then_recent_frames_in_direction() -> None:
    sel, track = MemorySelection("distractor"), ObjectTrack(1)
    cond = _state()
    cond.maskmem_features = torch.zeros(1, 2, 2, 2)
    track.cond_outputs[10] = cond
    ms = sel.state(track, CFG)
    states = {}
    for t in (11, 12, 13, 9):
        states[t] = _state()
        states[t].maskmem_features = torch.zeros(1, 2, 2, 2)
        ms.memories.append((t, states[t]))
        ms.pointers.append((t, states[t]))
    ms.distractors.append((12, states[12]))
    plan = sel.plan(14, False, track, 100, CFG)
    assert [(slot, s) for slot, s in plan.spatial] == [
        (0, cond),
        (0, states[12]),
        (3, states[9]),
        (4, states[11]),
        (5, states[12]),
        (6, states[13]),
    ]
    assert [(d, s) for d, s in plan.pointers] == [
        (4, cond),
        (1, states[13]),
        (2, states[12]),
        (3, states[11]),
        (5, states[9]),
    ]
    back = sel.plan(8, True, track, 100, CFG)  # reverse: only frames after 8
    assert [s for _, s in back.spatial] == [
        cond,
        states[12],  # the distractor frame
        states[13],
        states[12],
        states[11],
        states[9],
    ]
    assert [(slot, s) for slot, s in sel.plan(12, False, track, 100, CFG).spatial] == [
        (0, cond),
        (5, states[9]),
        (6, states[11]),
    ]


def test_bad_memory_mode_is_refused() -> None:
    model = sam2r.build_model("sam2r_micro")
    with pytest.raises(ValueError, match="memory must be one of"):
        VideoPredictor(model, memory="samurai")
    with pytest.raises(ValueError, match="opt-in"):
        MemorySelection("official")
    assert VideoPredictor(model).selection is None
    assert VideoPredictor(model, memory="motion").memory == "motion"


# ----------------------------------------------------------------------------------------------
# the bundled model on the example clip
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bundled() -> sam2r.SAM2Model:
    return sam2r.from_pretrained("sam2r_micro")


def _first_masks() -> np.ndarray:
    return np.array(Image.open(FIRST_MASKS))


def _propagate(pred: VideoPredictor, frames: int) -> tuple[Tensor, Tensor, sam2r.VideoSession]:
    session = pred.init_session(str(CLIP))
    ann = _first_masks()
    for i in (1, 2):
        pred.add_mask(session, 0, i, ann == i)
    logits, scores = [], []
    for r in pred.propagate(session, max_frame_num_to_track=frames - 1):
        outs = [session.objects[o].latest_output(r.frame_idx, False) for o in r.obj_ids]
        logits.append(torch.stack([o.low_res_masks[0, 0] for o in outs]))
        scores.append(r.object_score_logits)
    return torch.stack(logits), torch.stack(scores), session


def test_official_mode_is_todays_tracker_bit_for_bit(
    bundled: sam2r.SAM2Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default path never touches the selection code and gives the recorded outputs
    (tests/fixtures/video_memory_official.pt, 16 frames x 2 objects). They were first recorded
    before the modes existed, with the stage-2 bundled model; each commit that bundled a newer
    model (stages 3 to 6) re-recorded them with it, after this test had passed on the previous
    recording."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the official memory must not call the opt-in selection")

    for name in ("chooser", "observe", "observe_prompt", "plan"):
        monkeypatch.setattr(selection_mod.MemorySelection, name, refuse)
    golden = torch.load(GOLDEN, weights_only=True)
    frames = 8
    default, default_scores, _ = _propagate(VideoPredictor(bundled), frames)
    explicit, explicit_scores, _ = _propagate(VideoPredictor(bundled, memory="official"), frames)
    assert torch.equal(default, explicit) and torch.equal(default_scores, explicit_scores)
    # recorded on another run: the same kernels give the same bits, other thread counts and
    # CPUs round apart (the stage-5 model: up to 2.6e-4 on logits of up to ~25 after 8 frames,
    # 1 vs 2 threads or AVX2 vs AVX-512); a memory selection that differs moves them by ~1
    torch.testing.assert_close(default, golden["low_res"][:frames], atol=2e-3, rtol=1e-3)
    torch.testing.assert_close(default_scores, golden["scores"][:frames], atol=2e-3, rtol=1e-3)


@pytest.mark.parametrize("mode", ["motion", "distractor"])
def test_mode_propagates_the_example_clip(bundled: sam2r.SAM2Model, mode: str) -> None:
    logits, scores, session = _propagate(VideoPredictor(bundled, memory=mode), 6)
    assert logits.shape == (6, 2, 64, 64) and torch.isfinite(logits).all()
    ann = _first_masks()
    for row, obj in enumerate((1, 2)):  # still on its object at the last frame tracked
        assert (scores[-1, row] > 0).item(), (mode, obj)
    for track in session.objects.values():
        ms = track.selection
        assert ms is not None and len(ms.memories) <= CFG.num_maskmem - 1
        assert len(ms.pointers) >= 1
    del ann


def test_a_correction_reads_the_modes_memory_and_leaves_it(
    bundled: sam2r.SAM2Model, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A click on a tracked frame reads the memory the mode kept in its last pass (the plan of
    `MemorySelection.plan`, in the direction the frame was tracked), chooses no candidate by the
    mode and files nothing in it; a first prompt on an object reads no memory at all."""
    pred = VideoPredictor(bundled, memory="motion")
    _, _, session = _propagate(pred, 6)
    ms = session.objects[2].selection
    before = (list(ms.memories), list(ms.pointers), ms.kalman.mean.copy(), ms.lost)
    planned, chosen = [], []
    plan, chooser = MemorySelection.plan, MemorySelection.chooser
    monkeypatch.setattr(
        MemorySelection,
        "plan",
        lambda self, f, rev, *a: planned.append((f, rev)) or plan(self, f, rev, *a),
    )
    monkeypatch.setattr(
        MemorySelection, "chooser", lambda self, *a: chosen.append(a) or chooser(self, *a)
    )
    r = pred.add_points(session, 4, 2, points=[[200, 150]], labels=[0])
    assert r.masks.shape[0] == 2 and torch.isfinite(r.masks).all()
    assert planned == [(4, False)] and not chosen
    assert (list(ms.memories), list(ms.pointers), ms.lost) == before[:2] + before[3:]
    assert np.array_equal(ms.kalman.mean, before[2])
    planned.clear()
    pred.add_points(session, 3, 9, points=[[100, 100]], labels=[1])  # a new object: no memory
    assert planned == []


@pytest.mark.parametrize("mode", ["motion", "distractor"])
def test_tracking_in_chunks_is_one_pass(bundled: sam2r.SAM2Model, mode: str) -> None:
    """Two passes, the second starting where the first stopped, give what one pass gives (the
    mode's state carries over, as the official memory reads the earlier pass's outputs)."""
    whole, whole_scores, _ = _propagate(VideoPredictor(bundled, memory=mode), 8)
    pred = VideoPredictor(bundled, memory=mode)
    first, _, session = _propagate(pred, 4)
    logits, scores = [], []
    for r in pred.propagate(session, start_frame_idx=4, max_frame_num_to_track=3):
        outs = [session.objects[o].latest_output(r.frame_idx, False) for o in r.obj_ids]
        logits.append(torch.stack([o.low_res_masks[0, 0] for o in outs]))
        scores.append(r.object_score_logits)
    assert len(logits) == 4
    chunked = torch.cat([first, torch.stack(logits)])
    torch.testing.assert_close(chunked, whole, atol=1e-4, rtol=0)
    torch.testing.assert_close(torch.stack(scores), whole_scores[4:], atol=1e-4, rtol=0)


def _stream_frames(n: int) -> Iterator[np.ndarray]:
    files = sorted(CLIP.glob("*.jpg"))
    cycle = files + files[-2:0:-1]  # ping-pong: a continuous stream longer than the clip
    for i in range(n):
        yield np.array(Image.open(cycle[i % len(cycle)]).convert("RGB"))


@pytest.mark.parametrize("mode", ["motion", "distractor"])
def test_mode_streams_with_bounded_state(bundled: sam2r.SAM2Model, mode: str) -> None:
    pred = VideoPredictor(bundled, memory=mode)
    live = pred.init_stream()
    frames = _stream_frames(22)
    pred.track(live, next(frames))
    pred.add_mask(live, 0, 1, _first_masks() == 1)
    window = max(16, bundled.cfg.num_maskmem * bundled.cfg.memory_temporal_stride_for_eval + 2)
    for t, frame in enumerate(frames, start=1):
        r = pred.track(live, frame)
        assert r.frame_idx == t and r.obj_ids == [1]
        track = live.objects[1]
        assert len(track.non_cond_outputs) <= window + 1
        ms = track.selection
        assert len(ms.memories) <= bundled.cfg.num_maskmem - 1
        assert len(ms.pointers) <= bundled.cfg.max_obj_ptrs_in_encoder - 1
        assert len(ms.distractors) <= MemorySelection(mode).distractor_slots
    assert (r.object_score_logits > 0).all()
    assert ms.memories and ms.memories[-1][0] > 10  # it kept learning along the stream


@pytest.mark.parametrize("command", ["video", "vos-infer"])
def test_memory_flag_on_the_command_line(tmp_path: Path, command: str) -> None:
    from sam2r.cli.main import main

    if command == "video":
        args = [str(CLIP), "--mask", str(FIRST_MASKS), "--max-frames", "3", "--no-overlay"]
        args += ["--memory", "motion", "--out", str(tmp_path)]
        assert main(["video", *args]) == 0
        assert len(list((tmp_path / "masks").glob("*.png"))) == 3
    else:
        data = REPO / "examples" / "synth_davis"
        args = ["--data", str(data), "--out", str(tmp_path), "--quiet", "--memory", "distractor"]
        assert main(["vos-infer", *args]) == 0
        assert len(list(tmp_path.rglob("*.png"))) == 32  # 2 sequences x 16 frames
    with pytest.raises(SystemExit):
        main([command, "--memory", "samurai", "--out", str(tmp_path)])
