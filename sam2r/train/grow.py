"""Grow a trained model deeper without changing what it computes, to train on from there.

    new_cfg, new_state = deepen(cfg, state_dict, stages=(1, 2, 5, 1), memory_layers=4)
    build_model(new_cfg).load_state_dict(new_state)      # same outputs as before, more depth

    python -m sam2r.train.grow runs/a/model.pt runs/b/grown.pt --stages 1 2 5 1 \
        --memory-layers 4 [--variant sam2r_micro | --config a.yaml] [--config-out b.yaml]

A residual block whose output projections are zero adds nothing to its input, so the grown model
starts exactly where the trained one is; training then gives the new blocks their part. New
Hiera blocks go at the end of their stage and new memory-attention layers after the last one;
each copies the weights of the block before it where the shapes match (a good start for its
attention and MLP inputs) and has its attention output and last MLP layer set to zero. The
checkpoint stays in the official layout (`image_encoder.trunk.blocks.N`, `memory_attention.
layers.N`), so a grown model saves, loads (`strict=True`) and exports like any other.

What is left to others: building the model (`sam2r.build`), training it (`sam2r.train`).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import replace
from pathlib import Path

import torch

from sam2r.config import SAM2Config

_BLOCK = re.compile(r"^image_encoder\.trunk\.blocks\.(\d+)\.(.*)$")
_LAYER = re.compile(r"^memory_attention\.layers\.(\d+)\.(.*)$")
# the parameters that write into the residual stream: zero -> the block is the identity
_BLOCK_OUT = ("attn.proj.weight", "attn.proj.bias", "mlp.layers.1.weight", "mlp.layers.1.bias")
_LAYER_OUT = (
    "self_attn.out_proj.weight",
    "self_attn.out_proj.bias",
    "cross_attn_image.out_proj.weight",
    "cross_attn_image.out_proj.bias",
    "linear2.weight",
    "linear2.bias",
)


def deepen(
    cfg: SAM2Config,
    state_dict: dict[str, torch.Tensor],
    *,
    stages: tuple[int, ...] | None = None,
    memory_layers: int | None = None,
) -> tuple[SAM2Config, dict[str, torch.Tensor]]:
    """A deeper config and its state dict, computing what `state_dict` computes under `cfg`.

    Args:
        cfg: the trained model's config.
        state_dict: its weights (official layout).
        stages: Hiera blocks per stage, each at least the current count (None: unchanged).
        memory_layers: memory-attention layers, at least the current count (None: unchanged).

    Returns:
        (grown config, grown state dict). Global-attention blocks keep their place in their
        stage; new blocks attend in windows, as the stage's others do.
    """
    hiera, ma = cfg.hiera, cfg.memory_attention
    stages = tuple(hiera.stages) if stages is None else tuple(int(s) for s in stages)
    layers = ma.num_layers if memory_layers is None else int(memory_layers)
    if len(stages) != len(hiera.stages) or any(
        n < o for n, o in zip(stages, hiera.stages, strict=True)
    ):
        raise ValueError(
            f"stages must have {len(hiera.stages)} counts, each at least the current "
            f"{tuple(hiera.stages)}; got {stages}"
        )
    if layers < ma.num_layers:
        raise ValueError(
            f"memory_layers must be at least the current {ma.num_layers}, got {layers}"
        )

    # old block index -> new block index (blocks keep their stage and their place in it)
    old_to_new: dict[int, int] = {}
    copies: dict[int, int] = {}  # new index of a new block -> the old block it copies
    old_start = new_start = 0
    for old_n, new_n in zip(hiera.stages, stages, strict=True):
        for j in range(old_n):
            old_to_new[old_start + j] = new_start + j
        for j in range(old_n, new_n):
            copies[new_start + j] = old_start + old_n - 1
        old_start += old_n
        new_start += new_n
    new_cfg = cfg.replace(
        hiera=replace(
            hiera,
            stages=stages,
            global_att_blocks=tuple(old_to_new[b] for b in hiera.global_att_blocks),
        ),
        memory_attention=replace(ma, num_layers=layers),
    )

    out: dict[str, torch.Tensor] = {}
    old_blocks: dict[int, dict[str, torch.Tensor]] = {}
    old_layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state_dict.items():
        if m := _BLOCK.match(key):
            i, rest = int(m.group(1)), m.group(2)
            old_blocks.setdefault(i, {})[rest] = value
            out[f"image_encoder.trunk.blocks.{old_to_new[i]}.{rest}"] = value.clone()
        elif m := _LAYER.match(key):
            old_layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
            out[key] = value.clone()
        else:
            out[key] = value.clone()

    fresh = _fresh_state(new_cfg)
    for new_i, old_i in copies.items():
        prefix = f"image_encoder.trunk.blocks.{new_i}."
        _add_block(out, fresh, prefix, old_blocks[old_i], _BLOCK_OUT)
    for new_i in range(ma.num_layers, layers):
        prefix = f"memory_attention.layers.{new_i}."
        _add_block(out, fresh, prefix, old_layers[ma.num_layers - 1], _LAYER_OUT)
    return new_cfg, out


def _fresh_state(cfg: SAM2Config) -> dict[str, torch.Tensor]:
    from sam2r.build import build_model  # the model modules, only when growing

    return build_model(cfg).state_dict()


def _add_block(
    out: dict[str, torch.Tensor],
    fresh: dict[str, torch.Tensor],
    prefix: str,
    source: dict[str, torch.Tensor],
    zeroed: tuple[str, ...],
) -> None:
    """Fill the new block at `prefix`: `source`'s weight where the shape matches (a fresh
    initialisation where it does not: a stage's first block changes width), outputs zero."""
    for key, value in fresh.items():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix) :]
        src = source.get(rest)
        w = src.clone() if src is not None and src.shape == value.shape else value.clone()
        out[key] = torch.zeros_like(w) if rest in zeroed else w


