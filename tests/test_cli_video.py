"""The `sam2r video` command: outputs on the micro model (palette PNGs, COCO-RLE JSON, overlay
video), inputs (frame folder, .mp4, live stream), prompt kinds, frame ranges, and actionable
errors.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FIXTURES, load_json
from PIL import Image

from sam2r import build_model, config_from_yaml
from sam2r.cli.main import main
from sam2r.cli.video import frame_order
from sam2r.cli.video_outputs import label_map
from sam2r.io.masks import davis_palette, read_palette_png, write_palette_png
from sam2r.ops import rle
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video.session import FrameResult
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
VIDEO = FIXTURES / "inputs" / "video"
H, W = 240, 320


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path, seed=0)
    return str(path)


def _frames() -> list[np.ndarray]:
    return [np.array(Image.open(p).convert("RGB")) for p in sorted(VIDEO.glob("*.jpg"))]


def _run(ckpt: str, out: Path, *args: str) -> int:
    return main(["video", *args, "--checkpoint", ckpt, "--config", MICRO, "--out", str(out)])


def _written(out: Path) -> list[int]:
    """Frame indices of masks.json, in the order they were written."""
    frames = json.loads((out / "masks.json").read_text())["frames"]
    return [f["frame_idx"] for f in frames]


# ----------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------
def test_folder_run_writes_palette_pngs_json_and_overlay(ckpt: str, tmp_path: Path) -> None:
    rc = _run(
        ckpt, tmp_path,
        str(VIDEO), "--point", "0:1:58,84", "--box", "0:2:196,34,271,106", "--fill-hole-area", "0",
    )  # fmt: skip
    assert rc == 0
    pngs = sorted((tmp_path / "masks").glob("*.png"))
    assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(8)]
    summary = json.loads((tmp_path / "masks.json").read_text())
    assert (summary["height"], summary["width"], summary["model"]) == (H, W, "sam2r_micro")
    assert [f["frame_idx"] for f in summary["frames"]] == list(range(8))
    for png, frame in zip(pngs, summary["frames"], strict=True):
        with Image.open(png) as im:
            assert im.mode == "P"
            assert np.array_equal(np.array(im.getpalette()[:768]).reshape(256, 3), davis_palette())
        labels = read_palette_png(png)
        assert set(np.unique(labels)) <= {0, 1, 2}
        objs = {o["obj_id"]: o for o in frame["objects"]}
        assert sorted(objs) == [1, 2]
        own = {i: rle.decode(objs[i]["segmentation"]).astype(bool) for i in objs}
        for i in objs:
            assert (labels == i)[~own[i]].sum() == 0  # drawn only inside its own mask
            assert objs[i]["area"] == int(own[i].sum())
        assert np.array_equal(labels > 0, own[1] | own[2])  # every masked pixel is drawn
    # frame 0 is the official output of these prompts (fixture, no hole filling)
    npz = np.load(FIXTURES / "micro" / "video.npz")
    step = load_json("micro/video_index.json")["sessions"][0]["steps"][2]
    ref = npz[step["returned"]["video_res_masks"]].astype(np.float32)[:, 0] > 0  # (2, H, W)
    objs = {o["obj_id"]: o for o in summary["frames"][0]["objects"]}
    for k, obj in enumerate((1, 2)):
        ours = rle.decode(objs[obj]["segmentation"]).astype(bool)
        assert (ours != ref[k]).mean() < 1e-3
    steps = load_json("micro/video_index.json")["sessions"][0]["steps"]
    for k, obj in ((1, 1), (2, 2)):  # each object's score from its own prompt's output
        want = steps[k]["interacted_object_output"]["object_score_logits"]
        assert abs(objs[obj]["object_score_logit"] - want) < 1e-3
    try:
        import av  # noqa: F401
    except ImportError:
        assert not (tmp_path / "overlay.mp4").exists()
        return
    from sam2r.io.video_file import VideoFileFrames

    clip = VideoFileFrames(tmp_path / "overlay.mp4")
    assert len(clip) == 8 and clip.hw == (H, W)


def test_label_map_draws_present_objects_highest_logit_first() -> None:
    masks = torch.full((3, 1, 2, 3), -5.0)
    masks[0, 0, 0, :] = 2.0  # obj 4: top row
    masks[1, 0, :, 0] = 3.0  # obj 9: left column, higher logit than obj 4 at (0, 0)
    masks[2, 0] = 8.0  # obj 5: everywhere, but absent (score <= 0)
    scores = torch.tensor([1.0, 0.5, -0.1])
    expected = np.array([[9, 4, 4], [9, 0, 0]], np.uint8)
    assert np.array_equal(label_map(masks, scores, [4, 9, 5]), expected)
    assert label_map(torch.zeros(0, 1, 2, 3), torch.zeros(0), []).shape == (2, 3)


# ----------------------------------------------------------------------------------------------
# inputs and prompts
# ----------------------------------------------------------------------------------------------
def test_mp4_input(ckpt: str, tmp_path: Path) -> None:
    pytest.importorskip("av")
    from sam2r.io.video_file import VideoSink

    clip = tmp_path / "clip.mp4"
    with VideoSink(clip, fps=10) as sink:
        for frame in _frames():
            sink.write(frame)
    out = tmp_path / "out"
    rc = _run(ckpt, out, str(clip), "--point", "1:1:58,84", "--max-frames", "3", "--no-overlay")
    assert rc == 0
    assert _written(out) == [1, 2, 3]
    assert sorted(p.name for p in (out / "masks").glob("*.png")) == [
        "00001.png",
        "00002.png",
        "00003.png",
    ]
    assert not (out / "overlay.mp4").exists()


def test_mask_prompt(ckpt: str, tmp_path: Path) -> None:
    labels = np.zeros((H, W), np.uint8)
    labels[40:120, 30:130] = 3
    labels[130:220, 180:300] = 7
    write_palette_png(tmp_path / "first.png", labels)
    out = tmp_path / "out"
    rc = _run(
        ckpt, out, str(VIDEO), "--mask", str(tmp_path / "first.png"), "--mask-frame", "2",
        "--max-frames", "2", "--no-overlay",
    )  # fmt: skip
    assert rc == 0
    assert _written(out) == [2, 3]
    first = read_palette_png(out / "masks" / "00002.png")
    for obj in (3, 7):  # the prompted frame's output is the given mask (through 64x64 logits)
        a, b = first == obj, labels == obj
        assert (a & b).sum() / (a | b).sum() > 0.9
    objects = json.loads((out / "masks.json").read_text())["frames"][1]["objects"]
    assert [o["obj_id"] for o in objects] == [3, 7]


@pytest.mark.parametrize(
    ("n", "start", "max_frames", "reverse", "expected"),
    [
        (8, 3, None, False, [3, 4, 5, 6, 7]),
        (8, 3, 2, False, [3, 4]),
        (8, 3, None, True, [3, 2, 1, 0]),
        (8, 3, 2, True, [3, 2]),
        (8, 0, None, True, []),
        (8, 7, 1, False, [7]),
        (8, 6, 5, False, [6, 7]),
    ],
)
def test_frame_order(
    n: int, start: int, max_frames: int | None, reverse: bool, expected: list[int]
) -> None:
    assert frame_order(n, start, max_frames, reverse) == expected


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--point", "5:1:58,84", "--reverse", "--max-frames", "3"], [5, 4, 3]),
        (["--point", "5:1:58,84", "--point", "6:1:60,90", "--reverse"], [6, 5, 4, 3, 2, 1, 0]),
        (["--point", "3:1:58,84", "--start", "6"], [6, 7]),
    ],
)
def test_frame_ranges(ckpt: str, tmp_path: Path, args: list[str], expected: list[int]) -> None:
    assert _run(ckpt, tmp_path, str(VIDEO), *args, "--no-overlay") == 0
    assert _written(tmp_path) == expected
    assert sorted(int(p.stem) for p in (tmp_path / "masks").glob("*.png")) == sorted(expected)


# ----------------------------------------------------------------------------------------------
# live streams
# ----------------------------------------------------------------------------------------------
class _Source:
    """Stands in for `iter_stream`: yields the fixture frames, counting those taken."""

    def __init__(self, frames: list[np.ndarray], interrupt_at: int | None = None) -> None:
        self.frames = frames
        self.interrupt_at = interrupt_at
        self.taken = 0
        self.sources: list[Any] = []
        self.closed = False

    def __call__(self, source: Any) -> Iterator[np.ndarray]:
        self.sources.append(source)
        return self._gen()

    def _gen(self) -> Iterator[np.ndarray]:
        try:
            for i, frame in enumerate(self.frames):
                if i == self.interrupt_at:
                    raise KeyboardInterrupt
                self.taken += 1
                yield frame
        finally:
            self.closed = True


class _FakeStreamPredictor:
    """The streaming contract (`init_stream`, `track`, `add_points`, `add_mask`) without a
    model: an object's mask is a box around its first click, on every frame it is tracked."""

    class _Cfg:
        name = "fake"

    class _Model:
        cfg = None

    def __init__(self) -> None:
        self.model = self._Model()
        self.model.cfg = self._Cfg()
        self.calls: list[tuple[Any, ...]] = []

    def init_stream(self) -> dict[str, Any]:
        return {"objects": {}, "n": 0, "hw": None}

    def _result(self, session: dict[str, Any], frame_idx: int) -> FrameResult:
        h, w = session["hw"]
        ids = list(session["objects"])
        masks = torch.full((len(ids), 1, h, w), -10.0)
        for i, (x, y) in enumerate(session["objects"].values()):
            masks[i, 0, max(y - 5, 0) : y + 5, max(x - 5, 0) : x + 5] = 10.0
        return FrameResult(frame_idx, ids, masks, torch.ones(len(ids)))

    def track(self, session: dict[str, Any], frame: np.ndarray) -> FrameResult:
        self.calls.append(("track", session["n"]))
        session["hw"] = frame.shape[:2]
        session["n"] += 1
        return self._result(session, session["n"] - 1)

    def add_points(self, session: dict[str, Any], frame_idx: int, obj_id: int, points: Any,
                   labels: Any, box: Any = None) -> FrameResult:  # fmt: skip
        self.calls.append(("add_points", frame_idx, obj_id))
        x, y = box[:2] if box is not None else points[0]
        session["objects"][obj_id] = (int(x), int(y))
        return self._result(session, frame_idx)

    def add_mask(self, session: dict[str, Any], frame_idx: int, obj_id: int, mask: Any) -> Any:
        raise AssertionError("not used here")


