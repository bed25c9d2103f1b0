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
        out_tokens = torch.cat(
            [self.obj_score_token.weight, self.iou_token.weight, self.mask_tokens.weight], dim=0
        )
        out_tokens = out_tokens.unsqueeze(0).expand(sparse.shape[0], -1, -1)
        tokens = torch.cat((out_tokens, sparse), dim=1)  # (B, 6 + N, C)

        n = tokens.shape[0]
        if repeat_image:
            src = torch.repeat_interleave(image_embeddings, n, dim=0)
        else:
            if image_embeddings.shape[0] != n:
                raise ValueError(
                    f"{image_embeddings.shape[0]} image embeddings for {n} prompt sets; "
                    "pass repeat_image=True to share one image"
                )
            src = image_embeddings
        src = src + dense
        pos = torch.repeat_interleave(image_pe, n, dim=0)
        b, c, h, w = src.shape

        hs, src = self.transformer(src, pos, tokens)
        iou_token_out = hs[:, 1, :]
        mask_tokens_out = hs[:, 2 : 2 + self.num_mask_tokens, :]

        src = src.transpose(1, 2).reshape(b, c, h, w)
        feat_s0, feat_s1 = high_res_features
        dc1, ln1, act1, dc2, act2 = self.output_upscaling
        up = act1(ln1(dc1(src) + feat_s1))
        up = act2(dc2(up) + feat_s0)  # (B, C/8, 4h, 4w)

        hyper = torch.stack(
            [mlp(mask_tokens_out[:, i, :]) for i, mlp in enumerate(self.output_hypernetworks_mlps)],
            dim=1,
        )  # (B, 4, C/8)
        b, c, h, w = up.shape
        masks = (hyper @ up.view(b, c, h * w)).view(b, -1, h, w)
        iou = self.iou_prediction_head(iou_token_out)
        score = self.pred_obj_score_head(hs[:, 0, :])
        return masks, iou, mask_tokens_out, score

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
        if multimask_output:
            masks, iou, tokens = masks[:, 1:], iou[:, 1:], mask_tokens[:, 1:]
        else:
            if self.dynamic_multimask_via_stability and not self.training:
                masks, iou = self._dynamic_fallback(masks, iou)
            else:
                masks, iou = masks[:, 0:1], iou[:, 0:1]
            # the pointer token is the single-mask token even when the fallback was taken
            tokens = mask_tokens[:, 0:1]
        return DecoderOutput(masks, iou, tokens, score)
