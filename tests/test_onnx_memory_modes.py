"""The opt-in memory modes ("motion", "distractor") in the ONNX tracker against
`VideoPredictor(memory=mode)`: the parity video (clicks, a box, a correction click, reverse
propagation; thresholds loosened so that the synthetic weights' frames are admitted and
distractors found) and the hard-case scenario clips (an object hidden for several frames, a
look-alike crossing it) with the bundled model; masks, object scores and every decision the
rules took (candidate kept, frame admitted, distractor seen) must agree. Also a stream in
bounded memory, `sam2r video --onnx DIR --memory motion`, and no torch import."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import FIXTURES

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import bundled_model, compare, exported, parity_model, replay  # noqa: E402
from test_onnx_runtime import MAIN  # noqa: E402

from sam2r import VideoPredictor  # noqa: E402
from sam2r.data.scenarios import make_scenario_video  # noqa: E402
from sam2r.data.synthetic import SynthConfig  # noqa: E402
from sam2r.onnx import OnnxVideoTracker  # noqa: E402
from sam2r.predictor.video.policy import Choice, MemoryPolicy, ObjectMemory  # noqa: E402
from sam2r.predictor.video.selection import MemorySelection  # noqa: E402

VIDEO = FIXTURES / "inputs" / "video"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "synth_davis"
IOU_MIN = 0.99
SCORE_TOL = 1e-3
MODES = ("motion", "distractor")

Decision = tuple[int, int, int, bool, bool, bool]


@dataclass(frozen=True)
class Spy(MemorySelection):
    """A policy that logs each decision as (frame, candidate kept, best-IoU candidate, motion
    score used, distractor seen, admitted); a `MemorySelection`, so both the torch predictor
    and the ONNX tracker (which takes any `MemoryPolicy`) run it."""

    log: list[Decision] = field(default_factory=list, compare=False)

    def file(self, ms: ObjectMemory[Any], frame_idx: int, choice: Choice, score: float, state):
        super().file(ms, frame_idx, choice, score, state)
        admitted = bool(ms.memories) and ms.memories[-1][1] is state
        best = int(np.argmax(choice.ious))
        used = choice.motion is not None
        self.log.append((frame_idx, choice.index, best, used, choice.distractor, admitted))


def _run_both(mode: str, model: Any, folder: Path, video: Any, ops: list, **knobs: Any):
    """Replay `ops` on both; (ours, theirs) replays, spies and sessions."""
    spies = Spy(mode, **knobs), Spy(mode, **knobs)
    ours = OnnxVideoTracker(folder, num_threads=2, memory=spies[0])
    ref = VideoPredictor(model, memory=spies[1])
    s_ours, s_ref = ours.init_session(video), ref.init_session(video)
    return replay(ops, ours, s_ours), replay(ops, ref, s_ref), spies, (s_ours, s_ref)


def _kept(ms: ObjectMemory[Any] | None) -> tuple[list[int], ...]:
    """Frames an object's mode state holds: memories, pointers, distractors."""
    assert ms is not None
    return tuple([t for t, _ in d] for d in (ms.memories, ms.pointers, ms.distractors))


def _check(got, want, spies, sessions) -> list[Decision]:
    worst_iou, worst_score = compare(got, want)
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL, (worst_iou, worst_score)
    # objects of a frame may be decided in another order (the ONNX tracker batches them)
    assert sorted(spies[0].log) == sorted(spies[1].log)
    s_ours, s_ref = sessions
    for obj_id, track in s_ours.objects.items():
        assert _kept(track.selection) == _kept(s_ref.objects[obj_id].selection), obj_id
    return spies[0].log


# the parity fixtures' main session up to the reverse pass: clicks, a box, a correction click
PARITY_OPS = MAIN[:6]


SINGLE = ("++model.multimask_output_for_tracking=false",)  # one mask per tracked frame