def test_stream_plumbing_with_a_fake_predictor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2r.cli.video as cli_video
    import sam2r.io.video_file as video_file

    source = _Source(_frames())
    fake = _FakeStreamPredictor()
    monkeypatch.setattr(video_file, "iter_stream", source)
    monkeypatch.setattr(cli_video, "make_predictor", lambda args: fake)
    rc = main([
        "video", "0", "--point", "0:1:58,84", "--box", "0:2:200,40,260,100",
        "--max-frames", "3", "--no-overlay", "--out", str(tmp_path),
    ])  # fmt: skip
    assert rc == 0
    assert source.sources == [0]  # a digit INPUT is a camera index
    assert source.taken == 3 and source.closed  # --max-frames bounds what is read
    assert fake.calls == [
        ("track", 0), ("add_points", 0, 1), ("add_points", 0, 2), ("track", 1), ("track", 2)
    ]  # fmt: skip
    assert _written(tmp_path) == [0, 1, 2]
    labels = read_palette_png(tmp_path / "masks" / "00000.png")
    assert labels[84, 58] == 1 and labels[40, 200] == 2 and labels[200, 300] == 0


def test_stream_interrupted_keeps_its_outputs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2r.cli.video as cli_video
    import sam2r.io.video_file as video_file

    monkeypatch.setattr(video_file, "iter_stream", _Source(_frames(), interrupt_at=4))
    monkeypatch.setattr(cli_video, "make_predictor", lambda args: _FakeStreamPredictor())
    rc = main(["video", "--stream", "rtsp://cam/1", "--point", "0:1:58,84", "--no-overlay",
               "--out", str(tmp_path)])  # fmt: skip
    assert rc == 0
    assert _written(tmp_path) == [0, 1, 2, 3]


