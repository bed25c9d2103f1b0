"""Typed state of a video session: what the user prompted and what the model produced.

A `VideoSession` holds one video (a lazy frame source plus a small cache of image features)
and one `ObjectTrack` per object. A track keeps the object's prompts per frame and its outputs
per frame as `FrameState`s, split the way the memory bank reads them:

* `cond_outputs`: conditioning frames (prompted frames), always read as memory;
* `non_cond_outputs`: tracked frames, read when they are among the last few frames;
* `temp_cond_outputs` / `temp_non_cond_outputs`: outputs of frames prompted since the last
  propagation, merged into the two dicts above (with their memories encoded) when the next
  propagation starts.

The dataclasses compare by identity (`eq=False`): they hold tensors. Only
`sam2r.predictor.video.VideoPredictor` changes these objects; users read them (e.g.
`session.objects[obj_id].cond_outputs`). Results handed to users are `FrameResult`s.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from sam2r.io.frames import FrameSource
from sam2r.model.sam2 import ImageFeatures
from sam2r.predictor.precision import Precision
from sam2r.predictor.video.filing import FiledTrack
from sam2r.predictor.video.ids import unknown_id
from sam2r.predictor.video.spill import SpilledTensor, SpillPool, tensor_bytes

if TYPE_CHECKING:
    from sam2r.predictor.video.selection import ObjectMemory


@dataclass(eq=False)
class PointPrompt:
    """Clicks (and box corners) of one object on one frame, in model-input pixels."""

    coords: Tensor  # (1, P, 2) float32 x, y in [0, image_size]
    labels: Tensor  # (1, P) int32: 1 positive, 0 negative, 2 / 3 box corners


class FrameState:
    """One object's output on one frame, as stored in the session.

    `maskmem_features` is stored in bfloat16 as the official predictor does (the rounding is
    part of the numbers every later frame reads); it is None until the memory encoder has run.
    With a `SpillPool` attached (a session with a state budget), the two large tensors may live
    in the pool's file while unused; reading the attributes brings them back transparently.

    Args:
        low_res_masks: (1, 1, S/4, S/4) float32 mask logits (after hole filling).
        obj_ptr: (1, C) object pointer.
        object_score_logits: (1, 1), > 0 where the object is present.
        maskmem_features: (1, mem_dim, S/16, S/16) bfloat16, or None.
    """

    __slots__ = ("_low_res", "_maskmem", "obj_ptr", "object_score_logits", "_pool", "__weakref__")

    def __init__(
        self,
        low_res_masks: Tensor,
        obj_ptr: Tensor,
        object_score_logits: Tensor,
        maskmem_features: Tensor | None = None,
    ) -> None:
        self._low_res: Tensor | SpilledTensor = low_res_masks
        self._maskmem: Tensor | SpilledTensor | None = maskmem_features
        self.obj_ptr = obj_ptr
        self.object_score_logits = object_score_logits
        self._pool: SpillPool | None = None

    def attach(self, pool: SpillPool | None) -> FrameState:
        """Put the large tensors under a pool's RAM budget."""
        self._pool = pool
        if pool is not None:
            pool.touch(self)
        return self

    def _get(self, name: str) -> Tensor | None:
        value = getattr(self, name)
        if isinstance(value, SpilledTensor):
            assert self._pool is not None
            value = self._pool.read(value)
            setattr(self, name, value)
        if self._pool is not None:
            self._pool.touch(self)
        return value

    @property
    def low_res_masks(self) -> Tensor:
        return self._get("_low_res")  # type: ignore[return-value]

    @low_res_masks.setter
    def low_res_masks(self, value: Tensor) -> None:
        self._low_res = value
        if self._pool is not None:
            self._pool.touch(self)

    @property
    def maskmem_features(self) -> Tensor | None:
        return self._get("_maskmem")

    @maskmem_features.setter
    def maskmem_features(self, value: Tensor | None) -> None:
        self._maskmem = value
        if self._pool is not None:
            self._pool.touch(self)

    @property
    def has_memory(self) -> bool:
        """Whether the memory encoder has run for this output (without loading it)."""
        return self._maskmem is not None

    def resident_bytes(self) -> int:
        """Bytes of the large tensors currently in RAM."""
        return sum(tensor_bytes(v) for v in (self._low_res, self._maskmem) if isinstance(v, Tensor))

    def spill(self, pool: SpillPool) -> None:
        """Move the large tensors to the pool's file."""
        if isinstance(self._low_res, Tensor):
            self._low_res = pool.write(self._low_res)
        if isinstance(self._maskmem, Tensor):
            self._maskmem = pool.write(self._maskmem)

    @property
    def is_spilled(self) -> bool:
        return isinstance(self._low_res, SpilledTensor) or isinstance(self._maskmem, SpilledTensor)


