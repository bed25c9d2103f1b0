"""Reading official Hydra-style YAML configs without Hydra (`sam2r.configs.yaml`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from sam2r.config import (
    OFFICIAL_VARIANTS,
    VARIANTS,
    HieraConfig,
    MemoryAttentionConfig,
    MemoryEncoderConfig,
    NeckConfig,
    SAM2Config,
)
from sam2r.configs.yaml import (
    OFFICIAL_CONFIG_NAMES,
    config_from_name_or_path,
    config_from_yaml,
    config_to_yaml_dict,
    parse_overrides,
)

CONFIGS = Path(__file__).parent / "fixtures" / "parity" / "configs"
TINY_21 = CONFIGS / "sam2.1_hiera_t.json"

# the parity README's `micro` config, after the video builder's inference defaults
MICRO = SAM2Config(  # the micro parity config is sam2r's registered small model
    name="sam2r_micro",
    image_size=256,
    hiera=HieraConfig(
        embed_dim=16,
        num_heads=1,
        stages=(1, 2, 3, 1),
        global_att_blocks=(4,),
        window_spec=(8, 4, 6, 3),
        window_pos_embed_bkg_spatial_size=(4, 4),
    ),
    neck=NeckConfig(d_model=64, backbone_channel_list=(128, 64, 32, 16)),
    memory_attention=MemoryAttentionConfig(
        d_model=64, num_layers=2, dim_feedforward=128, kv_in_dim=32, feat_sizes=(16, 16)
    ),
    memory_encoder=MemoryEncoderConfig(out_dim=32, in_dim=64),
)

EXPECTED = {"micro": MICRO, "sam2.1_hiera_t": VARIANTS["sam2.1_hiera_t"]}
EXPECTED["sam2_hiera_t"] = VARIANTS["sam2_hiera_t"]


def tiny_model_tree() -> dict[str, Any]:
    """The `model:` tree of the official sam2.1_hiera_t.yaml (from the fixtures)."""
    return json.loads(TINY_21.read_text())["model"]


# ----------------------------------------------------------------------------------------------
# the parity configs and the registry
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg_name", sorted(EXPECTED))
def test_parity_config_file(cfg_name: str) -> None:
    cfg = config_from_yaml(CONFIGS / f"{cfg_name}.json")
    assert cfg == EXPECTED[cfg_name]


@pytest.mark.parametrize("cfg_name", sorted(EXPECTED))
def test_builder_defaults_equal_official_effective_video_model(cfg_name: str) -> None:
    """The defaults we add equal what `build_sam2_video_predictor` produced for the fixtures."""
    doc = json.loads((CONFIGS / f"{cfg_name}.json").read_text())
    effective = config_from_yaml({"model": doc["effective_video_model"]}, name=cfg_name)
    assert effective == EXPECTED[cfg_name].replace(name=cfg_name)


def test_micro_is_shrunk() -> None:
    cfg = config_from_yaml(CONFIGS / "micro.json")
    assert (cfg.image_size, cfg.hiera.embed_dim, cfg.hidden_dim, cfg.mem_dim) == (256, 16, 64, 32)
    assert cfg.hiera.channel_list == (128, 64, 32, 16)
    assert cfg.memory_attention.feat_sizes == (16, 16)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_yaml_dict_round_trip(variant: str, tmp_path: Path) -> None:
    tree = config_to_yaml_dict(VARIANTS[variant])
    assert config_from_yaml(tree) == VARIANTS[variant]
    # through YAML text too, with a file name that is not the variant's
    path = tmp_path / "exported.yaml"
    path.write_text("# @package _global_\n\n" + yaml.safe_dump(tree, sort_keys=False))
    assert config_from_yaml(path) == VARIANTS[variant]


def test_yaml_dict_round_trip_custom_config() -> None:
    tree = config_to_yaml_dict(MICRO.replace(fill_hole_area=0, non_overlap_masks=True))
    back = config_from_yaml(tree, name="mine")
    assert back == MICRO.replace(fill_hole_area=0, non_overlap_masks=True, name="mine")
    assert config_from_yaml(tree).name == "custom"


def test_reading_does_not_modify_the_dict() -> None:
    doc = {"model": tiny_model_tree()}
    before = json.dumps(doc, sort_keys=True)
    config_from_yaml(doc, ["++model.fill_hole_area=0"])
    assert json.dumps(doc, sort_keys=True) == before


# ----------------------------------------------------------------------------------------------
# official YAML text, typed as the official repository lays it out
# ----------------------------------------------------------------------------------------------

_MEMORY_PARTS = """
  memory_attention:
    _target_: sam2.modeling.memory_attention.MemoryAttention
    d_model: 256
    pos_enc_at_input: true
    layer:
      _target_: sam2.modeling.memory_attention.MemoryAttentionLayer
      activation: relu
      dim_feedforward: 2048
      dropout: 0.1
      pos_enc_at_attn: false
      self_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [64, 64]
        embedding_dim: 256
        num_heads: 1
        downsample_rate: 1
        dropout: 0.1
      d_model: 256
      pos_enc_at_cross_attn_keys: true
      pos_enc_at_cross_attn_queries: false
      cross_attention:
        _target_: sam2.modeling.sam.transformer.RoPEAttention
        rope_theta: 10000.0
        feat_sizes: [64, 64]
        rope_k_repeat: True
        embedding_dim: 256
        num_heads: 1
        downsample_rate: 1
        dropout: 0.1
        kv_in_dim: 64
    num_layers: 4

  memory_encoder:
      _target_: sam2.modeling.memory_encoder.MemoryEncoder
      out_dim: 64
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 64
        normalize: true
        scale: null
        temperature: 10000
      mask_downsampler:
        _target_: sam2.modeling.memory_encoder.MaskDownSampler
        kernel_size: 3
        stride: 2
        padding: 1
      fuser:
        _target_: sam2.modeling.memory_encoder.Fuser
        layer:
          _target_: sam2.modeling.memory_encoder.CXBlock
          dim: 256
          kernel_size: 7
          padding: 3
          layer_scale_init_value: 1e-6
          use_dwconv: True  # depth-wise convs
        num_layers: 2

  num_maskmem: 7
  image_size: 1024
  # apply scaled sigmoid on mask logits for memory encoder, and feed input mask as output mask
  sigmoid_scale_for_mem_enc: 20.0
  sigmoid_bias_for_mem_enc: -10.0
  use_mask_input_as_output_without_sam: true
