"""The four exportable graphs: thin `nn.Module` wrappers around a `SAM2Model`'s modules with
plain tensor inputs and outputs, the shapes the ONNX runtime (`sam2r.onnx.steps`) feeds.

* `ImageEncoderGraph`: normalised image -> stride-16 embedding (raw and with `no_mem_embed`),
  its position encoding, and the stride-4 / stride-8 features the decoder reads;
* `PromptDecoderGraph`: embedding + clicks + optional low-res mask -> all 4 masks, IoUs, the
  object score and the (gated) object pointer of each mask token. Choosing 1 or 3 masks, the
  dynamic fallback and the pointer of the chosen mask are done by the caller (numpy);
* `MemoryAttentionGraph`: the frame's tokens attend to N spatial memories and P object
  pointers, both dynamic axes; the temporal encodings and the pointers' projection are inside,
  and RoPE is written as real rotations broadcast over the N memory frames (no complex numbers,
  no python-side count of RoPE keys);
* `MemoryEncoderGraph`: low-res mask logits -> upsampled, binarised or sigmoid-scaled ->
  memory features and their position encoding.

The wrappers call the model's own submodules and follow `SAM2Model`'s step methods; what differs
is only how dynamic counts are expressed. `sam2r.onnx.export` exports them; tests compare each
one against the torch step it mirrors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.model.common import linear
from sam2r.model.position import axial_rope_angles, get_1d_sine_pe
from sam2r.model.sam2 import SAM2Model
from sam2r.onnx.attention import fused_active, mha_3d, rotary_embedding


class ImageEncoderGraph(nn.Module):
    """image (B, 3, S, S) normalised -> image_embed, image_embed_no_mem, image_pos (B, C, h, w),
    high_res_0 (B, C/8, 4h, 4w), high_res_1 (B, C/4, 2h, 2w)."""

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        feats = self.model.encode_image(image)
        no_mem = self.model.no_memory(feats)
        return feats.embed, no_mem, feats.pos, feats.high_res[0], feats.high_res[1]


class PromptDecoderGraph(nn.Module):
    """Prompt encoder + mask decoder for N prompt sets on one image.

    Inputs: image_embed (1, C, h, w), high_res_0 (1, C/8, 4h, 4w), high_res_1 (1, C/4, 2h, 2w),
    point_coords (N, P, 2) in model-input pixels, point_labels (N, P) int64 (1, 0, 2/3 box
    corners, -1 padding), mask_input (N, 1, 4h, 4w) logits, has_mask_input (N,) 1.0 / 0.0.

    Outputs: masks (N, 4, 4h, 4w) logits of the 4 mask tokens (single-mask token first),
    iou (N, 4), object_score_logits (N, 1), obj_ptr (N, 4, C) pointer of each token, replaced
    by `no_obj_ptr` where the object score is <= 0.
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        image_embed: Tensor,
        high_res_0: Tensor,
        high_res_1: Tensor,
        point_coords: Tensor,
        point_labels: Tensor,
        mask_input: Tensor,
        has_mask_input: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        m = self.model
        pe = m.sam_prompt_encoder
        sparse = pe._embed_points(point_coords, point_labels, pad=True)  # (N, P+1, C)
        dense = pe.mask_downscaling(mask_input)
        no_mask = pe.no_mask_embed.weight.reshape(1, -1, 1, 1)
        dense = torch.where(has_mask_input.view(-1, 1, 1, 1) > 0, dense, no_mask)  # (N, C, h, w)
        n = point_coords.shape[0]
        dec = m.sam_mask_decoder
        image = image_embed.expand(n, -1, -1, -1)
        t = dec.decode_tokens(image, pe.get_dense_pe(), sparse, dense, repeat_image=False)
        hr = (high_res_0.expand(n, -1, -1, -1), high_res_1.expand(n, -1, -1, -1))
        masks = dec.decode_masks(t.image, t.mask_tokens, hr)
        present = (t.object_score_logits > 0).float().unsqueeze(1)  # (N, 1, 1)
        ptr = m.obj_ptr_proj(t.mask_tokens)  # (N, 4, C)
        ptr = present * ptr + (1 - present) * m.no_obj_ptr
        return masks, t.iou, t.object_score_logits, ptr


