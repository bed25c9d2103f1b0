"""The official `sam2.modeling.sam2_base.SAM2Base` surface over a sam2r `SAM2Model`.

    from sam2.modeling.sam2_base import SAM2Base
becomes
    from sam2r.compat.modeling.sam2_base import SAM2Base

`build_sam2` returns a `SAM2Base`: the sam2r model (`model.sam2r`) seen through the official
names. Nothing is copied: the parameters are the sam2r model's own, under the official
state-dict keys, so fine-tuning through this surface trains the sam2r model and
`torch.save(model.state_dict())` loads in sam2r and in the official code (`strict=True`).

What it offers, with the official signatures, return types and values:
* the sub-modules in their official call forms (`sam2r.compat.modeling.modules`);
* `forward_image`, `_prepare_backbone_features`, `_forward_sam_heads`, `_use_mask_as_output`,
  `_use_multimask`, `_encode_new_memory`, `_apply_non_overlapping_constraints`; the memory
  read and tracking step (`_prepare_memory_conditioned_features`, `track_step`) are in
  `sam2r.compat.modeling.tracking`, a mixin of this class;
* every official attribute (`num_feature_levels`, `directly_add_no_mem_embed`, ...): the
  knobs sam2r reads at call time come from the config and can be set (`model.
  max_cond_frames_in_attn = 2`), the architecture switches read the value of every released
  checkpoint and refuse another.

The math is the sam2r model's public steps (`decode_frame`, `mask_as_output`, `encode_memory`,
...): this file maps names, layouts and tuples, nothing more.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.compat.modeling.modules import (
    OfficialImageEncoder,
    OfficialMaskDecoder,
    OfficialMemoryAttention,
    OfficialMemoryEncoder,
    OfficialPromptEncoder,
)
from sam2r.compat.modeling.shared import SharedModule
from sam2r.compat.modeling.tracking import TrackingMixin
from sam2r.model.sam2 import NO_OBJ_SCORE, SAM2Model
from sam2r.predictor.video.results import non_overlapping

__all__ = ["NO_OBJ_SCORE", "SAM2Base"]

# official attributes that are the same in every released config (sam2r implements only these)
FIXED = {
    "use_high_res_features_in_sam": True,
    "num_feature_levels": 3,
    "use_obj_ptrs_in_encoder": True,
    "only_obj_ptrs_in_the_past_for_eval": True,
    "directly_add_no_mem_embed": True,
    "use_mask_input_as_output_without_sam": True,
    "use_multimask_token_for_obj_ptr": True,
    "iou_prediction_use_sigmoid": True,
    "pred_obj_scores": True,
    "pred_obj_scores_mlp": True,
    "fixed_no_obj_ptr": True,
    "soft_no_obj_ptr": False,
    "use_mlp_for_obj_ptr_proj": True,
    "backbone_stride": 16,
}
# official attributes read from the config, settable (sam2r reads them at call time)
KNOBS = (
    "max_obj_ptrs_in_encoder",
    "sigmoid_scale_for_mem_enc",
    "sigmoid_bias_for_mem_enc",
    "binarize_mask_from_pts_for_mem_enc",
    "non_overlap_masks_for_mem_enc",
    "memory_temporal_stride_for_eval",
    "multimask_output_in_sam",
    "multimask_min_pt_num",
    "multimask_max_pt_num",
    "multimask_output_for_tracking",
    "max_cond_frames_in_attn",
)
# read from the config, fixed once the model is built (they decide its parameters)
ARCH = ("add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs", "use_signed_tpos_enc_to_obj_ptrs")

_WRAPPED = {
    "image_encoder": OfficialImageEncoder,
    "sam_prompt_encoder": OfficialPromptEncoder,
    "sam_mask_decoder": OfficialMaskDecoder,
    "memory_attention": OfficialMemoryAttention,
    "memory_encoder": OfficialMemoryEncoder,
}


class SAM2Base(TrackingMixin, SharedModule):
    """The official model class, over a sam2r model's parameters.

    Args:
        model: the sam2r model (`sam2r.build_model(...)`); it stays usable on its own and
            shares every parameter with this object.
    """

    def __init__(self, model: SAM2Model) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"SAM2Base wraps a sam2r SAM2Model, got {type(model).__name__}")
        wrap = {name: cls(getattr(model, name)) for name, cls in _WRAPPED.items()}
        super().__init__(model, wrap)

    @property
    def sam2r(self) -> SAM2Model:
        """The sam2r model these parameters belong to (for sam2r's own predictors)."""
        return self._inner

    # --- attributes ------------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return self._inner.device

    @property
    def sam_prompt_embed_dim(self) -> int:
        return self._inner.hidden_dim

    @property
    def sam_image_embedding_size(self) -> int:
        return self._inner.image_size // 16

    @property
    def sam_mask_decoder_extra_args(self) -> dict[str, Any]:
        d = self._inner.sam_mask_decoder
        return {
            "dynamic_multimask_via_stability": d.dynamic_multimask_via_stability,
            "dynamic_multimask_stability_delta": d.dynamic_multimask_stability_delta,
            "dynamic_multimask_stability_thresh": d.dynamic_multimask_stability_thresh,
        }

    def __getattr__(self, name: str) -> Any:
        if name in FIXED:
            return FIXED[name]
        if name in KNOBS or name in ARCH:
            return getattr(self.__dict__["_inner"].cfg, name)
        try:
            return super().__getattr__(name)
        except AttributeError:
            # the other config fields, read-only (e.g. dynamic_multimask_via_stability)
            inner = self.__dict__.get("_inner")
            if inner is not None and not name.startswith("_") and hasattr(inner.cfg, name):
                return getattr(inner.cfg, name)
            raise

    def __setattr__(self, name: str, value: Any) -> None:
        inner = self.__dict__.get("_inner")
        if inner is not None and name in KNOBS:
            inner.cfg = inner.cfg.replace(**{name: value})
        elif inner is not None and (name in FIXED or name in ARCH):
            current = self.__getattr__(name)
            if value != current:
                raise AttributeError(
                    f"{name} = {value!r}: sam2r implements {name} = {current!r} only (the value "
                    "of every released SAM 2 / 2.1 checkpoint for this model), so it cannot be "
                    "changed on a built model"
                )
        else:
            super().__setattr__(name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "Please use the corresponding methods in SAM2VideoPredictor for inference or "
            "SAM2Train for training/fine-tuning (as the official SAM2Base); in sam2r: "
            "model.forward_image(x), model.track_step(...), or sam2r's own predictors"
        )

    # --- image ---------------------------------------------------------------------------------
    def forward_image(self, img_batch: Tensor) -> dict[str, Any]:
        """(B, 3, S, S) -> the image encoder's dict, with the two high-resolution levels of
        `backbone_fpn` passed through the decoder's `conv_s0` / `conv_s1`."""
        out = self.image_encoder(img_batch)
        fpn = out["backbone_fpn"]
        fpn[0] = self.sam_mask_decoder.conv_s0(fpn[0])
        fpn[1] = self.sam_mask_decoder.conv_s1(fpn[1])
        return out

    def _prepare_backbone_features(
        self, backbone_out: dict[str, Any]
    ) -> tuple[dict[str, Any], list[Tensor], list[Tensor], list[tuple[int, int]]]:
        """(backbone_out (a shallow copy), vision_feats [(HW, B, C)] per level, vision_pos_embeds
        likewise, feat_sizes [(H, W)]), for the last `num_feature_levels` levels."""
        backbone_out = backbone_out.copy()
        fpn, pos = backbone_out["backbone_fpn"], backbone_out["vision_pos_enc"]
        if len(fpn) != len(pos) or len(fpn) < 3:
            raise ValueError(
                "backbone_out must hold 3 levels of 'backbone_fpn' and 'vision_pos_enc' (the "
                f"output of forward_image), got {len(fpn)} and {len(pos)}"
            )
        fpn, pos = fpn[-3:], pos[-3:]
        feat_sizes = [(int(p.shape[-2]), int(p.shape[-1])) for p in pos]
        vision_feats = [x.flatten(2).permute(2, 0, 1) for x in fpn]
        vision_pos = [x.flatten(2).permute(2, 0, 1) for x in pos]
        return backbone_out, vision_feats, vision_pos, feat_sizes

    # --- SAM heads ------------------------------------------------------------------------------
    def _forward_sam_heads(
        self,
        backbone_features: Tensor,
        point_inputs: dict[str, Tensor] | None = None,
        mask_inputs: Tensor | None = None,
        high_res_features: list[Tensor] | None = None,
        multimask_output: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """Prompt encoder + mask decoder + object pointer (the official 7-tuple).

        Args:
            backbone_features: (B, C, h, w) image features (memory-conditioned, or with
                `no_mem_embed`).
            point_inputs: {"point_coords": (B, P, 2) model-input pixels, "point_labels": (B, P)}.
            mask_inputs: (B, 1, H, W) mask logits (resized to 4h x 4w when needed).
            high_res_features: [(B, C/8, 4h, 4w), (B, C/4, 2h, 2w)].
            multimask_output: 3 candidates, the best kept.

        Returns:
            (low_res_multimasks (B, M, 4h, 4w), high_res_multimasks (B, M, S, S), ious (B, M),
            low_res_masks (B, 1, 4h, 4w), high_res_masks (B, 1, S, S), obj_ptr (B, C),
            object_score_logits (B, 1)).
        """
        if high_res_features is None:
            raise ValueError(
                "high_res_features must be the stride-4 and stride-8 features: every released "
                "SAM 2 model uses them"
            )
        coords = labels = None
        if point_inputs is not None:
            coords, labels = point_inputs["point_coords"], point_inputs["point_labels"]
        out = self._inner.decode_frame(
            backbone_features,
            tuple(high_res_features),
            coords,
            labels,
            mask_input=mask_inputs,
            multimask_output=multimask_output,
        )
        s = self._inner.image_size
        high_multi = F.interpolate(
            out.low_res_multimasks, size=(s, s), mode="bilinear", align_corners=False
        )
        return (
            out.low_res_multimasks,
            high_multi,
            out.iou,
            out.low_res_masks,
            out.high_res_masks,
            out.obj_ptr,
            out.object_score_logits,
        )

    def _use_mask_as_output(
        self, backbone_features: Tensor, high_res_features: list[Tensor], mask_inputs: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
        """A binary (B, 1, S, S) mask taken as the output (±10 logits); the 7-tuple above."""
        out = self._inner.mask_as_output(backbone_features, tuple(high_res_features), mask_inputs)
        return (
            out.low_res_masks,
            out.high_res_masks,
            out.iou,
            out.low_res_masks,
            out.high_res_masks,
            out.obj_ptr,
            out.object_score_logits,
        )

    def _use_multimask(self, is_init_cond_frame: bool, point_inputs: dict | None) -> bool:
        """Whether the heads output 3 masks for these prompts."""
        n = 0 if point_inputs is None else int(point_inputs["point_labels"].shape[1])
        return self._inner.use_multimask(is_init_cond_frame, n)

    # --- memory ---------------------------------------------------------------------------------
    def _encode_new_memory(
        self,
        current_vision_feats: list[Tensor],
        feat_sizes: list[tuple[int, int]],
        pred_masks_high_res: Tensor,
        object_score_logits: Tensor,
        is_mask_from_pts: bool,
    ) -> tuple[Tensor, list[Tensor]]:
        """(maskmem_features (B, mem_dim, h, w), [maskmem_pos_enc (B, mem_dim, h, w)]) of a frame's
        (B, 1, S, S) output logits."""
        b = current_vision_feats[-1].shape[1]
        h, w = feat_sizes[-1]
        pix = current_vision_feats[-1].permute(1, 2, 0).reshape(b, -1, h, w)
        if self.non_overlap_masks_for_mem_enc and not self.training:
            pred_masks_high_res = self._apply_non_overlapping_constraints(pred_masks_high_res)
        out = self._inner.encode_memory(
            pix, pred_masks_high_res, object_score_logits, bool(is_mask_from_pts)
        )
        return out.features, [out.pos.to(out.features.dtype)]

    def _apply_non_overlapping_constraints(self, pred_masks: Tensor) -> Tensor:
        """(N, 1, H, W) logits: at each pixel only the highest-scoring object keeps its logit,
        the others are lowered to at most -10."""
        return non_overlapping(pred_masks)


def as_sam2r(model: SAM2Base | SAM2Model) -> SAM2Model:
    """The sam2r model behind `model` (a `SAM2Base` from `build_sam2`, or a sam2r model)."""
    if isinstance(model, SAM2Base):
        return model.sam2r
    if isinstance(model, SAM2Model):
        return model
    raise TypeError(
        f"expected a model from build_sam2 (SAM2Base) or a sam2r SAM2Model, got "
        f"{type(model).__name__}"
    )


def as_sam2_base(model: SAM2Base | SAM2Model) -> SAM2Base:
    """`model` seen through the official names (wrapped once; a `SAM2Base` is returned as is)."""
    return model if isinstance(model, SAM2Base) else SAM2Base(as_sam2r(model))
