"""Session files: `VideoPredictor.save_session` / `load_session` round-trip exactly.

A reopened session must give the same masks on every frame, the same pending prompts, and the
same later tracking and correction clicks as the session it was saved from (bit for bit: the
same kernels run on the same numbers). Bad files and mismatched videos or models are refused.
Under the opt-in memory modes the per-object mode state travels too (the bundled model on the
example clip, where frames are admitted to the memory and the distractor bank); a file of
another memory mode is refused, and a version-1 file (before the modes) still loads. A live
session (`init_stream`) saved mid-stream resumes with no video and tracks the next frames as the
stream that never stopped, bit for bit, from a file whose size does not grow with the stream.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_model

import sam2r
from sam2r import SAM2Model
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video.bank import track_step
from sam2r.predictor.video.selection import MemorySelection

VIDEO = FIXTURES / "inputs" / "video"
REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
FIRST = REPO / "examples" / "synth_davis" / "Annotations" / "480p" / "val_00000" / "00000.png"


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
    assert not (tmp_path / "t.pt").exists()


@pytest.fixture(scope="module")
def bundled() -> SAM2Model:
    return sam2r.from_pretrained("sam2r_micro")


@pytest.fixture(scope="module")
def clip() -> np.ndarray:
    """The example clip's first 10 frames, (10, H, W, 3) uint8."""
    from PIL import Image

    return np.stack(
        [np.array(Image.open(p).convert("RGB")) for p in sorted(CLIP.glob("*.jpg"))[:10]]
    )


# the distractor mode with loose distractor rules, so that the bank fills on this clip
MODES = {
    "motion": MemorySelection("motion"),
    "distractor": MemorySelection(
        "distractor", distractor_iou=0.0, distractor_overlap=1.0, distractor_gap=2
    ),
}


def _state_equal(a, b) -> None:  # noqa: ANN001
    for name in ("low_res_masks", "obj_ptr", "object_score_logits", "maskmem_features"):
        x, y = getattr(a, name), getattr(b, name)
        assert (x is None) == (y is None) and (x is None or torch.equal(x, y)), name


def _tracked(predictor: VideoPredictor, frames: np.ndarray, budget: float | None):  # noqa: ANN202
    """Two objects from their first-frame masks, tracked over frames 0..5."""
    from PIL import Image

    ann = np.array(Image.open(FIRST))
    s = predictor.init_session(frames, state_budget_mb=budget)
    for i in (1, 2):
        predictor.add_mask(s, 0, i, ann == i)
    _all(predictor, s, max_frame_num_to_track=5)
    return s


@pytest.mark.parametrize("budget", [None, 0])
@pytest.mark.parametrize("mode", list(MODES))
def test_opt_in_memory_modes_round_trip_exactly(
    bundled: SAM2Model, clip: np.ndarray, tmp_path: Path, mode: str, budget: float | None
) -> None:
    sel = MODES[mode]
    predictor = VideoPredictor(bundled, memory=sel)
    s = _tracked(predictor, clip, budget)
    states = [t.selection for t in s.objects.values()]
    assert all(ms is not None and ms.memories and ms.pointers for ms in states)
    if mode == "motion":
        assert all(ms.kalman is not None and ms.kalman.updates >= 3 for ms in states)
    else:
        assert all(ms.distractors for ms in states)
    # a remembered output no dict holds any more (as `clear_memory_around` leaves it)
    dropped = s.objects[1].selection.memories[0][0]
    del s.objects[1].non_cond_outputs[dropped]
    # a lost frame kept for the read (the clip never loses its objects; as `file` keeps one)
    s.objects[2].selection.absent.append((5, s.objects[2].non_cond_outputs[5]))
    path = predictor.save_session(s, tmp_path / "s.pt", metadata={"k": 1})
    assert VideoPredictor.session_memory(path) == mode

    fresh = VideoPredictor(bundled, memory=sel)
    t = fresh.load_session(path, clip, state_budget_mb=budget)
    for a, b in zip(s.objects.values(), t.objects.values(), strict=True):
        ma, mb = a.selection, b.selection
        for name in ("memories", "pointers", "distractors", "absent"):
            da, db = getattr(ma, name), getattr(mb, name)
            assert [f for f, _ in da] == [f for f, _ in db] and da.maxlen == db.maxlen, name
            for (f, x), (_, y) in zip(da, db, strict=True):
                _state_equal(x, y)
                if f in a.non_cond_outputs and a.non_cond_outputs[f] is x:
                    assert b.non_cond_outputs[f] is y  # the same object, not a copy
        assert ma.lost == mb.lost
        if ma.kalman is None:
            assert mb.kalman is None
        else:
            assert np.array_equal(ma.kalman.mean, mb.kalman.mean)
            assert np.array_equal(ma.kalman.cov, mb.kalman.cov)
            assert ma.kalman.updates == mb.kalman.updates
    assert t.objects[1].selection.memories[0][0] == dropped
    assert dropped not in t.objects[1].non_cond_outputs

    # the next frames tracked from the mode's state (what a propagation that goes on reads):
    # the restored memories, pointers, distractor frames and Kalman filter give the same bits
    with torch.inference_mode():
        for f in (6, 7):
            for a, b in zip(s.objects.values(), t.objects.values(), strict=True):
                x = track_step(
                    bundled, s, a, f, False, predictor.fill_hole_area, predictor.selection
                )
                y = track_step(bundled, t, b, f, False, fresh.fill_hole_area, fresh.selection)
                _state_equal(x, y)
    # more frames, a correction click and re-propagation both ways: the same bits
    _equal(_all(predictor, s, start_frame_idx=5), _all(fresh, t, start_frame_idx=5))
    r1 = predictor.add_points(s, 4, 2, points=[[200, 150]], labels=[0])
    r2 = fresh.add_points(t, 4, 2, points=[[200, 150]], labels=[0])
    assert torch.equal(r1.masks, r2.masks)
    _equal(_all(predictor, s, start_frame_idx=4), _all(fresh, t, start_frame_idx=4))
    _equal(_all(predictor, s, reverse=True), _all(fresh, t, reverse=True))


