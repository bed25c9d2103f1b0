"""`sam2r image --text` and `sam2r video --text` with a Python callable detector (no download).

`--detector test_cli_text:clip_detector` names the stub below, which answers with the
ground-truth boxes of the bundled example clip: object 1 as 'ball' on every frame, object 2 as
'star' from frame 4 on.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from sam2r.cli.main import main

ROOT = Path(__file__).parents[1]
FRAMES = ROOT / "examples" / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
ANNOTATIONS = FRAMES.parents[2] / "Annotations" / "480p" / "val_00000"
_CLIP = [np.array(Image.open(p).convert("RGB")) for p in sorted(FRAMES.glob("*.jpg"))]


def _box(t: int, obj: int) -> list[float]:
    ys, xs = np.nonzero(np.array(Image.open(ANNOTATIONS / f"{t:05d}.png")) == obj)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def clip_detector(image: np.ndarray, queries: list[str]) -> Any:
    """Ground-truth boxes of the example clip's frame shown (a detector that knows the answer)."""
    t = next(i for i, f in enumerate(_CLIP) if np.array_equal(f, image))
    found = [(_box(t, 1), 0.9, "ball")] + ([(_box(t, 2), 0.6, "star")] if t >= 4 else [])
    found = [f for f in found if f[2] in queries]
    return [f[0] for f in found], [f[1] for f in found], [f[2] for f in found]


def empty_detector(image: np.ndarray, queries: list[str]) -> Any:
    return np.zeros((0, 4)), [], []


def outside_detector(image: np.ndarray, queries: list[str]) -> Any:
    h, w = image.shape[:2]
    return [[w + 5, 0, w + 50, 20], [-10, -10, 60, 40]], [0.9, 0.8], [0, 0]


DET = ["--detector", "test_cli_text:clip_detector"]


def test_image_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frame4 = tmp_path / "frame4.png"
    Image.fromarray(_CLIP[4]).save(frame4)
    out = tmp_path / "out"
    assert main(["image", str(frame4), "--text", "ball. star", *DET, "--out", str(out)]) == 0
    summary = json.loads((out / "frame4_masks.json").read_text())
    assert [m["label"] for m in summary["masks"]] == ["ball", "star"]
    assert summary["masks"][0]["detection_score"] == 0.9
    assert summary["masks"][1]["detection_box_xyxy"] == _box(4, 2)
    assert summary["queries"] == ["ball", "star"]
    assert (out / "frame4_mask2.png").is_file() and (out / "frame4_overlay.png").is_file()
    assert "'star'" in capsys.readouterr().out
    # a threshold above every score: nothing found, said so, and the (empty) summary written
    argv = ["image", str(frame4), "--text", "ball", *DET, "--out", str(out), "--box-threshold"]
    assert main([*argv, "0.95"]) == 0
    assert "best: 'ball' at 0.900" in capsys.readouterr().err
    assert json.loads((out / "frame4_masks.json").read_text())["masks"] == []


def test_video_text_labels_and_new_objects(tmp_path: Path) -> None:
    out = tmp_path / "out"
    argv = ["video", str(FRAMES), "--text", "ball. star", *DET, "--detect-every", "2"]
    assert main([*argv, "--max-frames", "6", "--no-overlay", "--out", str(out)]) == 0
    summary = json.loads((out / "masks.json").read_text())
    assert summary["text"] == "ball. star"
    assert summary["objects"]["1"]["label"] == "ball" and summary["objects"]["1"]["frame_idx"] == 0
    assert summary["objects"]["2"]["label"] == "star" and summary["objects"]["2"]["frame_idx"] == 4
    per_frame = [[(o["obj_id"], o["label"]) for o in f["objects"]] for f in summary["frames"]]
    assert per_frame == [[(1, "ball")]] * 4 + [[(1, "ball"), (2, "star")]] * 2
    assert len(list((out / "masks").glob("*.png"))) == 6


def test_video_text_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sam2r.io import video_file

    monkeypatch.setattr(video_file, "iter_stream", lambda source: iter(_CLIP[:6]))
    out = tmp_path / "out"
    argv = ["video", "--stream", "0", "--text", "ball. star", *DET, "--detect-every", "2"]
    assert main([*argv, "--no-overlay", "--out", str(out)]) == 0
    summary = json.loads((out / "masks.json").read_text())
    per_frame = [[o["label"] for o in f["objects"]] for f in summary["frames"]]
    assert per_frame == [["ball"]] * 4 + [["ball", "star"]] * 2


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--text", " . "], "--text: the text prompt ' . ' names nothing"),
        (["--text", "ball", "--detector", "no_such_module_x:f"], "cannot import"),
        (["--text", "ball", "--box-threshold", "2"], "--box-threshold must be in"),
        (["--text", "ball", "--point", "0:1:10,10", *DET], "drop --point"),
        (["--text", "ball", "--detect-every", "-1", *DET], "--detect-every must be >= 0"),
        (["--text", "ball", "--reverse", *DET], "no --reverse"),
        (["--text", "ball", "--onnx", "exported/", *DET], "drop --onnx"),
    ],
)
def test_video_text_errors(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["video", str(FRAMES), "--max-frames", "2", "--no-overlay", "--out", str(tmp_path)]
    code = main([*argv, *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err


def test_video_boxes_outside_the_frame(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["video", str(FRAMES), "--max-frames", "2", "--no-overlay", "--out", str(tmp_path)]
    assert main([*argv, "--text", "ball", "--detector", "test_cli_text:outside_detector"]) == 0
    assert "dropped 1 detection(s) with no area inside the 256x192 image" in capsys.readouterr().err
    summary = json.loads((tmp_path / "masks.json").read_text())
    assert summary["objects"]["1"]["box_xyxy"] == [0, 0, 60, 40]  # clipped to the frame
    assert list(summary["objects"]) == ["1"] and len(summary["frames"]) == 2


def test_empty_detector_and_missing_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    image = str(ROOT / "examples" / "shapes.png")
    argv = ["image", image, "--text", "cat", "--out", str(tmp_path)]
    assert main([*argv, "--detector", "test_cli_text:empty_detector"]) == 0
    assert "found nothing for 'cat'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if the extra were missing
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "pip install 'sam2r[text]'" in err and "--detector module:function" in err
