"""The official `SAM2Base` tracking step: memory read (`_prepare_memory_conditioned_features`)
and `track_step`, over the official `output_dict` of per-frame output dicts.

    out = model.track_step(frame_idx, is_init_cond_frame, vision_feats, vision_pos, feat_sizes,
                           point_inputs, mask_inputs, output_dict, num_frames)
    out["pred_masks"], out["obj_ptr"], out["maskmem_features"], ...

`output_dict` is the official `{"cond_frame_outputs": {frame: out}, "non_cond_frame_outputs":
{frame: out}}`, each `out` a dict with `maskmem_features`, `maskmem_pos_enc` (a list) and
`obj_ptr`. Which stored frames are read is sam2r's `plan_memory` (the official selection in
evaluation mode, `sam2r.predictor.video.memory`), with the official training-mode rules in
training (memory stride 1; the pointers of every selected conditioning frame, future ones
included); the tokens and the attention are the sam2r model's steps.

A mixin of `SAM2Base` (`sam2r.compat.modeling.sam2_base`): it uses `self._inner` (the sam2r
model) and the official methods defined there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from sam2r.model.sam2 import ImageFeatures
from sam2r.predictor.video.memory import plan_memory, select_cond_frames


class _Stored:
    """An official per-frame output dict, seen as the `FrameState` that `plan_memory` reads."""

    __slots__ = ("out",)

    def __init__(self, out: Mapping[str, Any]) -> None:
        self.out = out

    @property
    def has_memory(self) -> bool:
        return self.out.get("maskmem_features") is not None

    @property
    def maskmem_features(self) -> Tensor | None:
        return self.out["maskmem_features"]

    @property
    def obj_ptr(self) -> Tensor:
        return self.out["obj_ptr"]


def _as_map(d: Mapping[int, Any]) -> dict[int, _Stored]:
    return {t: _Stored(out) for t, out in d.items()}


def _training_pointers(
    frame_idx: int,
    reverse: bool,
    cond: Mapping[int, Mapping[str, Any]],
    pointers: list[tuple[int, Any]],
    cfg: Any,
) -> list[tuple[int, Any]]:
    """The pointers read in training: those of *every* selected conditioning frame (evaluation
    reads only those up to the current frame), then the tracked frames' as in evaluation."""
    selected, _ = select_cond_frames(frame_idx, list(cond), cfg.max_cond_frames_in_attn)
    n_past = sum(1 for t in selected if (t >= frame_idx if reverse else t <= frame_idx))
    sign = -1 if reverse else 1
    signed = cfg.use_signed_tpos_enc_to_obj_ptrs
    cond_ptrs = [
        ((frame_idx - t) * sign if signed else abs(frame_idx - t), _Stored(cond[t]))
        for t in selected
    ]
    return cond_ptrs + pointers[n_past:]


