"""How the official YAML model tree maps onto `SAM2Config`, both ways.

`tree_to_config` reads a plain-dict `model:` tree into a `SAM2Config`: unknown keys, types, the
released-architecture flags and shape constraints are checked with the key path in every
message. `config_to_yaml_dict` writes a config back as such a tree, every setting explicit.

What it leaves to others: what each official class accepts (`sam2r.configs.schema`); reading
files, Hydra overrides, interpolation and the builder's inference defaults
(`sam2r.configs.yaml`); the dataclasses and registry (`sam2r.config`).
"""

from __future__ import annotations

import math
from typing import Any

from sam2r.config import (
    HieraConfig,
    MemoryAttentionConfig,
    MemoryEncoderConfig,
    NeckConfig,
    SAM2Config,
)
from sam2r.configs.schema import (
    CXBLOCK,
    FUSER,
    HIERA,
    IMAGE_ENCODER,
    INTERP_MODES,
    MASK_DOWN,
    MEM_ATTN,
    MEM_ATTN_LAYER,
    MEM_ENC,
    NECK,
    POS_SINE,
    ROPE_ATTN,
    VIDEO,
    Node,
    unsupported,
)

# ----------------------------------------------------------------------------------------------
# Reading the tree
# ----------------------------------------------------------------------------------------------


def _read_position_encoding(node: Node, num_pos_feats: int, owner: str) -> None:
    node.integer("num_pos_feats")
    if node.raw("num_pos_feats") != num_pos_feats:
        raise unsupported(
            node.key("num_pos_feats"), node.raw("num_pos_feats"), num_pos_feats, f" (= {owner})"
        )
    node.fixed("temperature", 10000)
    node.fixed("normalize", True)
    scale = node.raw("scale")
    if scale is not None and not (
        isinstance(scale, (int, float)) and math.isclose(scale, 2 * math.pi)
    ):
        raise unsupported(node.key("scale"), scale, None, " (None means 2*pi)")
    node.flag("warmup_cache")  # the last three only size the official cache: ignored
    node.integer("image_size")
    node.integers("strides")


def _read_image_encoder(enc: Node) -> tuple[HieraConfig, NeckConfig]:
    trunk = enc.child("trunk", "trunk")
    hiera = HieraConfig(
        embed_dim=trunk.integer("embed_dim", 1),
        num_heads=trunk.integer("num_heads", 1),
        stages=trunk.integers("stages"),
        global_att_blocks=trunk.integers("global_att_blocks"),
        window_spec=trunk.integers("window_spec"),
        window_pos_embed_bkg_spatial_size=trunk.integers("window_pos_embed_bkg_spatial_size", 2),
        q_pool=trunk.integer("q_pool", 0),
        q_stride=trunk.integers("q_stride", 2),
        dim_mul=trunk.number("dim_mul"),
        head_mul=trunk.number("head_mul"),
        drop_path_rate=trunk.number("drop_path_rate"),
    )
    trunk.fixed("weights_path", None, "; load weights with build_model(..., checkpoint=PATH)")
    trunk.fixed("return_interm_layers", True)
    if len(hiera.window_spec) != len(hiera.stages):
        raise ValueError(
            f"{trunk.key('window_spec')} has {len(hiera.window_spec)} entries but "
            f"{trunk.key('stages')} has {len(hiera.stages)}; give one window size per stage"
        )
    if not 0 <= hiera.q_pool < len(hiera.stages):
        raise ValueError(f"{trunk.key('q_pool')} must be in [0, {len(hiera.stages) - 1}]")

    neck = enc.child("neck", "neck")
    d_model = neck.integer("d_model", 1)
    channels = neck.integers("backbone_channel_list")
    if channels != hiera.channel_list:
        raise ValueError(
            f"{neck.key('backbone_channel_list')} = {list(channels)} must equal the trunk's "
            f"output channels {list(hiera.channel_list)} (deepest first)"
        )
    for key, supported in (("kernel_size", 1), ("stride", 1), ("padding", 0)):
        neck.fixed(key, supported)
    _read_position_encoding(
        neck.child("position_encoding", "position_encoding"), d_model, neck.key("d_model")
    )
    levels = neck.raw("fpn_top_down_levels")
    levels = tuple(range(len(channels))) if levels is None else neck.integers("fpn_top_down_levels")
    if any(not 0 <= lvl < len(channels) for lvl in levels):
        raise ValueError(
            f"{neck.key('fpn_top_down_levels')} = {list(levels)}: levels must be in "
            f"[0, {len(channels) - 1}]"
        )
    scalp = enc.integer("scalp", 0)
    if scalp >= len(channels):
        raise ValueError(f"{enc.key('scalp')} = {scalp} must be < {len(channels)} (the levels)")
    return hiera, NeckConfig(
        d_model=d_model,
        backbone_channel_list=channels,
        fpn_top_down_levels=levels,
        fpn_interp_model=neck.choice("fpn_interp_model", INTERP_MODES),
        fuse_type=neck.choice("fuse_type", ("sum", "avg")),
        scalp=scalp,
    )