@pytest.mark.parametrize(("mode", "overrides"), [
    ("motion", ()),
    ("distractor", ()),
    ("motion", SINGLE),  # the rules see the one mask the decoder gave (no candidates)
])  # fmt: skip
def test_modes_match_video_predictor_on_parity_video(mode: str, overrides: tuple[str, ...]) -> None:
    # the synthetic weights predict low IoUs: gates loosened so the rules have work to do
    knobs = dict(mask_threshold=-1.0, distractor_iou=0.0, distractor_gap=1, warmup=2)
    got, want, spies, sessions = _run_both(
        mode, parity_model(overrides), exported("parity", overrides), str(VIDEO), PARITY_OPS,
        **knobs,
    )  # fmt: skip
    log = _check(got, want, spies, sessions)
    # 3 passes x 7 tracked frames x 2 objects (the correction click on frame 4 does not make it
    # a prompted frame: it is tracked again)
    assert len(log) == 3 * 7 * 2
    assert any(admitted for *_, admitted in log)
    if overrides:
        assert not any(used for _, _, _, used, _, _ in log)  # nothing to weigh
    elif mode == "distractor":
        # a distractor seen on an admitted frame enters the bank, read by the next frames
        assert any(seen and admitted for *_, seen, admitted in log)
    else:
        assert any(used for _, _, _, used, _, _ in log)  # the Kalman prediction weighed in


# clip seeds where the bundled model gives the rules work: the occlusion clip's target is lost
# for some frames, and on the distractor clip the motion score overrules the best predicted IoU.
# Which seed does it depends on the weights: seed 0 did it with the stage-3 to stage-5 models,
# seed 3 with stage 2 and again with stage 6 (5 times; seed 0 never). On occlusion seed 1 the
# target is lost for 13 frames in motion mode (stage 4 to stage 6)
SCENARIO_SEEDS = {"occlusion": 1, "distractor": 3}


@cache
def _scenario(name: str, frames: int) -> Any:
    return make_scenario_video(SCENARIO_SEEDS[name], name, SynthConfig(num_frames=frames))


@pytest.mark.parametrize(("mode", "scenario", "frames"), [
    ("motion", "occlusion", 24),
    ("distractor", "occlusion", 24),
    ("motion", "distractor", 14),
    ("distractor", "distractor", 14),
])  # fmt: skip
def test_modes_match_video_predictor_on_hard_cases(mode: str, scenario: str, frames: int) -> None:
    video = _scenario(scenario, frames)
    ops = [dict(op="mask", frame_idx=0, obj_id=1, mask=video.masks[0] == 1), dict(op="propagate")]
    got, want, spies, sessions = _run_both(
        mode, bundled_model(), exported("bundled"), video.frames, ops
    )
    log = _check(got, want, spies, sessions)
    assert len(log) == frames - 1 and any(admitted for *_, admitted in log)
    if mode == "motion" and scenario == "distractor":  # the look-alike crossing the target
        assert any(kept != best for _, kept, best, *_ in log)  # motion overruled the IoU
    if scenario == "occlusion":  # hidden for a while: re-detection kept no "absent" frame
        lost = [f for _, f, _, _, s in got if s[0] < 0]
        assert lost
        memories, pointers, _ = _kept(sessions[0].objects[1].selection)
        assert not set(lost) & (set(memories) | set(pointers))


def test_tracking_in_chunks_matches_one_pass_and_the_video_predictor() -> None:
    """Motion mode over the occlusion clip in two passes (the second starting where the first
    stopped) gives what one pass gives, and what the torch predictor gives in two passes."""
    video = _scenario("occlusion", 24)
    prompt = dict(op="mask", frame_idx=0, obj_id=1, mask=video.masks[0] == 1)
    chunks = [prompt, dict(op="propagate", max=11), dict(op="propagate", start=12)]
    got, want, spies, sessions = _run_both(
        "motion", bundled_model(), exported("bundled"), video.frames, chunks
    )
    _check(got, want, spies, sessions)
    ours = OnnxVideoTracker(exported("bundled"), num_threads=2, memory="motion")
    whole = replay([prompt, dict(op="propagate")], ours, ours.init_session(video.frames))
    flat = [(min(i, 1), f, ids, m, sc) for i, f, ids, m, sc in got]  # 2 passes as 1
    worst_iou, worst_score = compare(flat, whole)
    assert len(whole) == 25 and worst_iou >= IOU_MIN and worst_score <= SCORE_TOL


