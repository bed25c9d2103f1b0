"""Text prompts on videos: detect the things a text names, prompt each with its box, track them.

    tracker = TextTracker(VideoPredictor(model), load_detector("IDEA-Research/grounding-dino-tiny"))
    session = tracker.predictor.init_session("clip.mp4")
    for result in tracker.track(session, "person. dog", every=10):
        result.obj_ids, result.masks              # as from VideoPredictor.propagate
    tracker.objects[1].label                      # 'person'

The detector runs on the first frame and, with `every=N`, on every N-th frame. Each detection
(best score first) is given to the video predictor as a box prompt under the next free id and
kept only if the objects already known cover less than `max_overlap` of its mask; otherwise it
is removed again (it is an object already tracked, or a second box on one just added). Ids are
1, 2, ... in order of appearance and never change; objects found on frame k are tracked from k
on. Until something is found, the detector keeps looking every N frames. The segments between
detection frames are `sam2r.predictor.everything.track_with_admission`'s (shared with
`track_everything`); live streams (`track_stream`) detect on the frame `track` just returned.

What is left to others: the detector and the checks of its answer (`sam2r.text.detections`),
tracking (`sam2r.predictor.video.VideoPredictor`).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2r.ops.transforms import to_rgb_array
from sam2r.predictor.everything import track_with_admission
from sam2r.predictor.video import FrameResult, VideoPredictor, VideoSession
from sam2r.text.detections import (
    Detections,
    check_thresholds,
    detect,
    nothing_found,
    parse_queries,
)


@dataclass
class TextObject:
    """A tracked object found by the detector."""

    obj_id: int
    label: str  # the phrase its detection answered
    score: float  # the detector's score when it was admitted
    box: np.ndarray  # (4,) float32 x0, y0, x1, y1: the box prompt, in video pixels
    frame_idx: int  # the frame it was found on (its prompt frame)


class TextTracker:
    """Find the things a text prompt names with a detector and track them through a video.

    Args:
        predictor: the video predictor.
        detector: any callable `detector(image, queries)` (see `sam2r.text.detections`).
        box_threshold: keep detections scoring at least this.
        nms_threshold: of two boxes with the same label overlapping by more than this IoU,
            keep the better (None: keep both).
        max_overlap: a detection is a new object when the objects already known cover less
            than this fraction of its mask.
        max_objects: add no object beyond this many (None: no limit; the command line uses
            255, the ids a palette PNG can hold).
    """

    def __init__(
        self,
        predictor: VideoPredictor,
        detector: Any,
        *,
        box_threshold: float = 0.3,
        nms_threshold: float | None = 0.5,
        max_overlap: float = 0.5,
        max_objects: int | None = None,
    ) -> None:
        if not isinstance(predictor, VideoPredictor):
            raise TypeError(f"predictor must be a VideoPredictor, got {type(predictor).__name__}")
        if not callable(detector):
            raise TypeError(
                f"detector must be callable as detector(image, queries), got "
                f"{type(detector).__name__}"
            )
        check_thresholds(box_threshold, nms_threshold)
        if isinstance(max_overlap, bool) or not isinstance(max_overlap, (int, float)):
            raise ValueError(f"max_overlap must be a number in [0, 1], got {max_overlap!r}")
        if not 0.0 <= max_overlap <= 1.0:
            raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap!r}")
        if max_objects is not None and (
            isinstance(max_objects, bool) or not isinstance(max_objects, int) or max_objects < 1
        ):
            raise ValueError(f"max_objects must be an int >= 1 or None, got {max_objects!r}")
        self.predictor = predictor
        self.detector = detector
        self.box_threshold = box_threshold
        self.nms_threshold = nms_threshold
        self.max_overlap = float(max_overlap)
        self.max_objects = max_objects
        self.objects: dict[int, TextObject] = {}  # filled as objects are found
        self._last: Detections | None = None  # the latest detection run (for messages)

    @property
    def labels(self) -> dict[int, str]:
        """Object id -> the phrase it was found by."""
        return {k: o.label for k, o in self.objects.items()}

    def track(
        self, session: VideoSession, text: str | Sequence[str], *, every: int = 0
    ) -> Iterator[FrameResult]:
        """Detect and track through a whole video.

        Args:
            session: a fresh session from `predictor.init_session(video)`.
            text: phrases separated by full stops (`"person. dog"`) or a list of them.
            every: also detect every this many frames and add the new objects (0: first
                frame only).

        Yields:
            one `FrameResult` per frame, in order, with every object found by then.
        """
        queries = self._start(session, text, every, live=False)

        def admit(frame_idx: int, tracked: np.ndarray | None) -> int:
            frame = session.frames.frame(frame_idx)
            return len(self._admit(session, frame_idx, frame, tracked, queries)[0])

        yield from track_with_admission(self.predictor, session, admit, every)
        if not self.objects:
            dets = self._last if self._last is not None else Detections.empty()
            msg = nothing_found(dets, queries, self.box_threshold)
            warnings.warn(f"{msg}, on any frame it ran on: no object tracked", stacklevel=2)

    def track_stream(
        self,
        session: VideoSession,
        frames: Iterable[Any],
        text: str | Sequence[str],
        *,
        every: int = 0,
    ) -> Iterator[FrameResult]:
        """Detect and track through a live stream, one frame at a time.

        Args:
            session: a fresh session from `predictor.init_stream()`.
            frames: uint8 (H, W, 3) arrays or PIL images (a camera, a generator).
            text: the phrases.
            every: also detect every this many frames (0: first frame only).

        Yields:
            one `FrameResult` per frame, with the objects found on it included.
        """
        queries = self._start(session, text, every, live=True)
        for t, frame in enumerate(frames):
            result = self.predictor.track(session, frame)
            if t == 0 or (every > 0 and t % every == 0):
                tracked = result.binary_masks().any(axis=0) if result.obj_ids else None
                added, last = self._admit(session, result.frame_idx, frame, tracked, queries)
                if added:
                    result = last  # the frame's masks with the new objects
            yield result

    # ------------------------------------------------------------------------------------------
    def _start(
        self, session: VideoSession, text: str | Sequence[str], every: int, live: bool
    ) -> list[str]:
        queries = parse_queries(text)
        if isinstance(every, bool) or not isinstance(every, int) or every < 0:
            raise ValueError(f"every must be an int >= 0 (0: first frame only), got {every!r}")
        if not isinstance(session, VideoSession):
            raise TypeError(f"session must be a VideoSession, got {type(session).__name__}")
        if session.live != live:
            use = "track_stream() with init_stream()" if session.live else "track()"
            raise ValueError(f"this session is {'live' if session.live else 'a video'}: use {use}")
        if session.objects:
            raise ValueError("text tracking needs a fresh session without objects")
        self.objects.clear()
        self._last = None
        return queries

    def _admit(
        self,
        session: VideoSession,
        frame_idx: int,
        frame: Any,
        tracked: np.ndarray | None,
        queries: list[str],
    ) -> tuple[list[int], FrameResult | None]:
        """Detect on one frame and add the detections that are new objects.

        Returns the new ids and the frame's result after the last one was added.
        """
        dets = detect(
            self.detector,
            to_rgb_array(frame),
            queries,
            box_threshold=self.box_threshold,
            nms_threshold=self.nms_threshold,
        )
        self._last = dets
        h, w = session.frames.hw
        covered = np.zeros((h, w), bool) if tracked is None else tracked.copy()
        added: list[int] = []
        last: FrameResult | None = None
        for box, score, label in zip(dets.boxes, dets.scores, dets.labels, strict=True):
            if self.max_objects is not None and len(self.objects) >= self.max_objects:
                break
            obj_id = max(self.objects, default=0) + 1
            result = self.predictor.add_points(session, frame_idx, obj_id, box=box)
            row = result.obj_ids.index(obj_id)
            mask = result.masks[row, 0] > 0
            if float(result.object_score_logits[row]) <= 0:
                mask = mask & False  # the model sees no object in the box
            mask = mask.cpu().numpy()
            area = int(mask.sum())
            if area == 0 or int((mask & covered).sum()) >= self.max_overlap * area:
                self.predictor.remove_object(session, obj_id, need_output=False)
                continue
            covered |= mask
            self.objects[obj_id] = TextObject(obj_id, label, float(score), box.copy(), frame_idx)
            added.append(obj_id)
            last = result
        return added, last