@dataclass(eq=False)
class ObjectTrack(FiledTrack[FrameState]):
    """Prompts and outputs of one object.

    Frame dicts keep insertion order on purpose: the memory bank reads conditioning frames in
    the order they were added, as the official predictor does. `temp_outputs`,
    `latest_output` and `prompted_frames` come from `FiledTrack`
    (`sam2r.predictor.video.filing`), shared with the ONNX tracker's `Track`.
    """

    obj_id: Hashable
    points: dict[int, PointPrompt] = field(default_factory=dict)  # frame -> clicks / box
    masks: dict[int, Tensor] = field(default_factory=dict)  # frame -> (1, 1, S, S) float32 mask
    cond_outputs: dict[int, FrameState] = field(default_factory=dict)
    non_cond_outputs: dict[int, FrameState] = field(default_factory=dict)
    temp_cond_outputs: dict[int, FrameState] = field(default_factory=dict)
    temp_non_cond_outputs: dict[int, FrameState] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)  # frame -> tracked in reverse
    # state of an opt-in memory mode (`sam2r.predictor.video.selection`); None in "official"
    selection: ObjectMemory | None = None

    def clear(self) -> None:
        """Forget every prompt and output (the object itself stays)."""
        for d in (
            self.points,
            self.masks,
            self.cond_outputs,
            self.non_cond_outputs,
            self.temp_cond_outputs,
            self.temp_non_cond_outputs,
            self.tracked,
        ):
            d.clear()
        self.selection = None


@dataclass(eq=False)
class VideoSession:
    """One video being segmented: its frames, its objects and their outputs.

    Objects are kept in one ordered dict, id -> track; an object's index (its row in every
    `FrameResult`) is its position in that dict.
    """

    frames: FrameSource
    image_size: int  # side of the square model input
    device: torch.device  # where the model runs
    storage_device: torch.device  # where masks and memories are kept (CPU with offloading)
    feature_cache_size: int = 4  # image features of this many recent frames are kept
    objects: dict[Hashable, ObjectTrack] = field(default_factory=dict)
    pool: SpillPool | None = None  # RAM budget of stored masks/memories (None: unbounded)
    live: bool = False  # a stream: frames arrive one by one, old outputs are dropped
    maskmem_pos: Tensor | None = None  # (1, mem_dim, S/16, S/16), the same for every memory
    precision: Precision = field(default_factory=Precision)  # of the encoder and memory attention
    _features: OrderedDict[int, ImageFeatures] = field(default_factory=OrderedDict, repr=False)

    @property
    def num_frames(self) -> int:
        """Frames in the video (so far, for a live stream)."""
        return len(self.frames)

    @property
    def memory_horizon(self) -> int:
        """The video length the memory bank assumes: its real length, or unbounded when live.

        It caps pointer reads (`min(num_frames, max_obj_ptrs)`) and normalises their temporal
        distances; a stream behaves like a video of more than 16 frames from its first frame.
        """
        return 1 << 30 if self.live else self.num_frames

    def close(self) -> None:
        """Release the spill file and cached features (the session is unusable afterwards)."""
        if self.pool is not None:
            self.pool.close()
        self._features.clear()

    @property
    def video_height(self) -> int:
        return self.frames.hw[0]

    @property
    def video_width(self) -> int:
        return self.frames.hw[1]

    @property
    def obj_ids(self) -> list[Hashable]:
        """Object ids in index order."""
        return list(self.objects)

    def obj_idx(self, obj_id: Hashable) -> int:
        """The index of an object (its row in results); ValueError for an unknown id."""
        for i, key in enumerate(self.objects):
            if key == obj_id:
                return i
        raise unknown_id(obj_id, self.objects)

    @property
    def has_tracked(self) -> bool:
        """Whether any object has been propagated to any frame."""
        return any(t.tracked for t in self.objects.values())

    def cached_features(self, frame_idx: int) -> ImageFeatures | None:
        feats = self._features.get(frame_idx)
        if feats is not None:
            self._features.move_to_end(frame_idx)
        return feats

    def cache_features(self, frame_idx: int, feats: ImageFeatures) -> None:
        self._features[frame_idx] = feats
        self._features.move_to_end(frame_idx)
        while len(self._features) > max(self.feature_cache_size, 1):
            self._features.popitem(last=False)

    def clear_feature_cache(self) -> None:
        self._features.clear()


@dataclass(eq=False)
class FrameResult:
    """Masks of every object on one frame.

    Tensors stay on the model's device (so a GPU pipeline does not copy every frame to the
    host); `binary_masks()` and `to_numpy()` give numpy arrays.
    """

    frame_idx: int
    obj_ids: list[Hashable]  # row i of `masks` belongs to obj_ids[i]
    masks: Tensor  # (num_obj, 1, H, W) float32 logits at video resolution (> 0: object)
    object_score_logits: Tensor  # (num_obj,) > 0 where the object is present; -1024 when unknown

    def binary_masks(self, threshold: float = 0.0) -> np.ndarray:
        """(num_obj, H, W) bool masks."""
        return (self.masks[:, 0] > threshold).cpu().numpy()

    def mask(self, obj_id: Hashable, threshold: float = 0.0) -> np.ndarray:
        """(H, W) bool mask of one object."""
        if obj_id not in self.obj_ids:
            raise ValueError(f"object id {obj_id!r} is not in this result ({self.obj_ids})")
        return (self.masks[self.obj_ids.index(obj_id), 0] > threshold).cpu().numpy()