"""

SAM21_HIERA_L_YAML = (
    """# @package _global_

# Model
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: 144
      num_heads: 2
      stages: [2, 6, 36, 4]
      global_att_blocks: [23, 33, 43]
      window_pos_embed_bkg_spatial_size: [7, 7]
      window_spec: [8, 4, 16, 8]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 256
        normalize: true
        scale: null
        temperature: 10000
      d_model: 256
      backbone_channel_list: [1152, 576, 288, 144]
      fpn_top_down_levels: [2, 3]  # output level 0 and 1 directly use the backbone features
      fpn_interp_model: nearest
"""
    + _MEMORY_PARTS
    + """  # Memory
  directly_add_no_mem_embed: true
  no_obj_embed_spatial: true
  # use high-resolution feature map in the SAM mask decoder
  use_high_res_features_in_sam: true
  # output 3 masks on the first click on initial conditioning frames
  multimask_output_in_sam: true
  # SAM heads
  iou_prediction_use_sigmoid: True
  # cross-attend to object pointers from other frames (based on SAM output tokens) in the encoder
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: true
  proj_tpos_enc_in_obj_ptrs: true
  use_signed_tpos_enc_to_obj_ptrs: true
  only_obj_ptrs_in_the_past_for_eval: true
  # object occlusion prediction
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  # multimask tracking settings
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  # Compilation flag
  compile_image_encoder: False
"""
)

SAM2_HIERA_S_YAML = (
    """# @package _global_

# Model
model:
  _target_: sam2.modeling.sam2_base.SAM2Base
  image_encoder:
    _target_: sam2.modeling.backbones.image_encoder.ImageEncoder
    scalp: 1
    trunk:
      _target_: sam2.modeling.backbones.hieradet.Hiera
      embed_dim: 96
      num_heads: 1
      stages: [1, 2, 11, 2]
      global_att_blocks: [7, 10, 13]
      window_pos_embed_bkg_spatial_size: [7, 7]
    neck:
      _target_: sam2.modeling.backbones.image_encoder.FpnNeck
      position_encoding:
        _target_: sam2.modeling.position_encoding.PositionEmbeddingSine
        num_pos_feats: 256
        normalize: true
        scale: null
        temperature: 10000
      d_model: 256
      backbone_channel_list: [768, 384, 192, 96]
      fpn_top_down_levels: [2, 3]  # output level 0 and 1 directly use the backbone features
      fpn_interp_model: nearest
