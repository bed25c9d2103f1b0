"""`build_sam2` and friends with the official signatures.

The official builders compose a Hydra config, apply `++model.x=y` override strings, instantiate
the model and load `torch.load(ckpt)["model"]` strictly. Here the config name or YAML path is
read by `sam2r.yaml_config` (no Hydra), the same override strings are applied to the YAML tree,
and `sam2r.build` loads the checkpoint (strict).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

from sam2r.build import build_model, load_checkpoint
from sam2r.config import HF_MODELS, resolve_name
from sam2r.model.sam2 import SAM2Model
from sam2r.yaml_config import config_from_name_or_path

# what the official build_sam2 adds when apply_postprocessing=True
_POSTPROCESSING = (
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=true",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_delta=0.05",
    "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.98",
)
_NO_POSTPROCESSING = ("++model.sam_mask_decoder_extra_args.dynamic_multimask_via_stability=false",)


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
) -> SAM2Model:
    """The official `sam2.build_sam.build_sam2`.

    Args:
        config_file: an official config name (`configs/sam2.1/sam2.1_hiera_t.yaml`) or a YAML path.
        ckpt_path: an official `.pt` checkpoint, or None for random weights.
        device: where to put the model (falls back to the CPU when CUDA is absent).
        mode: "eval" or "train".
        hydra_overrides_extra: official `++model.key=value` override strings.
        apply_postprocessing: enable the dynamic multimask fallback (official default).
    """
    overrides = list(_POSTPROCESSING if apply_postprocessing else _NO_POSTPROCESSING)
    overrides += list(hydra_overrides_extra)
    return _build(config_file, ckpt_path, device, mode, overrides)


def build_sam2_hf(model_id: str, **kwargs: Any) -> SAM2Model:
    """The official `build_sam2_hf`: download `model_id` from the Hugging Face hub and build it."""
    from sam2r.build import from_pretrained

    name = resolve_name(model_id)
    hub_id = next((k for k, (v, _) in HF_MODELS.items() if v == name), model_id)
    device = resolve_device(kwargs.pop("device", "cuda"))
    model = from_pretrained(hub_id, device=device)
    mode = kwargs.pop("mode", "eval")
    return model.train() if mode == "train" else model.eval()
