"""The training loop: `train(cfg)` builds the model, the optimiser and the sample source, then
runs `cfg.run.steps` optimiser steps, resumable, on one process or many (`torchrun`).

Under `torchrun` (WORLD_SIZE > 1) each process joins a `torch.distributed` group (gloo on CPU,
NCCL on CUDA, one GPU per LOCAL_RANK), wraps the rollout in `DistributedDataParallel` (gradients
averaged across processes) and draws its own samples; rank 0 logs and writes checkpoints.

Outputs under `cfg.run.out_dir`:
    checkpoints/checkpoint.pt  {"model": state_dict, "optimizer", "steps", "config"} (resumable;
                               its "model" loads into the official code and `sam2r.build_model`)
    model.pt                   {"model": state_dict}, the final weights in the official format
    log.csv                    step, loss terms, learning rate, seconds per step
    config.yaml                the configuration that ran
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml

from sam2r.atomic import write_atomic
from sam2r.build import build_model, official_state_dict
from sam2r.train.config import TrainConfig
from sam2r.train.data import make_samples
from sam2r.train.optim import apply_freezing, lr_factor, make_optimizer, set_lr
from sam2r.train.rollout import TrainStep

LOG_FIELDS = ("step", "loss", "focal", "dice", "iou", "object_score", "lr", "sec_per_step")


def _setup_distributed(device_opt: str) -> tuple[int, int, torch.device]:
    """(rank, world size, device), joining the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if device_opt == "auto":
        device = torch.device(f"cuda:{local}" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(device_opt)
        if device.type == "cuda" and device.index is None:
            device = torch.device(f"cuda:{local}")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


def _build(cfg: TrainConfig, device: torch.device) -> Any:
    from sam2r.configs.yaml import config_from_yaml

    variant: Any = cfg.model.name
    if cfg.model.config is not None:
        variant = config_from_yaml(cfg.model.config)
    model = build_model(variant, checkpoint=cfg.model.checkpoint, device=device)
    return model.train()


def _save(path: Path, payload: dict[str, Any]) -> None:
    """Write atomically (a crash mid-write never leaves a truncated checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda fh: torch.save(payload, fh))


def train(
    cfg: TrainConfig,
    *,
    resume: bool = True,
    on_log: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """Train; returns the path of the final `model.pt` (official format).

    Args:
        cfg: the training configuration.
        resume: continue from `out_dir/checkpoints/checkpoint.pt` when it exists.
        on_log: called on rank 0 with each logged row.
    """
    rank, world, device = _setup_distributed(cfg.run.device)
    if cfg.run.threads > 0:
        torch.set_num_threads(cfg.run.threads)
    torch.manual_seed(cfg.run.seed + rank)
    out = Path(cfg.run.out_dir)
    ckpt_path = out / "checkpoints" / "checkpoint.pt"

    model = _build(cfg, device)
    apply_freezing(model, cfg.model)
    optimizer = make_optimizer(model, cfg.optim)
    start = 0
    if resume and ckpt_path.is_file():
        state = torch.load(ckpt_path, map_location=device, weights_only=True)
        model.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["steps"])
        if rank == 0:
            print(f"resuming from {ckpt_path} at step {start}")

    step_module: torch.nn.Module = TrainStep(
        model,
        cfg.prompts,
        cfg.loss,
        seed=cfg.run.seed * 1000 + rank + 7919 * start,
        encoder_grad=not (cfg.model.freeze_image_encoder or cfg.model.train_only_memory),
    )
    if world > 1:
        step_module = torch.nn.parallel.DistributedDataParallel(
            step_module,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=True,  # a batch may skip mask_downsample, no_obj_ptr, ...
        )
    data_cfg = cfg.data
    samples = make_samples(data_cfg, model.image_size, rank=rank + world * start)

    if rank == 0:
        where = f"{world} processes ({dist.get_backend()})" if world > 1 else "1 process"
        print(f"training {cfg.model.name} on {device}, {where}, from step {start}", flush=True)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "config.yaml", "w") as f:
            yaml.safe_dump(cfg.to_dict(), f, sort_keys=False)
        log_path = out / "log.csv"
        new_log = start == 0 or not log_path.is_file()
        if not new_log:
            _truncate_log(log_path, start)
        log_file = open(log_path, "w" if new_log else "a", newline="")
        writer = csv.DictWriter(log_file, fieldnames=LOG_FIELDS)
        if new_log:
            writer.writeheader()
    use_bf16 = cfg.run.bf16 and device.type == "cuda"
    params = [p for p in model.parameters() if p.requires_grad]
    acc: dict[str, float] = {}
    n_acc = 0
    t0 = time.perf_counter()
    try:
        for step in range(start, cfg.run.steps):
            factor = lr_factor(step, cfg.run.steps, cfg.optim)
            set_lr(optimizer, cfg.optim.lr, factor)
            batch = [_to(next(samples), device) for _ in range(cfg.run.batch_size)]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, terms = step_module(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.optim.grad_clip)
            optimizer.step()
            terms["loss"] = loss.item()
            for k, v in terms.items():
                acc[k] = acc.get(k, 0.0) + v
            n_acc += 1
            done = step + 1
            if rank == 0 and (done % cfg.run.log_every == 0 or done == cfg.run.steps):
                row = {k: acc.get(k, 0.0) / n_acc for k in LOG_FIELDS[1:6]}
                row.update(
                    step=done,
                    lr=cfg.optim.lr * factor,
                    sec_per_step=(time.perf_counter() - t0) / n_acc,
                )
                writer.writerow({k: _fmt(row[k]) for k in LOG_FIELDS})
                log_file.flush()
                print(
                    f"step {done}/{cfg.run.steps}  loss {row['loss']:.4f}  "
                    f"(focal {row['focal']:.4f} dice {row['dice']:.4f} iou {row['iou']:.4f} "
                    f"score {row['object_score']:.4f})  lr {row['lr']:.2e}  "
                    f"{row['sec_per_step']:.2f} s/step",
                    flush=True,
                )
                if on_log is not None:
                    on_log(row)
                acc, n_acc, t0 = {}, 0, time.perf_counter()
            if rank == 0 and (done % cfg.run.checkpoint_every == 0 or done == cfg.run.steps):
                _save(
                    ckpt_path,
                    {
                        "model": official_state_dict(model),
                        "optimizer": optimizer.state_dict(),
                        "steps": done,
                        "world_size": world,
                        "config": cfg.to_dict(),
                    },
                )
        final = out / "model.pt"
        if rank == 0:
            _save(final, {"model": official_state_dict(model)})
        if world > 1:
            dist.barrier()
        return final
    finally:
        if rank == 0:
            log_file.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _truncate_log(log_path: Path, step: int) -> None:
    """Drop the rows a resumed run logs again: those after the checkpoint's `step` (a run
    stopped between two checkpoints logged steps it now repeats)."""
    with open(log_path, newline="") as f:
        rows = list(csv.DictReader(f))
    kept = [r for r in rows if int(r["step"]) <= step]
    if len(kept) < len(rows):
        with open(log_path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=LOG_FIELDS)
            writer.writeheader()
            writer.writerows(kept)


def _to(sample: Any, device: torch.device) -> Any:
    sample.images = sample.images.to(device, non_blocking=True)
    sample.masks = sample.masks.to(device, non_blocking=True)
    return sample


def _fmt(v: float) -> str:
    return str(int(v)) if float(v).is_integer() and abs(v) >= 1 else f"{v:.6g}"