"""
    + _MEMORY_PARTS
    + """  # Memory
  directly_add_no_mem_embed: true
  # use high-resolution feature map in the SAM mask decoder
  use_high_res_features_in_sam: true
  # output 3 masks on the first click on initial conditioning frames
  multimask_output_in_sam: true
  # SAM heads
  iou_prediction_use_sigmoid: True
  # cross-attend to object pointers from other frames (based on SAM output tokens) in the encoder
  use_obj_ptrs_in_encoder: true
  add_tpos_enc_to_obj_ptrs: false
  only_obj_ptrs_in_the_past_for_eval: true
  # object occlusion prediction
  pred_obj_scores: true
  pred_obj_scores_mlp: true
  fixed_no_obj_ptr: true
  # multimask tracking settings
  multimask_output_for_tracking: true
  use_multimask_token_for_obj_ptr: true
  multimask_min_pt_num: 0
  multimask_max_pt_num: 1
  use_mlp_for_obj_ptr_proj: true
  # Compilation flag
  compile_image_encoder: False
"""
)


@pytest.mark.parametrize(
    "file_name, text, variant",
    [
        ("sam2.1_hiera_l.yaml", SAM21_HIERA_L_YAML, "sam2.1_hiera_l"),
        ("sam2_hiera_s.yaml", SAM2_HIERA_S_YAML, "sam2_hiera_s"),
        ("my_copy.yaml", SAM2_HIERA_S_YAML, "sam2_hiera_s"),  # name from the registry match
    ],
)
def test_official_yaml_text(file_name: str, text: str, variant: str, tmp_path: Path) -> None:
    path = tmp_path / file_name
    path.write_text(text)
    cfg = config_from_yaml(path)
    assert cfg == VARIANTS[variant]
    assert cfg.name == variant
    assert isinstance(cfg.memory_encoder.layer_scale_init_value, float)  # `1e-6` is a number


def test_file_name_is_the_name_of_a_custom_config(tmp_path: Path) -> None:
    path = tmp_path / "my_model.yaml"
    path.write_text(SAM2_HIERA_S_YAML)
    assert config_from_yaml(path, ["++model.num_maskmem=5"]).name == "my_model"
    assert config_from_yaml(path, ["++model.num_maskmem=5"], name="x").name == "x"


# ----------------------------------------------------------------------------------------------
# official config names
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config_name, variant",
    [
        ("configs/sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_t"),
        ("configs/sam2.1/sam2.1_hiera_s.yaml", "sam2.1_hiera_s"),
        ("configs/sam2.1/sam2.1_hiera_b+.yaml", "sam2.1_hiera_b+"),
        ("configs/sam2.1/sam2.1_hiera_l.yaml", "sam2.1_hiera_l"),
        ("configs/sam2/sam2_hiera_t.yaml", "sam2_hiera_t"),
        ("configs/sam2/sam2_hiera_b+.yaml", "sam2_hiera_b+"),
        ("sam2.1/sam2.1_hiera_t.yaml", "sam2.1_hiera_t"),
        ("sam2.1_hiera_l.yaml", "sam2.1_hiera_l"),
        ("sam2_hiera_t.yaml", "sam2_hiera_t"),  # legacy top-level names
        ("sam2_hiera_s.yaml", "sam2_hiera_s"),
        ("sam2_hiera_b+.yaml", "sam2_hiera_b+"),
        ("sam2_hiera_l.yaml", "sam2_hiera_l"),
        ("configs/sam2.1/sam2.1_hiera_t", "sam2.1_hiera_t"),  # Hydra names without .yaml
    ],
)
def test_official_config_names(config_name: str, variant: str) -> None:
    assert OFFICIAL_CONFIG_NAMES[config_name] == variant
    assert config_from_name_or_path(config_name) is VARIANTS[variant]


def test_every_official_name_resolves() -> None:
    assert set(OFFICIAL_CONFIG_NAMES.values()) == set(OFFICIAL_VARIANTS)
    for config_name in OFFICIAL_CONFIG_NAMES:
        assert config_from_name_or_path(config_name).name == OFFICIAL_CONFIG_NAMES[config_name]


def test_name_or_path_reads_a_path() -> None:
    assert config_from_name_or_path(str(CONFIGS / "micro.json")) == MICRO
    assert config_from_name_or_path(CONFIGS / "micro.json", ["++model.fill_hole_area=0"]) == (
        MICRO.replace(fill_hole_area=0, name="micro")
    )


# ----------------------------------------------------------------------------------------------
# overrides
# ----------------------------------------------------------------------------------------------

OVERRIDES = [
    ("++model.fill_hole_area=0", {"fill_hole_area": 0}),
    ("++model.non_overlap_masks=true", {"non_overlap_masks": True}),
    ("++model.add_all_frames_to_correct_as_cond=true", {"add_all_frames_to_correct_as_cond": True}),
    (
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=false",
        {"dynamic_multimask_via_stability": False},
    ),
    ("model.num_maskmem=3", {"num_maskmem": 3}),
    ("++model.memory_attention.num_layers=2", {"memory_attention.num_layers": 2}),
    ("++model.image_encoder.trunk.drop_path_rate=0.1", {"hiera.drop_path_rate": 0.1}),
    ("++model.multimask_min_pt_num=1", {"multimask_min_pt_num": 1}),
]


def _get(cfg: SAM2Config, dotted: str) -> Any:
    for part in dotted.split("."):
        cfg = getattr(cfg, part)
    return cfg


@pytest.mark.parametrize("override, expected", OVERRIDES)
@pytest.mark.parametrize("source", ["official name", "fixture file"])
def test_overrides(override: str, expected: dict[str, Any], source: str) -> None:
    if source == "official name":
        cfg = config_from_name_or_path("configs/sam2.1/sam2.1_hiera_t.yaml", [override])
    else:
        cfg = config_from_yaml(TINY_21, [override])
    base = VARIANTS["sam2.1_hiera_t"]
    assert cfg.name == "sam2.1_hiera_t"
    for dotted, value in expected.items():
        assert _get(cfg, dotted) == value != _get(base, dotted)


def test_override_adds_missing_keys() -> None:
    # the fixture tree has no `max_cond_frames_in_attn` and no `sam_mask_decoder_extra_args`
    cfg = config_from_yaml(
        TINY_21,
        [
            "+model.max_cond_frames_in_attn=2",
            "+model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.1",
        ],
    )
    assert cfg.max_cond_frames_in_attn == 2
    assert cfg.dynamic_multimask_stability_delta == 0.1
    assert cfg.dynamic_multimask_via_stability is True  # the builder default still applies


@pytest.mark.parametrize(
    "text, expected",
    [
        ("++model.fill_hole_area=0", (["model", "fill_hole_area"], 0)),
        ("+model.a.b=true", (["model", "a", "b"], True)),
        ("model.x=0.05", (["model", "x"], 0.05)),
        ("model.x=1e-6", (["model", "x"], 1e-6)),
        ("model.x=[64, 64]", (["model", "x"], [64, 64])),
        ("model.x=null", (["model", "x"], None)),
        ("model._target_=sam2.sam2_video_predictor.SAM2VideoPredictor", None),
        ("model.x=", (["model", "x"], "")),
    ],
)
def test_parse_overrides(text: str, expected: tuple[list[str], Any] | None) -> None:
    (parsed,) = parse_overrides([text])
    if expected is None:
        assert parsed == (["model", "_target_"], "sam2.sam2_video_predictor.SAM2VideoPredictor")
    else:
        assert parsed == expected


# ----------------------------------------------------------------------------------------------
# defaults: official constructor defaults, except what the official video builder adds
# ----------------------------------------------------------------------------------------------


def _without(tree: dict[str, Any], dotted: str) -> dict[str, Any]:
    node = tree
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    del node[last]
    return tree


@pytest.mark.parametrize(
    "removed, field, expected",
    [
        ("image_encoder.neck.fpn_interp_model", "neck.fpn_interp_model", "bilinear"),
        ("image_encoder.neck.fpn_top_down_levels", "neck.fpn_top_down_levels", (0, 1, 2, 3)),
        ("sigmoid_scale_for_mem_enc", "sigmoid_scale_for_mem_enc", 1.0),
        ("sigmoid_bias_for_mem_enc", "sigmoid_bias_for_mem_enc", 0.0),
        ("multimask_output_in_sam", "multimask_output_in_sam", False),
        ("multimask_output_for_tracking", "multimask_output_for_tracking", False),
        ("multimask_min_pt_num", "multimask_min_pt_num", 1),
        ("no_obj_embed_spatial", "no_obj_embed_spatial", False),
        ("proj_tpos_enc_in_obj_ptrs", "proj_tpos_enc_in_obj_ptrs", False),
        ("use_signed_tpos_enc_to_obj_ptrs", "use_signed_tpos_enc_to_obj_ptrs", False),
        ("memory_encoder.mask_downsampler.kernel_size", "memory_encoder.mask_kernel_size", 4),
        (
            "memory_encoder.fuser.layer.layer_scale_init_value",
            "memory_encoder.layer_scale_init_value",
            1e-6,
        ),
        ("image_encoder.trunk.embed_dim", "hiera.embed_dim", 96),
        ("image_encoder.trunk.stages", "hiera.stages", (2, 3, 16, 3)),
    ],
)
def test_constructor_defaults(removed: str, field: str, expected: Any) -> None:
    tree = _without(tiny_model_tree(), removed)
    if removed == "memory_encoder.mask_downsampler.kernel_size":
        _without(tree, "memory_encoder.mask_downsampler.stride")  # default 4: 4 * 4 = 16
        _without(tree, "memory_encoder.mask_downsampler.padding")
    cfg = config_from_yaml({"model": tree})
    assert _get(cfg, field) == expected
    # the released file sets the key to another value, or to the default (then nothing changes)
    same = expected == _get(VARIANTS["sam2.1_hiera_t"], field)
    assert cfg.name == ("sam2.1_hiera_t" if same else "custom")


def test_image_size_default_is_512() -> None:
    cfg = config_from_yaml({"model": _without(tiny_model_tree(), "image_size")})
    assert cfg.image_size == 512


@pytest.mark.parametrize(
    "tree_changes, expected",
    [
        ({}, {"fill_hole_area": 8, "binarize_mask_from_pts_for_mem_enc": True}),
        ({"fill_hole_area": 0}, {"fill_hole_area": 0}),
        (
            {"binarize_mask_from_pts_for_mem_enc": False},
            {"binarize_mask_from_pts_for_mem_enc": False},
        ),
        (
            {"sam_mask_decoder_extra_args": {"dynamic_multimask_via_stability": False}},
            {"dynamic_multimask_via_stability": False, "dynamic_multimask_stability_delta": 0.05},
        ),
        (
            {"sam_mask_decoder_extra_args": {"dynamic_multimask_stability_thresh": 0.9}},
            {"dynamic_multimask_via_stability": True, "dynamic_multimask_stability_thresh": 0.9},
        ),
        ({"sam_mask_decoder_extra_args": None}, {"dynamic_multimask_via_stability": False}),
    ],
)
def test_builder_inference_defaults(tree_changes: dict[str, Any], expected: dict[str, Any]) -> None:
    tree = {**tiny_model_tree(), **tree_changes}
    cfg = config_from_yaml({"model": tree})
    for field, value in expected.items():
        assert getattr(cfg, field) == value


@pytest.mark.parametrize(
    "target",
    [
        "sam2.modeling.sam2_base.SAM2Base",
        "sam2.sam2_video_predictor.SAM2VideoPredictor",
        "sam2.sam2_video_predictor.SAM2VideoPredictorVOS",
    ],
)
def test_top_level_targets(target: str) -> None:
    tree = {**tiny_model_tree(), "_target_": target, "compile_image_encoder": True}
    assert config_from_yaml({"model": tree}) == VARIANTS["sam2.1_hiera_t"]


def test_bare_model_tree_and_extra_top_level_keys() -> None:
    assert config_from_yaml(tiny_model_tree()) == VARIANTS["sam2.1_hiera_t"]
    doc = {"model": tiny_model_tree(), "scratch": {"lr": 1e-4}, "dataset": None}
    assert config_from_yaml(doc) == VARIANTS["sam2.1_hiera_t"]


# ----------------------------------------------------------------------------------------------
# interpolation
# ----------------------------------------------------------------------------------------------


def test_interpolation() -> None:
    tree = tiny_model_tree()
    tree["image_size"] = "${scratch.resolution}"
    tree["memory_encoder"]["position_encoding"]["num_pos_feats"] = "${..out_dim}"
    tree["memory_attention"]["layer"]["d_model"] = "${model.memory_attention.d_model}"
    tree["image_encoder"]["neck"]["fpn_interp_model"] = "${scratch.mode}"
    doc = {"scratch": {"resolution": 512, "mode": "near${scratch.suffix}", "suffix": "est"}}
    cfg = config_from_yaml({**doc, "model": tree})
    assert cfg == VARIANTS["sam2.1_hiera_t"].replace(name="custom", image_size=512)


def test_interpolation_in_yaml_text_with_override(tmp_path: Path) -> None:
    text = SAM21_HIERA_L_YAML.replace("image_size: 1024", "image_size: ${scratch.resolution}")
    path = tmp_path / "train.yaml"
    path.write_text("scratch:\n  resolution: 1024\n" + text)
    assert config_from_yaml(path).image_size == 1024
    assert config_from_yaml(path, ["scratch.resolution=512"]).image_size == 512


# ----------------------------------------------------------------------------------------------
# bad inputs
# ----------------------------------------------------------------------------------------------

# (override applied to the sam2.1 tiny fixture, error type, fragments of the message)
BAD_OVERRIDES = [
    (
        "++model.memory_encoder.fuser.layer.foo=1",
        ValueError,
        [
            "unknown key model.memory_encoder.fuser.layer.foo",
            "known keys",
            "layer_scale_init_value",
        ],
    ),
    ("++model.foo=1", ValueError, ["unknown key model.foo", "known keys"]),
    (
        "++model.sam_mask_decoder_extra_args.iou_head_depth=3",
        ValueError,
        ["unknown key model.sam_mask_decoder_extra_args.iou_head_depth"],
    ),
    (
        "++model.image_encoder.trunk._target_=sam2.modeling.backbones.hieradet.Hiera2",
        ValueError,
        ["unknown _target_", "model.image_encoder.trunk", "hieradet.Hiera"],
    ),
    (
        "++model.memory_attention.layer.self_attention._target_=sam2.modeling.sam.transformer.Attention",
        ValueError,
        ["unknown _target_", "RoPEAttention"],
    ),
    ("++model._target_=sam2.modeling.sam2_base.SAM2Train", ValueError, ["unknown _target_"]),
    (
        "++model.use_high_res_features_in_sam=false",
        ValueError,
        ["released SAM 2 architecture", "model.use_high_res_features_in_sam = False", "True"],
    ),
    ("++model.soft_no_obj_ptr=true", ValueError, ["model.soft_no_obj_ptr = True"]),
    ("++model.pred_obj_scores=false", ValueError, ["model.pred_obj_scores"]),
    ("++model.backbone_stride=32", ValueError, ["model.backbone_stride = 32", "16"]),
    ("++model.image_encoder.neck.kernel_size=3", ValueError, ["neck.kernel_size = 3"]),
    (
        "++model.memory_attention.layer.cross_attention.rope_k_repeat=false",
        ValueError,
        ["cross_attention.rope_k_repeat = False"],
    ),
    ("++model.memory_attention.layer.activation=gelu", ValueError, ["activation = 'gelu'"]),
    (
        "++model.memory_attention.layer.cross_attention.num_heads=2",
        ValueError,
        ["cross_attention.num_heads = 2", "set them equal"],
    ),
    (
        "++model.memory_attention.layer.cross_attention.kv_in_dim=32",
        ValueError,
        ["kv_in_dim = 32", "out_dim = 64"],
    ),
    (
        "++model.memory_encoder.position_encoding.num_pos_feats=32",
        ValueError,
        ["num_pos_feats = 32", "supported: 64"],
    ),
    (
        "++model.image_encoder.neck.position_encoding.normalize=false",
        ValueError,
        ["normalize = False"],
    ),
    ("++model.memory_encoder.fuser.layer.use_dwconv=false", ValueError, ["use_dwconv"]),
    ("++model.memory_encoder.fuser.input_projection=true", ValueError, ["input_projection"]),
    (
        "++model.memory_encoder.mask_downsampler.embed_dim=128",
        ValueError,
        ["mask_downsampler.embed_dim = 128", "in_dim"],
    ),
    (
        "++model.image_encoder.neck.backbone_channel_list=[768,384,192,48]",
        ValueError,
        ["backbone_channel_list", "trunk's output channels"],
    ),
    (
        "++model.add_tpos_enc_to_obj_ptrs=false",
        ValueError,
        ["proj_tpos_enc_in_obj_ptrs", "requires model.add_tpos_enc_to_obj_ptrs"],
    ),
    ("++model.image_size=big", ValueError, ["model.image_size must be an integer", "'big'"]),
    ("++model.image_size=1000", ValueError, ["model.image_size = 1000", "multiple of 32"]),
    ("++model.image_encoder.scalp=0", ValueError, ["stride", "scalp"]),
    ("++model.non_overlap_masks=1", ValueError, ["non_overlap_masks must be true or false"]),
    ("++model.image_encoder.trunk.weights_path=x.pt", ValueError, ["checkpoint=PATH"]),
    ("++model.clear_non_cond_mem_for_multi_obj=true", ValueError, ["clear_non_cond_mem"]),
    ("++model.image_size=${nowhere.size}", ValueError, ["nowhere.size", "not in the document"]),
    ("++model.image_size=${times:2,512}", ValueError, ["resolver"]),
    ("++model.num_maskmem=${model.num_maskmem}", ValueError, ["circular"]),
    # override syntax and semantics
    ("model.fill_hole_area", ValueError, ["bad override", "KEY=VALUE"]),
    ("++model..x=1", ValueError, ["bad override"]),
    ("~model.fill_hole_area", ValueError, ["deletions"]),
    ("model.foo_bar=1", ValueError, ["model.foo_bar is not in the config", "++model.foo_bar"]),
    ("+model.image_size=512", ValueError, ["already exists"]),
    ("model.nothing.x=1", ValueError, ["model.nothing is missing"]),
    ("++model.image_size.x=1", ValueError, ["model.image_size is not a mapping"]),
    ("++model.x=[1, 2", ValueError, ["not valid YAML"]),
]


@pytest.mark.parametrize("override, error, fragments", BAD_OVERRIDES)
def test_bad_config(override: str, error: type[Exception], fragments: list[str]) -> None:
    with pytest.raises(error) as info:
        config_from_yaml(TINY_21, [override])
    for fragment in fragments:
        assert fragment in str(info.value)


@pytest.mark.parametrize(
    "text, error, fragment",
    [
        ("- a\n- b\n", ValueError, "expected a mapping with a top-level 'model:' key"),
        ("just a string\n", ValueError, "expected a mapping"),
        ("scratch: {a: 1}\n", ValueError, "no top-level 'model:' key"),
        ("trainer:\n  model: {}\n", ValueError, "trainer.model"),
        ("model: [1, 2]\n", ValueError, "'model' must be a mapping"),
        ("model:\n  image_size: [1\n", ValueError, "not valid YAML"),
        ("model:\n  _target_: sam2.modeling.sam2_base.SAM2Base\n", ValueError, "missing key"),
    ],
)
def test_bad_files(text: str, error: type[Exception], fragment: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(error, match="bad.yaml") as info:
        config_from_yaml(path)
    assert fragment in str(info.value)


def test_missing_required_key_names_it() -> None:
    tree = _without(tiny_model_tree(), "memory_attention.layer.activation")
    with pytest.raises(ValueError, match=r"missing key model\.memory_attention\.layer\.activation"):
        config_from_yaml({"model": tree})


@pytest.mark.parametrize(
    "call, error, fragment",
    [
        (lambda: config_from_yaml("/nonexistent/sam2.yaml"), FileNotFoundError, "does not exist"),
        (lambda: config_from_name_or_path("sam2.1_hiera_x.yaml"), FileNotFoundError, "config_from"),
        (lambda: config_from_yaml(42), TypeError, "path or a dict"),  # type: ignore[arg-type]
        (lambda: config_from_yaml(TINY_21, "++model.x=1"), TypeError, "list of strings"),
        (lambda: parse_overrides("++model.x=1"), TypeError, "list of strings"),
        (lambda: parse_overrides([3]), TypeError, "must be a str"),  # type: ignore[list-item]
        (lambda: parse_overrides(["model"]), ValueError, "bad override"),
    ],
)
def test_bad_arguments(call: Any, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        call()
