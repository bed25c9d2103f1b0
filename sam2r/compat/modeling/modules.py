"""The official call forms of the model's parts, over sam2r's modules (no copies).

`SAM2Base` (`sam2r.compat.modeling.sam2_base`) registers these adapters under the official
names, so that code written for the official modules runs unchanged:

    out = model.image_encoder(x)          # {"vision_features", "vision_pos_enc", "backbone_fpn"}
    sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
    masks, iou, tokens, obj_scores = model.sam_mask_decoder(image_embeddings=..., ...)
    pix = model.memory_attention(curr=[x], curr_pos=[p], memory=m, memory_pos=mp)   # (HW, B, C)
    mem = model.memory_encoder(pix_feat, masks, skip_mask_sigmoid=True)  # {"vision_features", ...}

Each adapter is a `SharedModule`: its parameters are the sam2r module's own, under the same
state-dict names. The typed sam2r modules keep their own signatures; only these adapters speak
the official ones. The official tensors layouts are kept (sequence-first in the memory
attention, dicts and lists where the official code returns them).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from sam2r.compat.modeling.shared import SharedModule
from sam2r.model.mask_decoder import MaskDecoder, stability_scores
from sam2r.model.memory_attention import MemoryAttention
from sam2r.model.memory_encoder import MemoryEncoder
from sam2r.model.neck import ImageEncoder
from sam2r.model.prompt_encoder import PromptEncoder


class OfficialImageEncoder(SharedModule):
    """The official `ImageEncoder`: `trunk`, `neck`, `scalp`; `forward` returns a dict."""

    def __init__(self, inner: ImageEncoder) -> None:
        super().__init__(inner)

    def forward(self, sample: Tensor) -> dict[str, Any]:
        """sample: (B, 3, S, S) -> {"vision_features": (B, C, S/16, S/16), "vision_pos_enc":
        [pos per level], "backbone_fpn": [features per level]}, highest resolution first."""
        out = self._inner(sample)
        features, pos = list(out.features), list(out.pos)
        return {"vision_features": features[-1], "vision_pos_enc": pos, "backbone_fpn": features}


class OfficialPromptEncoder(SharedModule):
    """The official `PromptEncoder`: `forward(points, boxes, masks)`, boxes included."""

    num_point_embeddings = 4  # negative, positive, box corner 1, box corner 2

    def __init__(self, inner: PromptEncoder) -> None:
        super().__init__(inner)

    def _get_batch_size(
        self,
        points: tuple[Tensor, Tensor] | None,
        boxes: Tensor | None,
        masks: Tensor | None,
    ) -> int:
        if points is not None:
            return points[0].shape[0]
        if boxes is not None:
            return boxes.shape[0]
        if masks is not None:
            return masks.shape[0]
        return 1

    def _get_device(self) -> torch.device:
        return self.point_embeddings[0].weight.device

    def _embed_points(self, points: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """points (B, N, 2) in model-input pixels, labels (B, N) -> (B, N (+1), C)."""
        return self._inner._embed_points(points, labels, pad)

    def _embed_boxes(self, boxes: Tensor) -> Tensor:
        """boxes (B, 4) or (B, 2, 2) in model-input pixels -> (B, 2, C) corner embeddings."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)  # the centre of the pixel
        emb = self.pe_layer.forward_with_coords(corners, self.input_image_size)
        first = self.point_embeddings[2].weight  # (1, C)
        second = self.point_embeddings[3].weight
        return emb + torch.cat([first, second], dim=0).unsqueeze(0)

    def _embed_masks(self, masks: Tensor) -> Tensor:
        """masks (B, 1, 4h, 4w) logits -> (B, C, h, w)."""
        return self.mask_downscaling(masks)

    def forward(
        self,
        points: tuple[Tensor, Tensor] | None = None,
        boxes: Tensor | None = None,
        masks: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Embed prompts.

        Args:
            points: (coords (B, N, 2) in model-input pixels, labels (B, N)), or None.
            boxes: (B, 4) boxes (or (B, 2, 2) corners) in model-input pixels, or None.
            masks: (B, 1, 4h, 4w) mask logits, or None.

        Returns:
            sparse (B, N', C): the points (with a padding point when there is no box), then
            the box corners; dense (B, C, h, w).
        """
        if points is not None and (not isinstance(points, (tuple, list)) or len(points) != 2):
            raise TypeError(
                "points must be a (coords (B, N, 2), labels (B, N)) pair, got "
                f"{type(points).__name__}"
            )
        b = self._get_batch_size(points, boxes, masks)
        weight = self.no_mask_embed.weight
        sparse = weight.new_empty((b, 0, self.embed_dim))
        if points is not None:
            sparse = torch.cat([sparse, self._embed_points(points[0], points[1], boxes is None)], 1)
        if boxes is not None:
            sparse = torch.cat([sparse, self._embed_boxes(boxes)], dim=1)
        if masks is not None:
            dense = self._embed_masks(masks)
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
        return sparse, dense


class OfficialMaskDecoder(SharedModule):
    """The official `MaskDecoder`: keyword names as the official ones, a plain 4-tuple back."""

    # the official switches, as every released checkpoint sets them
    num_multimask_outputs = 3
    pred_obj_scores = True
    use_high_res_features = True
    use_multimask_token_for_obj_ptr = True

    def __init__(self, inner: MaskDecoder) -> None:
        super().__init__(inner)

    def predict_masks(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        repeat_image: bool,
        high_res_features: list[Tensor] | tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """All 4 mask tokens' outputs, in the official argument order: (masks (B, 4, 4h, 4w),
        iou_pred (B, 4), mask_tokens_out (B, 4, C), object_score_logits (B, 1))."""
        if high_res_features is None or len(high_res_features) != 2:
            raise ValueError("high_res_features must be the stride-4 and stride-8 features")
        out = self._inner.predict_masks(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            tuple(high_res_features),
            repeat_image,
        )
        return tuple(out)  # type: ignore[return-value]

    def forward(
        self,
        image_embeddings: Tensor,
        image_pe: Tensor,
        sparse_prompt_embeddings: Tensor,
        dense_prompt_embeddings: Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[Tensor] | tuple[Tensor, Tensor] | None = None,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(masks (B, M, 4h, 4w), iou_pred (B, M), sam_tokens_out (B, M', C),
        object_score_logits (B, 1)), M = 3 with `multimask_output` else 1."""
        if high_res_features is None or len(high_res_features) != 2:
            raise ValueError(
                "high_res_features must be the stride-4 and stride-8 features "
                "(predictor._features['high_res_feats'] or model.forward_image(x)"
                "['backbone_fpn'][:2]): every released SAM 2 model uses them, got "
                f"{None if high_res_features is None else len(high_res_features)} maps"
            )
        out = self._inner(
            image_embeddings,
            image_pe,
            sparse_prompt_embeddings,
            dense_prompt_embeddings,
            multimask_output=multimask_output,
            repeat_image=repeat_image,
            high_res_features=tuple(high_res_features),
        )
        return out.masks, out.iou, out.tokens, out.object_score_logits

    def _get_stability_scores(self, mask_logits: Tensor) -> Tensor:
        """(B, M) stability of each mask: IoU of the masks thresholded at ±delta."""
        return stability_scores(mask_logits, self.dynamic_multimask_stability_delta)

    def _dynamic_multimask_via_stability(
        self, all_mask_logits: Tensor, all_iou_scores: Tensor
    ) -> tuple[Tensor, Tensor]:
        """The single-mask output, replaced by the best multimask one where it is unstable."""
        return self._inner._dynamic_fallback(all_mask_logits, all_iou_scores)


class OfficialMemoryAttention(SharedModule):
    """The official `MemoryAttention`: sequence-first tensors, `curr` a tensor or a list of one."""

    batch_first = True  # inside the layers (the official config's setting)
    pos_enc_at_input = True

    def __init__(self, inner: MemoryAttention) -> None:
        super().__init__(inner)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(
        self,
        curr: Tensor | list[Tensor],
        memory: Tensor,
        curr_pos: Tensor | list[Tensor] | None = None,
        memory_pos: Tensor | None = None,
        num_obj_ptr_tokens: int = 0,
    ) -> Tensor:
        """curr, curr_pos (HW, B, C); memory, memory_pos (M, B, mem_dim) -> (HW, B, C)."""
        if isinstance(curr, (list, tuple)):
            if len(curr) != 1 or not isinstance(curr_pos, (list, tuple)) or len(curr_pos) != 1:
                raise ValueError(
                    "curr and curr_pos given as lists must hold one tensor each (the lowest-"
                    f"resolution level), got {len(curr)} and "
                    f"{len(curr_pos) if isinstance(curr_pos, (list, tuple)) else curr_pos!r}"
                )
            curr, curr_pos = curr[0], curr_pos[0]
        if curr.shape[1] != memory.shape[1]:
            raise ValueError(
                f"curr (HW, B, C) and memory (M, B, C) must have the same batch size, got "
                f"{tuple(curr.shape)} and {tuple(memory.shape)}"
            )
        pos = torch.zeros_like(curr) if curr_pos is None else curr_pos
        mpos = torch.zeros_like(memory) if memory_pos is None else memory_pos
        out = self._inner(
            curr.transpose(0, 1),
            pos.transpose(0, 1),
            memory.transpose(0, 1),
            mpos.transpose(0, 1),
            num_obj_ptr_tokens,
        )
        return out.transpose(0, 1)


class OfficialMemoryEncoder(SharedModule):
    """The official `MemoryEncoder`: mask logits (sigmoid applied here unless skipped)."""

    def __init__(self, inner: MemoryEncoder) -> None:
        super().__init__(inner)

    def forward(
        self, pix_feat: Tensor, masks: Tensor, skip_mask_sigmoid: bool = False
    ) -> dict[str, Any]:
        """pix_feat (B, C, h, w), masks (B, 1, S, S) -> {"vision_features": (B, mem_dim, h, w),
        "vision_pos_enc": [(B, mem_dim, h, w)]}."""
        if not skip_mask_sigmoid:
            masks = torch.sigmoid(masks)
        out = self._inner(pix_feat, masks)
        return {"vision_features": out.features, "vision_pos_enc": [out.pos.to(out.features.dtype)]}