def main(argv: list[str] | None = None) -> int:
    """`python -m sam2r.train.grow`: write a deeper checkpoint (official layout) and its YAML."""
    ap = argparse.ArgumentParser(
        prog="python -m sam2r.train.grow", description=deepen.__doc__.split("\n")[0]
    )
    ap.add_argument("checkpoint", help="the trained model's checkpoint (official format)")
    ap.add_argument("out", help="where to write the grown checkpoint")
    src = ap.add_mutually_exclusive_group()
    src.add_argument("--variant", help="the checkpoint's registered variant (default: detected)")
    src.add_argument("--config", help="or its official-layout model YAML")
    ap.add_argument("--stages", type=int, nargs="+", help="Hiera blocks per stage")
    ap.add_argument("--memory-layers", type=int, help="memory-attention layers")
    ap.add_argument("--config-out", help="write the grown model's YAML here (for model.config)")
    args = ap.parse_args(argv)

    import yaml

    from sam2r.build import detect_variant, read_state_dict
    from sam2r.config import VARIANTS, resolve_name
    from sam2r.configs.tree import config_to_yaml_dict
    from sam2r.configs.yaml import config_from_yaml

    state = read_state_dict(args.checkpoint)
    if args.config:
        cfg = config_from_yaml(args.config)
    else:
        cfg = VARIANTS[resolve_name(args.variant) if args.variant else detect_variant(state)]
    try:
        new_cfg, new_state = deepen(
            cfg, state, stages=tuple(args.stages) if args.stages else None,
            memory_layers=args.memory_layers,
        )  # fmt: skip
    except ValueError as e:
        ap.error(str(e))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": new_state}, out)
    if args.config_out:
        Path(args.config_out).write_text(
            yaml.safe_dump(config_to_yaml_dict(new_cfg), sort_keys=False)
        )
    n_old = sum(v.numel() for v in state.values())
    n_new = sum(v.numel() for v in new_state.values())
    print(
        f"grew {cfg.name}: stages {tuple(cfg.hiera.stages)} -> {new_cfg.hiera.stages}, memory "
        f"layers {cfg.memory_attention.num_layers} -> {new_cfg.memory_attention.num_layers}, "
        f"{n_old:,} -> {n_new:,} parameters; wrote {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
