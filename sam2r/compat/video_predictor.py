"""`SAM2VideoPredictor` with the official methods, arguments and return values.

A script written for the official video predictor runs after changing its imports:

    from sam2.build_sam import build_sam2_video_predictor
becomes
    from sam2r.compat import build_sam2_video_predictor

    predictor = build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", checkpoint)
    with torch.inference_mode():
        state = predictor.init_state("frames/")
        frame_idx, obj_ids, masks = predictor.add_new_points_or_box(
            state, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1]
        )
        for frame_idx, obj_ids, masks in predictor.propagate_in_video(state):
            ...                                   # masks: (num_obj, 1, H, W) float logits

The work is done by `sam2r.predictor.video.VideoPredictor`; this class only maps names and
return values. Masks are float32 logit tensors at video resolution on the model's device, as in
the official code. As the official class, the predictor is the model: a `SAM2Base`
(`sam2r.compat.modeling.sam2_base`) over the sam2r model's parameters, plus the video
methods and the private helpers public code calls (`_get_image_feature`,
`_run_single_frame_inference`, `_obj_id_to_idx`, ...: `sam2r.compat.video_internals`).
`init_state`
returns an `InferenceState` (`sam2r.compat.video_state`): the official state dict as a live,
writable view of the typed `VideoSession` (`state.session`).

Differences from the official predictor, all on inputs where the official code misbehaves:
* a video file is read with PyAV (any .mp4/.mov/.webm/.avi/.mkv, the `video` extra), not decord;
  frames are decoded on demand rather than all at `init_state`;
* an unknown `obj_id` in `clear_all_prompts_in_frame` raises `ValueError` (the official code
  silently adds an empty object);
* `fill_hole_area` is applied everywhere (the official code needs its CUDA extension for it);
* see `sam2r.predictor.video` for the rest (bad frames and prompts raise `ValueError`, ...).

The official builders of this class, `build_sam2_video_predictor` and
`build_sam2_video_predictor_hf`, are here beside it (`from_pretrained` calls them); building the
model from a config and override strings is `sam2r.compat.builder`'s, shared with `build_sam2`.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sam2r.compat.builder import _build, _postprocessing
from sam2r.compat.modeling.sam2_base import SAM2Base, as_sam2r
from sam2r.compat.video_internals import VideoInternalsMixin
from sam2r.compat.video_state import InferenceState, session_of
from sam2r.config import resolve_name
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video import VideoPredictor, VideoSession

__all__ = [
    "InferenceState",
    "SAM2VideoPredictor",
    "build_sam2_video_predictor",
    "build_sam2_video_predictor_hf",
]

# official video-predictor attributes read from the config, settable
VIDEO_KNOBS = ("clear_non_cond_mem_around_input", "add_all_frames_to_correct_as_cond")


def _open_video(video_path: Any) -> Any:
    """A video file path -> a `VideoFileFrames`; anything else is left to `open_frames`."""
    if isinstance(video_path, (str, os.PathLike)):
        from sam2r.io.video_file import VIDEO_EXTENSIONS, VideoFileFrames

        path = Path(video_path)
        if path.is_file() and path.suffix.lower() in VIDEO_EXTENSIONS:
            return VideoFileFrames(path)
    return video_path


class SAM2VideoPredictor(VideoInternalsMixin, SAM2Base):
    """The official video predictor: the official model (`SAM2Base`) with the video methods.

    As the official class it *is* the model: `.parameters()`, `.to()`, `.image_encoder`,
    `.forward_image`, `.track_step`, ... are those of `SAM2Base`, over the sam2r model's own
    parameters (`predictor.model` / `predictor.sam2r` is that sam2r model).

    Args:
        model: a sam2r `SAM2Model` (or a `SAM2Base` from `build_sam2`).
        fill_hole_area: fill holes of up to this many low-res pixels (None: the config's).
        non_overlap_masks: one object per pixel in the returned masks (None: the config's).
        feature_cache_size: image features of this many recent frames kept per session.
    """

    def __init__(
        self,
        model: SAM2Model | SAM2Base,
        fill_hole_area: int | None = None,
        non_overlap_masks: bool | None = None,
        feature_cache_size: int = 4,
    ) -> None:
        core = as_sam2r(model)
        super().__init__(core)
        # the official predictor accepts clicks outside the frame; so does this one
        predictor = VideoPredictor(
            core,
            fill_hole_area=fill_hole_area,
            non_overlap_masks=non_overlap_masks,
            feature_cache_size=feature_cache_size,
            check_bounds=False,
        )
        object.__setattr__(self, "_predictor", predictor)

    @classmethod
    def from_pretrained(cls, model_id: str, **kwargs: Any) -> SAM2VideoPredictor:
        """Download `model_id` (e.g. "facebook/sam2.1-hiera-tiny") and build its predictor;
        `kwargs` go to `build_sam2_video_predictor` (`device`, `hydra_overrides_extra`, ...)."""
        return build_sam2_video_predictor_hf(model_id, **kwargs)

    # --- attributes the official predictor exposes ---------------------------------------------
    @property
    def model(self) -> SAM2Model:
        """The sam2r model (not an official attribute: the official predictor is the model)."""
        return self._inner

    @property
    def fill_hole_area(self) -> int:
        return self._predictor.fill_hole_area

    @fill_hole_area.setter
    def fill_hole_area(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"fill_hole_area must be an int >= 0 (0 = off), got {value!r}")
        self._predictor.fill_hole_area = value

    @property
    def non_overlap_masks(self) -> bool:
        return self._predictor.non_overlap_masks

    @non_overlap_masks.setter
    def non_overlap_masks(self, value: bool) -> None:
        self._predictor.non_overlap_masks = bool(value)

    def __getattr__(self, name: str) -> Any:
        if name in VIDEO_KNOBS:
            return getattr(self.__dict__["_inner"].cfg, name)
        return super().__getattr__(name)

    def __setattr__(self, name: str, value: Any) -> None:
        inner = self.__dict__.get("_inner")
        if inner is not None and name in VIDEO_KNOBS:
            inner.cfg = inner.cfg.replace(**{name: bool(value)})
        else:
            super().__setattr__(name, value)

    # --- session ------------------------------------------------------------------------------
    def init_state(
        self,
        video_path: Any,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
    ) -> InferenceState:
        """Open a video: a folder of JPEG frames, a video file, an array or list of frames.

        `async_loading_frames` is accepted and has no effect: frames are always decoded on
        demand. `offload_video_to_cpu` too: decoded frames never stay on the accelerator.
        """
        del async_loading_frames
        session = self._predictor.init_session(
            _open_video(video_path),
            offload_video_to_cpu=offload_video_to_cpu,
            offload_state_to_cpu=offload_state_to_cpu,
        )
        return InferenceState(session, offload_video_to_cpu, offload_state_to_cpu)

    def reset_state(self, inference_state: InferenceState | VideoSession) -> None:
        """Remove every object, prompt and output."""
        self._predictor.reset(session_of(inference_state))

    # --- prompts ------------------------------------------------------------------------------
    def add_new_points_or_box(
        self,
        inference_state: InferenceState | VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> tuple[int, list[Hashable], Tensor]:
        """Clicks (P, 2) with labels (P,) and / or a box (4,) for one object on one frame.

        Returns:
            (frame_idx, obj_ids, video_res_masks (num_obj, 1, H, W) float32 logits).
        """
        res = self._predictor.add_points(
            session_of(inference_state),
            frame_idx,
            obj_id,
            points=points,
            labels=labels,
            clear_old_points=clear_old_points,
            normalize_coords=normalize_coords,
            box=box,
        )
        return res.frame_idx, list(res.obj_ids), res.masks

    def add_new_points(self, *args: Any, **kwargs: Any) -> tuple[int, list[Hashable], Tensor]:
        """Deprecated official name of `add_new_points_or_box`."""
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(
        self,
        inference_state: InferenceState | VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        mask: Any,
    ) -> tuple[int, list[Hashable], Tensor]:
        """A (H, W) mask of one object on one frame (bool / 0-1 array or tensor).

        Returns:
            (frame_idx, obj_ids, video_res_masks (num_obj, 1, H, W) float32 logits).
        """
        res = self._predictor.add_mask(session_of(inference_state), frame_idx, obj_id, mask)
        return res.frame_idx, list(res.obj_ids), res.masks

    def clear_all_prompts_in_frame(
        self,
        inference_state: InferenceState | VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        need_output: bool = True,
    ) -> tuple[int, list[Hashable], Tensor] | None:
        """Remove one object's prompts on a frame; the frame's masks, or None without output."""
        res = self._predictor.clear_prompts_in_frame(
            session_of(inference_state), frame_idx, obj_id, need_output=need_output
        )
        if res is None:
            return None
        return res.frame_idx, list(res.obj_ids), res.masks

    def remove_object(
        self,
        inference_state: InferenceState | VideoSession,
        obj_id: Hashable,
        strict: bool = False,
        need_output: bool = True,
    ) -> tuple[list[Hashable], list[tuple[int, Tensor]]]:
        """Remove an object.

        Returns:
            (remaining obj_ids, [(frame_idx, video_res_masks (num_obj, 1, H, W)), ...] for the
            frames the object had prompts on).

        Raises:
            RuntimeError: `strict` and the object does not exist (as the official code).
        """
        session = session_of(inference_state)
        if strict and obj_id not in session.objects:
            raise RuntimeError(
                f"Cannot remove object id {obj_id} as it doesn't exist. "
                f"All existing object ids: {session.obj_ids}."
            )
        results = self._predictor.remove_object(session, obj_id, need_output=need_output)
        return session.obj_ids, [(r.frame_idx, r.masks) for r in results]

    # --- propagation --------------------------------------------------------------------------
    def propagate_in_video_preflight(self, inference_state: InferenceState | VideoSession) -> None:
        """Commit the prompts given so far (encode their memories), as propagation does first.

        Raises:
            RuntimeError: no object has prompts, or an object has none to start from.
        """
        # `propagate` commits the prompts before it returns its (here unused) iterator
        self._predictor.propagate(session_of(inference_state))

    def propagate_in_video(
        self,
        inference_state: InferenceState | VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[int, list[Hashable], Tensor]]:
        """Track every object through the video (a generator, as the official one: nothing runs
        until the first item is requested).

        Yields:
            (frame_idx, obj_ids, video_res_masks (num_obj, 1, H, W) float32 logits) per frame.
        """
        results = self._predictor.propagate(
            session_of(inference_state),
            start_frame_idx=start_frame_idx,
            max_frame_num_to_track=max_frame_num_to_track,
            reverse=reverse,
        )
        for res in results:
            yield res.frame_idx, list(res.obj_ids), res.masks


# what the official build_sam2_video_predictor adds first: the predictor class (then the
# post-processing strings of `build_sam._postprocessing`)
_VIDEO_TARGET = "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor"
_VIDEO_TARGET_VOS = (
    "++model._target_=sam2.sam2_video_predictor.SAM2VideoPredictorVOS",
    "++model.compile_image_encoder=True",
)


def build_sam2_video_predictor(
    config_file: str,
    ckpt_path: str | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    vos_optimized: bool = False,
    **kwargs: Any,
) -> SAM2VideoPredictor:
    """The official `sam2.build_sam.build_sam2_video_predictor`.

    Adds what the official builder adds: the video predictor as `_target_` and, with
    `apply_postprocessing`, the dynamic multimask fallback (stability delta 0.05, threshold
    0.98), `binarize_mask_from_pts_for_mem_enc=true` and `fill_hole_area=8`; then the user's
    `hydra_overrides_extra` (e.g. `"++model.fill_hole_area=0"`, `"++model.non_overlap_masks=true"`,
    `"++model.add_all_frames_to_correct_as_cond=true"`, `"++model.max_cond_frames_in_attn=2"`).

    Args:
        config_file: an official config name (`configs/sam2.1/sam2.1_hiera_t.yaml`) or a YAML path.
        ckpt_path: an official `.pt` checkpoint, or None for random weights.
        device: where to put the model (falls back to the CPU when CUDA is absent).
        mode: "eval" or "train".
        hydra_overrides_extra: official `++model.key=value` override strings.
        apply_postprocessing: the post-processing settings above (official default).
        vos_optimized: accepted. The official code then compiles the memory encoder, memory
            attention and SAM heads with `torch.compile`; here nothing is compiled (compiling is
            opt-in in sam2r: `torch.compile(predictor.model.memory_attention)` and the like) and
            the numbers are those of `vos_optimized=False`.
        **kwargs: accepted and ignored, as the official builder does.

    Returns:
        The predictor (the official model surface, over the `sam2r.SAM2Model` in `.model`).
    """
    overrides = list(_VIDEO_TARGET_VOS if vos_optimized else (_VIDEO_TARGET,))
    overrides += _postprocessing(config_file, apply_postprocessing, video=True)
    overrides += list(hydra_overrides_extra)
    model = _build(config_file, ckpt_path, device, mode, overrides)
    return SAM2VideoPredictor(model)


def build_sam2_video_predictor_hf(model_id: str, **kwargs: Any) -> SAM2VideoPredictor:
    """The official `build_sam2_video_predictor_hf`: download `model_id` (e.g.
    "facebook/sam2.1-hiera-tiny") from the Hugging Face hub (or its cache) and build its video
    predictor; `kwargs` go to `build_sam2_video_predictor`."""
    from sam2r.build import download_checkpoint

    name = resolve_name(model_id)
    ckpt_path = download_checkpoint(model_id)
    return build_sam2_video_predictor(name, str(ckpt_path), **kwargs)
