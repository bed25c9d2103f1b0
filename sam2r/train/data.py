"""Training samples: clips from the synthetic data engine (generated on the fly) or from a
DAVIS-style folder, and single images with many objects.

A source is an infinite, seeded iterator of `Sample`s (`sam2r.train.rollout.Sample`): frames
resized to the model's square input and normalised exactly as the video predictor does it
(`sam2r.io.frames.preprocess_frame`), ground-truth masks resized with nearest neighbour, up to
`max_objects` objects chosen among those visible on the clip's first frame, and a random
horizontal flip. Under DDP every rank draws from its own seed. With `data.scenario_prob` a
share of the synthetic clips are the hard cases of `sam2r.data.scenarios` (long occlusions,
look-alikes, fast motion, cuts), subsampled so an 8-frame clip spans the whole event.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sam2r.io.frames import preprocess_frame
from sam2r.io.masks import read_palette_png
from sam2r.io.vos_dataset import VosDataset
from sam2r.train.config import DataSection
from sam2r.train.rollout import Sample

if TYPE_CHECKING:
    from sam2r.data.synthetic import SynthConfig, SynthVideo

MIN_OBJECT_PIXELS = 16  # at the frame's resolution: smaller objects are not prompted on


def augment_clip(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photometric augmentation of a clip (the same draw for every frame): colour jitter,
    grayscale, Gaussian blur, sensor noise and JPEG re-compression, each with some probability.

    Args:
        frames: (T, H, W, 3) uint8.
    Returns:
        (T, H, W, 3) uint8.
    """
    from io import BytesIO

    from PIL import ImageFilter

    x = frames.astype(np.float32)
    if rng.random() < 0.8:  # brightness, contrast, saturation, per-channel gain
        mean = x.mean(axis=(1, 2, 3), keepdims=True)
        x = (x - mean) * rng.uniform(0.6, 1.4) + mean * rng.uniform(0.6, 1.4)
        grey = x.mean(axis=-1, keepdims=True)
        x = grey + (x - grey) * rng.uniform(0.4, 1.6)
        x = x * rng.uniform(0.85, 1.15, size=3)
    if rng.random() < 0.1:
        x = np.repeat(x.mean(axis=-1, keepdims=True), 3, axis=-1)
    if rng.random() < 0.3:
        x = x + rng.normal(0.0, rng.uniform(2, 12), size=x.shape)
    out = np.clip(x, 0, 255).astype(np.uint8)
    blur = rng.uniform(0.5, 2.0) if rng.random() < 0.3 else 0.0
    quality = int(rng.integers(25, 90)) if rng.random() < 0.3 else 0
    if blur or quality:
        frames_out = []
        for f in out:
            im = Image.fromarray(f)
            if blur:
                im = im.filter(ImageFilter.GaussianBlur(blur))
            if quality:
                buf = BytesIO()
                im.save(buf, format="JPEG", quality=quality)
                im = Image.open(buf).convert("RGB")
            frames_out.append(np.asarray(im))
        out = np.stack(frames_out)
    return out


def to_sample(
    frames: np.ndarray,
    ids: np.ndarray,
    size: int,
    max_objects: int,
    rng: np.random.Generator,
    hflip_prob: float = 0.0,
    is_image: bool = False,
    augment: bool = False,
) -> Sample | None:
    """A `Sample` from uint8 frames and id masks; None when frame 0 shows no object.

    Args:
        frames: (T, H, W, 3) uint8 RGB.
        ids: (T, H, W) integer object ids (0 background, 255 void is ignored).
        size: the model's input side.
        max_objects: objects kept (chosen at random among those on frame 0).
        hflip_prob: probability of a horizontal flip of the whole clip.
        is_image: the sample is a single image (no mask prompts in the rollout).
        augment: apply `augment_clip`.
    """
    present, counts = np.unique(ids[0], return_counts=True)
    keep = (counts >= MIN_OBJECT_PIXELS) & (present != 0) & (present != 255)
    objs = [int(i) for i in present[keep]]
    if not objs:
        return None
    if len(objs) > max_objects:
        objs = sorted(rng.choice(objs, size=max_objects, replace=False).tolist())
    if rng.random() < hflip_prob:
        frames, ids = frames[:, :, ::-1], ids[:, :, ::-1]
    if augment:
        frames = augment_clip(np.ascontiguousarray(frames), rng)
    images = torch.stack([preprocess_frame(np.ascontiguousarray(f), size) for f in frames])
    lab = torch.from_numpy(np.ascontiguousarray(ids).astype(np.int64))[:, None].float()
    lab = F.interpolate(lab, size=(size, size), mode="nearest")[:, 0].long()  # (T, S, S)
    masks = torch.stack([lab == i for i in objs])  # (O, T, S, S)
    return Sample(images, masks, is_image)


