"""Mask decoder: two-way transformer over (object-score, IoU, 4 mask) tokens + prompt tokens and
the image embedding, an upscaler fed by the stride-4/8 features, hypernetwork MLPs producing the
masks, an IoU head, an object-score (occlusion) head, and the dynamic multimask fallback.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from sam2r.model.common import MLP, LayerNorm2d
from sam2r.model.transformer import TwoWayTransformer


class DecoderOutput(NamedTuple):
    """Raw mask-decoder output for B prompt sets."""

    masks: Tensor  # (B, M, 4h, 4w) mask logits, M = 3 (multimask) or 1
    iou: Tensor  # (B, M) predicted IoU
    tokens: Tensor  # (B, M_tok, C) mask tokens for the object pointer (3 or 1)
    object_score_logits: Tensor  # (B, 1) > 0 when the object is present


class DecoderTokens(NamedTuple):
    """The two-way transformer's output for B prompt sets, before any mask is upsampled."""

    iou: Tensor  # (B, 4) predicted IoU of all 4 mask tokens (the single-mask token first)
    mask_tokens: Tensor  # (B, 4, C)
    object_score_logits: Tensor  # (B, 1)
    image: Tensor  # (B, C, h, w) image tokens after the transformer


def stability_scores(mask_logits: Tensor, delta: float) -> Tensor:
    """area(logits > delta) / area(logits > -delta) over the last two dims, 1 when empty."""
    flat = mask_logits.flatten(-2)
    inter = torch.sum(flat > delta, dim=-1).float()
    union = torch.sum(flat > -delta, dim=-1).float()
    return torch.where(union > 0, inter / union, torch.ones_like(inter))


