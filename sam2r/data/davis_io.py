"""Synthetic videos on disk in the DAVIS 2017 layout, and back.

    ROOT/JPEGImages/480p/<seq>/00000.jpg    frames (JPEG quality 90, 4:4:4 chroma)
    ROOT/Annotations/480p/<seq>/00000.png   object ids of every frame (DAVIS palette PNG, mode "P")
    ROOT/ImageSets/2017/<split>.txt         sequence names of a split, one per line
    ROOT/synth.json                         how `write_dataset` made the set (config, seeds)
    ROOT/images/<name>.jpg, <name>.png      `write_images`: single images with many objects

Unlike DAVIS, every frame has its annotation (synthetic ground truth is free, and evaluation
needs it), and "480p" is only the folder name: frames keep the size of the config.

What is left to others: making the videos (`sam2r.data.synthetic`), the palette PNG codec
(`sam2r.io.masks`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image

from sam2r.data.looks import LOOKS
from sam2r.data.scenarios import SCENARIOS, make_scenario_video
from sam2r.data.synthetic import SynthConfig, SynthVideo, make_image, make_video, split_seed
from sam2r.io.masks import read_palette_png, write_palette_png

PathLike = str | os.PathLike[str]
FRAMES = Path("JPEGImages") / "480p"
ANNOTATIONS = Path("Annotations") / "480p"
IMAGE_SETS = Path("ImageSets") / "2017"


def _check_name(what: str, name: str) -> None:
    if not name or any(c in name for c in "/\\\n\t ") or name in (".", ".."):
        raise ValueError(
            f"{what} {name!r} cannot be a folder or file name; use letters, digits, '_' or '-'"
        )


def write_davis(
    root: PathLike, videos: Iterable[SynthVideo], split: str, quality: int = 90
) -> list[str]:
    """Write videos as DAVIS sequences and list them in `ImageSets/2017/<split>.txt`.

    Args:
        root: the dataset folder (created if missing).
        videos: the videos, each written under its `name`; a generator keeps memory flat.
        split: the split file to write, e.g. "train" or "val" (replaced if present).
        quality: JPEG quality of the frames, 1..100.

    Returns:
        The sequence names written, in order.
    """
    _check_name("split", split)
    if not 1 <= quality <= 100:
        raise ValueError(f"quality must be in 1..100, got {quality}")
    root = Path(root)
    names: list[str] = []
    for video in videos:
        _check_name("sequence name", video.name)
        if video.name in names:
            raise ValueError(f"sequence name {video.name!r} appears twice in split {split!r}")
        frames, masks = np.asarray(video.frames), np.asarray(video.masks)
        if frames.ndim != 4 or frames.shape[-1] != 3 or masks.shape != frames.shape[:3]:
            raise ValueError(
                f"{video.name}: frames must be (T, H, W, 3) and masks (T, H, W), got "
                f"{frames.shape} and {masks.shape}"
            )
        frame_dir = root / FRAMES / video.name
        frame_dir.mkdir(parents=True, exist_ok=True)
        for t in range(len(frames)):
            # 4:4:4 chroma: the sharp colour edges of the textures survive (DAVIS uses 4:2:0)
            Image.fromarray(frames[t]).save(
                frame_dir / f"{t:05d}.jpg", quality=quality, subsampling=0
            )
            write_palette_png(root / ANNOTATIONS / video.name / f"{t:05d}.png", masks[t])
        names.append(video.name)
    split_file = root / IMAGE_SETS / f"{split}.txt"
    split_file.parent.mkdir(parents=True, exist_ok=True)
    split_file.write_text("".join(f"{n}\n" for n in names))
    return names


def _videos(cfg: SynthConfig, seeds: dict[str, int], scenario: str | None) -> Iterator[SynthVideo]:
    for name, seed in seeds.items():
        video = (
            make_video(seed, cfg) if scenario is None else make_scenario_video(seed, scenario, cfg)
        )
        yield replace(video, name=name)


def write_dataset(
    root: PathLike,
    num_train: int,
    num_val: int,
    cfg: SynthConfig = SynthConfig(),  # noqa: B008 (frozen: a shared default is safe)
    seed: int = 0,
    val_look: str | None = None,
    scenario: str | None = None,
) -> Path:
    """Write `num_train` + `num_val` synthetic videos as a DAVIS 2017 dataset under `root`.

    Sequences are `train_00000`, ... and `val_00000`, ...; video i of a split uses seed
    `split_seed(seed, split, i)`, so the splits never share a video and the same arguments
    give the same files. `val_look` gives the validation split another look (e.g. "unseen").
    `scenario` makes every video a hard case of `sam2r.data.scenarios` (one annotated target).
    `ROOT/synth.json` records the config, the looks and every sequence's seed.

    Returns:
        The root folder.
    """
    for what, n in (("num_train", num_train), ("num_val", num_val)):
        if n < 0:
            raise ValueError(f"{what} must be >= 0, got {n}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if val_look is not None and val_look not in LOOKS:
        raise ValueError(f"val_look={val_look!r} is unknown; choose one of {sorted(LOOKS)}")
    if scenario is not None and scenario not in SCENARIOS:
        raise ValueError(f"scenario={scenario!r} is unknown; choose one of {SCENARIOS} or None")
    root = Path(root)
    configs = {"train": cfg, "val": replace(cfg, look=val_look) if val_look else cfg}
    counts = {"train": num_train, "val": num_val}
    record: dict[str, object] = {
        "config": asdict(cfg),
        "seed": seed,
        "scenario": scenario,
        "splits": {},
    }
    for split, split_cfg in configs.items():
        seeds = {f"{split}_{i:05d}": split_seed(seed, split, i) for i in range(counts[split])}
        write_davis(root, _videos(split_cfg, seeds, scenario), split)
        record["splits"][split] = {"look": split_cfg.look, "seeds": seeds}  # type: ignore[index]
    (root / "synth.json").write_text(json.dumps(record, indent=1))
    return root


def write_images(
    root: PathLike,
    n: int,
    cfg: SynthConfig = SynthConfig(),  # noqa: B008 (frozen: a shared default is safe)
    seed: int = 0,
) -> list[str]:
    """Write `n` many-object images as `ROOT/images/image_00000.jpg` + `.png` (palette ids).

    Image i uses seed `split_seed(seed, "images", i)` and `cfg.image_min_objects..
    image_max_objects` objects. Returns the names written.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    folder = Path(root) / "images"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"image_{i:05d}"
        sample = make_image(split_seed(seed, "images", i), cfg)
        Image.fromarray(sample.image).save(folder / f"{name}.jpg", quality=90, subsampling=0)
        write_palette_png(folder / f"{name}.png", sample.masks)
        names.append(name)
    return names


