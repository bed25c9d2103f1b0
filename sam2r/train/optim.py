"""AdamW with layer-wise learning-rate decay, weight-decay exclusions, freezing options and a
warmup + cosine schedule.

Layer ids follow Hiera's depth: the patch embedding and position embeddings are layer 0, block
i is layer i + 1, and everything after the trunk (neck, memory, heads) is the top layer, so the
learning rate of layer l is `lr * layer_decay ** (top - l)` (times `encoder_lr_scale` for the
image encoder). Biases, norms, position embeddings and learned tokens get no weight decay.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sam2r.train.config import ModelSection, OptimSection

# modules a `train_only_memory` run keeps trainable (the rest of the model is frozen)
MEMORY_PATH = (
    "memory_attention.",
    "memory_encoder.",
    "maskmem_tpos_enc",
    "no_mem_embed",
    "no_mem_pos_enc",
    "no_obj_ptr",
    "no_obj_embed_spatial",
    "obj_ptr_proj.",
    "obj_ptr_tpos_proj.",
)
_NO_DECAY_WORDS = ("pos_embed", "no_mem", "no_obj", "maskmem_tpos", "token", "norm", "embed")


def layer_id(name: str, num_blocks: int) -> int:
    """Depth of a parameter for layer-wise decay (0 = input, num_blocks + 1 = top)."""
    trunk = "image_encoder.trunk."
    if not name.startswith(trunk):
        return num_blocks + 1
    rest = name[len(trunk) :]
    if rest.startswith("blocks."):
        return int(rest.split(".")[1]) + 1
    return 0


def apply_freezing(model: nn.Module, section: ModelSection) -> int:
    """Set `requires_grad` for the freezing options; returns the number of trainable tensors."""
    for name, p in model.named_parameters():
        trainable = True
        if section.freeze_image_encoder and name.startswith("image_encoder."):
            trainable = False
        if section.train_only_memory and not name.startswith(MEMORY_PATH):
            trainable = False
        p.requires_grad_(trainable)
    n = sum(1 for p in model.parameters() if p.requires_grad)
    if n == 0:
        raise ValueError("the freezing options leave no parameter to train")
    return n


def param_groups(model: nn.Module, cfg: OptimSection) -> list[dict]:
    """AdamW parameter groups: one per (layer, decay / no decay) with its own `lr`."""
    num_blocks = len(getattr(model.image_encoder.trunk, "blocks", []))
    groups: dict[tuple[int, bool], dict] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        lid = layer_id(name, num_blocks)
        no_decay = p.ndim <= 1 or any(w in name for w in _NO_DECAY_WORDS)
        scale = cfg.layer_decay ** (num_blocks + 1 - lid)
        if name.startswith("image_encoder."):
            scale *= cfg.encoder_lr_scale
        key = (lid if name.startswith("image_encoder.") else -1, no_decay)
        g = groups.setdefault(
            key,
            {
                "params": [],
                "names": [],
                "lr_scale": scale,
                "weight_decay": 0.0 if no_decay else cfg.weight_decay,
            },
        )
        g["params"].append(p)
        g["names"].append(name)
    return list(groups.values())


def make_optimizer(model: nn.Module, cfg: OptimSection) -> torch.optim.AdamW:
    groups = param_groups(model, cfg)
    for g in groups:
        g["lr"] = cfg.lr * g["lr_scale"]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas)


def lr_factor(step: int, total: int, cfg: OptimSection) -> float:
    """Linear warmup to 1, then cosine down to `min_lr_ratio` at `total` steps."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(total - cfg.warmup_steps, 1)
    progress = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = base_lr * g["lr_scale"] * factor
