"""The official video `inference_state` dict, as a live view of a sam2r `VideoSession`.

`SAM2VideoPredictor.init_state` returns an `InferenceState`: a `MutableMapping` with the 18
keys of the official state, read from and written to the typed session (`state.session`), so
code that reads or edits the official dict (extensions, real-time forks, annotation tools)
works on sam2r without a second copy of the state:

    state["images"][i]                     (3, S, S) model input, decoded on demand
    state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"][t]["maskmem_features"]
    del state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"][t]   # drop a memory
    state["video_height"], state["video_width"] = h, w     # masks come back at h x w
    state["cached_features"] = {}                          # free the image-feature cache

Reads give the official structures (views that behave as the official dicts and lists; the
per-frame output is {"maskmem_features", "maskmem_pos_enc", "pred_masks", "obj_ptr",
"object_score_logits"}). Writes the official code honours have the same effect here: per-frame
outputs, prompts and tracked-frame records can be replaced or deleted, the video size replaced,
the feature cache emptied, and keys of one's own added. A write sam2r cannot honour (replacing
`images` or `num_frames`, the object maps, the devices) raises `StateWriteError` naming the
key and saying what to do instead. Frames stay lazy: `images` decodes a frame when indexed.
"""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sam2r.io.frames import FrameSource
from sam2r.model.position import PositionEmbeddingSine
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

OFFICIAL_KEYS = (
    "images", "num_frames", "offload_video_to_cpu", "offload_state_to_cpu", "video_height",
    "video_width", "device", "storage_device", "point_inputs_per_obj", "mask_inputs_per_obj",
    "cached_features", "constants", "obj_id_to_idx", "obj_idx_to_id", "obj_ids",
    "output_dict_per_obj", "temp_output_dict_per_obj", "frames_tracked_per_obj",
)  # fmt: skip
OUTPUT_KEYS = (
    "maskmem_features",
    "maskmem_pos_enc",
    "pred_masks",
    "obj_ptr",
    "object_score_logits",
)


class StateWriteError(TypeError):
    """A write to the inference state that sam2r cannot honour."""


def _refuse(key: str, why: str) -> StateWriteError:
    return StateWriteError(f"inference_state[{key!r}] cannot be changed in sam2r: {why}")


class LazyImages(Sequence[Tensor]):
    """`state["images"]`: the video's frames as model inputs, decoded when indexed.

    Args:
        session: the video session.
        device: where a decoded frame goes (the CPU with `offload_video_to_cpu`).
    """

    def __init__(self, session: VideoSession, device: torch.device) -> None:
        self._session, self._device = session, device

    def __len__(self) -> int:
        return self._session.num_frames

    @property
    def shape(self) -> tuple[int, int, int, int]:
        s = self._session.image_size
        return (len(self), 3, s, s)

    def __getitem__(self, index: Any) -> Tensor:  # type: ignore[override]
        if isinstance(index, slice):
            return torch.stack([self[i] for i in range(*index.indices(len(self)))])
        i = int(index)
        if i < 0:
            i += len(self)
        s = self._session
        return s.frames.model_input(i, s.image_size).to(self._device)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise _refuse("images", "frames are decoded from the session's frame source on demand, "
                      "not stored; open the edited video with init_state instead")  # fmt: skip

    def __repr__(self) -> str:
        return f"LazyImages({len(self)} frames, decoded on demand)"


class _ResizedFrames(FrameSource):
    """A frame source reporting another video size (`state["video_height"] = h`): masks come
    back at that size and normalised clicks are scaled to it, as in the official code."""

    def __init__(self, base: FrameSource, hw: tuple[int, int]) -> None:
        self.base, self._hw = base, hw

    def __len__(self) -> int:
        return len(self.base)

    @property
    def hw(self) -> tuple[int, int]:
        return self._hw

    def frame(self, index: int) -> Any:
        return self.base.frame(index)

    def model_input(self, index: int, size: int) -> Tensor:
        return self.base.model_input(index, size)


