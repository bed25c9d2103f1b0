"""The official `SAM2VideoPredictor`'s private helpers, for code that calls them.

Annotation-tool backends, extensions and forks reach below the public video API: they add
objects with `_obj_id_to_idx`, read a frame's features with `_get_image_feature`, run one frame
with `_run_single_frame_inference`, re-encode a memory after editing a mask with
`_run_memory_encoder`, merge per-object outputs with `_consolidate_temp_output_across_obj`, and
clear results with `_reset_tracking_results` / `_clear_non_cond_mem_around_input`. This mixin
gives them with the official signatures and return values, over the typed session
(`sam2r.predictor.video.VideoSession`) and the official model surface (`SAM2Base`, whose
`track_step`, `_encode_new_memory` and `_prepare_backbone_features` they call).

A mixin of `sam2r.compat.video_predictor.SAM2VideoPredictor`: it uses `self._inner` (the sam2r
model), `self.fill_hole_area`, `self.non_overlap_masks` and the `SAM2Base` methods.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.compat.video_state import InferenceState, obj_index, session_of
from sam2r.model.sam2 import NO_OBJ_SCORE
from sam2r.ops.masks import fill_holes_in_mask_scores
from sam2r.predictor.video import VideoSession, non_overlapping
from sam2r.predictor.video.frame_step import frame_features

State = InferenceState | VideoSession


class VideoInternalsMixin:
    """The official video predictor's private helpers (see the module docstring)."""

    _inner: Any
    fill_hole_area: int
    non_overlap_masks: bool

    # --- objects -------------------------------------------------------------------------------
    def _obj_id_to_idx(self, inference_state: State, obj_id: Hashable) -> int:
        """The index of `obj_id`; a new id adds an object without prompts (as the official)."""
        return obj_index(session_of(inference_state), obj_id)

    def _obj_idx_to_id(self, inference_state: State, obj_idx: int) -> Hashable:
        return session_of(inference_state).obj_ids[obj_idx]

    def _get_obj_num(self, inference_state: State) -> int:
        return len(session_of(inference_state).objects)

    # --- features and outputs ------------------------------------------------------------------
    def _get_image_feature(
        self, inference_state: State, frame_idx: int, batch_size: int
    ) -> tuple[Tensor, dict[str, Any], list[Tensor], list[Tensor], list[tuple[int, int]]]:
        """(image (B, 3, S, S), backbone_out, vision_feats [(HW, B, C)], vision_pos_embeds,
        feat_sizes) of a frame, expanded to `batch_size` objects (from the session's feature
        cache, or the image encoder)."""
        session = session_of(inference_state)
        device = self._inner.device
        feats = frame_features(self._inner, session, frame_idx)
        image = session.frames.model_input(frame_idx, session.image_size)
        image = image.to(device).float().unsqueeze(0)
        position = self._inner.image_encoder.neck.position_encoding
        fpn = [feats.high_res[0], feats.high_res[1], feats.embed]
        pos = [position(fpn[0]), position(fpn[1]), feats.pos]
        backbone_out = {
            "backbone_fpn": [x.expand(batch_size, -1, -1, -1) for x in fpn],
            "vision_pos_enc": [p.expand(batch_size, -1, -1, -1) for p in pos],
        }
        features = self._prepare_backbone_features(backbone_out)  # type: ignore[attr-defined]
        return (image.expand(batch_size, -1, -1, -1),) + features

    def _get_orig_video_res_output(
        self, inference_state: State, any_res_masks: Tensor
    ) -> tuple[Tensor, Tensor]:
        """(any_res_masks on the model's device, (N, 1, H, W) masks at video resolution, with
        the non-overlap constraint when `non_overlap_masks`)."""
        session = session_of(inference_state)
        masks = any_res_masks.to(self._inner.device, non_blocking=True)
        hw = (session.video_height, session.video_width)
        video = masks
        if tuple(masks.shape[-2:]) != hw:
            video = F.interpolate(masks, size=hw, mode="bilinear", align_corners=False)
        if self.non_overlap_masks:
            video = non_overlapping(video)
        return masks, video

    def _consolidate_temp_output_across_obj(
        self,
        inference_state: State,
        frame_idx: int,
        is_cond: bool,
        consolidate_at_video_res: bool = False,
    ) -> dict[str, Tensor]:
        """Every object's newest mask on a frame in one tensor: {"pred_masks": (N, 1, S/4, S/4)}
        (or {"pred_masks_video_res": (N, 1, H, W)}), NO_OBJ_SCORE where an object has none."""
        session = session_of(inference_state)
        if consolidate_at_video_res:
            key, hw = "pred_masks_video_res", (session.video_height, session.video_width)
        else:
            side = session.image_size // 4
            key, hw = "pred_masks", (side, side)
        tracks = list(session.objects.values())
        out = torch.full(
            (len(tracks), 1, *hw), NO_OBJ_SCORE, dtype=torch.float32, device=session.storage_device
        )
        for i, track in enumerate(tracks):
            state = track.latest_output(frame_idx, is_cond)
            if state is None:
                continue
            mask = state.low_res_masks
            if tuple(mask.shape[-2:]) != hw:
                mask = F.interpolate(mask, size=hw, mode="bilinear", align_corners=False)
            out[i : i + 1] = mask
        return {key: out}

    # --- one frame -----------------------------------------------------------------------------
    def _get_maskmem_pos_enc(
        self, inference_state: State, current_out: Mapping[str, Any]
    ) -> list[Tensor] | None:
        """The memory position encoding (one for the whole session, kept in `constants`),
        expanded to the batch of `current_out["maskmem_pos_enc"]`; None when it is None."""
        pos = current_out["maskmem_pos_enc"]
        if pos is None:
            return None
        session = session_of(inference_state)
        if session.maskmem_pos is None:
            session.maskmem_pos = pos[-1][0:1].clone()
        return [session.maskmem_pos.expand(pos[-1].shape[0], -1, -1, -1)]

    def _run_single_frame_inference(
        self,
        inference_state: State,
        output_dict: Mapping[str, Any],
        frame_idx: int,
        batch_size: int,
        is_init_cond_frame: bool,
        point_inputs: dict[str, Tensor] | None,
        mask_inputs: Tensor | None,
        reverse: bool,
        run_mem_encoder: bool,
        prev_sam_mask_logits: Tensor | None = None,
    ) -> tuple[dict[str, Any], Tensor]:
        """`track_step` on a frame's features, stored as the official predictor stores it:
        (compact output {"maskmem_features" (bfloat16), "maskmem_pos_enc", "pred_masks",
        "obj_ptr", "object_score_logits"}, pred_masks on the model's device)."""
        if point_inputs is not None and mask_inputs is not None:
            raise ValueError("give point_inputs or mask_inputs for a frame, not both")
        session = session_of(inference_state)
        _, _, feats, pos, sizes = self._get_image_feature(inference_state, frame_idx, batch_size)
        cur = self.track_step(  # type: ignore[attr-defined]
            frame_idx,
            is_init_cond_frame,
            feats,
            pos,
            sizes,
            point_inputs,
            mask_inputs,
            output_dict,
            session.num_frames,
            track_in_reverse=reverse,
            run_mem_encoder=run_mem_encoder,
            prev_sam_mask_logits=prev_sam_mask_logits,
        )
        storage = session.storage_device
        maskmem = cur["maskmem_features"]
        if maskmem is not None:
            maskmem = maskmem.to(torch.bfloat16).to(storage, non_blocking=True)
        pred_masks_gpu = cur["pred_masks"]
        if self.fill_hole_area > 0:
            pred_masks_gpu = fill_holes_in_mask_scores(pred_masks_gpu, self.fill_hole_area)
        compact = {
            "maskmem_features": maskmem,
            "maskmem_pos_enc": self._get_maskmem_pos_enc(inference_state, cur),
            "pred_masks": pred_masks_gpu.to(storage, non_blocking=True),
            "obj_ptr": cur["obj_ptr"],
            "object_score_logits": cur["object_score_logits"],
        }
        return compact, pred_masks_gpu

    def _run_memory_encoder(
        self,
        inference_state: State,
        frame_idx: int,
        batch_size: int,
        high_res_masks: Tensor,
        object_score_logits: Tensor,
        is_mask_from_pts: bool,
    ) -> tuple[Tensor, list[Tensor] | None]:
        """(maskmem_features (B, mem_dim, h, w) bfloat16 on the storage device,
        maskmem_pos_enc) of edited (B, 1, S, S) mask logits on a frame."""
        _, _, feats, _, sizes = self._get_image_feature(inference_state, frame_idx, batch_size)
        maskmem, pos = self._encode_new_memory(  # type: ignore[attr-defined]
            feats, sizes, high_res_masks, object_score_logits, is_mask_from_pts
        )
        storage = session_of(inference_state).storage_device
        maskmem = maskmem.to(torch.bfloat16).to(storage, non_blocking=True)
        return maskmem, self._get_maskmem_pos_enc(inference_state, {"maskmem_pos_enc": pos})

    # --- clearing ------------------------------------------------------------------------------
    def _reset_tracking_results(self, inference_state: State) -> None:
        """Forget every prompt and output; the objects stay."""
        for track in session_of(inference_state).objects.values():
            track.clear()

    def _clear_non_cond_mem_around_input(self, inference_state: State, frame_idx: int) -> None:
        """Drop every object's tracked-frame outputs within `memory_temporal_stride_for_eval *
        num_maskmem` frames of `frame_idx` (they hold the object as it was before a correction)."""
        cfg = self._inner.cfg
        r = cfg.memory_temporal_stride_for_eval * cfg.num_maskmem
        for track in session_of(inference_state).objects.values():
            for t in range(frame_idx - r, frame_idx + r + 1):
                track.non_cond_outputs.pop(t, None)
