"""Prompt encoder: points and boxes -> sparse tokens, a low-res mask -> a dense embedding.

Point labels: 1 positive click, 0 negative click, 2 box top-left, 3 box bottom-right,
-1 padding ("not a point"). SAM 2 always passes boxes as two labelled points, so `forward`
takes points only (plus the mask).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sam2r.model.common import LayerNorm2d
from sam2r.model.position import PositionEmbeddingRandom


class PromptEncoder(nn.Module):
    """Encodes prompts for the mask decoder.

    Args:
        embed_dim: token width (the model's hidden dim).
        image_embedding_size: (h, w) of the image embedding (S/16).
        input_image_size: (S, S), the frame the coordinates are in.
        mask_in_chans: hidden channels of the mask downscaler.
    """

    def __init__(
        self,
        embed_dim: int,
        image_embedding_size: tuple[int, int],
        input_image_size: tuple[int, int],
        mask_in_chans: int = 16,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.input_image_size = input_image_size
        self.image_embedding_size = image_embedding_size
        self.pe_layer = PositionEmbeddingRandom(embed_dim // 2)
        # labels 0, 1, 2, 3: negative, positive, box corner 1, box corner 2
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        self.mask_input_size = (4 * image_embedding_size[0], 4 * image_embedding_size[1])
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans // 4),
            nn.GELU(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),
            LayerNorm2d(mask_in_chans),
            nn.GELU(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> Tensor:
        """Position encoding of the image embedding grid, (1, C, h, w)."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """points (B, N, 2) in input-frame pixels, labels (B, N) -> (B, N(+1), C)."""
        points = points + 0.5  # centre of the pixel
        if pad:
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, -labels.new_ones(labels.shape[0], 1)], dim=1)
        emb = self.pe_layer.forward_with_coords(points, self.input_image_size)
        lab = labels.unsqueeze(-1)
        emb = torch.where(lab == -1, torch.zeros_like(emb), emb)
        emb = emb + (lab == -1) * self.not_a_point_embed.weight
        for i, table in enumerate(self.point_embeddings):
            emb = emb + (lab == i) * table.weight
        return emb

    def _batch_size(self, points: tuple[Tensor, Tensor] | None, masks: Tensor | None) -> int:
        if points is not None:
            return points[0].shape[0]
        if masks is not None:
            return masks.shape[0]
        return 1

    def forward(
        self, points: tuple[Tensor, Tensor] | None, masks: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        """Embed prompts.

        Args:
            points: (coords (B, N, 2) in input-frame pixels, labels (B, N)), or None.
            masks: (B, 1, 4h, 4w) mask logits, or None.

        Returns:
            sparse (B, N+1, C) (a padding point is always appended) and dense (B, C, h, w).
        """
        b = self._batch_size(points, masks)
        weight = self.no_mask_embed.weight
        if points is not None:
            sparse = self._embed_points(points[0], points[1], pad=True)
        else:
            sparse = weight.new_empty((b, 0, self.embed_dim))
        if masks is not None:
            dense = self.mask_downscaling(masks)
        else:
            h, w = self.image_embedding_size
            dense = weight.reshape(1, -1, 1, 1).expand(b, -1, h, w)
        return sparse, dense