class FrameOutput(MutableMapping[str, Any]):
    """One stored output (`FrameState`) as the official per-frame dict."""

    def __init__(self, state: FrameState, session: VideoSession) -> None:
        self.state, self._session = state, session

    def __getitem__(self, key: str) -> Any:
        st = self.state
        if key == "maskmem_features":
            return st.maskmem_features
        if key == "maskmem_pos_enc":
            pos = self._session.maskmem_pos
            return None if pos is None or not st.has_memory else [pos]
        if key == "pred_masks":
            return st.low_res_masks
        if key == "obj_ptr":
            return st.obj_ptr
        if key == "object_score_logits":
            return st.object_score_logits
        raise KeyError(key)

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "maskmem_features":
            self.state.maskmem_features = value
        elif key == "pred_masks":
            self.state.low_res_masks = value
        elif key in ("obj_ptr", "object_score_logits"):
            setattr(self.state, key, value)
        elif key == "maskmem_pos_enc":
            why = "the memory position encoding is one tensor shared by every memory of the "
            raise _refuse(key, why + "session (state['constants']['maskmem_pos_enc'])")
        else:
            raise _refuse(key, f"a stored output holds only {list(OUTPUT_KEYS)}")

    def __delitem__(self, key: str) -> None:
        raise _refuse(key, "a stored output keeps all its keys; set 'maskmem_features' to None "
                      "to drop its memory, or delete the frame from its dict")  # fmt: skip

    def __iter__(self) -> Iterator[str]:
        return iter(OUTPUT_KEYS)

    def __len__(self) -> int:
        return len(OUTPUT_KEYS)

    def __repr__(self) -> str:
        return f"FrameOutput({dict(self)!r})"


def _frame_state(value: Any, session: VideoSession) -> FrameState:
    """An official per-frame output dict (or a `FrameOutput`) -> a `FrameState`."""
    if isinstance(value, FrameOutput):
        return value.state
    if isinstance(value, FrameState):
        return value
    if not isinstance(value, Mapping) or not {"pred_masks", "obj_ptr"} <= set(value):
        raise TypeError(
            "a stored output must be a dict with 'pred_masks', 'obj_ptr', 'object_score_logits' "
            "and 'maskmem_features' (as the official predictor stores it), got "
            f"{type(value).__name__}"
        )
    score = value.get("object_score_logits")
    if score is None:
        score = torch.full((value["obj_ptr"].shape[0], 1), 10.0)  # present, as the official default
    return FrameState(
        value["pred_masks"], value["obj_ptr"], score, value.get("maskmem_features")
    ).attach(session.pool)


class FrameDict(MutableMapping[int, Any]):
    """A `{frame_idx: value}` dict of a track, with values converted to and from the official
    form (`read`, `write`)."""

    def __init__(
        self, data: dict[int, Any], read: Callable[[Any], Any], write: Callable[[Any], Any]
    ) -> None:
        self._data, self._read, self._write = data, read, write

    def __getitem__(self, frame_idx: int) -> Any:
        return self._read(self._data[frame_idx])

    def __setitem__(self, frame_idx: int, value: Any) -> None:
        self._data[int(frame_idx)] = self._write(value)

    def __delitem__(self, frame_idx: int) -> None:
        del self._data[frame_idx]

    def __iter__(self) -> Iterator[int]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"{{{', '.join(f'{k}: ...' for k in self._data)}}}"


class PerObject(Mapping[int, Any]):
    """`{obj_idx: ...}` over the session's objects (objects are added by prompting them and
    removed with `remove_object`, so this mapping itself is not written)."""

    def __init__(self, session: VideoSession, key: str, view: Callable[[ObjectTrack], Any]) -> None:
        self._session, self._key, self._view = session, key, view

    def _tracks(self) -> list[ObjectTrack]:
        return list(self._session.objects.values())

    def __getitem__(self, obj_idx: int) -> Any:
        tracks = self._tracks()
        try:
            i = operator.index(obj_idx)  # ints and numpy integers
        except TypeError:
            raise KeyError(obj_idx) from None
        if not 0 <= i < len(tracks):
            raise KeyError(obj_idx)
        return self._view(tracks[i])

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self._tracks())))

    def __len__(self) -> int:
        return len(self._tracks())

    def __setitem__(self, obj_idx: int, value: Any) -> None:
        raise _refuse(self._key, "objects are added by prompting them (add_new_points_or_box, "
                      "add_new_mask) and removed with remove_object")  # fmt: skip

    def __delitem__(self, obj_idx: int) -> None:
        self[obj_idx] = None