def _rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate channel pairs of x (B, heads, R*L, d) by angles (L, d/2), repeated over R frames
    (R may be a dynamic axis); one fused node in a fused export (`attention.rotary_embedding`)."""
    return rotary_embedding(x, cos, sin, _rope_plain)


def _rope_plain(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """`_rope` in plain ops: the angles broadcast over the R frames."""
    b, h, _, d = x.shape
    n = cos.shape[0]
    xf = x.reshape(b, h, -1, n, d // 2, 2)
    a, c = xf[..., 0], xf[..., 1]
    out = torch.stack((a * cos - c * sin, a * sin + c * cos), dim=-1)
    return out.reshape(b, h, -1, d)


class MemoryAttentionGraph(nn.Module):
    """The frame's features conditioned on B objects' memories.

    Inputs: image_embed, image_pos (1, C, h, w) raw features of the frame and their position
    encoding; memory (B, N, mem_dim, h, w) N spatial memories per object; memory_pos
    (1, mem_dim, h, w) their (shared) position encoding; memory_slot (N,) int64 temporal slot of
    each memory (0 conditioning frame, 1 .. num_maskmem-1 that many tracked frames back);
    obj_ptrs (B, P, C) P object pointers; obj_ptr_dist (P,) their temporal distances already
    divided by (max_ptrs - 1).

    Output: pix_feat (B, C, h, w), the input of the prompt decoder.
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model
        att = model.memory_attention
        first = att.layers[0].self_attn
        side = model.image_size // model.cfg.backbone_stride
        ang = axial_rope_angles(first.head_dim, side, side, first.rope_theta)
        self.register_buffer("rope_cos", torch.cos(ang), persistent=False)
        self.register_buffer("rope_sin", torch.sin(ang), persistent=False)

    def _attend(
        self,
        attn: nn.Module,
        q: Tensor,
        k_parts: list[Tensor],
        v_parts: list[Tensor],
        rope_first: bool,
    ) -> Tensor:
        """RoPE attention of q (B, L, C) to keys / values given as parts (B, Mi, kv_in_dim);
        RoPE applies to q and, when `rope_first`, to the first part of the keys."""
        h = attn.num_heads
        width = attn.internal_dim // h
        qh = _split(linear(q, attn.q_proj), h, width)
        qh = _rope(qh, self.rope_cos, self.rope_sin)
        ks, vs = [], []
        for i, (k, v) in enumerate(zip(k_parts, v_parts, strict=True)):
            kh = _split(linear(k, attn.k_proj), h, width)
            if i == 0 and rope_first:
                kh = _rope(kh, self.rope_cos, self.rope_sin)
            ks.append(kh)
            if attn.kv_in_dim >= width:
                vs.append(_split(linear(v, attn.v_proj), h, width))
        kh = ks[0] if len(ks) == 1 else torch.cat(ks, dim=2)
        if attn.kv_in_dim < width:
            # values narrower than a head (the memory's 64 channels): attend over the raw
            # values, then project; softmax rows sum to 1, so softmax(QK^T)(V Wv^T + bv) =
            # (softmax(QK^T) V) Wv^T + bv, with a quarter of the multiply-adds (as the torch
            # model does on the CPU, sam2r.model.memory_attention)
            v = v_parts[0] if len(v_parts) == 1 else torch.cat(v_parts, dim=1)  # (B, M, kv)
            if fused_active():
                # one fused node over 3-D tensors (its flash kernel; sam2r.onnx.attention);
                # each head mixes the same raw values
                b, n, m = qh.shape[0], qh.shape[2], kh.shape[2]
                mixed = mha_3d(
                    qh.transpose(1, 2).reshape(b, n, h * width),
                    kh.transpose(1, 2).reshape(b, m, h * width),
                    v if h == 1 else v.repeat(1, 1, h),
                    h,
                )
                mixed = mixed.reshape(b, n, h, -1).transpose(1, 2)  # (B, heads, L, kv)
            else:
                weights = torch.softmax((qh * width**-0.5) @ kh.transpose(-1, -2), dim=-1)
                mixed = weights @ v.unsqueeze(1)  # (B, heads, L, kv)
            wv = attn.v_proj.weight.view(h, width, -1).transpose(1, 2)  # (heads, kv, width)
            out = mixed @ wv + attn.v_proj.bias.view(h, 1, width)
        else:
            vh = vs[0] if len(vs) == 1 else torch.cat(vs, dim=2)
            out = F.scaled_dot_product_attention(qh, kh, vh)
        b, _, n, c = out.shape
        return attn.out_proj(out.transpose(1, 2).reshape(b, n, h * c))

    def forward(
        self,
        image_embed: Tensor,
        image_pos: Tensor,
        memory: Tensor,
        memory_pos: Tensor,
        memory_slot: Tensor,
        obj_ptrs: Tensor,
        obj_ptr_dist: Tensor,
    ) -> Tensor:
        m = self.model
        cfg = m.cfg
        mem_dim, k = m.mem_dim, m.num_maskmem
        _, c, h, w = image_embed.shape
        b = memory.shape[0]
        curr = image_embed.flatten(2).transpose(1, 2)  # (1, hw, C)
        pos = image_pos.flatten(2).transpose(1, 2)

        # spatial memories: tokens (B, N*hw, mem_dim), position = sine + temporal slot encoding
        tok = memory.flatten(3).transpose(2, 3).reshape(b, -1, mem_dim)
        tpos = m.maskmem_tpos_enc.view(k, mem_dim)[k - 1 - memory_slot]  # (N, mem_dim)
        mpos = memory_pos.flatten(2).transpose(1, 2)  # (1, hw, mem_dim)
        mpos = (mpos.unsqueeze(1) + tpos.view(1, -1, 1, mem_dim)).reshape(1, -1, mem_dim)

        # object pointers: each C-wide pointer becomes C/mem_dim tokens of width mem_dim
        n_ptr = obj_ptrs.shape[1]
        split = c // mem_dim
        if cfg.add_tpos_enc_to_obj_ptrs:
            dim = c if cfg.proj_tpos_enc_in_obj_ptrs else mem_dim
            pe = m.obj_ptr_tpos_proj(get_1d_sine_pe(obj_ptr_dist, dim=dim))  # (P, mem_dim)
        else:
            pe = obj_ptr_dist.view(-1, 1).expand(-1, mem_dim) * 0.0
        ptok = obj_ptrs.reshape(b, n_ptr * split, mem_dim)
        ppos = pe.unsqueeze(1).expand(-1, split, -1).reshape(1, n_ptr * split, mem_dim)

        att = m.memory_attention
        x = curr + 0.1 * pos
        for i, layer in enumerate(att.layers):
            y = layer.norm1(x)
            x = x + self._attend(layer.self_attn, y, [y], [y], rope_first=True)
            if i == 0:  # the self-attention of the frame alone, shared by the B objects
                x = x.expand(b, -1, -1)
            y = layer.norm2(x)
            keys = [tok + mpos, ptok + ppos]
            x = x + self._attend(layer.cross_attn_image, y, keys, [tok, ptok], rope_first=True)
            y = layer.norm3(x)
            x = x + layer.linear2(linear(y, layer.linear1, "relu"))
        x = att.norm(x)
        return x.transpose(1, 2).reshape(b, c, h, w)


