"""Video files and live streams through PyAV (the `video` extra): decoding, seeking, writing.

* `VideoFileFrames`: random access to the frames of an .mp4/.mov/.webm/.avi/.mkv file, decoded
  lazily. Sequential reads decode forward; a jump seeks to the previous key frame and decodes
  from there. A few recently decoded frames are kept for back-and-forth access.
* `iter_stream`: frames of a camera, a URL (RTSP/HTTP) or a file, one by one, for live tracking.
* `VideoSink`: a context manager that encodes RGB frames to an H.264 .mp4.

PyAV ships its own FFmpeg, so no system ffmpeg is needed. Frames come out as uint8 (H, W, 3)
RGB; model preprocessing (Pillow bicubic resize, as the official folder loader) is the frame
source's `model_input`. The official loader reads video files with decord, whose resize filter
differs slightly; folders of frames are the bit-exact path.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.io.frames import FrameSource

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v")
_AV_HINT = 'reading and writing video files needs PyAV: pip install "sam2r[video]"'


def import_av() -> Any:
    """The `av` module, or an ImportError that names the extra to install."""
    try:
        import av
    except ImportError as e:
        raise ImportError(_AV_HINT) from e
    return av


class VideoFileFrames(FrameSource):
    """A video file as a frame source.

    Args:
        path: the video file.
        cache_frames: decoded frames kept for repeated access (a few; frames are not all held).
    """

    def __init__(self, path: str | os.PathLike[str], cache_frames: int = 4) -> None:
        av = import_av()
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"no such video file: {str(path)!r}")
        try:
            self._container = av.open(str(self.path))
        except av.error.FFmpegError as e:  # type: ignore[attr-defined]
            raise ValueError(f"{str(path)!r} is not a readable video: {e}") from None
        streams = self._container.streams.video
        if not streams:
            raise ValueError(f"{str(path)!r} has no video stream")
        self._stream = streams[0]
        self._stream.thread_type = "AUTO"
        self._pts: list[int] = self._index_frames()
        if not self._pts:
            raise ValueError(f"{str(path)!r} has no decodable frames (empty or corrupt video)")
        first = self._decode_at(0)
        self._hw = (int(first.shape[0]), int(first.shape[1]))
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, cache_frames)
        self._next = 1  # the frame the decoder would produce next, when decoding forward

    def _index_frames(self) -> list[int]:
        """Presentation timestamps of every frame, in display order (demuxing only, no decode)."""
        pts = []
        try:
            for packet in self._container.demux(self._stream):
                if packet.pts is not None and packet.size > 0:
                    pts.append(int(packet.pts))
        except Exception as e:  # corrupt container: keep what was indexed, say so if nothing
            if not pts:
                raise ValueError(f"{str(self.path)!r} is a corrupt video: {e}") from None
        pts.sort()
        self._container.seek(0, stream=self._stream)
        self._decoder = None
        return pts

    @property
    def fps(self) -> float:
        rate = self._stream.average_rate or self._stream.guessed_rate or Fraction(25)
        return float(rate)

    def __len__(self) -> int:
        return len(self._pts)

    @property
    def hw(self) -> tuple[int, int]:
        return self._hw

    def _frames_from(self, index: int) -> Iterator[tuple[int, np.ndarray]]:
        """Seek to the key frame before `index` and decode forward: (frame index, RGB array)."""
        target = self._pts[index]
        self._container.seek(target, stream=self._stream, backward=True, any_frame=False)
        lookup = {p: i for i, p in enumerate(self._pts)}
        for frame in self._container.decode(self._stream):
            if frame.pts is None or frame.pts not in lookup:
                continue
            yield lookup[frame.pts], frame.to_ndarray(format="rgb24")

    def _decode_at(self, index: int) -> np.ndarray:
        self._decoder = self._frames_from(index)
        for i, rgb in self._decoder:
            if i >= index:
                return rgb
        raise ValueError(f"frame {index} of {str(self.path)!r} could not be decoded")

    def frame(self, index: int) -> np.ndarray:
        index = self._check_index(index)
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        rgb = None
        if self._decoder is not None and index == self._next:
            for i, arr in self._decoder:  # continue decoding forward: no seek
                if i == index:
                    rgb = arr
                    break
        if rgb is None:
            rgb = self._decode_at(index)
        self._next = index + 1
        self._cache[index] = rgb
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return rgb

    def close(self) -> None:
        self._container.close()


def iter_stream(source: str | int, *, fmt: str | None = None) -> Iterator[np.ndarray]:
    """Frames of a live source as uint8 (H, W, 3) RGB arrays, until it ends.

    Args:
        source: a camera index (0 -> /dev/video0 through v4l2), a device path, a URL
            (rtsp://, http://, ...) or a file.
        fmt: FFmpeg input format (e.g. "v4l2", "avfoundation", "dshow"); guessed when None.
    """
    av = import_av()
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        source, fmt = f"/dev/video{int(source)}", fmt or "v4l2"
    options = {"rtsp_transport": "tcp"} if str(source).startswith("rtsp") else {}
    try:
        container = av.open(str(source), format=fmt, options=options)
    except av.error.FFmpegError as e:  # type: ignore[attr-defined]
        raise ValueError(f"cannot open the stream {source!r}: {e}") from None
    try:
        stream = container.streams.video[0]
        for frame in container.decode(stream):
            yield frame.to_ndarray(format="rgb24")
    finally:
        container.close()


class VideoSink:
    """Write RGB frames to an H.264 .mp4 (a context manager).

    Args:
        path: output file.
        fps: frame rate.
        crf: H.264 quality (lower is better; 23 is the encoder's default).
    """

    def __init__(self, path: str | os.PathLike[str], fps: float = 24.0, crf: int = 20) -> None:
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self._container: Any = None
        self._stream: Any = None

    def __enter__(self) -> VideoSink:
        av = import_av()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        codec = "libx264" if "libx264" in av.codecs_available else "mpeg4"
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream(codec, rate=rate)
        self._stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            self._stream.options = {"crf": str(self.crf)}
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 (H, W, 3) RGB frame (odd sizes are cropped by one pixel)."""
        av = import_av()
        if self._container is None:
            raise RuntimeError("VideoSink.write outside `with VideoSink(...) as sink:`")
        h, w = frame.shape[:2]
        frame = np.ascontiguousarray(frame[: h - h % 2, : w - w % 2])
        if self._stream.width == 0 or not self._stream.codec_context.is_open:
            self._stream.width, self._stream.height = frame.shape[1], frame.shape[0]
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)

    def __exit__(self, *exc: object) -> None:
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