def _points_view(track: ObjectTrack) -> FrameDict:
    def read(p: PointPrompt) -> dict[str, Tensor]:
        return {"point_coords": p.coords, "point_labels": p.labels}

    def write(v: Mapping[str, Any]) -> PointPrompt:
        return PointPrompt(torch.as_tensor(v["point_coords"]).float(),
                           torch.as_tensor(v["point_labels"]).to(torch.int32))  # fmt: skip

    return FrameDict(track.points, read, write)


def _masks_view(track: ObjectTrack) -> FrameDict:
    return FrameDict(track.masks, lambda m: m, lambda v: torch.as_tensor(v).float())


def _tracked_view(track: ObjectTrack) -> FrameDict:
    return FrameDict(track.tracked, lambda rev: {"reverse": rev}, lambda v: bool(v["reverse"]))


def _outputs_view(
    session: VideoSession, cond: dict[int, FrameState], non_cond: dict[int, FrameState]
) -> dict[str, FrameDict]:
    def read(st: FrameState) -> FrameOutput:
        return FrameOutput(st, session)

    def write(v: Any) -> FrameState:
        return _frame_state(v, session)

    return {
        "cond_frame_outputs": FrameDict(cond, read, write),
        "non_cond_frame_outputs": FrameDict(non_cond, read, write),
    }


