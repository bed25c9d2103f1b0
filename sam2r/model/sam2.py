"""The SAM 2 model: the modules with Meta's parameter names, and the step methods that the
predictors call. No orchestration lives here: which frames feed the memory, what is stored and
for how long is decided by the predictors (`sam2r.predictor`).

Steps for one frame of a video (an image is a video of one frame with an empty memory):

    feats = model.encode_image(images)                             # once per frame
    pix = model.condition_on_memory(feats, memory)                 # or model.no_memory(feats)
    out = model.decode_frame(pix, feats.high_res, points, labels, mask)    # or mask_as_output
    mem = model.encode_memory(feats, out.high_res_masks, out.object_score_logits, from_points)

Images: `prompt_and_decode` (prompts -> masks). Many prompts on one image (everything mode):
`prompt_tokens` (IoU predictions, no masks yet) then `masks_from_tokens` for the prompts kept.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.config import SAM2Config
from sam2r.model.common import MLP, conv1x1
from sam2r.model.hiera import Hiera
from sam2r.model.mask_decoder import DecoderOutput, DecoderTokens, MaskDecoder
from sam2r.model.memory_attention import MemoryAttention
from sam2r.model.memory_encoder import MemoryEncoder, MemoryEncoderOutput
from sam2r.model.neck import FpnNeck, ImageEncoder
from sam2r.model.position import get_1d_sine_pe
from sam2r.model.prompt_encoder import PromptEncoder

NO_OBJ_SCORE = -1024.0  # mask logit given to every pixel of a frame where the object is absent


class ImageFeatures(NamedTuple):
    """Image-encoder output of B frames, ready for the heads."""

    embed: Tensor  # (B, C, h, w) stride-16 features (without no_mem_embed)
    pos: Tensor  # (B, C, h, w) sine position encoding of `embed`
    high_res: tuple[Tensor, Tensor]  # (B, C/8, 4h, 4w), (B, C/4, 2h, 2w), after conv_s0 / conv_s1
    # (B, hw, C) the memory attention's first step, which reads no memory (`memory_queries`);
    # None until computed. Every object tracked on the frame starts from it.
    memory_queries: Tensor | None = None


class FrameOutput(NamedTuple):
    """Per-frame output of the SAM heads for B objects."""

    low_res_masks: Tensor  # (B, 1, S/4, S/4) logits of the selected mask
    high_res_masks: Tensor  # (B, 1, S, S) the same, upsampled
    iou: Tensor  # (B, M) predicted IoUs of all candidate masks
    obj_ptr: Tensor  # (B, C) object pointer
    object_score_logits: Tensor  # (B, 1) > 0 where the object is present
    low_res_multimasks: Tensor  # (B, M, S/4, S/4) all candidate masks


class SAM2Model(nn.Module):
    """SAM 2 / SAM 2.1.

    Args:
        cfg: the model configuration (`sam2r.config.SAM2Config`).
    """

    def __init__(self, cfg: SAM2Config) -> None:
        super().__init__()
        self.cfg = cfg
        hidden, mem_dim = cfg.hidden_dim, cfg.mem_dim
        if hidden % 16 != 0 or hidden % mem_dim != 0:
            raise ValueError(
                f"hidden dim {hidden} must be a multiple of 16 and of mem_dim {mem_dim}"
            )
        if cfg.image_size % 32 != 0:
            raise ValueError(f"image_size must be a multiple of 32, got {cfg.image_size}")
        self.image_size = cfg.image_size
        self.hidden_dim = hidden
        self.mem_dim = mem_dim
        self.num_maskmem = cfg.num_maskmem

        self.image_encoder = ImageEncoder(Hiera(cfg.hiera), FpnNeck(cfg.neck), scalp=cfg.neck.scalp)
        self.mask_downsample = nn.Conv2d(1, 1, kernel_size=4, stride=4)
        self.memory_attention = MemoryAttention(cfg.memory_attention)
        self.memory_encoder = MemoryEncoder(cfg.memory_encoder)

        self.maskmem_tpos_enc = nn.Parameter(torch.zeros(cfg.num_maskmem, 1, 1, mem_dim))
        self.no_mem_embed = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_mem_pos_enc = nn.Parameter(torch.zeros(1, 1, hidden))
        self.no_obj_ptr = nn.Parameter(torch.zeros(1, hidden))
        if cfg.no_obj_embed_spatial:
            self.no_obj_embed_spatial = nn.Parameter(torch.zeros(1, mem_dim))
        else:
            self.no_obj_embed_spatial = None
        for p in (self.maskmem_tpos_enc, self.no_mem_embed, self.no_mem_pos_enc):
            nn.init.trunc_normal_(p, std=0.02)

        side = cfg.image_size // cfg.backbone_stride
        self.sam_prompt_encoder = PromptEncoder(
            hidden, (side, side), (cfg.image_size, cfg.image_size)
        )
        self.sam_mask_decoder = MaskDecoder(
            hidden,
            dynamic_multimask_via_stability=cfg.dynamic_multimask_via_stability,
            dynamic_multimask_stability_delta=cfg.dynamic_multimask_stability_delta,
            dynamic_multimask_stability_thresh=cfg.dynamic_multimask_stability_thresh,
        )
        self.obj_ptr_proj = MLP(hidden, hidden, hidden, 3)
        if cfg.proj_tpos_enc_in_obj_ptrs:
            self.obj_ptr_tpos_proj: nn.Module = nn.Linear(hidden, mem_dim)
        else:
            self.obj_ptr_tpos_proj = nn.Identity()

    @property
    def device(self) -> torch.device:
        return self.no_mem_embed.device

    # ------------------------------------------------------------------------------------------
    # image
    # ------------------------------------------------------------------------------------------
    def encode_image(self, images: Tensor) -> ImageFeatures:
        """images: (B, 3, S, S) normalised -> features of the three levels."""
        out = self.image_encoder(images)
        s0 = conv1x1(out.features[0], self.sam_mask_decoder.conv_s0)
        s1 = conv1x1(out.features[1], self.sam_mask_decoder.conv_s1)
        return ImageFeatures(out.features[-1], out.pos[-1], (s0, s1))

    def no_memory(self, feats: ImageFeatures) -> Tensor:
        """Features of a frame read with an empty memory (images, first prompted frames)."""
        return feats.embed + self.no_mem_embed.view(1, -1, 1, 1)

    def prompt_and_decode(
        self,
        image_embed: Tensor,
        high_res: tuple[Tensor, Tensor],
        point_coords: Tensor | None,
        point_labels: Tensor | None,
        mask_input: Tensor | None,
        multimask_output: bool,
        repeat_image: bool = False,
    ) -> DecoderOutput:
        """Prompt encoder + mask decoder, as the image predictor uses them.

        Args:
            image_embed: (B or 1, C, h, w) image embedding (with no_mem_embed).
            high_res: stride-4 and stride-8 features of the same image(s).
            point_coords: (N, P, 2) in model-input pixels (boxes as 2 points labelled 2, 3).
            point_labels: (N, P).
            mask_input: (N, 1, S/4, S/4) low-res mask logits.
            multimask_output: 3 masks instead of 1.
            repeat_image: one image shared by N > 1 prompt sets.
        """
        points = None if point_coords is None else (point_coords, point_labels)
        sparse, dense = self.sam_prompt_encoder(points, mask_input)
        return self.sam_mask_decoder(
            image_embed,
            self.sam_prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            multimask_output=multimask_output,
            repeat_image=repeat_image,
            high_res_features=high_res,
        )

    def prompt_tokens(
        self,
        image_embed: Tensor,
        point_coords: Tensor | None,
        point_labels: Tensor | None,
        mask_input: Tensor | None,
        repeat_image: bool = False,
        fold_projections: bool = False,
    ) -> DecoderTokens:
        """First half of `prompt_and_decode`: the transformer and the IoU / score heads, no
        masks yet. Callers that filter on predicted IoU (the automatic mask generator) upsample
        only the survivors with `masks_from_tokens`.

        Args: as `prompt_and_decode`, plus
            fold_projections: reorder the transformer's cross attentions for many prompt sets
                (same math, float rounding differs at the 1e-6 level, about half the work).

        Returns:
            `DecoderTokens` of all 4 mask tokens: iou (N, 4), mask_tokens (N, 4, C),
            object_score_logits (N, 1), image (N, C, h, w).
        """
        points = None if point_coords is None else (point_coords, point_labels)
        sparse, dense = self.sam_prompt_encoder(points, mask_input)
        return self.sam_mask_decoder.decode_tokens(
            image_embed,
            self.sam_prompt_encoder.get_dense_pe(),
            sparse,
            dense,
            repeat_image,
            fold_projections,
        )

    def masks_from_tokens(
        self, tokens: DecoderTokens, high_res: tuple[Tensor, Tensor], multimask_output: bool
    ) -> DecoderOutput:
        """Second half of `prompt_and_decode`, for `prompt_tokens` output (or rows of it).

        Args:
            tokens: from `prompt_tokens`, possibly indexed to a subset of its N rows.
            high_res: stride-4 / stride-8 features of the image (batch 1 or N).
            multimask_output: 3 masks instead of 1 (then the dynamic fallback applies).

        Returns:
            the same `DecoderOutput` as `prompt_and_decode` for those rows.
        """
        dec = self.sam_mask_decoder
        masks = dec.decode_masks(tokens.image, tokens.mask_tokens, high_res)
        masks, iou, toks = dec.select_masks(masks, tokens.iou, tokens.mask_tokens, multimask_output)
        return DecoderOutput(masks, iou, toks, tokens.object_score_logits)

    # ------------------------------------------------------------------------------------------
    # video steps
    # ------------------------------------------------------------------------------------------
    def use_multimask(self, is_init_cond_frame: bool, num_points: int) -> bool:
        """Whether the heads output 3 masks (then the one with the best IoU is kept)."""
        c = self.cfg
        return (
            c.multimask_output_in_sam
            and (is_init_cond_frame or c.multimask_output_for_tracking)
            and c.multimask_min_pt_num <= num_points <= c.multimask_max_pt_num
        )

    def decode_frame(
        self,
        pix_feat: Tensor,
        high_res: tuple[Tensor, Tensor],
        point_coords: Tensor | None = None,
        point_labels: Tensor | None = None,
        mask_input: Tensor | None = None,
        multimask_output: bool = False,
        select: Callable[[Tensor, Tensor], Tensor] | None = None,
    ) -> FrameOutput:
        """The SAM heads on memory-conditioned features of B objects.

        Args:
            pix_feat: (B, C, h, w) features after memory attention (or `no_memory`).
            high_res: stride-4 / stride-8 features, batch B.
            point_coords: (B, P, 2) in model-input pixels, or None (no clicks).
            point_labels: (B, P).
            mask_input: (B, 1, H, W) mask logits, resized to S/4 when needed, or None.
            multimask_output: 3 candidates, keep the best by predicted IoU.
            select: with `multimask_output`, picks the candidate to keep instead:
                (B, M, S/4, S/4) candidate logits (absent objects at NO_OBJ_SCORE), (B, M)
                predicted IoUs -> (B,) int64 indices (None: the best predicted IoU).
        """
        b = pix_feat.shape[0]
        if point_coords is None:
            point_coords = pix_feat.new_zeros(b, 1, 2)
            point_labels = -torch.ones(b, 1, dtype=torch.int32, device=pix_feat.device)
        if mask_input is not None:
            size = self.sam_prompt_encoder.mask_input_size
            if tuple(mask_input.shape[-2:]) != size:
                mask_input = F.interpolate(
                    mask_input.float(),
                    size=size,
                    mode="bilinear",
                    align_corners=False,
                    antialias=True,
                )
        out = self.prompt_and_decode(
            pix_feat, high_res, point_coords, point_labels, mask_input, multimask_output
        )
        present = out.object_score_logits > 0  # (B, 1)
        multimasks = torch.where(present[:, None, None], out.masks, NO_OBJ_SCORE).float()

        token = out.tokens[:, 0]
        if multimask_output:
            best = torch.argmax(out.iou, dim=-1) if select is None else select(multimasks, out.iou)
            rows = torch.arange(b, device=pix_feat.device)
            low_res = multimasks[rows, best].unsqueeze(1)
            if out.tokens.shape[1] > 1:
                token = out.tokens[rows, best]
        else:
            low_res = multimasks
        high_res_masks = F.interpolate(
            low_res, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False
        )
        obj_ptr = self._gate_pointer(self.obj_ptr_proj(token), present.float())
        return FrameOutput(
            low_res, high_res_masks, out.iou, obj_ptr, out.object_score_logits, multimasks
        )

    def _gate_pointer(self, obj_ptr: Tensor, present: Tensor) -> Tensor:
        """Replace the pointer of absent objects by the learned `no_obj_ptr`."""
        return present * obj_ptr + (1 - present) * self.no_obj_ptr

    def mask_as_output(
        self, feats_embed: Tensor, high_res: tuple[Tensor, Tensor], mask: Tensor
    ) -> FrameOutput:
        """A mask prompt taken as the output itself (no SAM decoding of the mask), ±10 logits.

        Args:
            feats_embed: (B, C, h, w) raw image features (the pointer is decoded from them).
            high_res: stride-4 / stride-8 features.
            mask: (B, 1, S, S) binary mask prompt.
        """
        m = mask.float()
        high_res_masks = m * 20.0 - 10.0
        side = self.image_size // 4
        low_res = F.interpolate(
            high_res_masks, size=(side, side), mode="bilinear", align_corners=False, antialias=True
        )
        iou = m.new_ones(m.shape[0], 1)
        ptr_out = self.decode_frame(feats_embed, high_res, mask_input=self.mask_downsample(m))
        present = torch.any(m.flatten(1) > 0.0, dim=1)[..., None].float()  # (B, 1)
        score = 20.0 * present - 10.0
        obj_ptr = self._gate_pointer(ptr_out.obj_ptr, present)
        return FrameOutput(low_res, high_res_masks, iou, obj_ptr, score, low_res)

    def condition_on_memory(
        self, feats: ImageFeatures, memory: Tensor, memory_pos: Tensor, num_obj_ptr_tokens: int
    ) -> Tensor:
        """Memory attention: (B, C, h, w) features of the current frame conditioned on memory.

        Args:
            feats: the frame's features (batch B, or 1 broadcast to the memory's batch).
            memory: (B, M, mem_dim) memory tokens (spatial memories, then pointer tokens).
            memory_pos: (B, M, mem_dim) their position encodings.
            num_obj_ptr_tokens: number of pointer tokens at the end of the memory.
        """
        b = memory.shape[0]
        _, c, h, w = feats.embed.shape
        curr = feats.embed.flatten(2).transpose(1, 2).expand(b, -1, -1)  # (B, hw, C)
        pos = feats.pos.flatten(2).transpose(1, 2).expand(b, -1, -1)
        out = self.memory_attention(
            curr, pos, memory, memory_pos, num_obj_ptr_tokens, first=feats.memory_queries
        )
        return out.transpose(1, 2).reshape(b, c, h, w)

    def with_memory_queries(self, feats: ImageFeatures) -> ImageFeatures:
        """`feats` with `memory_queries` filled in, for reuse by every object on the frame."""
        if feats.memory_queries is not None:
            return feats
        curr = feats.embed.flatten(2).transpose(1, 2)  # (B, hw, C)
        pos = feats.pos.flatten(2).transpose(1, 2)
        return feats._replace(memory_queries=self.memory_attention.first_self_attention(curr, pos))

    def spatial_memory_tokens(
        self, features: Tensor, pos: Tensor, t_pos: int
    ) -> tuple[Tensor, Tensor]:
        """A stored memory as tokens: (B, mem_dim, h, w) -> (B, hw, mem_dim) + temporal slot.

        `t_pos` = 0 for conditioning frames, 1..num_maskmem-1 for the frame that many steps back.
        """
        tokens = features.float().flatten(2).transpose(1, 2)
        p = pos.flatten(2).transpose(1, 2) + self.maskmem_tpos_enc[
            self.num_maskmem - t_pos - 1
        ].view(1, 1, -1)
        return tokens, p

    def pointer_tokens(self, ptrs: Tensor, rel_pos: Tensor, max_ptrs: int) -> tuple[Tensor, Tensor]:
        """Object pointers as memory tokens.

        Args:
            ptrs: (N, B, C) pointers of N frames.
            rel_pos: (N,) temporal distances of those frames.
            max_ptrs: min(num_frames, max_obj_ptrs_in_encoder), normalises the distances.

        Returns:
            tokens and position encodings, (B, N * C/mem_dim, mem_dim) each.
        """
        n, b, c = ptrs.shape
        if self.cfg.add_tpos_enc_to_obj_ptrs:
            dim = c if self.cfg.proj_tpos_enc_in_obj_ptrs else self.mem_dim
            pe = get_1d_sine_pe(rel_pos.to(ptrs.device) / (max_ptrs - 1), dim=dim)
            pe = self.obj_ptr_tpos_proj(pe).unsqueeze(1).expand(-1, b, self.mem_dim)
        else:
            pe = ptrs.new_zeros(n, b, self.mem_dim)
        split = c // self.mem_dim
        if split > 1:
            # each pointer becomes `split` tokens of width mem_dim
            ptrs = ptrs.reshape(n, b, split, self.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
            pe = pe.repeat_interleave(split, dim=0)
        return ptrs.transpose(0, 1), pe.transpose(0, 1)

    def encode_memory(
        self,
        feats_embed: Tensor,
        high_res_masks: Tensor,
        object_score_logits: Tensor,
        mask_from_points: bool,
    ) -> MemoryEncoderOutput:
        """Encode a frame's output into a memory.

        Args:
            feats_embed: (B, C, h, w) raw image features of the frame (not memory-conditioned).
            high_res_masks: (B, 1, S, S) output mask logits.
            object_score_logits: (B, 1).
            mask_from_points: the mask came from clicks (binarised when configured).
        """
        c = self.cfg
        if c.binarize_mask_from_pts_for_mem_enc and mask_from_points and not self.training:
            mask = (high_res_masks > 0).float()
        else:
            mask = torch.sigmoid(high_res_masks)
        if c.sigmoid_scale_for_mem_enc != 1.0:
            mask = mask * c.sigmoid_scale_for_mem_enc
        if c.sigmoid_bias_for_mem_enc != 0.0:
            mask = mask + c.sigmoid_bias_for_mem_enc
        out = self.memory_encoder(feats_embed, mask)
        feats = out.features
        if self.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # (B, 1)
            feats = feats + absent[..., None, None] * self.no_obj_embed_spatial[..., None, None]
        return MemoryEncoderOutput(feats, out.pos)

    def forward(self, images: Tensor) -> ImageFeatures:
        """`encode_image` (so that `model(images)` works for export and hooks)."""
        return self.encode_image(images)