def test_stream_matches_and_stays_bounded() -> None:
    """A motion-mode stream over the occlusion clip matches the torch stream frame by frame
    and keeps bounded state."""
    video = _scenario("occlusion", 24)
    ours = OnnxVideoTracker(exported("bundled"), num_threads=2, memory="motion")
    ref = VideoPredictor(bundled_model(), memory="motion")
    s_ours, s_ref = ours.init_stream(), ref.init_stream()
    cfg = ours.cfg
    got, want = [], []
    for i, frame in enumerate(video.frames):
        a, b = ours.track(s_ours, frame), ref.track(s_ref, frame)
        if i == 0:
            a = ours.add_mask(s_ours, 0, 1, video.masks[0] == 1)
            b = ref.add_mask(s_ref, 0, 1, video.masks[0] == 1)
        got.append((0, a.frame_idx, a.obj_ids, a.masks, a.object_score_logits))
        want.append((0, b.frame_idx, b.obj_ids, b.masks.numpy(), b.object_score_logits.numpy()))
        if i > 0:
            ms = s_ours.objects[1].selection
            assert _kept(ms) == _kept(s_ref.objects[1].selection)
            assert len(ms.memories) <= cfg["num_maskmem"] - 1
            assert len(ms.pointers) <= cfg["max_obj_ptrs_in_encoder"] - 1
    worst_iou, worst_score = compare(got, want)
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL, (worst_iou, worst_score)
    assert len(s_ours.objects[1].non_cond_outputs) <= 17  # the official window, not 24 frames


def test_memory_argument() -> None:
    folder = exported("parity")
    assert OnnxVideoTracker(folder, memory="official").policy is None
    tracker = OnnxVideoTracker(folder, memory=MemoryPolicy("motion", warmup=5))
    assert tracker.memory == "motion" and tracker.policy.warmup == 5
    with pytest.raises(ValueError, match="memory must be one of"):
        OnnxVideoTracker(folder, memory="samurai")
    # the numpy policy's knobs carry over to the torch predictor too
    pred = VideoPredictor(parity_model(), memory=MemoryPolicy("distractor", distractor_slots=1))
    assert isinstance(pred.selection, MemorySelection) and pred.selection.distractor_slots == 1


def test_video_cli_onnx_with_memory_mode(tmp_path: Path) -> None:
    from sam2r.cli.main import main

    out = tmp_path / "video"
    seq = "val_00000"
    args = ["video", str(EXAMPLE / "JPEGImages" / "480p" / seq),
            "--mask", str(EXAMPLE / "Annotations" / "480p" / seq / "00000.png"),
            "--onnx", str(exported("bundled")), "--memory", "motion", "--out", str(out),
            "--max-frames", "3", "--no-overlay"]  # fmt: skip
    assert main(args) == 0
    masks = json.loads((out / "masks.json").read_text())
    assert [f["frame_idx"] for f in masks["frames"]] == [0, 1, 2]
    assert all(o["area"] > 0 for o in masks["frames"][2]["objects"])


def test_modes_import_no_torch() -> None:
    script = textwrap.dedent(
        f"""
        import sys
        from sam2r.onnx import OnnxVideoTracker
        tracker = OnnxVideoTracker({str(exported("parity"))!r}, num_threads=1, memory="motion")
        session = tracker.init_session({str(VIDEO)!r})
        tracker.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
        n = sum(1 for r in tracker.propagate(session, max_frame_num_to_track=3))
        assert n == 4 and session.objects[1].selection.pointers, n
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
