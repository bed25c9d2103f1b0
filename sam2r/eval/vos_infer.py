"""Semi-supervised VOS inference over a DAVIS-style dataset: the first mask in, every mask out.

    dataset = VosDataset.open("DAVIS")                      # ROOT/JPEGImages/480p/<seq>/*.jpg
    names = dataset.sequence_names("val")                   # ROOT/ImageSets/2017/val.txt
    for name in shard(names, rank, world, dataset.frame_counts(names)):
        infer_sequence(predictor, dataset.sequence(name), Path("out"))

It follows the official `tools/vos_inference.py` of SAM 2, written from its documented
behaviour:

* the objects are the ids in the first annotated frame's mask (0 is background), each prompted
  with its own mask on that frame, then tracked forward to the end of the video. With
  `later_objects` (the official `--track_object_appearing_later_in_video`), every object is
  prompted on the first frame where it appears and tracked on its own from there, and the
  per-object logits are merged afterwards;
* a pixel is labelled with an object when its logit is `> score_thresh`; with `non_overlap`
  (the official default for one-PNG-per-frame outputs) only the object with the highest logit
  keeps its logit at a pixel, the others are lowered to at most -10; where several objects
  still pass the threshold, the smallest id wins (the official writer paints ids from the
  largest to the smallest);
* outputs are palette PNGs `OUT/<seq>/<frame>.png` with the frame names of the JPEGs and the
  palette of the input annotation. Unlike the official tool, frames before the first prompted
  frame are written too (all background), so that every frame has a PNG.

No post-processing is implied: pass a `VideoPredictor` with `fill_hole_area=0` and
`non_overlap_masks=False` to reproduce the official evaluation setting (the overlap rule is
applied here, on the merged logits). The loop calls only the predictor methods that
`sam2r.onnx.OnnxVideoTracker` mirrors (`Tracker`), so an exported model on ONNX Runtime runs
it too (`sam2r vos-infer --onnx DIR`), with numpy logits. What is left to others: reading
the dataset layout (`sam2r.io.vos_dataset`, whose `VosDataset` is importable from here
too), tracking (`sam2r.predictor.video`, `sam2r.onnx`), palette files (`sam2r.io.masks`),
the process group and the command line (`sam2r.cli.vos_infer`), scoring (`sam2r.eval`'s
evaluator).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from PIL import Image

from sam2r.io.masks import read_palette_png, write_palette_png
from sam2r.io.vos_dataset import VosDataset, VosSequence

MIN_OTHER_LOGIT = -10.0  # where non-overlap lowers the logits of the objects that lose a pixel


class Tracker(Protocol):
    """The predictor methods the loop calls: `sam2r.predictor.video.VideoPredictor`, or
    `sam2r.onnx.OnnxVideoTracker` (the same names). Sessions must have `close()`; results
    `frame_idx`, `obj_ids` and `masks` (num_obj, 1, H, W) logits, a tensor or an array."""

    def init_session(self, video: Any) -> Any: ...

    def reset(self, session: Any) -> None: ...

    def add_mask(self, session: Any, frame_idx: int, obj_id: Hashable, mask: Any) -> Any: ...

    def propagate(self, session: Any, start_frame_idx: int | None = None) -> Iterator[Any]: ...


# ----------------------------------------------------------------------------------------------
# sharding
# ----------------------------------------------------------------------------------------------
def shard(
    seqs: Sequence[str], rank: int, world: int, sizes: Mapping[str, int] | None = None
) -> list[str]:
    """The sequences process `rank` of `world` runs; every sequence goes to exactly one rank.

    Without `sizes`: round robin over the sorted names, `sorted(seqs)[rank::world]`. With
    `sizes` (frames per sequence): longest first, each to the rank with the fewest frames so
    far (ties to the lower rank), so ranks finish at about the same time; no rank ends up with
    more than the least loaded rank plus the longest sequence. Both depend only on the inputs,
    so every rank computes the same split without talking to the others.

    Returns:
        the rank's sequences, sorted by name.
    """
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world size must be an int >= 1, got {world!r}")
    if isinstance(rank, bool) or not isinstance(rank, int) or not 0 <= rank < world:
        raise ValueError(f"rank must be an int in [0, {world}), got {rank!r}")
    if len(set(seqs)) != len(seqs):
        raise ValueError(
            f"sequence names repeat: {sorted(s for s in set(seqs) if seqs.count(s) > 1)}"
        )
    names = sorted(seqs)
    if sizes is None:
        return names[rank::world]
    missing = [n for n in names if n not in sizes]
    if missing:
        raise ValueError(f"sizes has no entry for {missing[:5]}")
    loads = [0] * world
    mine = []
    for name in sorted(names, key=lambda n: (-sizes[n], n)):
        r = min(range(world), key=lambda i: (loads[i], i))
        loads[r] += sizes[name]
        if r == rank:
            mine.append(name)
    return sorted(mine)


# ----------------------------------------------------------------------------------------------
# annotations
# ----------------------------------------------------------------------------------------------
def read_annotation(path: Path, hw: tuple[int, int]) -> tuple[np.ndarray, list[int] | None]:
    """(object ids (H, W) uint8, palette or None) of an annotation PNG of a video of size hw.

    The PNG must be an indexed ("P") or 8-bit grayscale ("L") image of object ids, the size of
    the frames.
    """
    try:
        with Image.open(path) as im:
            mode, size, palette = im.mode, im.size, im.getpalette()
    except OSError as e:
        raise ValueError(f"{path}: not a readable PNG ({e})") from None
    if mode not in ("P", "L"):
        raise ValueError(
            f"{path}: mode {mode!r} is not an object-id image; annotations must be palette "
            "(P) or 8-bit grayscale (L) PNGs whose pixel values are object ids (0: background)"
        )
    if (size[1], size[0]) != hw:
        raise ValueError(
            f"{path}: annotation of size {size[1]}x{size[0]} (HxW) does not match the frames "
            f"({hw[0]}x{hw[1]})"
        )
    return read_palette_png(path), (palette if mode == "P" else None)


@dataclass(frozen=True)
class ObjectPrompt:
    """One object's mask prompt."""

    obj_id: int
    frame_idx: int
    mask: np.ndarray  # (H, W) bool