def test_memory_mode_mismatch_is_refused(
    bundled: SAM2Model, clip: np.ndarray, tmp_path: Path
) -> None:
    motion = VideoPredictor(bundled, memory="motion")
    s = _tracked(motion, clip[:4], None)
    path = motion.save_session(s, tmp_path / "motion.pt")
    official = VideoPredictor(bundled)
    with pytest.raises(ValueError, match="memory='motion'.*memory='official'"):
        official.load_session(path, clip[:4])
    with pytest.raises(ValueError, match="memory='motion'.*memory='distractor'"):
        VideoPredictor(bundled, memory="distractor").load_session(path, clip[:4])
    tuned = VideoPredictor(bundled, memory=MemorySelection("motion", motion_weight=0.5))
    with pytest.raises(
        ValueError, match="motion_weight=0.25; this predictor has motion_weight=0.5"
    ):
        tuned.load_session(path, clip[:4])
    # a file saved before `absent_slots` existed kept no lost frames: it says absent_slots=0
    payload = torch.load(path, weights_only=True)
    del payload["memory"]["absent_slots"]
    torch.save(payload, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="absent_slots=0; this predictor has absent_slots=6"):
        motion.load_session(tmp_path / "old.pt", clip[:4])
    old = VideoPredictor(bundled, memory=MemorySelection("motion", absent_slots=0))
    assert old.load_session(tmp_path / "old.pt", clip[:4]).objects[1].selection.memories
    # an official predictor cannot save a session holding a mode's state (it would not say so)
    with pytest.raises(ValueError, match="memory='official'"):
        official.save_session(s, tmp_path / "o.pt")
    assert not (tmp_path / "o.pt").exists()
    # and the other way round: an official file into a motion predictor
    t = official.load_session(
        official.save_session(official.init_session(clip[:4]), tmp_path / "e.pt"), clip[:4]
    )
    assert t.objects == {}
    with pytest.raises(ValueError, match="memory='official'.*memory='motion'"):
        motion.load_session(tmp_path / "e.pt", clip[:4])


def test_version_1_files_still_load(model: SAM2Model, tmp_path: Path) -> None:
    predictor = VideoPredictor(model)
    s = predictor.init_session(VIDEO)
    predictor.add_points(s, 0, 1, points=[[58, 84]], labels=[1])
    _all(predictor, s, max_frame_num_to_track=4)
    path = predictor.save_session(s, tmp_path / "s.pt")
    payload = torch.load(path, weights_only=True)
    assert payload["version"] == 3 and payload["memory"] == {"mode": "official"}
    assert payload["live"] is None
    payload["version"] = 1  # what sam2r wrote before the memory modes (and live sessions)
    del payload["memory"], payload["live"]
    for entry in payload["objects"]:
        del entry["selection"]
    torch.save(payload, tmp_path / "v1.pt")
    assert VideoPredictor.session_memory(tmp_path / "v1.pt") == "official"
    t = predictor.load_session(tmp_path / "v1.pt", VIDEO)
    _equal(_all(predictor, s), _all(predictor, t))
    with pytest.raises(ValueError, match="memory='official'"):
        VideoPredictor(model, memory="motion").load_session(tmp_path / "v1.pt", VIDEO)
    payload["version"] = 4
    torch.save(payload, tmp_path / "v4.pt")
    with pytest.raises(ValueError, match="version 4"):
        predictor.load_session(tmp_path / "v4.pt", VIDEO)