def _split(x: Tensor, heads: int, width: int) -> Tensor:
    """(B, L, heads * width) -> (B, heads, L, width); L may be 0 (no -1 in the reshape, which
    ONNX cannot resolve for an empty tensor)."""
    b, n, _ = x.shape
    return x.reshape(b, n, heads, width).transpose(1, 2)


class MemoryEncoderGraph(nn.Module):
    """Inputs: image_embed (1, C, h, w) raw features, low_res_masks (B, 1, 4h, 4w) logits of the
    output masks, object_score_logits (B, 1), from_points (1,) 1.0 when the masks came from
    clicks (binarised when the model is configured so).

    Outputs: maskmem_features (B, mem_dim, h, w), maskmem_pos (1, mem_dim, h, w).
    """

    def __init__(self, model: SAM2Model) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        image_embed: Tensor,
        low_res_masks: Tensor,
        object_score_logits: Tensor,
        from_points: Tensor,
    ) -> tuple[Tensor, Tensor]:
        m = self.model
        cfg = m.cfg
        s = m.image_size
        high = F.interpolate(low_res_masks, size=(s, s), mode="bilinear", align_corners=False)
        mask = torch.sigmoid(high)
        if cfg.binarize_mask_from_pts_for_mem_enc:
            mask = torch.where(from_points.view(1, 1, 1, 1) > 0, (high > 0).float(), mask)
        if cfg.sigmoid_scale_for_mem_enc != 1.0:
            mask = mask * cfg.sigmoid_scale_for_mem_enc
        if cfg.sigmoid_bias_for_mem_enc != 0.0:
            mask = mask + cfg.sigmoid_bias_for_mem_enc
        out = m.memory_encoder(image_embed, mask)
        feats = out.features
        if m.no_obj_embed_spatial is not None:
            absent = 1 - (object_score_logits > 0).float()  # (B, 1)
            feats = feats + absent[..., None, None] * m.no_obj_embed_spatial[..., None, None]
        return feats, out.pos[:1]
