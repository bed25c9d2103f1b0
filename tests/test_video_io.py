"""Video files through PyAV: writing, frame count, random access, streams, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("av")

from sam2r.io.video_file import VideoFileFrames, VideoSink, iter_stream  # noqa: E402


def _frames(n: int = 24) -> list[np.ndarray]:
    out = []
    for i in range(n):
        f = np.full((96, 128, 3), 40 + i * 6, np.uint8)
        f[20:40, 4 * i : 4 * i + 16] = 255  # a bar moving right
        out.append(f)
    return out


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    path = tmp_path_factory.mktemp("vid") / "clip.mp4"
    frames = _frames()
    with VideoSink(path, fps=12) as sink:
        for f in frames:
            sink.write(f)
    return path, frames


def test_sequential_and_random_access(clip: tuple[Path, list[np.ndarray]]) -> None:
    path, frames = clip
    video = VideoFileFrames(path)
    assert len(video) == len(frames) and video.hw == (96, 128) and video.fps == pytest.approx(12)
    for i in list(range(len(frames))) + [20, 3, 3, 17, 0, 23, 11]:
        err = np.abs(video.frame(i).astype(int) - frames[i]).mean()
        assert err < 3, (i, err)  # H.264 is lossy; a wrong frame differs by >= 6 everywhere
    assert video.model_input(5, 64).shape == (3, 64, 64)
    with pytest.raises(IndexError, match="out of range"):
        video.frame(len(frames))


def test_stream_yields_every_frame(clip: tuple[Path, list[np.ndarray]]) -> None:
    path, frames = clip
    got = list(iter_stream(str(path)))
    assert len(got) == len(frames) and got[0].shape == (96, 128, 3)


@pytest.mark.parametrize(
    ("content", "msg"),
    [(b"", "not a readable video|no decodable|corrupt"), (b"\x00garbage" * 100, "not a readable")],
)
def test_bad_files(tmp_path: Path, content: bytes, msg: str) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(ValueError, match=msg):
        VideoFileFrames(bad)
    with pytest.raises(ValueError, match="no such video"):
        VideoFileFrames(tmp_path / "missing.mp4")


def test_sink_outside_context_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="with VideoSink"):
        VideoSink(tmp_path / "x.mp4").write(np.zeros((8, 8, 3), np.uint8))