def _read_memory_attention(ma: Node, hidden_dim: int, mem_dim: int) -> MemoryAttentionConfig:
    d_model = ma.integer("d_model", 1)
    if d_model != hidden_dim:
        raise unsupported(ma.key("d_model"), d_model, hidden_dim, " (= the neck's d_model)")
    ma.fixed("pos_enc_at_input", True)
    ma.fixed("batch_first", True)
    layer = ma.child("layer", "layer")
    layer.fixed("activation", "relu")
    layer.fixed("pos_enc_at_attn", False)
    layer.fixed("pos_enc_at_cross_attn_keys", True)
    layer.fixed("pos_enc_at_cross_attn_queries", False)
    if layer.integer("d_model") != d_model:
        raise unsupported(layer.key("d_model"), layer.raw("d_model"), d_model, f" (= {ma.path})")
    dropout = layer.number("dropout")
    self_attn = layer.child("self_attention", "attention")
    cross = layer.child("cross_attention", "attention")
    self_attn.fixed("rope_k_repeat", False)
    cross.fixed("rope_k_repeat", True)
    if self_attn.raw("kv_in_dim") not in (None, d_model):
        raise unsupported(self_attn.key("kv_in_dim"), self_attn.raw("kv_in_dim"), None)
    kv_in_dim = d_model if cross.raw("kv_in_dim") is None else cross.integer("kv_in_dim")
    if kv_in_dim != mem_dim:
        raise ValueError(
            f"{cross.key('kv_in_dim')} = {kv_in_dim} must equal the memory width "
            f"model.memory_encoder.out_dim = {mem_dim}"
        )
    for attn in (self_attn, cross):
        if attn.integer("embedding_dim") != d_model:
            raise unsupported(attn.key("embedding_dim"), attn.raw("embedding_dim"), d_model)
        attn.fixed("downsample_rate", 1)
        if attn.number("dropout") != dropout:
            raise ValueError(
                f"{attn.key('dropout')} = {attn.raw('dropout')} differs from "
                f"{layer.key('dropout')} = {dropout}; sam2r uses one dropout for the layer and "
                "both attentions (memory_attention.dropout): set them equal"
            )
    values = {}
    for key, read in (
        ("num_heads", "integer"),
        ("rope_theta", "number"),
        ("feat_sizes", "integers"),
    ):
        mine, theirs = getattr(self_attn, read)(key), getattr(cross, read)(key)
        if mine != theirs:
            raise ValueError(
                f"{cross.key(key)} = {theirs!r} differs from {self_attn.key(key)} = {mine!r}; "
                f"sam2r uses one {key} for both attentions: set them equal"
            )
        values[key] = mine
    if len(values["feat_sizes"]) != 2:
        raise ValueError(f"{self_attn.key('feat_sizes')} must be [w, h]")
    return MemoryAttentionConfig(
        d_model=d_model,
        num_layers=ma.integer("num_layers", 1),
        dim_feedforward=layer.integer("dim_feedforward", 1),
        num_heads=values["num_heads"],
        kv_in_dim=kv_in_dim,
        rope_theta=values["rope_theta"],
        feat_sizes=values["feat_sizes"],
        dropout=dropout,
    )