def collect_prompts(
    seq: VosSequence, later_objects: bool = False
) -> tuple[list[ObjectPrompt], list[int] | None]:
    """(mask prompts in ascending object id, palette of the first annotation) of a sequence.

    Default: every object of the first annotated frame, on that frame. `later_objects`: every
    object of every annotation, on the first frame where its mask is not empty.
    """
    annotated = seq.annotated_frames()
    if not annotated:
        raise ValueError(
            f"{seq.ann_dir}: no annotation PNG named after a frame of {seq.frames.paths[0].parent} "
            f"(expected e.g. {seq.frame_names[0]}.png)"
        )
    palette: list[int] | None = None
    prompts: dict[int, ObjectPrompt] = {}
    for k, t in enumerate(annotated if later_objects else annotated[:1]):
        labels, pal = read_annotation(seq.ann_dir / f"{seq.frame_names[t]}.png", seq.frames.hw)
        if k == 0:
            palette = pal
        for obj_id in np.unique(labels).tolist():
            if obj_id != 0 and obj_id not in prompts:
                prompts[obj_id] = ObjectPrompt(obj_id, t, labels == obj_id)
    if not prompts:
        first = seq.ann_dir / f"{seq.frame_names[annotated[0]]}.png"
        where = f"any annotation in {seq.ann_dir}" if later_objects else str(first)
        hint = "" if later_objects else " (objects appearing later: --track-later-objects)"
        raise ValueError(f"{where}: no object (all pixels are 0){hint}")
    return [prompts[i] for i in sorted(prompts)], palette


# ----------------------------------------------------------------------------------------------
# merging logits into label maps
# ----------------------------------------------------------------------------------------------
class LabelMerger:
    """Per frame, merge object logits into one map of object ids, as the official writer does.

    Objects must be added to a frame in ascending id order (the tie rules depend on it). Only
    running maps are kept per frame (the best logit and its id, or the first id above the
    threshold), not every object's logits.

    Args:
        score_thresh: a pixel belongs to an object whose logit is above this.
        non_overlap: only the highest logit at a pixel counts; the others are lowered to at
            most -10 (ties go to the smaller id, as `torch.argmax`).
    """

    def __init__(self, score_thresh: float = 0.0, non_overlap: bool = True) -> None:
        self.score_thresh = float(score_thresh)
        # with a threshold below -10, a lowered logit passes it exactly when the original
        # does, and non-overlap changes nothing
        self.use_winner = bool(non_overlap) and self.score_thresh >= MIN_OTHER_LOGIT
        self._state: dict[int, tuple[int, torch.Tensor, torch.Tensor | None]] = {}

    def add(self, frame_idx: int, obj_id: int, logits: torch.Tensor | np.ndarray) -> None:
        """Merge one object's (H, W) logits (a tensor, or an array of the ONNX tracker) on a
        frame."""
        logits = torch.as_tensor(logits).detach().float().cpu()  # an array: shared, not copied
        old = self._state.get(frame_idx)
        if old is None:
            if self.use_winner:
                ids, best = torch.full(logits.shape, obj_id, dtype=torch.uint8), logits.clone()
            else:
                ids, best = torch.zeros(logits.shape, dtype=torch.uint8), None
                ids[logits > self.score_thresh] = obj_id
            self._state[frame_idx] = (obj_id, ids, best)
            return
        last, ids, best = old
        if obj_id <= last:
            raise ValueError(f"objects must be added in ascending id order: {obj_id} after {last}")
        if best is not None:
            wins = logits > best  # strictly: a tie stays with the smaller id
            best = torch.where(wins, logits, best)
            ids[wins] = obj_id
        else:
            ids[(ids == 0) & (logits > self.score_thresh)] = obj_id
        self._state[frame_idx] = (obj_id, ids, best)

    def pop(self, frame_idx: int, hw: tuple[int, int]) -> np.ndarray:
        """The (H, W) uint8 id map of a frame (all 0 if no object was added); forgets it."""
        state = self._state.pop(frame_idx, None)
        if state is None:
            return np.zeros(hw, dtype=np.uint8)
        _, ids, best = state
        if best is not None:
            ids = torch.where(best > self.score_thresh, ids, torch.zeros_like(ids))
        return ids.numpy()


