"""Where one object's outputs are filed in its memory bank, and what is dropped: the rules the
torch video predictor and the torch-free ONNX tracker share.

An object's track (`ObjectTrack` in torch, `sam2r.onnx.bank.Track` in the ONNX tracker; both
derive from `FiledTrack`) keeps its prompts and outputs per frame in dicts of the same names:
`points` / `masks` (prompts), `cond_outputs` (conditioning, i.e. prompted, frames),
`non_cond_outputs` (tracked frames), `temp_cond_outputs` / `temp_non_cond_outputs` (outputs of
frames prompted since the last propagation, filed with their memories when the next one
starts) and `tracked` (frame -> tracked in reverse). The rules follow the official
`sam2==1.1.0` predictor:

* `interaction_mode` / `prompt_is_cond`: how a prompt on a frame runs and where it is filed;
* `latest_outputs`: every object's newest output on a frame, the one a result shows;
* `commit_pending`: pending outputs into the bank, the caller's memory encoder filling them;
* `remove_track`: an object leaves, and which frames' results change;
* `clear_prompts`, `clear_memory_around`, `prune`: what is dropped, and when.

Plain Python (no torch, no numpy), so the ONNX runtime imports it. The settings come as a
`FilingConfig`, read by their official names from a `SAM2Config` or from an exported model's
manifest; a stored output is any object with `has_memory`.

What is left to others: running the model and encoding memories (`sam2r.predictor.video.bank`
and `.frame_step` in torch, `sam2r.onnx.tracker`), which stored frames a frame reads
(`sam2r.predictor.video.memory`, `.policy`), the sessions (`sam2r.predictor.video.session`,
`sam2r.onnx.session`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from sam2r.config import SAM2Config


class Stored(Protocol):
    """A stored output of one object on one frame (`FrameState`, `sam2r.onnx.bank.State`)."""

    @property
    def has_memory(self) -> bool: ...


S = TypeVar("S", bound=Stored)
T = TypeVar("T", bound="FiledTrack[Any]")


@dataclass(frozen=True)
class FilingConfig:
    """The settings the filing rules read, under the official config names."""

    num_maskmem: int  # memory slots: 1 for conditioning frames + the last num_maskmem-1 frames
    memory_temporal_stride_for_eval: int  # stride between the tracked frames read as memory
    max_obj_ptrs_in_encoder: int  # object pointers read per frame
    add_all_frames_to_correct_as_cond: bool  # a corrected frame becomes a conditioning frame
    clear_non_cond_mem_around_input: bool  # a new prompt drops the tracked memories near it

    @classmethod
    def of(cls, cfg: SAM2Config | Mapping[str, Any]) -> FilingConfig:
        """The settings of a `SAM2Config` (attributes) or of an exported model's manifest
        config (a dict with the same names as keys)."""
        if isinstance(cfg, Mapping):
            missing = [n for n in cls.__dataclass_fields__ if n not in cfg]
            if missing:
                raise ValueError(
                    f"the model config lacks {missing}: export the model again with this "
                    "version of sam2r"
                )

        def get(name: str) -> Any:
            return cfg[name] if isinstance(cfg, Mapping) else getattr(cfg, name)

        return cls(
            num_maskmem=int(get("num_maskmem")),
            memory_temporal_stride_for_eval=int(get("memory_temporal_stride_for_eval")),
            max_obj_ptrs_in_encoder=int(get("max_obj_ptrs_in_encoder")),
            add_all_frames_to_correct_as_cond=bool(get("add_all_frames_to_correct_as_cond")),
            clear_non_cond_mem_around_input=bool(get("clear_non_cond_mem_around_input")),
        )


class FiledTrack(Generic[S]):
    """The frame dicts of one object's track, and the reads both trackers make of them.

    The base of `ObjectTrack` and `sam2r.onnx.bank.Track`, dataclasses that declare these
    fields with their own prompt and output types. The frame dicts keep insertion order on
    purpose: the memory bank reads conditioning frames in the order they were added.
    """

    obj_id: Hashable
    points: dict[int, Any]  # frame -> clicks / box
    masks: dict[int, Any]  # frame -> mask prompt
    cond_outputs: dict[int, S]
    non_cond_outputs: dict[int, S]
    temp_cond_outputs: dict[int, S]
    temp_non_cond_outputs: dict[int, S]
    tracked: dict[int, bool]  # frame -> tracked in reverse

    def temp_outputs(self, is_cond: bool) -> dict[int, S]:
        """The pending outputs of one kind (conditioning or not)."""
        return self.temp_cond_outputs if is_cond else self.temp_non_cond_outputs

    def latest_output(self, frame_idx: int, is_cond: bool) -> S | None:
        """The newest output on a frame: a pending one of the given kind, else a merged one."""
        for d in (self.temp_outputs(is_cond), self.cond_outputs, self.non_cond_outputs):
            if frame_idx in d:
                return d[frame_idx]
        return None

    def prompted_frames(self) -> list[int]:
        """Frames with clicks, a box or a mask for this object, in ascending order."""
        return sorted(set(self.points) | set(self.masks))


def latest_outputs(
    tracks: Iterable[FiledTrack[S]], frame_idx: int, is_cond: bool | None = None
) -> list[S | None]:
    """Every object's newest output on a frame: pending outputs of the given kind first
    (None: pending conditioning outputs when any object has one there)."""
    tracks = list(tracks)
    if is_cond is None:
        is_cond = any(frame_idx in t.temp_cond_outputs for t in tracks)
    return [t.latest_output(frame_idx, is_cond) for t in tracks]


def remove_track(objects: dict[Hashable, T], obj_id: Hashable) -> list[int]:
    """Drop an object's track, if it has one, from a session's objects.

    Returns:
        the frames it was prompted on (ascending), whose masks the caller gives again without
        it; empty when it had no track or no object is left.
    """
    track = objects.pop(obj_id, None)
    if track is None or not objects:
        return []
    return track.prompted_frames()


def interaction_mode(track: FiledTrack[Any], frame_idx: int) -> tuple[bool, bool]:
    """(is an initial prompt, tracked in reverse) for a prompt on a frame.

    A prompt on a frame the object was tracked on corrects that frame (it reads the memory, in
    the direction the frame was tracked); on any other frame it starts like an image prompt.
    """
    if frame_idx in track.tracked and track.cond_outputs:
        return False, track.tracked[frame_idx]
    return True, False


def prompt_is_cond(track: FiledTrack[Any], frame_idx: int, cfg: FilingConfig) -> bool:
    """Whether a prompt on this frame makes it a conditioning frame of the object."""
    is_init, _ = interaction_mode(track, frame_idx)
    return is_init or cfg.add_all_frames_to_correct_as_cond


def commit_pending(
    tracks: Iterable[FiledTrack[S]], encode: Callable[[int, S], None], cfg: FilingConfig
) -> None:
    """Merge every object's pending prompt outputs into its bank.

    `encode(frame_idx, output)` is called for each pending output with no memory yet and
    stores the memory on it. The memory encoder runs here rather than on every click, so that
    a frame clicked many times is encoded once, with its final mask. A frame that becomes a
    conditioning frame leaves the tracked frames.

    Raises:
        RuntimeError: no object, or an object with no prompt to start tracking from.
    """
    tracks = list(tracks)
    if not tracks:
        raise RuntimeError("no object has prompts: add points, a box or a mask first")
    for track in tracks:
        if not track.cond_outputs and not track.temp_cond_outputs:
            raise RuntimeError(
                f"object {track.obj_id!r} has no prompt on an untracked frame to start from; "
                "add points, a box or a mask for it (or remove it)"
            )
    for track in tracks:
        for is_cond in (False, True):
            pending = track.temp_outputs(is_cond)
            target = track.cond_outputs if is_cond else track.non_cond_outputs
            for frame_idx, state in pending.items():
                if not state.has_memory:
                    encode(frame_idx, state)
                target[frame_idx] = state
                if cfg.clear_non_cond_mem_around_input:
                    clear_memory_around(track, frame_idx, cfg)
            pending.clear()
        for frame_idx in track.cond_outputs:
            track.non_cond_outputs.pop(frame_idx, None)


def clear_prompts(track: FiledTrack[Any], frame_idx: int) -> None:
    """Forget one object's prompts and pending outputs on a frame.

    A conditioning output there stays as a tracked frame's output (no longer marked tracked)
    until the next propagation redoes it.
    """
    track.points.pop(frame_idx, None)
    track.masks.pop(frame_idx, None)
    track.temp_cond_outputs.pop(frame_idx, None)
    track.temp_non_cond_outputs.pop(frame_idx, None)
    out = track.cond_outputs.pop(frame_idx, None)
    if out is not None:
        track.non_cond_outputs[frame_idx] = out
        track.tracked.pop(frame_idx, None)


def clear_memory_around(track: FiledTrack[Any], frame_idx: int, cfg: FilingConfig) -> None:
    """Drop tracked-frame memories near a new prompt (they may contradict it); the official
    `clear_non_cond_mem_around_input`, which callers apply when the config sets it."""
    r = cfg.memory_temporal_stride_for_eval * cfg.num_maskmem
    for t in range(frame_idx - r, frame_idx + r + 1):
        track.non_cond_outputs.pop(t, None)


def prune(tracks: Iterable[FiledTrack[Any]], frame_idx: int, cfg: FilingConfig) -> None:
    """Drop what no later frame of a stream can read, once `frame_idx` is tracked: tracked
    outputs and direction marks out of the memory window, mask prompts of past frames, and
    clicks that corrected a frame out of the window."""
    window = max(
        cfg.max_obj_ptrs_in_encoder, cfg.num_maskmem * cfg.memory_temporal_stride_for_eval + 2
    )
    oldest = frame_idx - window
    for track in tracks:
        for d in (track.non_cond_outputs, track.tracked):
            for t in [t for t in d if t < oldest]:
                del d[t]
        for t in [t for t in track.masks if t < frame_idx]:
            del track.masks[t]
        for t in [t for t in track.points if t < oldest and t not in track.cond_outputs]:
            del track.points[t]