@pytest.mark.skipif(
    not hasattr(VideoPredictor, "track"), reason="VideoPredictor.init_stream/track not there yet"
)
def test_stream_with_the_model(ckpt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sam2r.io.video_file as video_file

    monkeypatch.setattr(video_file, "iter_stream", _Source(_frames()))
    rc = _run(ckpt, tmp_path / "s", "--stream", "0", "--point", "0:1:58,84", "--max-frames", "3",
              "--no-overlay")  # fmt: skip
    assert rc == 0 and _written(tmp_path / "s") == [0, 1, 2]
    # frame 0 is the prompt's output, as on the same frames read from a folder
    assert _run(ckpt, tmp_path / "f", str(VIDEO), "--point", "0:1:58,84", "--max-frames", "1",
                "--no-overlay") == 0  # fmt: skip
    stream0 = read_palette_png(tmp_path / "s" / "masks" / "00000.png")
    folder0 = read_palette_png(tmp_path / "f" / "masks" / "00000.png")
    assert np.array_equal(stream0, folder0)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "msg"),
    [
        ([], "at least one prompt"),
        (["--point", "0:1:5"], "FRAME:OBJ:X,Y[,LABEL]"),
        (["--point", "0,1,5,5"], "expected FRAME:OBJ:X,Y"),
        (["--point", "a:1:5,5"], "not an integer"),
        (["--point", "0:0:5,5"], "1..255"),
        (["--point", "0:256:5,5"], "1..255"),
        (["--point", "0:1:5;5"], "comma-separated"),
        (["--point", "0:1:5,5,2"], "LABEL must be 1"),
        (["--point", "9:1:5,5"], "has 8 frames"),
        (["--point", "0:1:500,5"], "outside the 320x240 video"),
        (["--box", "0:1:5,5,1,1"], "X0 <= X1"),
        (["--box", "0:1:1,2,3"], "X0,Y0,X1,Y1"),
        (["--box", "0:1:1,1,5,5", "--box", "0:1:2,2,6,6"], "already has a box"),
        (["--mask", "/nonexistent.png"], "no such file"),
        (["--point", "0:1:5,5", "--mask-frame", "1"], "needs --mask"),
        (["--point", "0:1:5,5", "--start", "8"], "out of range"),
        (["--point", "0:1:5,5", "--max-frames", "0"], ">= 1"),
        (["--point", "0:1:5,5", "--reverse", "--start", "0"], "nothing to track"),
        (["--point", "0:1:5,5", "--fill-hole-area", "-1"], ">= 0"),
        (["--point", "0:1:5,5", "--stream", "0"], "not both"),
    ],
)
def test_bad_arguments(
    ckpt: str, tmp_path: Path, args: list[str], msg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(ckpt, tmp_path, str(VIDEO), *args) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam2r video: ") and msg in err


def test_bad_inputs_and_masks(
    ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def fails(*args: str) -> str:
        assert _run(ckpt, tmp_path / "out", *args) == 2
        return capsys.readouterr().err

    assert "no such folder or video file" in fails("/nonexistent", "--point", "0:1:5,5")
    assert "sam2r image" in fails(str(VIDEO / "00000.jpg"), "--point", "0:1:5,5")
    assert "give INPUT" in fails("--point", "0:1:5,5")
    (tmp_path / "notes.txt").write_text("x")
    assert "expected a folder of frames" in fails(str(tmp_path / "notes.txt"), "--point", "0:1:5,5")
    write_palette_png(tmp_path / "small.png", np.ones((10, 10), np.uint8))
    assert "video's size" in fails(str(VIDEO), "--mask", str(tmp_path / "small.png"))
    write_palette_png(tmp_path / "empty.png", np.zeros((H, W), np.uint8))
    assert "empty" in fails(str(VIDEO), "--mask", str(tmp_path / "empty.png"))
    assert "frame 0 only" in fails("--stream", "0", "--point", "2:1:5,5")
    assert "need a video" in fails("--stream", "0", "--point", "0:1:5,5", "--reverse")


def test_everything_mode(ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # random weights: the default IoU/stability filters keep nothing, so no object is found
    rc = _run(ckpt, tmp_path, str(VIDEO), "--everything", "--points-per-side", "4", "--no-overlay")
    assert rc == 0
    assert _written(tmp_path) == list(range(8))
    assert "tracked 0 object(s) over 8 frame(s)" in capsys.readouterr().out
    assert _run(ckpt, tmp_path, str(VIDEO), "--everything", "--point", "0:1:5,5") == 2
    assert "drop --point" in capsys.readouterr().err
    assert _run(ckpt, tmp_path, str(VIDEO), "--everything", "--everything-every", "-1") == 2
