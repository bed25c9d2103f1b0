"""What the official SAM 2 model classes accept: the keys of their YAML nodes.

The official configs name constructor arguments of `SAM2Base`, `Hiera`, `FpnNeck`,
`MemoryAttention`, ... under `_target_` keys. This module holds, for each of those classes, its
`_target_` name, its keys and constructor defaults (`SCHEMAS`, `REQUIRED` where there is no
default), which `_target_` may stand at which key of the tree (`SLOTS`), and `Node`: one
mapping of the tree checked against its class (unknown and missing keys), with typed getters
whose errors name the key path.

What it leaves to others: mapping the tree onto `SAM2Config` and back (`sam2r.configs.tree`),
reading files and overrides (`sam2r.configs.yaml`), the dataclasses (`sam2r.config`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sam2r.config import HieraConfig

REQUIRED = object()  # marks a constructor argument without a default

# `_target_` names of the official classes
BASE = "sam2.modeling.sam2_base.SAM2Base"
VIDEO = "sam2.sam2_video_predictor.SAM2VideoPredictor"
VIDEO_VOS = "sam2.sam2_video_predictor.SAM2VideoPredictorVOS"
IMAGE_ENCODER = "sam2.modeling.backbones.image_encoder.ImageEncoder"
HIERA = "sam2.modeling.backbones.hieradet.Hiera"
NECK = "sam2.modeling.backbones.image_encoder.FpnNeck"
POS_SINE = "sam2.modeling.position_encoding.PositionEmbeddingSine"
MEM_ATTN = "sam2.modeling.memory_attention.MemoryAttention"
MEM_ATTN_LAYER = "sam2.modeling.memory_attention.MemoryAttentionLayer"
ROPE_ATTN = "sam2.modeling.sam.transformer.RoPEAttention"
MEM_ENC = "sam2.modeling.memory_encoder.MemoryEncoder"
MASK_DOWN = "sam2.modeling.memory_encoder.MaskDownSampler"
FUSER = "sam2.modeling.memory_encoder.Fuser"
CXBLOCK = "sam2.modeling.memory_encoder.CXBlock"

_SAM2BASE_KEYS: dict[str, Any] = {
    "image_encoder": REQUIRED,
    "memory_attention": REQUIRED,
    "memory_encoder": REQUIRED,
    "num_maskmem": 7,
    "image_size": 512,
    "backbone_stride": 16,
    "sigmoid_scale_for_mem_enc": 1.0,
    "sigmoid_bias_for_mem_enc": 0.0,
    "binarize_mask_from_pts_for_mem_enc": False,
    "use_mask_input_as_output_without_sam": False,
    "max_cond_frames_in_attn": -1,
    "directly_add_no_mem_embed": False,
    "use_high_res_features_in_sam": False,
    "multimask_output_in_sam": False,
    "multimask_min_pt_num": 1,
    "multimask_max_pt_num": 1,
    "multimask_output_for_tracking": False,
    "use_multimask_token_for_obj_ptr": False,
    "iou_prediction_use_sigmoid": False,
    "memory_temporal_stride_for_eval": 1,
    "non_overlap_masks_for_mem_enc": False,
    "use_obj_ptrs_in_encoder": False,
    "max_obj_ptrs_in_encoder": 16,
    "add_tpos_enc_to_obj_ptrs": True,
    "proj_tpos_enc_in_obj_ptrs": False,
    "use_signed_tpos_enc_to_obj_ptrs": False,
    "only_obj_ptrs_in_the_past_for_eval": False,
    "pred_obj_scores": False,
    "pred_obj_scores_mlp": False,
    "fixed_no_obj_ptr": False,
    "soft_no_obj_ptr": False,
    "use_mlp_for_obj_ptr_proj": False,
    "no_obj_embed_spatial": False,
    "sam_mask_decoder_extra_args": None,
    "compile_image_encoder": False,
    # SAM2VideoPredictor's own arguments; accepted whatever the top-level target, because
    # sam2r keeps them in the one config
    "fill_hole_area": 0,
    "non_overlap_masks": False,
    "clear_non_cond_mem_around_input": False,
    "clear_non_cond_mem_for_multi_obj": False,  # older official versions only
    "add_all_frames_to_correct_as_cond": False,
}

SCHEMAS: dict[str, dict[str, Any]] = {
    BASE: _SAM2BASE_KEYS,
    VIDEO: _SAM2BASE_KEYS,
    VIDEO_VOS: _SAM2BASE_KEYS,
    IMAGE_ENCODER: {"trunk": REQUIRED, "neck": REQUIRED, "scalp": 0},
    HIERA: {
        **{f: getattr(HieraConfig(), f) for f in HieraConfig.__dataclass_fields__},
        "weights_path": None,
        "return_interm_layers": True,
    },
    NECK: {
        "position_encoding": REQUIRED,
        "d_model": REQUIRED,
        "backbone_channel_list": REQUIRED,
        "kernel_size": 1,
        "stride": 1,
        "padding": 0,
        "fpn_interp_model": "bilinear",
        "fuse_type": "sum",
        "fpn_top_down_levels": None,
    },
    POS_SINE: {
        "num_pos_feats": REQUIRED,
        "temperature": 10000,
        "normalize": True,
        "scale": None,
        # only size the official pre-computed cache; no effect on the numbers
        "warmup_cache": True,
        "image_size": 1024,
        "strides": [4, 8, 16, 32],
    },
    MEM_ATTN: {
        "d_model": REQUIRED,
        "pos_enc_at_input": REQUIRED,
        "layer": REQUIRED,
        "num_layers": REQUIRED,
        "batch_first": True,
    },
    MEM_ATTN_LAYER: {
        "activation": REQUIRED,
        "cross_attention": REQUIRED,
        "d_model": REQUIRED,
        "dim_feedforward": REQUIRED,
        "dropout": REQUIRED,
        "pos_enc_at_attn": REQUIRED,
        "pos_enc_at_cross_attn_keys": REQUIRED,
        "pos_enc_at_cross_attn_queries": REQUIRED,
        "self_attention": REQUIRED,
    },
    ROPE_ATTN: {
        "embedding_dim": REQUIRED,
        "num_heads": REQUIRED,
        "downsample_rate": 1,
        "dropout": 0.0,
        "kv_in_dim": None,
        "rope_theta": 10000.0,
        "rope_k_repeat": False,
        "feat_sizes": [64, 64],  # the official signature's default (the released files say so too)
    },
    MEM_ENC: {
        "out_dim": REQUIRED,
        "mask_downsampler": REQUIRED,
        "fuser": REQUIRED,
        "position_encoding": REQUIRED,
        "in_dim": 256,
    },
    MASK_DOWN: {
        "embed_dim": 256,
        "kernel_size": 4,
        "stride": 4,
        "padding": 0,
        "total_stride": 16,
        "activation": None,  # a class in Python; sam2r always uses GELU (the default)
    },
    FUSER: {"layer": REQUIRED, "num_layers": REQUIRED, "dim": None, "input_projection": False},
    CXBLOCK: {
        "dim": REQUIRED,
        "kernel_size": 7,
        "padding": 3,
        "drop_path": 0.0,
        "layer_scale_init_value": 1e-6,
        "use_dwconv": True,
    },
}

# which `_target_` may stand where (the first is assumed when `_target_` is absent)
SLOTS: dict[str, tuple[str, ...]] = {
    "model": (BASE, VIDEO, VIDEO_VOS),
    "image_encoder": (IMAGE_ENCODER,),
    "trunk": (HIERA,),
    "neck": (NECK,),
    "position_encoding": (POS_SINE,),
    "memory_attention": (MEM_ATTN,),
    "layer": (MEM_ATTN_LAYER,),
    "attention": (ROPE_ATTN,),
    "memory_encoder": (MEM_ENC,),
    "mask_downsampler": (MASK_DOWN,),
    "fuser": (FUSER,),
    "cxblock": (CXBLOCK,),
}

EXTRA_ARGS_KEYS = {  # `sam_mask_decoder_extra_args` keys and the MaskDecoder defaults
    "dynamic_multimask_via_stability": False,
    "dynamic_multimask_stability_delta": 0.05,
    "dynamic_multimask_stability_thresh": 0.98,
}

INTERP_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


def unsupported(path: str, value: Any, supported: Any, why: str = "") -> ValueError:
    """The error for a value at `path` that sam2r does not build, saying what it supports."""
    return ValueError(
        f"sam2r builds only the released SAM 2 architecture: {path} = {value!r} is not supported "
        f"(supported: {supported!r}){why}. Remove the key or set it to {supported!r}."
    )


class Node:
    """One `_target_` mapping of the tree: unknown-key check, defaults, typed getters."""

    def __init__(self, value: Any, path: str, slot: str | None) -> None:
        if not isinstance(value, Mapping):
            raise ValueError(f"{path} must be a mapping, got {type(value).__name__} {value!r}")
        self.path = path
        self.data = dict(value)
        if slot is None:  # `sam_mask_decoder_extra_args`: MaskDecoder keywords, no `_target_`
            self.target, schema, known = "MaskDecoder", EXTRA_ARGS_KEYS, list(EXTRA_ARGS_KEYS)
        else:
            targets = SLOTS[slot]
            self.target = self.data.pop("_target_", targets[0])
            if self.target not in targets:
                raise ValueError(
                    f"unknown _target_ {self.target!r} at {path}; expected one of {list(targets)}"
                )
            schema = SCHEMAS[self.target]
            known = ["_target_", *schema]
        unknown = [k for k in self.data if k not in schema]
        if unknown:
            raise ValueError(
                f"unknown key {path}.{unknown[0]} in a {self.target.rsplit('.', 1)[-1]} node; "
                f"known keys: {', '.join(known)}"
            )
        missing = [k for k, d in schema.items() if d is REQUIRED and k not in self.data]
        if missing:
            raise ValueError(f"missing key {path}.{missing[0]} (required by {self.target})")
        self.values = {k: self.data.get(k, d) for k, d in schema.items()}

    def key(self, key: str) -> str:
        return f"{self.path}.{key}"

    def raw(self, key: str) -> Any:
        return self.values[key]

    def child(self, key: str, slot: str) -> Node:
        return Node(self.values[key], self.key(key), slot)

    def integer(self, key: str, minimum: int | None = None) -> int:
        v = self.values[key]
        if not isinstance(v, int) or isinstance(v, bool):
            raise ValueError(f"{self.key(key)} must be an integer, got {v!r}")
        if minimum is not None and v < minimum:
            raise ValueError(f"{self.key(key)} must be >= {minimum}, got {v}")
        return v

    def number(self, key: str) -> float:
        v = self.values[key]
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ValueError(f"{self.key(key)} must be a number, got {v!r}")
        return float(v)

    def flag(self, key: str) -> bool:
        v = self.values[key]
        if not isinstance(v, bool):
            raise ValueError(f"{self.key(key)} must be true or false, got {v!r}")
        return v

    def choice(self, key: str, choices: Sequence[str]) -> str:
        v = self.values[key]
        if v not in choices:
            raise ValueError(f"{self.key(key)} must be one of {list(choices)}, got {v!r}")
        return v

    def integers(self, key: str, length: int | None = None) -> tuple[int, ...]:
        v = self.values[key]
        ok = isinstance(v, (list, tuple)) and all(
            isinstance(x, int) and not isinstance(x, bool) for x in v
        )
        if not ok or (length is not None and len(v) != length):
            size = f"{length} " if length is not None else ""
            raise ValueError(f"{self.key(key)} must be a list of {size}integers, got {v!r}")
        return tuple(v)

    def fixed(self, key: str, supported: Any, why: str = "") -> None:
        v = self.values[key]
        same = type(v) is type(supported) or {type(v), type(supported)} <= {int, float}
        if not same or v != supported:
            raise unsupported(self.key(key), v, supported, why)
