"""`build_sam2` and friends with the official signatures.

The official builders compose a Hydra config, apply `++model.x=y` override strings, instantiate
the model and load `torch.load(ckpt)["model"]` strictly. Here the config name or YAML path is
read by `sam2r.configs.yaml` (no Hydra), the same override strings are applied to the YAML tree,
and `sam2r.build` loads the checkpoint (strict).

This module holds `build_sam2`, `build_sam2_hf` and what every builder shares (`_build`, the
post-processing override strings); `build_sam2_video_predictor` and its `_hf` variant live with
the class they return, in `sam2r.compat.video_predictor`. All four are in `sam2r.compat` and,
under the official module's name, in `sam2r.compat.build_sam`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml

from sam2r.build import build_model, load_checkpoint
from sam2r.compat.modeling.sam2_base import SAM2Base
from sam2r.config import resolve_name
from sam2r.configs.yaml import config_from_name_or_path
from sam2r.model.sam2 import SAM2Model

# what the official build_sam2 adds when apply_postprocessing=True
_POSTPROCESSING = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
)


def resolve_device(device: str | torch.device) -> torch.device:
    """The requested device, or the CPU (with a warning) when CUDA/MPS is asked for but absent."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA is not available: building the model on the CPU", stacklevel=3)
        return torch.device("cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        warnings.warn("MPS is not available: building the model on the CPU", stacklevel=3)
        return torch.device("cpu")
    return dev


def _build(
    config_file: str,
    ckpt_path: str | None,
    device: str | torch.device,
    mode: str,
    overrides: Sequence[str],
) -> SAM2Model:
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    cfg = config_from_name_or_path(config_file, overrides)
    model = build_model(cfg, device=resolve_device(device))
    if ckpt_path is not None:
        load_checkpoint(model, ckpt_path, strict=True)
    return model.train() if mode == "train" else model.eval()


def build_sam2(
    config_file: str,
    ckpt_path: str | None = None,
    device: str | torch.device = "cuda",
    mode: str = "eval",
    hydra_overrides_extra: Sequence[str] = (),
    apply_postprocessing: bool = True,
    **kwargs: Any,
) -> SAM2Base:
    """The official `sam2.build_sam.build_sam2`: the model as the official `SAM2Base`
    (`sam2r.compat.modeling.sam2_base`), over a sam2r model (`.sam2r`) whose parameters it shares.

    Args:
        config_file: an official config name (`configs/sam2.1/sam2.1_hiera_t.yaml`) or a YAML path.
        ckpt_path: an official `.pt` checkpoint, or None for random weights.
        device: where to put the model (falls back to the CPU when CUDA is absent).
        mode: "eval" or "train".
        hydra_overrides_extra: official `++model.key=value` override strings.
        apply_postprocessing: enable the dynamic multimask fallback (official default).
    """
    overrides = _postprocessing(config_file, apply_postprocessing, video=False)
    overrides += list(hydra_overrides_extra)
    return SAM2Base(_build(config_file, ckpt_path, device, mode, overrides))


def build_sam2_hf(model_id: str, **kwargs: Any) -> SAM2Base:
    """The official `build_sam2_hf`: download `model_id` (e.g. "facebook/sam2.1-hiera-tiny")
    from the Hugging Face hub (or its cache) and build it; `kwargs` go to `build_sam2`."""
    from sam2r.build import download_checkpoint

    name = resolve_name(model_id)
    return build_sam2(name, str(download_checkpoint(model_id)), **kwargs)


# what the official build_sam2_video_predictor adds after the predictor class (post-processing)
_VIDEO_POSTPROCESSING = _POSTPROCESSING + (
    "++model.binarize_mask_from_pts_for_mem_enc=true",
    "++model.fill_hole_area=8",
)
# without post-processing the official model keeps its constructor defaults for these keys
# (sam2r's reader would otherwise fill in the post-processing values, see `config_from_yaml`)
_NO_POSTPROCESSING = (
    (
        "sam_mask_decoder_extra_args",
        "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=false",
    ),
    ("binarize_mask_from_pts_for_mem_enc", "++model.binarize_mask_from_pts_for_mem_enc=false"),
    ("fill_hole_area", "++model.fill_hole_area=0"),
)


def _model_keys(config_file: str | os.PathLike[str]) -> set[str]:
    """Top-level keys of a config file's `model:` mapping (none for an official config name:
    the released YAMLs set none of the post-processing keys)."""
    from sam2r.configs.yaml import OFFICIAL_CONFIG_NAMES

    if isinstance(config_file, str) and config_file.strip() in OFFICIAL_CONFIG_NAMES:
        return set()
    path = Path(config_file)
    if not path.is_file():
        return set()  # config_from_name_or_path reports it
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return set()  # config_from_name_or_path reports it
    model = doc.get("model", doc) if isinstance(doc, dict) else None
    return set(map(str, model)) if isinstance(model, dict) else set()


def _postprocessing(config_file: str | os.PathLike[str], apply: bool, video: bool) -> list[str]:
    """The override strings the official builders add for `apply_postprocessing`.

    With it on, the dynamic multimask fallback (and for video the binarised prompt masks and
    hole filling). Otherwise the official model keeps what the YAML says, or the constructor
    defaults where it says nothing; sam2r's reader fills in the post-processing values for
    absent keys, so those get the defaults back explicitly (for the image builder the
    binarised prompt masks and hole filling always do).
    """
    present = _model_keys(config_file)
    if apply:
        base = list(_VIDEO_POSTPROCESSING if video else _POSTPROCESSING)
        # the official image builder leaves the memory-encoder and hole-filling keys at the
        # constructor defaults (they matter once `track_step` is called on the model)
        keys = () if video else _NO_POSTPROCESSING[1:]
    else:
        base, keys = [], _NO_POSTPROCESSING
    return base + [ov for key, ov in keys if key not in present]