class MaskDecoder(nn.Module):
    """SAM 2 mask decoder (the released configuration: high-res features, sigmoid IoU head,
    MLP object-score head, multimask token used for the object pointer).

    Args:
        transformer_dim: token width (hidden dim).
        num_multimask_outputs: masks in multimask mode (3).
        dynamic_multimask_via_stability: single-mask requests fall back to the best multimask
            output when the single mask is unstable (eval only).
        dynamic_multimask_stability_delta: logit margin of the stability score.
        dynamic_multimask_stability_thresh: stability below which the fallback is taken.
    """

    def __init__(
        self,
        transformer_dim: int,
        num_multimask_outputs: int = 3,
        dynamic_multimask_via_stability: bool = True,
        dynamic_multimask_stability_delta: float = 0.05,
        dynamic_multimask_stability_thresh: float = 0.98,
    ) -> None:
        super().__init__()
        d = transformer_dim
        self.transformer_dim = d
        self.transformer = TwoWayTransformer(depth=2, embedding_dim=d, num_heads=8, mlp_dim=2048)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.iou_token = nn.Embedding(1, d)
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, d)
        self.obj_score_token = nn.Embedding(1, d)
        self.output_upscaling = nn.Sequential(
            nn.ConvTranspose2d(d, d // 4, kernel_size=2, stride=2),
            LayerNorm2d(d // 4),
            nn.GELU(),
            nn.ConvTranspose2d(d // 4, d // 8, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.conv_s0 = nn.Conv2d(d, d // 8, kernel_size=1)
        self.conv_s1 = nn.Conv2d(d, d // 4, kernel_size=1)
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(d, d, d // 8, 3) for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(d, 256, self.num_mask_tokens, 3, sigmoid_output=True)
        self.pred_obj_score_head = MLP(d, d, 1, 3)
        self.dynamic_multimask_via_stability = dynamic_multimask_via_stability
        self.dynamic_multimask_stability_delta = dynamic_multimask_stability_delta
        self.dynamic_multimask_stability_thresh = dynamic_multimask_stability_thresh

    def decode_tokens(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse: Tensor,
        dense: Tensor,
        repeat_image: bool,
        fold_projections: bool = False,
    ) -> DecoderTokens:
        """The two-way transformer and the token heads; masks are not upsampled yet.

        Args:
            image_embeddings: (B or 1, C, h, w).
            image_pe: (1, C, h, w).
            sparse: (B, N, C) prompt tokens.
            dense: (B, C, h, w) dense prompt embeddings.
            repeat_image: share one image embedding among the B prompt sets.
            fold_projections: the transformer's reordered cross attentions for many prompt
                sets (`sam2r.model.transformer`; equal up to float rounding, half the work).
        """
        out_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0
        )
        out_tokens = out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1)
        tokens = torch.cat((out_tokens, sparse), dim=1)  # (B, 6 + N, C)

        n = tokens.shape[0]
        if repeat_image:
            if image_embeddings.shape[0] != 1:
                raise ValueError(
                    f"repeat_image shares one image embedding, got {image_embeddings.shape[0]}"
                )
            if n > 1 and dense.stride(0) == 0:
                # no mask prompts: the dense embedding is one row broadcast to all sets, so the
                # image stays a batch of 1 and the transformer shares its first image-side
                # projections among the prompt sets (same numbers, much less work)
                src = image_embeddings + dense[:1]
            else:
                src = image_embeddings + dense
        else:
            if image_embeddings.shape[0] != n:
                raise ValueError(
                    f"{image_embeddings.shape[0]} image embeddings for {n} prompt sets; "
                    "pass repeat_image=True to share one image"
                )
            src = image_embeddings + dense
        _, c, h, w = src.shape

        hs, keys = self.transformer(src, image_pe, tokens, fold_projections)  # (B, hw, C)
        image = keys.transpose(1, 2).reshape(keys.shape[0], c, h, w)
        return DecoderTokens(
            iou=self.iou_prediction_head(hs[:, 1, :]),
            mask_tokens=hs[:, 2 : 2 + self.num_mask_tokens, :],
            object_score_logits=self.pred_obj_score_head(hs[:, 0, :]),
            image=image,
        )

    def decode_masks(
        self, image: Tensor, mask_tokens: Tensor, high_res_features: tuple[Tensor, Tensor]
    ) -> Tensor:
        """Upsample the transformer's image tokens and read out the masks.

        Args:
            image: (B, C, h, w) image tokens after the transformer (`DecoderTokens.image`).
            mask_tokens: (B, 4, C) (`DecoderTokens.mask_tokens`).
            high_res_features: stride-4 (B or 1, C/8, 4h, 4w), stride-8 (B or 1, C/4, 2h, 2w).

        Returns:
            (B, 4, 4h, 4w) mask logits of all 4 mask tokens.
        """
        feat_s0, feat_s1 = high_res_features
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        up = act1(ln1(dc1(image) + feat_s1))
        up = act2(dc2(up) + feat_s0)  # (B, C/8, 4h, 4w)

        hyper = torch.stack(
            [mlp(mask_tokens[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # (B, 4, C/8)
        b, c, h, w = up.shape
        return (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)

    def predict_masks(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse: Tensor,
        dense: Tensor,
        high_res_features: tuple[Tensor, Tensor],
        repeat_image: bool,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All 4 masks: (masks (B, 4, 4h, 4w), iou (B, 4), mask tokens (B, 4, C), score (B, 1))."""
        t = self.decode_tokens(image_embeddings, image_pe, sparse, dense, repeat_image)
        masks = self.decode_masks(t.image, t.mask_tokens, high_res_features)
        return masks, t.iou, t.mask_tokens, t.object_score_logits

    def select_masks(
        self, masks: Tensor, iou: Tensor, mask_tokens: Tensor, multimask_output: bool
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The outputs asked for, from all 4: the 3 multimask outputs, or the single mask (with
        the dynamic fallback to the best multimask output when it is unstable, in eval mode).

        Args:
            masks: (B, 4, H, W) logits; iou: (B, 4); mask_tokens: (B, 4, C).
            multimask_output: 3 masks instead of 1.

        Returns:
            masks (B, M, H, W), iou (B, M), pointer tokens (B, M, C) with M = 3 or 1.
        """
        if multimask_output:
            return masks[:, 1:], iou[:, 1:], mask_tokens[:, 1:]
        if self.dynamic_multimask_via_stability and not self.training:
            masks, iou = self._dynamic_fallback(masks, iou)
        else:
            masks, iou = masks[:, 0:1], iou[:, 0:1]
        # the pointer token is the single-mask token even when the fallback was taken
        return masks, iou, mask_tokens[:, 0:1]

    def _dynamic_fallback(self, masks: Tensor, iou: Tensor) -> tuple[Tensor, Tensor]:
        """Single mask where it is stable, else the multimask output with the best IoU."""
        multi_masks, multi_iou = masks[:, 1:], iou[:, 1:]
        best = torch.argmax(multi_iou, dim=-1)
        rows = torch.arange(multi_iou.shape[0], device=iou.device)
        best_masks = multi_masks[rows, best].unsqueeze(1)
        best_iou = multi_iou[rows, best].unsqueeze(1)
        single_masks, single_iou = masks[:, 0:1], iou[:, 0:1]
        stable = stability_scores(single_masks, self.dynamic_multimask_stability_delta)
        stable = stable >= self.dynamic_multimask_stability_thresh  # (B, 1)
        out_masks = torch.where(stable[..., None, None], single_masks, best_masks)
        out_iou = torch.where(stable, single_iou, best_iou)
        return out_masks, out_iou

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: tuple[Tensor, Tensor],
    ) -> DecoderOutput:
        """Predict masks.

        Args:
            image_embeddings: (B or 1, C, h, w).
            image_pe: (1, C, h, w).
            sparse_prompt_embeddings: (B, N, C).
            dense_prompt_embeddings: (B, C, h, w).
            multimask_output: 3 masks instead of 1.
            repeat_image: share one image embedding among the B prompt sets.
            high_res_features: stride-4 (B, C/8, 4h, 4w) and stride-8 (B, C/4, 2h, 2w) features.
        """
        masks, iou, mask_tokens, score = self.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            high_res_features,
            repeat_image,
        )
        masks, iou, tokens = self.select_masks(masks, iou, mask_tokens, multimask_output)
        return DecoderOutput(masks, iou, tokens, score)