def _read_memory_encoder(me: Node, hidden_dim: int) -> MemoryEncoderConfig:
    out_dim, in_dim = me.integer("out_dim", 1), me.integer("in_dim", 1)
    if in_dim != hidden_dim:
        raise unsupported(me.key("in_dim"), in_dim, hidden_dim, " (= the neck's d_model)")
    _read_position_encoding(
        me.child("position_encoding", "position_encoding"), out_dim, me.key("out_dim")
    )
    down = me.child("mask_downsampler", "mask_downsampler")
    if down.integer("embed_dim") != in_dim:
        raise unsupported(
            down.key("embed_dim"), down.raw("embed_dim"), in_dim, f" (= {me.path}.in_dim)"
        )
    down.fixed("activation", None, " (sam2r always uses GELU, the default)")
    stride, total = down.integer("stride", 2), down.integer("total_stride", 1)
    if total != 16:
        raise unsupported(down.key("total_stride"), total, 16, " (= the backbone stride)")
    if stride ** round(math.log(total, stride)) != total:
        raise ValueError(f"{down.key('total_stride')} = {total} must be a power of stride {stride}")
    fuser = me.child("fuser", "fuser")
    fuser.fixed("input_projection", False)
    if fuser.raw("dim") is not None:
        fuser.integer("dim")  # unused without input_projection, as in the official code
    block = fuser.child("layer", "cxblock")
    if block.integer("dim") != in_dim:
        raise unsupported(block.key("dim"), block.raw("dim"), in_dim, f" (= {me.path}.in_dim)")
    block.fixed("use_dwconv", True)
    block.fixed("drop_path", 0.0, " (sam2r's fuser has no stochastic depth)")
    scale = block.number("layer_scale_init_value")
    if scale <= 0:
        raise unsupported(block.key("layer_scale_init_value"), scale, 1e-6, " (must be > 0)")
    return MemoryEncoderConfig(
        out_dim=out_dim,
        in_dim=in_dim,
        mask_kernel_size=down.integer("kernel_size", 1),
        mask_stride=stride,
        mask_padding=down.integer("padding", 0),
        mask_total_stride=total,
        fuser_num_layers=fuser.integer("num_layers", 0),
        fuser_kernel_size=block.integer("kernel_size", 1),
        fuser_padding=block.integer("padding", 0),
        layer_scale_init_value=scale,
    )


# flags every released model has; sam2r fixes them in its modules
_FIXED_FLAGS = {
    "backbone_stride": 16,
    "use_mask_input_as_output_without_sam": True,
    "directly_add_no_mem_embed": True,
    "use_high_res_features_in_sam": True,
    "iou_prediction_use_sigmoid": True,
    "use_obj_ptrs_in_encoder": True,
    "only_obj_ptrs_in_the_past_for_eval": True,
    "pred_obj_scores": True,
    "pred_obj_scores_mlp": True,
    "fixed_no_obj_ptr": True,
    "soft_no_obj_ptr": False,
    "use_multimask_token_for_obj_ptr": True,
    "use_mlp_for_obj_ptr_proj": True,
    "clear_non_cond_mem_for_multi_obj": False,
}