def read_split(root: PathLike, split: str) -> list[str]:
    """The sequence names listed in `ROOT/ImageSets/2017/<split>.txt`."""
    path = Path(root) / IMAGE_SETS / f"{split}.txt"
    if not path.is_file():
        raise ValueError(f"{path}: no such split file; write it with write_davis / write_dataset")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def read_sequence(root: PathLike, name: str) -> SynthVideo:
    """Frames (T, H, W, 3) uint8 and masks (T, H, W) uint8 of sequence `name` under `root`."""
    root = Path(root)
    frame_files = sorted((root / FRAMES / name).glob("*.jpg"))
    mask_files = sorted((root / ANNOTATIONS / name).glob("*.png"))
    if not frame_files:
        raise ValueError(f"{root / FRAMES / name}: no frames (*.jpg)")
    if [f.stem for f in frame_files] != [f.stem for f in mask_files]:
        raise ValueError(
            f"{name}: {len(frame_files)} frames but {len(mask_files)} annotations, or their "
            "numbers differ; every frame needs an annotation"
        )
    frames = []
    for f in frame_files:
        with Image.open(f) as im:
            frames.append(np.array(im.convert("RGB")))
    masks = [read_palette_png(f) for f in mask_files]
    return SynthVideo(frames=np.stack(frames), masks=np.stack(masks), name=name)