class InferenceState(MutableMapping[str, Any]):
    """What `init_state` returns: the official state dict over a `VideoSession`.

    Args:
        session: the session from `VideoPredictor.init_session` (`state.session`).
        offload_video_to_cpu: the flag given to `init_state`.
        offload_state_to_cpu: the flag given to `init_state`.
    """

    def __init__(
        self,
        session: VideoSession,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
    ) -> None:
        self.session = session
        self._offload = (bool(offload_video_to_cpu), bool(offload_state_to_cpu))
        self._extra: dict[str, Any] = {}  # keys of the user's own, as in the official dict

    # --- reads -----------------------------------------------------------------------------
    def __getitem__(self, key: str) -> Any:
        s = self.session
        if key in self._extra:
            return self._extra[key]
        if key == "images":
            return LazyImages(s, torch.device("cpu") if self._offload[0] else s.device)
        if key == "num_frames":
            return s.num_frames
        if key == "offload_video_to_cpu":
            return self._offload[0]
        if key == "offload_state_to_cpu":
            return self._offload[1]
        if key == "video_height":
            return s.video_height
        if key == "video_width":
            return s.video_width
        if key == "device":
            return s.device
        if key == "storage_device":
            return s.storage_device
        if key == "obj_ids":
            return s.obj_ids
        if key == "obj_id_to_idx":
            return OrderedDict((obj_id, i) for i, obj_id in enumerate(s.obj_ids))
        if key == "obj_idx_to_id":
            return OrderedDict(enumerate(s.obj_ids))
        if key == "point_inputs_per_obj":
            return PerObject(s, key, _points_view)
        if key == "mask_inputs_per_obj":
            return PerObject(s, key, _masks_view)
        if key == "frames_tracked_per_obj":
            return PerObject(s, key, _tracked_view)
        if key == "output_dict_per_obj":
            return PerObject(s, key, lambda t: _outputs_view(s, t.cond_outputs, t.non_cond_outputs))
        if key == "temp_output_dict_per_obj":
            return PerObject(
                s, key, lambda t: _outputs_view(s, t.temp_cond_outputs, t.temp_non_cond_outputs)
            )
        if key == "constants":
            return {} if s.maskmem_pos is None else {"maskmem_pos_enc": [s.maskmem_pos]}
        if key == "cached_features":
            return self._cached_features()
        raise KeyError(key)

    def _cached_features(self) -> dict[int, tuple[Tensor, dict[str, Any]]]:
        """{frame_idx: (image (1, 3, S, S), backbone_out)} of the frames whose features sam2r
        keeps (the official state keeps the most recent frame's)."""
        s = self.session
        out = {}
        for frame_idx, feats in list(s._features.items()):
            image = s.frames.model_input(frame_idx, s.image_size).unsqueeze(0).to(s.device)
            fpn = [feats.high_res[0], feats.high_res[1], feats.embed]
            sine = PositionEmbeddingSine(feats.embed.shape[1])  # what the neck encodes with
            backbone_out = {
                "vision_features": feats.embed,
                "vision_pos_enc": [sine(fpn[0]), sine(fpn[1]), feats.pos],
                "backbone_fpn": fpn,
            }
            out[frame_idx] = (image, backbone_out)
        return out

    # --- writes ----------------------------------------------------------------------------
    def __setitem__(self, key: str, value: Any) -> None:
        s = self.session
        if key not in OFFICIAL_KEYS:
            self._extra[key] = value
        elif key in ("video_height", "video_width"):
            if s.live:
                raise _refuse(key, "a live stream's frame size is that of its frames")
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"inference_state[{key!r}] must be a positive int, got {value!r}")
            h, w = s.frames.hw
            hw = (int(value), w) if key == "video_height" else (h, int(value))
            base = s.frames.base if isinstance(s.frames, _ResizedFrames) else s.frames
            s.frames = base if hw == base.hw else _ResizedFrames(base, hw)
        elif key == "cached_features":
            if value:
                raise _refuse(key, "sam2r fills its feature cache itself; assign {} to empty it")
            s.clear_feature_cache()
        elif key in ("images", "num_frames"):
            raise _refuse(key, "the frames are the session's frame source; open the video with "
                          "init_state, or stream frames with sam2r's live sessions "
                          "(VideoPredictor.init_session on an iterator)")  # fmt: skip
        elif key in ("obj_ids", "obj_id_to_idx", "obj_idx_to_id"):
            raise _refuse(key, "objects are added by prompting them and removed with "
                          "remove_object; the three maps are derived from the session")  # fmt: skip
        else:
            raise _refuse(key, "it is fixed when the session is opened, or is a view whose "
                          "entries (not the whole value) can be edited")  # fmt: skip

    def __delitem__(self, key: str) -> None:
        if key in self._extra:
            del self._extra[key]
        else:
            raise _refuse(key, "the official keys cannot be deleted")

    def __iter__(self) -> Iterator[str]:
        return iter(OFFICIAL_KEYS + tuple(self._extra))

    def __len__(self) -> int:
        return len(OFFICIAL_KEYS) + len(self._extra)

    def __repr__(self) -> str:
        s = self.session
        return (
            f"InferenceState(num_frames={s.num_frames}, video_hw=({s.video_height}, "
            f"{s.video_width}), obj_ids={s.obj_ids})"
        )


def session_of(inference_state: InferenceState | VideoSession) -> VideoSession:
    """The session behind what `init_state` returned (a bare `VideoSession` works too)."""
    if isinstance(inference_state, InferenceState):
        return inference_state.session
    if isinstance(inference_state, VideoSession):
        return inference_state
    raise TypeError(
        f"inference_state must be what init_state() returned, got {type(inference_state).__name__}"
    )


def obj_index(session: VideoSession, obj_id: Hashable) -> int:
    """The index of `obj_id`, adding an object without prompts when it is new (the official
    `_obj_id_to_idx`)."""
    if obj_id not in session.objects:
        session.objects[obj_id] = ObjectTrack(obj_id)
    return session.obj_ids.index(obj_id)