def tree_to_config(tree: Any, name: str) -> SAM2Config:
    """The config described by a plain-dict `model:` tree (interpolations already resolved).

    Args:
        tree: the mapping under `model:` (`_target_` SAM2Base / SAM2VideoPredictor[VOS]).
        name: the `name` of the returned config.

    Raises:
        ValueError: an unknown key or `_target_`, a missing required key, a value of the wrong
            type, an architecture flag sam2r does not build, or inconsistent sizes; the message
            names the key path (`model.memory_encoder.fuser.layer.dim`).
    """
    top = Node(tree, "model", "model")
    for key, supported in _FIXED_FLAGS.items():
        top.fixed(key, supported)
    top.flag("compile_image_encoder")  # accepted, ignored: torch.compile is opt-in elsewhere
    hiera, neck = _read_image_encoder(top.child("image_encoder", "image_encoder"))
    memory_encoder = _read_memory_encoder(
        top.child("memory_encoder", "memory_encoder"), neck.d_model
    )
    memory_attention = _read_memory_attention(
        top.child("memory_attention", "memory_attention"), neck.d_model, memory_encoder.out_dim
    )
    extra = top.raw("sam_mask_decoder_extra_args")
    dyn = Node({} if extra is None else extra, top.key("sam_mask_decoder_extra_args"), None)

    add_tpos, proj_tpos = (
        top.flag("add_tpos_enc_to_obj_ptrs"),
        top.flag("proj_tpos_enc_in_obj_ptrs"),
    )
    if proj_tpos and not add_tpos:
        raise ValueError(
            "model.proj_tpos_enc_in_obj_ptrs = true requires model.add_tpos_enc_to_obj_ptrs = "
            "true (there is no temporal encoding to project); set both or neither"
        )
    cfg = SAM2Config(
        name=name,
        image_size=top.integer("image_size", 1),
        hiera=hiera,
        neck=neck,
        memory_attention=memory_attention,
        memory_encoder=memory_encoder,
        num_maskmem=top.integer("num_maskmem", 1),
        no_obj_embed_spatial=top.flag("no_obj_embed_spatial"),
        add_tpos_enc_to_obj_ptrs=add_tpos,
        proj_tpos_enc_in_obj_ptrs=proj_tpos,
        use_signed_tpos_enc_to_obj_ptrs=top.flag("use_signed_tpos_enc_to_obj_ptrs"),
        sigmoid_scale_for_mem_enc=top.number("sigmoid_scale_for_mem_enc"),
        sigmoid_bias_for_mem_enc=top.number("sigmoid_bias_for_mem_enc"),
        binarize_mask_from_pts_for_mem_enc=top.flag("binarize_mask_from_pts_for_mem_enc"),
        multimask_output_in_sam=top.flag("multimask_output_in_sam"),
        multimask_output_for_tracking=top.flag("multimask_output_for_tracking"),
        multimask_min_pt_num=top.integer("multimask_min_pt_num", 0),
        multimask_max_pt_num=top.integer("multimask_max_pt_num", 0),
        dynamic_multimask_via_stability=dyn.flag("dynamic_multimask_via_stability"),
        dynamic_multimask_stability_delta=dyn.number("dynamic_multimask_stability_delta"),
        dynamic_multimask_stability_thresh=dyn.number("dynamic_multimask_stability_thresh"),
        max_cond_frames_in_attn=top.integer("max_cond_frames_in_attn"),
        memory_temporal_stride_for_eval=top.integer("memory_temporal_stride_for_eval", 1),
        max_obj_ptrs_in_encoder=top.integer("max_obj_ptrs_in_encoder", 0),
        non_overlap_masks_for_mem_enc=top.flag("non_overlap_masks_for_mem_enc"),
        fill_hole_area=top.integer("fill_hole_area", 0),
        non_overlap_masks=top.flag("non_overlap_masks"),
        clear_non_cond_mem_around_input=top.flag("clear_non_cond_mem_around_input"),
        add_all_frames_to_correct_as_cond=top.flag("add_all_frames_to_correct_as_cond"),
    )
    _check_geometry(cfg)
    return cfg