def _bounce(clip: np.ndarray, n: int) -> list[np.ndarray]:
    """`n` frames of a stream that plays the clip forwards and backwards."""
    order = [*range(len(clip)), *range(len(clip) - 2, 0, -1)]
    return [clip[order[i % len(order)]] for i in range(n)]


def _stream(predictor: VideoPredictor, frames: list[np.ndarray], keep: int = 2):  # noqa: ANN202
    """A live session over `frames`: object 1 from its mask on frame 0, object 2 from a box on
    frame 3."""
    from PIL import Image

    ann = np.array(Image.open(FIRST))
    ys, xs = np.nonzero(ann == 2)
    s = predictor.init_stream(keep_frames=keep)
    for i, frame in enumerate(frames):
        predictor.track(s, frame)
        if i == 0:
            predictor.add_mask(s, 0, 1, ann == 1)
        if i == 3:
            predictor.add_points(s, 3, 2, box=[xs.min(), ys.min(), xs.max(), ys.max()])
    return s


@pytest.mark.parametrize("click", [False, True])  # a click on a held frame after resuming
@pytest.mark.parametrize("mode", ["official", "motion"])
def test_live_session_resumes_exactly(
    bundled: SAM2Model, clip: np.ndarray, tmp_path: Path, mode: str, click: bool
) -> None:
    predictor = VideoPredictor(bundled, memory=mode)
    frames = _bounce(clip, 24)
    s = _stream(predictor, frames[:18])
    path = predictor.save_session(s, tmp_path / "live.pt")  # s goes on as if never saved

    fresh = VideoPredictor(bundled, memory=mode)  # e.g. another process
    t = fresh.load_session(path)
    assert t.live and t.num_frames == 18 and t.obj_ids == s.obj_ids == [1, 2]
    assert all((tr.selection is None) == (mode == "official") for tr in t.objects.values())
    with pytest.raises(ValueError, match="no longer held"):
        fresh.add_points(t, 15, 1, points=[[100, 100]], labels=[1])
    if click:  # the older of the two frames the file holds
        r1 = predictor.add_points(s, 16, 1, points=[[120, 90]], labels=[0])
        r2 = fresh.add_points(t, 16, 1, points=[[120, 90]], labels=[0])
        assert torch.equal(r1.masks, r2.masks)
    for i, frame in enumerate(frames[18:], start=18):
        a, b = predictor.track(s, frame), fresh.track(t, frame)
        assert a.frame_idx == b.frame_idx == i
        assert torch.equal(a.masks, b.masks), f"frame {i} differs"
        assert torch.equal(a.object_score_logits, b.object_score_logits), f"frame {i} differs"
    assert (b.object_score_logits > 0).all()  # tracked, not a comparison of empty masks


def test_live_session_file_stays_bounded(
    bundled: SAM2Model, clip: np.ndarray, tmp_path: Path
) -> None:
    # an object's bank is full once the pointer window (17 tracked frames) has passed, frame
    # 20 for object 2 (prompted on frame 3): the stream holds as much on frame 36 as on 24
    predictor = VideoPredictor(bundled)
    frames = _bounce(clip, 36)
    s = _stream(predictor, frames[:24], keep=3)
    early = predictor.save_session(s, tmp_path / "24.pt").stat().st_size
    for frame in frames[24:]:
        predictor.track(s, frame)
    path = predictor.save_session(s, tmp_path / "36.pt")
    late = path.stat().st_size
    assert abs(late - early) < 0.01 * early, (early, late)
    held = torch.load(path, weights_only=True)["live"]["frames"]
    assert sorted(held) == [33, 34, 35] and all(f.dtype == torch.uint8 for f in held.values())
    t = predictor.load_session(path)
    assert t.frames.keep == 3 and t.num_frames == 36 and t.frames.hw == (192, 256)
    assert np.array_equal(t.frames.frame(33), frames[33])


def test_live_and_video_files_need_their_own_call(model: SAM2Model, tmp_path: Path) -> None:
    predictor = VideoPredictor(model)
    stream = predictor.init_stream()
    live = predictor.save_session(stream, tmp_path / "live.pt")  # no frame yet: saved too
    with pytest.raises(ValueError, match=r"live session.*without a video: load_session\(path\)"):
        predictor.load_session(live, VIDEO)
    with pytest.raises(ValueError, match="memory='official'.*memory='motion'"):
        VideoPredictor(model, memory="motion").load_session(live)
    t = predictor.load_session(live)
    assert t.live and t.num_frames == 0
    assert predictor.track(t, np.zeros((240, 320, 3), np.uint8)).frame_idx == 0
    video = predictor.save_session(predictor.init_session(VIDEO), tmp_path / "video.pt")
    with pytest.raises(ValueError, match=r"pass that video again: load_session\(path, video\)"):
        predictor.load_session(video)
