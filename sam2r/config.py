"""Model configurations: frozen dataclasses and the registry of the 8 released variants.

A field exists only where released checkpoints differ (Hiera sizes, the SAM 2 -> 2.1 switches)
or where a user has a real knob to turn (memory limits, hole filling, non-overlap). Everything the
released models share (high-res features in the decoder, object pointers, occlusion head, ...) is
fixed in the modules. Reading the official Hydra-style YAML files lives in `sam2r.configs.yaml`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any


@dataclass(frozen=True)
class HieraConfig:
    """Hiera trunk (`image_encoder.trunk`)."""

    embed_dim: int = 96  # channels of stage 1; doubled at each later stage
    num_heads: int = 1  # attention heads of stage 1; doubled at each later stage
    stages: tuple[int, ...] = (2, 3, 16, 3)  # blocks per stage
    global_att_blocks: tuple[int, ...] = (12, 16, 20)  # blocks with global (unwindowed) attention
    window_spec: tuple[int, ...] = (8, 4, 14, 7)  # window size per stage
    window_pos_embed_bkg_spatial_size: tuple[int, int] = (
        14,
        14,
    )  # size of the interpolated pos-embed
    q_pool: int = 3  # number of stage transitions that pool the query
    q_stride: tuple[int, int] = (2, 2)  # pooling stride at those transitions
    dim_mul: float = 2.0  # channel multiplier per stage
    head_mul: float = 2.0  # head multiplier per stage
    drop_path_rate: float = 0.0  # stochastic depth (training only)

    @property
    def channel_list(self) -> tuple[int, ...]:
        """Output channels of the four stages, deepest first (as the neck expects them)."""
        dims = [int(self.embed_dim * self.dim_mul**i) for i in range(len(self.stages))]
        return tuple(reversed(dims))


@dataclass(frozen=True)
class NeckConfig:
    """FPN neck (`image_encoder.neck`)."""

    d_model: int = 256  # output channels of every level (= the model's hidden dim)
    backbone_channel_list: tuple[int, ...] = (768, 384, 192, 96)  # trunk channels, deepest first
    fpn_top_down_levels: tuple[int, ...] = (2, 3)  # levels that receive the top-down path
    fpn_interp_model: str = "nearest"  # upsampling mode of the top-down path
    fuse_type: str = "sum"  # "sum" or "avg" of lateral and top-down features
    scalp: int = 1  # number of lowest-resolution levels dropped after the neck


@dataclass(frozen=True)
class MemoryAttentionConfig:
    """Memory attention (`memory_attention`): self- and cross-attention to the memory bank."""

    d_model: int = 256  # token width (= hidden dim)
    num_layers: int = 4  # number of layers
    dim_feedforward: int = 2048  # MLP width
    num_heads: int = 1  # heads of both attentions
    kv_in_dim: int = 64  # width of memory tokens (= memory encoder out_dim)
    rope_theta: float = 10000.0  # RoPE base
    feat_sizes: tuple[int, int] = (64, 64)  # RoPE grid (recomputed when the input differs)
    dropout: float = 0.1  # dropout (training only)


@dataclass(frozen=True)
class MemoryEncoderConfig:
    """Memory encoder (`memory_encoder`): mask downsampler + fuser -> `out_dim` memory features."""

    out_dim: int = 64  # channels of a stored memory (mem_dim)
    in_dim: int = 256  # channels of the pixel features (= hidden dim)
    mask_kernel_size: int = 3  # MaskDownSampler conv kernel
    mask_stride: int = 2  # MaskDownSampler conv stride
    mask_padding: int = 1  # MaskDownSampler conv padding
    mask_total_stride: int = 16  # MaskDownSampler total stride (= backbone stride)
    fuser_num_layers: int = 2  # CXBlocks in the fuser
    fuser_kernel_size: int = 7  # CXBlock depthwise kernel
    fuser_padding: int = 3  # CXBlock depthwise padding
    layer_scale_init_value: float = 1e-6  # CXBlock layer-scale init


@dataclass(frozen=True)
class SAM2Config:
    """A whole SAM 2 model plus its inference defaults.

    The defaults are those the official `build_sam2_video_predictor` applies to SAM 2.1 tiny.
    """

    name: str = "custom"  # registry name, or "custom"
    image_size: int = 1024  # square input resolution
    hiera: HieraConfig = field(default_factory=HieraConfig)
    neck: NeckConfig = field(default_factory=NeckConfig)
    memory_attention: MemoryAttentionConfig = field(default_factory=MemoryAttentionConfig)
    memory_encoder: MemoryEncoderConfig = field(default_factory=MemoryEncoderConfig)
    num_maskmem: int = 7  # memory slots: 1 for conditioning frames + the last num_maskmem-1 frames

    # --- the SAM 2 -> SAM 2.1 switches (all False for SAM 2, True for SAM 2.1) ---
    no_obj_embed_spatial: bool = True  # learned embedding added to memories of occluded frames
    add_tpos_enc_to_obj_ptrs: bool = True  # temporal encoding of object pointers
    proj_tpos_enc_in_obj_ptrs: bool = True  # project that encoding (obj_ptr_tpos_proj)
    use_signed_tpos_enc_to_obj_ptrs: bool = True  # signed distance for conditioning-frame pointers

    # --- inference knobs ---
    sigmoid_scale_for_mem_enc: float = (
        20.0  # mask logits -> memory-encoder input: sigmoid*scale+bias
    )
    sigmoid_bias_for_mem_enc: float = -10.0
    binarize_mask_from_pts_for_mem_enc: bool = (
        True  # binarise masks of point-prompted frames for memory
    )
    multimask_output_in_sam: bool = True  # allow 3 masks on prompted frames
    multimask_output_for_tracking: bool = True  # 3 masks + argmax IoU on tracked frames
    multimask_min_pt_num: int = 0  # multimask when min <= number of clicks <= max
    multimask_max_pt_num: int = 1
    dynamic_multimask_via_stability: bool = True  # single-mask output falls back when unstable
    dynamic_multimask_stability_delta: float = 0.05
    dynamic_multimask_stability_thresh: float = 0.98
    max_cond_frames_in_attn: int = -1  # conditioning frames read per frame (-1: all)
    memory_temporal_stride_for_eval: int = 1  # stride between the tracked frames read as memory
    max_obj_ptrs_in_encoder: int = 16  # object pointers read per frame
    non_overlap_masks_for_mem_enc: bool = False  # non-overlap constraint before memory encoding
    fill_hole_area: int = 8  # video: fill holes up to this area (low-res pixels); 0 = off
    non_overlap_masks: bool = False  # video: at most one object per pixel in the outputs
    clear_non_cond_mem_around_input: bool = False  # video: drop tracked memories near a new prompt
    add_all_frames_to_correct_as_cond: bool = False  # video: corrected frames become conditioning

    @property
    def hidden_dim(self) -> int:
        return self.neck.d_model

    @property
    def mem_dim(self) -> int:
        return self.memory_encoder.out_dim

    @property
    def backbone_stride(self) -> int:
        return 16

    @property
    def is_sam21(self) -> bool:
        return self.no_obj_embed_spatial

    def replace(self, **changes: Any) -> SAM2Config:
        """A copy with some fields changed (`dataclasses.replace`)."""
        return replace(self, **changes)


# ----------------------------------------------------------------------------------------------
# The released variants
# ----------------------------------------------------------------------------------------------

_HIERA = {
    "t": HieraConfig(
        embed_dim=96,
        num_heads=1,
        stages=(1, 2, 7, 2),
        global_att_blocks=(5, 7, 9),
        window_pos_embed_bkg_spatial_size=(7, 7),
    ),
    "s": HieraConfig(
        embed_dim=96,
        num_heads=1,
        stages=(1, 2, 11, 2),
        global_att_blocks=(7, 10, 13),
        window_pos_embed_bkg_spatial_size=(7, 7),
    ),
    "b+": HieraConfig(embed_dim=112, num_heads=2),
    "l": HieraConfig(
        embed_dim=144,
        num_heads=2,
        stages=(2, 6, 36, 4),
        global_att_blocks=(23, 33, 43),
        window_spec=(8, 4, 16, 8),
        window_pos_embed_bkg_spatial_size=(7, 7),
    ),
}

_SAM20_SWITCHES = dict(
    no_obj_embed_spatial=False,
    add_tpos_enc_to_obj_ptrs=False,
    proj_tpos_enc_in_obj_ptrs=False,
    use_signed_tpos_enc_to_obj_ptrs=False,
)


def _variant(version: str, size: str) -> SAM2Config:
    hiera = _HIERA[size]
    cfg = SAM2Config(
        name=f"{version}_hiera_{size}",
        hiera=hiera,
        neck=NeckConfig(backbone_channel_list=hiera.channel_list),
    )
    return cfg.replace(**_SAM20_SWITCHES) if version == "sam2" else cfg


VARIANTS: dict[str, SAM2Config] = {
    f"{v}_hiera_{s}": _variant(v, s) for v in ("sam2", "sam2.1") for s in ("t", "s", "b+", "l")
}

# sam2r's own small model (SAM 2.1 architecture, 1.5 M parameters, 256-px input), trained here on
# the synthetic data engine and bundled in `sam2r/assets` as the offline default.
_MICRO_HIERA = HieraConfig(
    embed_dim=16,
    num_heads=1,
    stages=(1, 2, 3, 1),
    global_att_blocks=(4,),
    window_spec=(8, 4, 6, 3),
    window_pos_embed_bkg_spatial_size=(4, 4),
)
VARIANTS["sam2r_micro"] = SAM2Config(
    name="sam2r_micro",
    image_size=256,
    hiera=_MICRO_HIERA,
    neck=NeckConfig(d_model=64, backbone_channel_list=_MICRO_HIERA.channel_list),
    memory_attention=MemoryAttentionConfig(
        d_model=64, num_layers=2, dim_feedforward=128, kv_in_dim=32, feat_sizes=(16, 16)
    ),
    memory_encoder=MemoryEncoderConfig(out_dim=32, in_dim=64),
)
# the 8 released variants
OFFICIAL_VARIANTS = tuple(k for k in VARIANTS if k.startswith(("sam2_", "sam2.1_")))
BUNDLED_VARIANT = "sam2r_micro"

# Hugging Face hub names -> (variant, checkpoint file in that repo)
_SIZE_WORDS = {"t": "tiny", "s": "small", "b+": "base-plus", "l": "large"}
HF_MODELS: dict[str, tuple[str, str]] = {
    f"facebook/{v}-hiera-{w}": (f"{v}_hiera_{s}", f"{v}_hiera_{w.replace('-', '_')}.pt")
    for v in ("sam2", "sam2.1")
    for s, w in _SIZE_WORDS.items()
}


def resolve_name(name: str) -> str:
    """A variant name from any accepted spelling.

    Accepts registry names (`sam2.1_hiera_t`), hub ids (`facebook/sam2.1-hiera-tiny`) and short
    names (`sam2.1-tiny`, `sam2.1_hiera_tiny`, `sam2-b+`, `sam2.1-base-plus`).
    """
    if not isinstance(name, str):
        raise TypeError(f"a model name must be a str, got {type(name).__name__}")
    key = name.strip()
    if key in VARIANTS:
        return key
    if key.lower().replace("-", "_") in ("sam2r_micro", "sam2r_micro_synth", "sam2r"):
        return BUNDLED_VARIANT
    if key in HF_MODELS:
        return HF_MODELS[key][0]
    low = key.lower().removeprefix("facebook/").replace("_", "-")
    for version in ("sam2.1", "sam2"):
        if low.startswith(version + "-"):
            rest = low[len(version) + 1 :].removeprefix("hiera-")
            for s, w in _SIZE_WORDS.items():
                if rest in (s, w, w.replace("-", ""), "bplus" if s == "b+" else w):
                    return f"{version}_hiera_{s}"
    known = ", ".join(VARIANTS)
    raise ValueError(
        f"unknown model name {name!r}; expected one of {known}, a hub id such as "
        "'facebook/sam2.1-hiera-tiny', or a short name such as 'sam2.1-tiny'"
    )


def get_config(name: str) -> SAM2Config:
    """The registered config for a model name (any spelling `resolve_name` accepts)."""
    return VARIANTS[resolve_name(name)]
