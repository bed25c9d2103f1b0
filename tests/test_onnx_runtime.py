"""The torch-free ONNX runtime: numpy preprocessing against sam2r's torch ops, the image
predictor against `ImagePredictor`, and the tracker against `VideoPredictor` on the parity
video (clicks, a box, a correction click, reverse propagation, an object added on a later
frame; mask prompts) and on the bundled example (several objects from its annotations), plus
streaming in bounded memory and a run with no torch import."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES
from PIL import Image

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import bundled_model, compare, exported, parity_model, replay  # noqa: E402

from sam2r import ImagePredictor, VideoPredictor  # noqa: E402
from sam2r.onnx import OnnxImagePredictor, OnnxVideoTracker  # noqa: E402
from sam2r.onnx import numpy_ops as N  # noqa: E402

VIDEO = FIXTURES / "inputs" / "video"
EXAMPLE = FIXTURES.parents[2] / "examples" / "synth_davis"
IOU_MIN = 0.99
SCORE_TOL = 1e-3


@pytest.mark.parametrize("hw,size", [((480, 640), 256), ((100, 77), 256), ((720, 1280), 1024)])
def test_preprocess_image_matches_torch(hw, size):
    from sam2r.ops.transforms import preprocess_image

    img = np.random.default_rng(0).integers(0, 256, (*hw, 3), dtype=np.uint8)
    diff = np.abs(N.preprocess_image(img, size) - preprocess_image(img, size).numpy()).max()
    assert diff <= 5e-6  # measured 1.4e-6 at 1080p -> 1024


def test_video_frame_and_resizes_match_torch():
    from sam2r.io.frames import preprocess_frame

    frame = np.asarray(Image.open(VIDEO / "00000.jpg").convert("RGB"))
    assert np.array_equal(N.preprocess_frame(frame, 256)[0], preprocess_frame(frame, 256).numpy())
    x = np.random.default_rng(1).standard_normal((2, 1, 64, 64)).astype(np.float32) * 5
    ref = F.interpolate(torch.from_numpy(x), size=(240, 320), mode="bilinear").numpy()
    assert np.abs(N.upsample_bilinear(x, (240, 320)) - ref).max() <= 1e-4
    m = (np.random.default_rng(2).random((1, 1, 256, 256)) > 0.5).astype(np.float32) * 20 - 10
    ref = F.interpolate(torch.from_numpy(m), size=(64, 64), mode="bilinear", antialias=True)
    assert np.abs(N.resize_bilinear_aa(m, (64, 64)) - ref.numpy()).max() <= 1e-5


def test_bfloat16_and_holes_match_torch():
    from sam2r.ops.masks import fill_holes_in_mask_scores

    rng = np.random.default_rng(3)
    v = rng.standard_normal(4096).astype(np.float32) * 50
    assert np.array_equal(N.to_bfloat16(v), torch.from_numpy(v).bfloat16().float().numpy())
    for p in (0.3, 0.6, 0.8):
        m = (rng.random((3, 1, 64, 64)) - p).astype(np.float32)
        ref = fill_holes_in_mask_scores(torch.from_numpy(m), 8).numpy()
        assert np.array_equal(N.fill_holes(m, 8), ref)


def test_image_predictor_matches_torch():
    image = np.asarray(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))
    ours = OnnxImagePredictor(exported("parity"), num_threads=2)
    ref = ImagePredictor(parity_model())
    ours.set_image(image)
    ref.set_image(image)
    cases = [
        dict(point_coords=[[148, 156]], point_labels=[1]),
        dict(
            point_coords=[[148, 156], [400, 230], [480, 168]],
            point_labels=[1, 1, 0],
            multimask_output=False,
        ),
        dict(
            box=[190, 262, 450, 434],
            point_coords=[[320, 380]],
            point_labels=[1],
            multimask_output=False,
        ),
        dict(box=[[62, 70, 234, 242], [350, 94, 578, 266]], multimask_output=False),
    ]
    for case in cases:
        a, b = ours.predict(**case), ref.predict(**case)
        assert a.masks.shape == b.masks.shape
        assert np.abs(a.scores - b.scores).max() <= 1e-4
        assert np.abs(a.low_res_logits - b.low_res_logits).max() <= 1e-3
        assert (a.masks != b.masks).mean() <= 1e-3
    prev = ref.predict(point_coords=[[148, 156]], point_labels=[1]).low_res_logits[:1]
    case = dict(
        point_coords=[[148, 156], [110, 120]],
        point_labels=[1, 1],
        mask_input=prev,
        multimask_output=False,
    )
    a, b = ours.predict(**case), ref.predict(**case)
    assert np.abs(a.low_res_logits - b.low_res_logits).max() <= 1e-3


def _circle(hw, cx, cy, r):
    yy, xx = np.mgrid[: hw[0], : hw[1]]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


# the parity fixtures' video sessions, in the replay's op format
MAIN = [
    dict(op="points", frame_idx=0, obj_id=1, points=[[58, 84]], labels=[1]),
    dict(op="points", frame_idx=0, obj_id=2, box=[196, 34, 271, 106]),
    dict(op="propagate"),
    dict(
        op="points", frame_idx=4, obj_id=1, points=[[147, 128]], labels=[0], clear_old_points=False
    ),
    dict(op="propagate"),
    dict(op="propagate", start=7, reverse=True),
    dict(op="points", frame_idx=3, obj_id=3, points=[[125, 212], [60, 150]], labels=[1, 0]),
    dict(op="propagate"),
]
MASKS = [
    dict(op="mask", frame_idx=0, obj_id=1, mask=_circle((240, 320), 57.6, 84.0, 33.6)),
    dict(op="mask", frame_idx=0, obj_id=2, mask=np.zeros((240, 320), bool)),
    dict(op="propagate"),
]


@pytest.mark.parametrize("session", ["main", "masks"])
def test_tracker_matches_video_predictor_on_parity_video(session):
    ops = MAIN if session == "main" else MASKS
    ref = VideoPredictor(parity_model())
    ours = OnnxVideoTracker(exported("parity"), num_threads=2)
    got = replay(ops, ours, ours.init_session(str(VIDEO)))
    want = replay(ops, ref, ref.init_session(str(VIDEO)))
    worst_iou, worst_score = compare(got, want)
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL, (worst_iou, worst_score)


def test_tracker_matches_video_predictor_on_bundled_example():
    """Two objects from the example's first annotation (a box and a mask), a third added by a
    click on a later frame (4), default hole filling, 8 frames."""
    seq = "val_00000"
    frames = EXAMPLE / "JPEGImages" / "480p" / seq
    ann = np.asarray(Image.open(EXAMPLE / "Annotations" / "480p" / seq / "00000.png"))
    ids = [int(i) for i in np.unique(ann) if i != 0]
    assert len(ids) >= 2
    ys, xs = np.nonzero(ann == ids[0])
    later = np.asarray(Image.open(EXAMPLE / "Annotations" / "480p" / seq / "00004.png"))
    ly, lx = np.nonzero(later == ids[-1])
    ops = [
        dict(op="points", frame_idx=0, obj_id=ids[0], box=[xs.min(), ys.min(), xs.max(), ys.max()]),
        dict(op="mask", frame_idx=0, obj_id=ids[1], mask=ann == ids[1]),
        dict(op="propagate", max=7),
        dict(
            op="points",
            frame_idx=4,
            obj_id=99,
            points=[[lx[len(lx) // 2], ly[len(ly) // 2]]],
            labels=[1],
        ),
        dict(op="propagate", start=4, max=5),
    ]
    ref = VideoPredictor(bundled_model())
    ours = OnnxVideoTracker(exported("bundled"), num_threads=2)
    got = replay(ops, ours, ours.init_session(str(frames)))
    want = replay(ops, ref, ref.init_session(str(frames)))
    worst_iou, worst_score = compare(got, want)
    assert len(got) == 2 + 8 + 1 + 6
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL, (worst_iou, worst_score)


def test_stream_matches_and_stays_bounded():
    """A stream matches the torch stream (first 6 frames compared) and keeps only the memory
    window (17 frames) after 20 frames."""
    frames = [np.asarray(Image.open(VIDEO / f"{i:05d}.jpg").convert("RGB")) for i in range(8)]
    frames = (frames + frames[::-1] + frames)[:20]
    ours = OnnxVideoTracker(exported("parity"), num_threads=2)
    ref = VideoPredictor(parity_model())
    s_ours, s_ref = ours.init_stream(), ref.init_stream()
    got, want = [], []
    for i, frame in enumerate(frames):
        a = ours.track(s_ours, frame)
        if i == 0:
            a = ours.add_points(s_ours, 0, 1, points=[[58, 84]], labels=[1])
        got.append((0, a.frame_idx, list(a.obj_ids), a.masks, a.object_score_logits))
        if i < 6:
            b = ref.track(s_ref, frame)
            if i == 0:
                b = ref.add_points(s_ref, 0, 1, points=[[58, 84]], labels=[1])
            m, sc = b.masks.numpy(), b.object_score_logits.numpy()
            want.append((0, b.frame_idx, list(b.obj_ids), m, sc))
    worst_iou, worst_score = compare(got[:6], want)
    assert worst_iou >= IOU_MIN and worst_score <= SCORE_TOL
    assert all(g[3].shape == (1, 1, 240, 320) for g in got)
    track = s_ours.objects[1]
    assert len(track.non_cond_outputs) <= 17 and len(track.tracked) <= 17  # the window, not 20
    assert len(s_ours.features) <= 2 and len(s_ours.frames.recent) <= 2


def test_tracker_input_errors():
    ours = OnnxVideoTracker(exported("parity"), num_threads=1)
    session = ours.init_session(str(VIDEO))
    with pytest.raises(ValueError, match="out of range"):
        ours.add_points(session, 8, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(ValueError, match="together"):
        ours.add_points(session, 0, 1, points=[[1, 1]])
    with pytest.raises(ValueError, match="video's size"):
        ours.add_mask(session, 0, 1, np.zeros((10, 10), bool))
    with pytest.raises(RuntimeError, match="no object"):
        next(ours.propagate(session))
    with pytest.raises(FileNotFoundError, match="manifest"):
        OnnxVideoTracker(VIDEO)


def test_runtime_imports_no_torch():
    """Tracking and image prediction from an exported folder leave torch unimported."""
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from sam2r.onnx import OnnxImagePredictor, OnnxVideoTracker
        tracker = OnnxVideoTracker({str(exported("parity"))!r}, num_threads=1)
        session = tracker.init_session({str(VIDEO)!r})
        tracker.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
        n = sum(1 for r in tracker.propagate(session, max_frame_num_to_track=2))
        pred = OnnxImagePredictor(tracker.model)
        pred.set_image(np.zeros((50, 60, 3), np.uint8))
        pred.predict(point_coords=[[10, 10]], point_labels=[1])
        assert n == 3, n
        print("torch" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False", out.stdout + out.stderr