# ----------------------------------------------------------------------------------------------
# one sequence
# ----------------------------------------------------------------------------------------------
def is_done(seq: VosSequence, out_dir: Path) -> bool:
    """Whether `out_dir/<seq>/` already has a PNG for every frame."""
    return all((out_dir / seq.name / f"{n}.png").is_file() for n in seq.frame_names)


def infer_sequence(
    predictor: Tracker,
    seq: VosSequence,
    out_dir: Path,
    *,
    later_objects: bool = False,
    score_thresh: float = 0.0,
    non_overlap: bool = True,
    on_frame: Callable[[], None] | None = None,
) -> int:
    """Track one sequence's annotated objects and write `out_dir/<seq>/<frame>.png`.

    Args:
        predictor: the video predictor or the ONNX tracker (see the module docstring for the
            official setting).
        seq: the sequence.
        out_dir: the output root.
        later_objects: prompt objects on the frame where they first appear, tracking each on
            its own (the official `--track_object_appearing_later_in_video`).
        score_thresh: logit threshold of the masks.
        non_overlap: one object per pixel, the one with the highest logit.
        on_frame: called once per frame written (a progress bar).

    Returns:
        the number of frames written.
    """
    prompts, palette = collect_prompts(seq, later_objects)
    hw = seq.frames.hw
    seq_out = out_dir / seq.name
    names = seq.frame_names
    merger = LabelMerger(score_thresh, non_overlap)
    # one pass with every object, or one pass per object (each tracked from its own frame)
    passes = [[p] for p in prompts] if later_objects else [prompts]
    streaming = len(passes) == 1
    session = predictor.init_session(seq.frames)
    written = 0

    def emit(t: int) -> None:
        nonlocal written
        write_palette_png(seq_out / f"{names[t]}.png", merger.pop(t, hw), palette)
        written += 1
        if on_frame is not None:
            on_frame()

    try:
        start = min(p.frame_idx for p in prompts)
        if streaming:
            for t in range(start):  # before the first prompt: no object yet
                emit(t)
        for group in passes:
            predictor.reset(session)
            for p in group:
                predictor.add_mask(session, p.frame_idx, p.obj_id, p.mask)
            first = min(p.frame_idx for p in group)
            for result in predictor.propagate(session, start_frame_idx=first):
                for row, obj_id in enumerate(result.obj_ids):
                    merger.add(result.frame_idx, int(obj_id), result.masks[row, 0])  # type: ignore[arg-type]
                if streaming:
                    emit(result.frame_idx)
        if not streaming:
            for t in range(len(seq)):
                emit(t)
    finally:
        session.close()
    return written


@dataclass
class SequenceReport:
    """What one sequence cost."""

    name: str
    frames: int  # frames written (0 when skipped)
    skipped: bool = False


def run_sequences(
    predictor: Tracker,
    dataset: VosDataset,
    names: Sequence[str],
    out_dir: Path,
    *,
    later_objects: bool = False,
    score_thresh: float = 0.0,
    non_overlap: bool = True,
    skip_existing: bool = False,
    on_frame: Callable[[], None] | None = None,
    on_sequence: Callable[[str], None] | None = None,
) -> Iterator[SequenceReport]:
    """`infer_sequence` on each named sequence in turn, yielding a report after each."""
    for name in names:
        seq = dataset.sequence(name)
        if on_sequence is not None:
            on_sequence(name)
        if skip_existing and is_done(seq, out_dir):
            for _ in range(len(seq)):
                if on_frame is not None:
                    on_frame()
            yield SequenceReport(name, 0, skipped=True)
            continue
        frames = infer_sequence(
            predictor,
            seq,
            out_dir,
            later_objects=later_objects,
            score_thresh=score_thresh,
            non_overlap=non_overlap,
            on_frame=on_frame,
        )
        yield SequenceReport(name, frames)