def scenario_clip(
    seed: int, cfg: DataSection, synth: SynthConfig, rng: np.random.Generator
) -> SynthVideo:
    """A hard case (one of `cfg.scenarios`) rendered at its held-out length and subsampled to
    `cfg.num_frames` frames from frame 0 with the largest even stride, so a clip spans the whole
    event (an occlusion and the re-appearance, a crossing, a cut)."""
    from sam2r.data.scenarios import SCENARIO_FRAMES, make_scenario_video

    name = cfg.scenarios[int(rng.integers(len(cfg.scenarios)))]
    length = max(SCENARIO_FRAMES[name], cfg.num_frames)
    vid = make_scenario_video(seed, name, replace(synth, num_frames=length))
    stride = max((length - 1) // max(cfg.num_frames - 1, 1), 1)
    keep = np.arange(cfg.num_frames) * stride
    return replace(vid, frames=vid.frames[keep], masks=vid.masks[keep])


def synthetic_samples(cfg: DataSection, size: int, seed: int) -> Iterator[Sample]:
    """Clips and images from the synthetic data engine, generated on the fly."""
    from sam2r.data.synthetic import SynthConfig, make_image, make_video, split_seed

    rng = np.random.default_rng(seed)
    looks = list(cfg.looks)
    k = 0
    while True:
        look = looks[int(rng.integers(len(looks)))]
        synth = SynthConfig(
            height=cfg.height,
            width=cfg.width,
            num_frames=cfg.num_frames,
            max_objects=cfg.synth_max_objects,
            look=look,
        )
        # a split of its own: never one of the videos `write_dataset` puts in train / val
        vid_seed = split_seed(seed, "online", k)
        k += 1
        if rng.random() < cfg.image_prob:
            img = make_image(vid_seed, synth)
            s = to_sample(
                img.image[None],
                img.masks[None],
                size,
                cfg.max_objects,
                rng,
                cfg.hflip_prob,
                is_image=True,
                augment=cfg.augment,
            )
        else:
            if cfg.scenario_prob > 0 and rng.random() < cfg.scenario_prob:
                vid = scenario_clip(vid_seed, cfg, synth, rng)
            else:
                vid = make_video(vid_seed, synth)
            s = to_sample(
                vid.frames,
                vid.masks,
                size,
                cfg.max_objects,
                rng,
                cfg.hflip_prob,
                augment=cfg.augment,
            )
        if s is not None:
            yield s


def davis_samples(cfg: DataSection, size: int, seed: int) -> Iterator[Sample]:
    """Clips from a DAVIS-style folder (laid out as `sam2r.io.vos_dataset.VosDataset` reads
    it): T annotated frames every 1..max_stride frames."""
    if cfg.root is None:
        raise ValueError("data.source=davis needs data.root (a DAVIS-style folder)")
    data = VosDataset.open(cfg.root)
    index = []
    for name in data.sequence_names(cfg.split):
        seq = data.sequence(name)
        annotated = seq.annotated_frames()
        if not annotated:
            raise ValueError(f"sequence {name!r} has no annotations under {str(seq.ann_dir)!r}")
        names = seq.frame_names
        index.append([(seq.frames.paths[i], seq.ann_dir / f"{names[i]}.png") for i in annotated])
    rng = np.random.default_rng(seed)
    while True:
        pairs = index[int(rng.integers(len(index)))]
        stride = int(rng.integers(1, cfg.max_stride + 1))
        span = (cfg.num_frames - 1) * stride + 1
        if len(pairs) >= span:
            start = int(rng.integers(len(pairs) - span + 1))
            chosen = pairs[start : start + span : stride]
        else:
            chosen = pairs[: cfg.num_frames]
        frames = np.stack([np.asarray(Image.open(j).convert("RGB")) for j, _ in chosen])
        ids = np.stack([read_palette_png(p) for _, p in chosen])
        s = to_sample(frames, ids, size, cfg.max_objects, rng, cfg.hflip_prob, augment=cfg.augment)
        if s is not None:
            yield s


def make_samples(cfg: DataSection, size: int, rank: int = 0) -> Iterator[Sample]:
    """The configured source's samples for one process."""
    seed = cfg.seed * 1000 + rank
    if cfg.source == "synthetic":
        return synthetic_samples(cfg, size, seed)
    if cfg.source == "davis":
        return davis_samples(cfg, size, seed)
    raise ValueError(f"data.source must be 'synthetic' or 'davis', got {cfg.source!r}")
