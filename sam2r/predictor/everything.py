"""Segment and track everything in a video: the automatic mask generator proposes objects, the
video predictor tracks them.

The generator runs on the first frame (and, with `every=N`, on every N-th frame). Each proposal
becomes an object with a mask prompt; on later generator frames, a proposal becomes a new object
only when the tracked objects cover less than `max_overlap` of it. Object ids are 1, 2, ... in
order of appearance and never change. Tracking runs in segments between generator frames, so
objects added on frame k are tracked from k on (the official predictor's semantics for objects
added after tracking started).

What is left to others: the proposals (`MaskGenerator`), the tracking (`VideoPredictor`).
"""

from __future__ import annotations

from collections.abc import Iterator
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
    n = session.num_frames
    next_id = 1

    def add(frame_idx: int, masks: list[np.ndarray]) -> None:
        nonlocal next_id
        for m in masks:
            if max_objects is not None and next_id > max_objects:
                return
            predictor.add_mask(session, frame_idx, next_id, m)
            next_id += 1

    add(0, _proposals(generator, session.frames.frame(0)))
    if not session.objects:
        # nothing found: report empty frames rather than failing
        for t in range(n):
            yield predictor._result(session, t, [])
        return
    seg_start, skip_first = 0, False
    while True:
        seg_end = min(seg_start + every, n - 1) if every > 0 else n - 1
        pending: FrameResult | None = None
        for result in predictor.propagate(session, seg_start, seg_end - seg_start):
            if skip_first and result.frame_idx == seg_start:
                continue  # already yielded at the end of the previous segment
            if result.frame_idx == seg_end and seg_end < n - 1:
                pending = result  # yielded once we know whether objects appear here
            else:
                yield result
        if pending is None:
            return
        tracked = pending.binary_masks().any(axis=0)
        fresh = [
            m
            for m in _proposals(generator, session.frames.frame(seg_end))
            if (m & tracked).sum() < max_overlap * m.sum()
        ]
        before = next_id
        add(seg_end, fresh)
        skip_first = next_id == before
        if skip_first:
            yield pending  # unchanged: the next segment starts by re-tracking it identically
        seg_start = seg_end
