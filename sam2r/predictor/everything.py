"""Segment and track everything in a video: the automatic mask generator proposes objects, the
video predictor tracks them.

The generator runs on the first frame (and, with `every=N`, on every N-th frame). Each proposal
becomes an object with a mask prompt; on later generator frames, a proposal becomes a new object
only when the tracked objects cover less than `max_overlap` of it. Object ids are 1, 2, ... in
order of appearance and never change. Tracking runs in segments between generator frames, so
objects added on frame k are tracked from k on (the official predictor's semantics for objects
added after tracking started). That id and segment logic is `track_with_admission`, which the
text-prompt tracker (`sam2r.text.video`) shares with a detector in place of the generator.

What is left to others: the proposals (`MaskGenerator`), the tracking (`VideoPredictor`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from sam2r.ops.transforms import to_rgb_array
from sam2r.predictor.automatic import MaskGenerator
from sam2r.predictor.video import FrameResult, VideoPredictor, VideoSession


def _proposals(generator: MaskGenerator, frame: Any) -> list[np.ndarray]:
    """Binary (H, W) masks of the generator on one frame, largest first."""
    records = generator.generate(to_rgb_array(frame))
    masks = [np.asarray(r["segmentation"], dtype=bool) for r in records]
    return sorted((m for m in masks if m.any()), key=lambda m: -int(m.sum()))


def track_everything(
    predictor: VideoPredictor,
    generator: MaskGenerator,
    session: VideoSession,
    *,
    every: int = 0,
    max_overlap: float = 0.5,
    max_objects: int | None = None,
) -> Iterator[FrameResult]:
    """Propose objects with the generator and track them through the whole video.

    Args:
        predictor: the video predictor.
        generator: a mask generator with `output_mode="binary"` on the same model.
        session: a fresh session from `predictor.init_session(video)`.
        every: also look for new objects every this many frames (0: first frame only).
        max_overlap: a later proposal is new when tracked objects cover less than this
            fraction of it.
        max_objects: stop adding objects beyond this many (None: no limit).

    Yields:
        one `FrameResult` per frame, in order, with every object known by then.
    """
    if generator.output_mode != "binary":
        raise ValueError(
            f"the generator must use output_mode='binary', got {generator.output_mode!r}"
        )
    if isinstance(every, bool) or not isinstance(every, int) or every < 0:
        raise ValueError(f"every must be an int >= 0 (0: first frame only), got {every!r}")
    if not 0.0 <= max_overlap <= 1.0:
        raise ValueError(f"max_overlap must be in [0, 1], got {max_overlap!r}")
    if session.objects:
        raise ValueError("track_everything needs a fresh session without objects")
    next_id = 1

    def admit(frame_idx: int, tracked: np.ndarray | None) -> int:
        nonlocal next_id
        before = next_id
        masks = _proposals(generator, session.frames.frame(frame_idx))
        if tracked is not None:
            masks = [m for m in masks if (m & tracked).sum() < max_overlap * m.sum()]
        for m in masks:
            if max_objects is not None and next_id > max_objects:
                break
            predictor.add_mask(session, frame_idx, next_id, m)
            next_id += 1
        return next_id - before

    # a generator that finds nothing on the first frame finds nothing later either (the
    # official behaviour of an empty prompt set): report empty frames rather than failing
    yield from track_with_admission(predictor, session, admit, every, retry_when_empty=False)


def track_with_admission(
    predictor: VideoPredictor,
    session: VideoSession,
    admit: Callable[[int, np.ndarray | None], int],
    every: int,
    *,
    retry_when_empty: bool = True,
) -> Iterator[FrameResult]:
    """Track a video whose objects are added by `admit` on frame 0 and every `every` frames.

    This is the id and segment logic shared by `track_everything` and the text-prompt tracker
    (`sam2r.text`): tracking runs in segments between admission frames, so objects added on
    frame k are tracked from k on, and each frame is yielded once, with every object known by
    then.

    Args:
        predictor: the video predictor.
        session: a fresh session from `predictor.init_session(video)`.
        admit: `admit(frame_idx, tracked)` adds the new objects of a frame to the session
            (with `predictor.add_*`, ids never reused) and returns how many it added;
            `tracked` is the (H, W) bool union of the tracked masks on that frame, None while
            no object is known.
        every: also call `admit` every this many frames (0: first frame only).
        retry_when_empty: while no object is known, call `admit` again every `every` frames
            (False: an empty first frame gives empty results for the whole video).

    Yields:
        one `FrameResult` per frame, in order.
    """
    n = session.num_frames
    seg_start = 0
    while not admit(seg_start, None):
        # nothing yet: empty frames up to the next admission frame
        stop = seg_start + every if every > 0 and retry_when_empty else n
        for t in range(seg_start, min(stop, n)):
            yield predictor._result(session, t, [])
        if stop >= n:
            return
        seg_start = stop
    first = seg_start  # the first frame the next propagation tracks
    while True:
        seg_end = min(seg_start + every, n - 1) if every > 0 else n - 1
        admits = every > 0 and seg_end == seg_start + every  # an admission frame ends it
        pending: FrameResult | None = None
        for result in predictor.propagate(session, first, seg_end - first):
            if result.frame_idx == seg_end and admits:
                pending = result  # yielded once we know whether objects appear here
            else:
                yield result
        if pending is None:
            return
        if admit(seg_end, pending.binary_masks().any(axis=0)) == 0:
            # unchanged: tracking goes on from the next frame (its memory already holds this
            # one, so the results are those of one propagation through both segments)
            yield pending
            if seg_end == n - 1:
                return
            first = seg_end + 1
        else:
            first = seg_end  # re-tracked with the new objects' prompts on it
        seg_start = seg_end