def _check_geometry(cfg: SAM2Config) -> None:
    """Shape constraints the official modules assert (or fail on) at run time, checked up front."""
    h, trunk = cfg.hiera, "model.image_encoder.trunk"
    dims = [int(h.embed_dim * h.dim_mul**i) for i in range(len(h.stages))]
    heads = [int(h.num_heads * h.head_mul**i) for i in range(len(h.stages))]
    for i, (dim, head) in enumerate(zip(dims, heads, strict=True)):
        if dim % head:
            raise ValueError(
                f"{trunk}: stage {i + 1} has {dim} channels, not divisible by its {head} heads"
            )
    if any(not 0 <= b < sum(h.stages) for b in h.global_att_blocks):
        raise ValueError(
            f"{trunk}.global_att_blocks = {list(h.global_att_blocks)}: block indices must be in "
            f"[0, {sum(h.stages) - 1}]"
        )
    levels = len(h.stages) - cfg.neck.scalp
    embed_level = levels - 1
    strides = [4 * q ** min(embed_level, h.q_pool) for q in h.q_stride]
    if levels < 3 or strides != [16, 16]:
        raise ValueError(
            f"the image embedding (trunk level {embed_level} after scalp "
            f"{cfg.neck.scalp}) has stride {strides}; sam2r needs 3 kept levels ending at stride "
            "16 (backbone_stride), as in the released models: 4 stages, q_pool 3, q_stride [2, 2], "
            "scalp 1"
        )
    deepest = 4 * max(h.q_stride) ** h.q_pool
    if cfg.image_size % deepest:
        raise ValueError(
            f"model.image_size = {cfg.image_size} must be a multiple of {deepest} (the trunk's "
            "deepest stride)"
        )
    if (cfg.image_size // 4) % h.window_spec[0]:
        raise ValueError(
            f"model.image_size / 4 = {cfg.image_size // 4} must be a multiple of "
            f"{trunk}.window_spec[0] = {h.window_spec[0]} (the window position embedding is tiled)"
        )
    if cfg.hidden_dim % 16:
        raise ValueError(
            f"model.image_encoder.neck.d_model = {cfg.hidden_dim} must be a multiple of 16 "
            "(the mask decoder's 8-head attention on d/2 channels)"
        )
    if cfg.hidden_dim % cfg.mem_dim:
        raise ValueError(
            f"model.memory_encoder.out_dim = {cfg.mem_dim} must divide the hidden dim "
            f"{cfg.hidden_dim} (object pointers are split into hidden/out_dim memory tokens)"
        )
    ma = cfg.memory_attention
    if ma.d_model % ma.num_heads or (ma.d_model // ma.num_heads) % 4:
        raise ValueError(
            f"model.memory_attention: d_model {ma.d_model} / num_heads {ma.num_heads} must be an "
            "integer divisible by 4 (2-D RoPE rotates pairs along x and y)"
        )


def config_to_yaml_dict(cfg: SAM2Config) -> dict[str, Any]:
    """A config as the official YAML structure (`{"model": {...}}`), every setting explicit.

    The top-level target is `SAM2VideoPredictor` because the tree carries the video settings
    (`fill_hole_area`, ...). `config_from_yaml(config_to_yaml_dict(cfg), name=cfg.name) == cfg`.
    """
    h, neck, ma, me = cfg.hiera, cfg.neck, cfg.memory_attention, cfg.memory_encoder

    def attention(cross: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "_target_": ROPE_ATTN,
            "rope_theta": ma.rope_theta,
            "feat_sizes": list(ma.feat_sizes),
        }
        if cross:
            out["rope_k_repeat"] = True
        out.update(embedding_dim=ma.d_model, num_heads=ma.num_heads, downsample_rate=1)
        out["dropout"] = ma.dropout
        if cross:
            out["kv_in_dim"] = ma.kv_in_dim
        return out

    def sine(num_pos_feats: int) -> dict[str, Any]:
        return {
            "_target_": POS_SINE,
            "num_pos_feats": num_pos_feats,
            "normalize": True,
            "scale": None,
            "temperature": 10000,
        }

    model: dict[str, Any] = {
        "_target_": VIDEO,
        "image_encoder": {
            "_target_": IMAGE_ENCODER,
            "scalp": neck.scalp,
            "trunk": {
                "_target_": HIERA,
                "embed_dim": h.embed_dim,
                "num_heads": h.num_heads,
                "drop_path_rate": h.drop_path_rate,
                "q_pool": h.q_pool,
                "q_stride": list(h.q_stride),
                "stages": list(h.stages),
                "dim_mul": h.dim_mul,
                "head_mul": h.head_mul,
                "window_pos_embed_bkg_spatial_size": list(h.window_pos_embed_bkg_spatial_size),
                "window_spec": list(h.window_spec),
                "global_att_blocks": list(h.global_att_blocks),
            },
            "neck": {
                "_target_": NECK,
                "position_encoding": sine(neck.d_model),
                "d_model": neck.d_model,
                "backbone_channel_list": list(neck.backbone_channel_list),
                "fpn_top_down_levels": list(neck.fpn_top_down_levels),
                "fpn_interp_model": neck.fpn_interp_model,
                "fuse_type": neck.fuse_type,
            },
        },
        "memory_attention": {
            "_target_": MEM_ATTN,
            "d_model": ma.d_model,
            "pos_enc_at_input": True,
            "layer": {
                "_target_": MEM_ATTN_LAYER,
                "activation": "relu",
                "dim_feedforward": ma.dim_feedforward,
                "dropout": ma.dropout,
                "pos_enc_at_attn": False,
                "self_attention": attention(cross=False),
                "d_model": ma.d_model,
                "pos_enc_at_cross_attn_keys": True,
                "pos_enc_at_cross_attn_queries": False,
                "cross_attention": attention(cross=True),
            },
            "num_layers": ma.num_layers,
        },
        "memory_encoder": {
            "_target_": MEM_ENC,
            "out_dim": me.out_dim,
            "position_encoding": sine(me.out_dim),
            "mask_downsampler": {
                "_target_": MASK_DOWN,
                "kernel_size": me.mask_kernel_size,
                "stride": me.mask_stride,
                "padding": me.mask_padding,
                "total_stride": me.mask_total_stride,
                "embed_dim": me.in_dim,
            },
            "fuser": {
                "_target_": FUSER,
                "layer": {
                    "_target_": CXBLOCK,
                    "dim": me.in_dim,
                    "kernel_size": me.fuser_kernel_size,
                    "padding": me.fuser_padding,
                    "layer_scale_init_value": me.layer_scale_init_value,
                    "use_dwconv": True,
                },
                "num_layers": me.fuser_num_layers,
            },
            "in_dim": me.in_dim,
        },
        "num_maskmem": cfg.num_maskmem,
        "image_size": cfg.image_size,
        "sigmoid_scale_for_mem_enc": cfg.sigmoid_scale_for_mem_enc,
        "sigmoid_bias_for_mem_enc": cfg.sigmoid_bias_for_mem_enc,
        "use_mask_input_as_output_without_sam": True,
        "directly_add_no_mem_embed": True,
        "no_obj_embed_spatial": cfg.no_obj_embed_spatial,
        "use_high_res_features_in_sam": True,
        "multimask_output_in_sam": cfg.multimask_output_in_sam,
        "iou_prediction_use_sigmoid": True,
        "use_obj_ptrs_in_encoder": True,
        "add_tpos_enc_to_obj_ptrs": cfg.add_tpos_enc_to_obj_ptrs,
        "proj_tpos_enc_in_obj_ptrs": cfg.proj_tpos_enc_in_obj_ptrs,
        "use_signed_tpos_enc_to_obj_ptrs": cfg.use_signed_tpos_enc_to_obj_ptrs,
        "only_obj_ptrs_in_the_past_for_eval": True,
        "pred_obj_scores": True,
        "pred_obj_scores_mlp": True,
        "fixed_no_obj_ptr": True,
        "multimask_output_for_tracking": cfg.multimask_output_for_tracking,
        "use_multimask_token_for_obj_ptr": True,
        "multimask_min_pt_num": cfg.multimask_min_pt_num,
        "multimask_max_pt_num": cfg.multimask_max_pt_num,
        "use_mlp_for_obj_ptr_proj": True,
        "compile_image_encoder": False,
        "max_cond_frames_in_attn": cfg.max_cond_frames_in_attn,
        "memory_temporal_stride_for_eval": cfg.memory_temporal_stride_for_eval,
        "max_obj_ptrs_in_encoder": cfg.max_obj_ptrs_in_encoder,
        "non_overlap_masks_for_mem_enc": cfg.non_overlap_masks_for_mem_enc,
        "sam_mask_decoder_extra_args": {
            "dynamic_multimask_via_stability": cfg.dynamic_multimask_via_stability,
            "dynamic_multimask_stability_delta": cfg.dynamic_multimask_stability_delta,
            "dynamic_multimask_stability_thresh": cfg.dynamic_multimask_stability_thresh,
        },
        "binarize_mask_from_pts_for_mem_enc": cfg.binarize_mask_from_pts_for_mem_enc,
        "fill_hole_area": cfg.fill_hole_area,
        "non_overlap_masks": cfg.non_overlap_masks,
        "clear_non_cond_mem_around_input": cfg.clear_non_cond_mem_around_input,
        "add_all_frames_to_correct_as_cond": cfg.add_all_frames_to_correct_as_cond,
    }
    return {"model": model}
