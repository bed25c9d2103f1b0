"""Training configuration: frozen dataclasses, read from a YAML file with dotted overrides.

    cfg = train_config_from_yaml("configs/train/synth_micro.yaml", ["optim.lr=3e-4"])

A training YAML has four sections (every field optional, defaults below):

    model:  {name: sam2r_micro}           # a registered variant, or {config: path/to/model.yaml}
    data:   {source: synthetic, ...}      # or {source: davis, root: /data/DAVIS}
    optim:  {lr: 1e-3, ...}
    run:    {out_dir: runs/train, steps: 2000, ...}

This is one of the two places of sam2r where YAML configs are read (with `sam2r.configs`, the
official model YAMLs); the model itself is always built from `sam2r.config` dataclasses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class ModelSection:
    name: str = "sam2r_micro"  # registered variant (`sam2r.config.VARIANTS`) to train
    config: str | None = None  # or an official-layout model YAML (overrides `name`)
    checkpoint: str | None = None  # start from these weights (fine-tuning), official format
    freeze_image_encoder: bool = False  # Hiera + neck fixed (their features computed no-grad)
    train_only_memory: bool = False  # train memory attention/encoder + pointers only


@dataclass(frozen=True)
class DataSection:
    source: str = "synthetic"  # "synthetic" (generated online) or "davis" (a DAVIS-style folder)
    root: str | None = None  # DAVIS-style root for source=davis
    split: str = "train"  # ImageSets/2017/<split>.txt of that root (all sequences if absent)
    num_frames: int = 8  # frames per training clip
    max_objects: int = 3  # objects per clip (sampled among those on the clip's first frame)
    image_prob: float = 0.2  # probability that a sample is a single image (the image task)
    max_stride: int = 2  # DAVIS clips: frames sampled every 1..max_stride frames
    height: int = 192  # synthetic frames
    width: int = 256
    synth_max_objects: int = 4  # objects per synthetic video
    looks: tuple[str, ...] = ("train",)  # synthetic looks mixed in training
    # of the synthetic clips, the fraction drawn as a hard case of `sam2r.data.scenarios`
    # (rendered at its held-out length, then every k-th frame so `num_frames` span all of it)
    scenario_prob: float = 0.0
    scenarios: tuple[str, ...] = ("occlusion", "distractor", "fast", "cut")
    hflip_prob: float = 0.5  # random horizontal flip of a whole clip
    augment: bool = True  # colour jitter, grey, blur, noise, JPEG (`train.data.augment_clip`)
    seed: int = 0  # data seed (the rank is added under DDP)

    def __post_init__(self) -> None:
        from sam2r.data.scenarios import SCENARIOS

        if not 0.0 <= self.scenario_prob <= 1.0:
            raise ValueError(f"data.scenario_prob must be in [0, 1], got {self.scenario_prob}")
        unknown = [s for s in self.scenarios if s not in SCENARIOS]
        if unknown or (self.scenario_prob > 0 and not self.scenarios):
            raise ValueError(
                f"data.scenarios {list(self.scenarios)} must be a non-empty list of {SCENARIOS}"
            )


@dataclass(frozen=True)
class PromptSection:
    mask_prob: float = 0.5  # first frame prompted with the GT mask (else clicks or a box)
    box_prob: float = 0.5  # when not a mask: a (jittered) box instead of one click
    second_cond_prob: float = 0.5  # a second initial conditioning frame
    correct_frames: int = 2  # up to this many tracked frames get corrective clicks
    correction_clicks: int = 3  # iterative clicks on prompted and corrected frames
    box_noise: float = 0.1  # box corners moved by up to this fraction of the box side


@dataclass(frozen=True)
class LossSection:
    focal: float = 20.0  # the paper's weights
    dice: float = 1.0
    iou: float = 1.0
    object_score: float = 1.0
    iou_rank: float = 0.0  # ours, off by default: ranks the candidates' predicted IoUs
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0


@dataclass(frozen=True)
class OptimSection:
    lr: float = 1e-3  # peak learning rate of the heads
    encoder_lr_scale: float = 1.0  # extra factor for the image encoder's groups
    layer_decay: float = 0.9  # layer-wise learning-rate decay through Hiera's blocks
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 100
    min_lr_ratio: float = 0.05  # cosine schedule ends at lr * this
    grad_clip: float = 0.1  # max global gradient norm (the official value); 0 = off


@dataclass(frozen=True)
class RunSection:
    out_dir: str = "runs/train"
    steps: int = 2000  # optimiser steps
    batch_size: int = 2  # samples per step and process
    log_every: int = 10
    checkpoint_every: int = 200
    device: str = "auto"  # "auto": cuda:LOCAL_RANK when available, else cpu
    bf16: bool = True  # bf16 autocast on CUDA (ignored on CPU)
    seed: int = 0
    threads: int = 0  # torch threads per process (0: leave torch's default)


@dataclass(frozen=True)
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    prompts: PromptSection = field(default_factory=PromptSection)
    loss: LossSection = field(default_factory=LossSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        """Nested dicts of plain values (tuples as lists), for YAML and checkpoints."""
        return {
            name: {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
            for name, values in dataclasses.asdict(self).items()
        }


_SECTIONS = {f.name: f.type for f in dataclasses.fields(TrainConfig)}


def _coerce(section: type, key: str, value: Any, where: str) -> Any:
    """Check a value against a field's default type (YAML gives lists for tuples)."""
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields:
        raise ValueError(f"{where}: unknown key {key!r}; known keys: {sorted(fields)}")
    default = fields[key].default
    if default is dataclasses.MISSING:  # pragma: no cover - every field has a default
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}.{key}: expected a list, got {value!r}")
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{where}.{key}: expected true or false, got {value!r}")
        return value
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(default, float) and isinstance(value, str):
        try:
            return float(value)  # YAML 1.1 reads 1e-3 as a string
        except ValueError:
            pass
    if default is not None and not isinstance(value, type(default)):
        raise ValueError(
            f"{where}.{key}: expected {type(default).__name__}, got {value!r} "
            f"({type(value).__name__})"
        )
    return value


def train_config_from_dict(data: dict[str, Any], where: str = "config") -> TrainConfig:
    """A `TrainConfig` from nested dicts; unknown sections or keys raise ValueError."""
    sections: dict[str, Any] = {}
    for name, values in (data or {}).items():
        if name not in _SECTIONS:
            raise ValueError(f"{where}: unknown section {name!r}; expected {sorted(_SECTIONS)}")
        cls = {f.name: f.default_factory for f in dataclasses.fields(TrainConfig)}[name]
        base = cls()  # type: ignore[misc]
        if not isinstance(values, dict):
            raise ValueError(f"{where}.{name}: expected a mapping, got {values!r}")
        kw = {k: _coerce(type(base), k, v, f"{where}.{name}") for k, v in values.items()}
        sections[name] = dataclasses.replace(base, **kw)
    return TrainConfig(**sections)


def train_config_from_yaml(
    path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()
) -> TrainConfig:
    """Read a training YAML (None: all defaults) and apply `section.key=value` overrides."""
    data: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        where = str(path)
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    for item in overrides:
        key, sep, raw = item.partition("=")
        parts = key.strip().lstrip("+").split(".")
        if not sep or len(parts) != 2:
            raise ValueError(f"override {item!r}: expected section.key=value, e.g. optim.lr=3e-4")
        data.setdefault(parts[0], {})
        if not isinstance(data[parts[0]], dict):
            raise ValueError(f"override {item!r}: section {parts[0]!r} is not a mapping")
        data[parts[0]][parts[1]] = yaml.safe_load(raw)
    return train_config_from_dict(data, where)