class TrackingMixin:
    """`_prepare_memory_conditioned_features`, `_track_step`, `_encode_memory_in_output` and
    `track_step` with the official signatures and return values."""

    _inner: Any

    def _prepare_memory_conditioned_features(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[Tensor],
        current_vision_pos_embeds: list[Tensor],
        feat_sizes: list[tuple[int, int]],
        output_dict: Mapping[str, Mapping[int, Mapping[str, Any]]],
        num_frames: int,
        track_in_reverse: bool = False,
    ) -> Tensor:
        """(B, C, h, w) features of the frame after reading the memory in `output_dict`
        (with `no_mem_embed` added instead on an initial conditioning frame).

        Args:
            current_vision_feats / current_vision_pos_embeds: [(HW, B, C)], the last entry is
                the stride-16 level.
            feat_sizes: [(h, w)] of the same levels.
            output_dict: the official {"cond_frame_outputs", "non_cond_frame_outputs"} dict.
            num_frames: frames in the video.
        """
        model = self._inner
        b = current_vision_feats[-1].shape[1]
        h, w = feat_sizes[-1]
        embed = current_vision_feats[-1].permute(1, 2, 0).reshape(b, -1, h, w)
        if is_init_cond_frame:
            return model.no_memory(ImageFeatures(embed, embed, (embed, embed)))
        cond = output_dict["cond_frame_outputs"]
        if len(cond) == 0:
            raise ValueError(
                f"frame {frame_idx} is not an initial conditioning frame but output_dict "
                "['cond_frame_outputs'] is empty: prompt a frame first"
            )
        pos = current_vision_pos_embeds[-1].permute(1, 2, 0).reshape(b, -1, h, w)
        cfg = model.cfg
        plan = plan_memory(
            frame_idx,
            track_in_reverse,
            _as_map(cond),
            _as_map(output_dict["non_cond_frame_outputs"]),
            num_frames,
            num_maskmem=cfg.num_maskmem,
            stride=1 if model.training else cfg.memory_temporal_stride_for_eval,
            max_cond_frames=cfg.max_cond_frames_in_attn,
            max_obj_ptrs=cfg.max_obj_ptrs_in_encoder,
            signed_ptr_distance=cfg.use_signed_tpos_enc_to_obj_ptrs,
        )
        device = embed.device
        tokens, token_pos = [], []
        for t_pos, stored in plan.spatial:
            feats = stored.maskmem_features.to(device)  # type: ignore[union-attr]
            tok, p = model.spatial_memory_tokens(
                feats, stored.out["maskmem_pos_enc"][-1].to(device), t_pos
            )
            tokens.append(tok)
            token_pos.append(p)
        pointers = plan.pointers
        if model.training:
            pointers = _training_pointers(frame_idx, track_in_reverse, cond, pointers, cfg)
        num_ptr_tokens = 0
        if pointers:
            ptrs = torch.stack([s.obj_ptr.to(device) for _, s in pointers])  # (N, B, C)
            dist = torch.tensor([d for d, _ in pointers])
            tok, p = model.pointer_tokens(ptrs, dist, max(plan.max_ptrs, 2))
            tokens.append(tok)
            token_pos.append(p)
            num_ptr_tokens = tok.shape[1]
        memory = torch.cat(tokens, dim=1)  # (B, M, mem_dim)
        memory_pos = torch.cat(token_pos, dim=1)
        feats = ImageFeatures(embed, pos, (embed, embed))
        return model.condition_on_memory(feats, memory, memory_pos, num_ptr_tokens)

    def _track_step(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[Tensor],
        current_vision_pos_embeds: list[Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, Tensor] | None,
        mask_inputs: Tensor | None,
        output_dict: Mapping[str, Any],
        num_frames: int,
        track_in_reverse: bool,
        prev_sam_mask_logits: Tensor | None,
    ) -> tuple[dict[str, Any], tuple[Tensor, ...], list[Tensor] | None, Tensor]:
        """(current_out with the inputs, the SAM heads' 7-tuple, high_res_features, pix_feat)."""
        current_out: dict[str, Any] = {"point_inputs": point_inputs, "mask_inputs": mask_inputs}
        high_res = None
        if len(current_vision_feats) > 1:
            high_res = [
                x.permute(1, 2, 0).reshape(x.shape[1], x.shape[2], *s)
                for x, s in zip(current_vision_feats[:-1], feat_sizes[:-1], strict=True)
            ]
        if mask_inputs is not None:  # use_mask_input_as_output_without_sam
            b = current_vision_feats[-1].shape[1]
            pix = current_vision_feats[-1].permute(1, 2, 0).reshape(b, -1, *feat_sizes[-1])
            outs = self._use_mask_as_output(pix, high_res, mask_inputs)  # type: ignore[attr-defined]
            return current_out, outs, high_res, pix
        pix = self._prepare_memory_conditioned_features(
            frame_idx,
            is_init_cond_frame,
            current_vision_feats[-1:],
            current_vision_pos_embeds[-1:],
            feat_sizes[-1:],
            output_dict,
            num_frames,
            track_in_reverse,
        )
        if prev_sam_mask_logits is not None:
            if point_inputs is None:
                raise ValueError(
                    "prev_sam_mask_logits refines a mask with clicks: give point_inputs"
                )
            mask_inputs = prev_sam_mask_logits
        multimask = self._use_multimask(is_init_cond_frame, point_inputs)  # type: ignore[attr-defined]
        outs = self._forward_sam_heads(  # type: ignore[attr-defined]
            pix, point_inputs, mask_inputs, high_res, multimask
        )
        return current_out, outs, high_res, pix

    def _encode_memory_in_output(
        self,
        current_vision_feats: list[Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, Tensor] | None,
        run_mem_encoder: bool,
        high_res_masks: Tensor,
        object_score_logits: Tensor,
        current_out: dict[str, Any],
    ) -> None:
        """Fill `current_out["maskmem_features"]` / `["maskmem_pos_enc"]` (None when not run)."""
        if run_mem_encoder and self._inner.num_maskmem > 0:
            feats, pos = self._encode_new_memory(  # type: ignore[attr-defined]
                current_vision_feats,
                feat_sizes,
                high_res_masks,
                object_score_logits,
                point_inputs is not None,
            )
            current_out["maskmem_features"] = feats
            current_out["maskmem_pos_enc"] = pos
        else:
            current_out["maskmem_features"] = None
            current_out["maskmem_pos_enc"] = None

    def track_step(
        self,
        frame_idx: int,
        is_init_cond_frame: bool,
        current_vision_feats: list[Tensor],
        current_vision_pos_embeds: list[Tensor],
        feat_sizes: list[tuple[int, int]],
        point_inputs: dict[str, Tensor] | None,
        mask_inputs: Tensor | None,
        output_dict: Mapping[str, Any],
        num_frames: int,
        track_in_reverse: bool = False,
        run_mem_encoder: bool = True,
        prev_sam_mask_logits: Tensor | None = None,
    ) -> dict[str, Any]:
        """One frame for B objects; the official output dict: point_inputs, mask_inputs,
        pred_masks (B, 1, 4h, 4w), pred_masks_high_res (B, 1, S, S), obj_ptr (B, C),
        object_score_logits (B, 1) (eval mode), maskmem_features, maskmem_pos_enc."""
        current_out, outs, _, _ = self._track_step(
            frame_idx,
            is_init_cond_frame,
            current_vision_feats,
            current_vision_pos_embeds,
            feat_sizes,
            point_inputs,
            mask_inputs,
            output_dict,
            num_frames,
            track_in_reverse,
            prev_sam_mask_logits,
        )
        _, _, _, low_res, high_res, obj_ptr, score = outs
        current_out["pred_masks"] = low_res
        current_out["pred_masks_high_res"] = high_res
        current_out["obj_ptr"] = obj_ptr
        if not self._inner.training:
            current_out["object_score_logits"] = score
        self._encode_memory_in_output(
            current_vision_feats,
            feat_sizes,
            point_inputs,
            run_mem_encoder,
            high_res,
            score,
            current_out,
        )
        return current_out
