"""Finding and reading the mask files of a video-segmentation benchmark on disk.

Ground truth, either of:
* a DAVIS root: `GT/Annotations/480p/<seq>/<frame>.png`, with the sequences listed in
  `GT/ImageSets/2017/val.txt` when that file exists (else every sequence folder);
* a folder of sequence folders (`GT/<seq>/...`, e.g. SA-V's `Annotations_6fps`), or a root with
  such an `Annotations/` folder.

Inside a sequence folder, either of:
* label maps: `<seq>/<frame>.png`, each pixel the id of the object there (0 background; DAVIS
  palette PNGs, read through `sam2r.io.masks.read_palette_png`);
* per-object masks (the SA-V layout): `<seq>/<obj>/<frame>.png`, one folder per object, each
  PNG a binary mask (nonzero = the object), every object with its own list of frames.

Predictions: `PRED/<seq>/...` in the same layout as the ground truth, with the same file names.
A prediction file that is absent reads as `None` (the caller scores it as an empty mask).

What is left to others: which frames and objects are scored, and how (`sam2r.eval.davis`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sam2r.io.masks import read_palette_png

IMAGE_SET = Path("ImageSets") / "2017" / "val.txt"  # relative to a DAVIS root


@dataclass(frozen=True)
class SequenceFiles:
    """The mask files of one sequence, ground truth and prediction."""

    name: str
    gt_dir: Path  # GT/<...>/<seq>
    pred_dir: Path  # PRED/<seq>
    per_object: bool  # True: SA-V layout, <seq>/<obj>/<frame>.png; False: label maps
    frames: tuple[str, ...]  # label maps: the GT frame file names, sorted; else ()
    objects: dict[str, tuple[str, ...]]  # per-object: folder name -> its frame names; else {}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.suffix.lower() == ".png" and _visible(p))


def _subdirs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and _visible(p))


def annotation_root(gt_root: str | os.PathLike[str]) -> Path:
    """The folder holding the sequence folders of `gt_root` (see the module docstring)."""
    root = Path(gt_root)
    if not root.is_dir():
        raise ValueError(
            f"ground-truth folder {root} does not exist; pass a DAVIS root (with "
            "Annotations/480p/) or a folder of sequence folders"
        )
    for candidate in (root / "Annotations" / "480p", root / "Annotations"):
        if candidate.is_dir() and _subdirs(candidate):
            return candidate
    return root


def list_sequences(
    gt_root: str | os.PathLike[str], sequences: Sequence[str] | None = None
) -> tuple[Path, list[str]]:
    """(annotation folder, sequence names to evaluate, in order).

    Args:
        gt_root: see `annotation_root`.
        sequences: names to evaluate, in this order; default: the DAVIS image set
            `ImageSets/2017/val.txt` when the annotations are `Annotations/480p` and it exists,
            else every sequence folder, sorted.
    """
    root = Path(gt_root)
    ann = annotation_root(root)
    available = _subdirs(ann)
    if sequences is not None:
        names = [str(s) for s in sequences]
        if not names:
            raise ValueError("sequences is empty; pass None to evaluate every sequence")
        origin = "the sequences asked for"
    elif ann == root / "Annotations" / "480p" and (root / IMAGE_SET).is_file():
        lines = (root / IMAGE_SET).read_text().splitlines()
        names = [line.strip() for line in lines if line.strip()]
        origin = str(root / IMAGE_SET)
    else:
        names = available
        origin = str(ann)
    if not names:
        raise ValueError(f"no sequence folder in {ann}: expected {ann}/<sequence>/<frame>.png")
    known = set(available)
    missing = [n for n in names if n not in known]
    if missing:
        shown = ", ".join(available[:8]) + (" ..." if len(available) > 8 else "")
        raise ValueError(
            f"sequence(s) {missing} from {origin} have no folder in {ann} "
            f"(available: {shown or 'none'})"
        )
    if len(set(names)) != len(names):
        raise ValueError(f"sequences from {origin} repeat a name: {names}")
    return ann, names


def scan_sequence(ann_root: Path, pred_root: Path, name: str) -> SequenceFiles:
    """The files of sequence `name`; ValueError when its layout is unclear or the prediction
    folder is missing or in the other layout."""
    gt_dir, pred_dir = ann_root / name, pred_root / name
    pngs, dirs = _pngs(gt_dir), _subdirs(gt_dir)
    if pngs and dirs:
        raise ValueError(
            f"{gt_dir} holds both PNG files and folders; a sequence is either label-map PNGs "
            "(<seq>/<frame>.png) or one folder per object (<seq>/<obj>/<frame>.png)"
        )
    if not pngs and not dirs:
        raise ValueError(f"{gt_dir} holds no PNG annotation (expected <frame>.png files)")
    if not pred_dir.is_dir():
        raise ValueError(
            f"no prediction for sequence {name!r}: folder {pred_dir} is missing; write one "
            "folder of PNGs per sequence, or evaluate a subset with sequences=[...]"
        )
    per_object = bool(dirs)
    pred_pngs, pred_dirs = _pngs(pred_dir), _subdirs(pred_dir)
    if per_object and pred_pngs and not pred_dirs:
        raise ValueError(
            f"{gt_dir} has one folder per object (SA-V layout) but {pred_dir} holds label-map "
            "PNGs; write predictions in the layout of the ground truth (<seq>/<obj>/<frame>.png)"
        )
    if not per_object and pred_dirs and not pred_pngs:
        raise ValueError(
            f"{gt_dir} holds label-map PNGs but {pred_dir} has one folder per object; write "
            "predictions in the layout of the ground truth (<seq>/<frame>.png, pixel = object id)"
        )
    if not per_object:
        return SequenceFiles(name, gt_dir, pred_dir, False, tuple(pngs), {})
    objects = {obj: tuple(_pngs(gt_dir / obj)) for obj in dirs}
    empty = [obj for obj, frames in objects.items() if not frames]
    if empty:
        raise ValueError(f"object folder(s) {empty} of {gt_dir} hold no PNG annotation")
    return SequenceFiles(name, gt_dir, pred_dir, True, (), objects)


def read_label_map(path: Path) -> np.ndarray:
    """(H, W) uint8 object ids of a label PNG; ValueError naming the file when unreadable."""
    try:
        return read_palette_png(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable label PNG ({e})") from None


def read_binary(path: Path) -> np.ndarray:
    """(H, W) bool of a one-object PNG: nonzero pixels are the object (SA-V per-object files)."""
    try:
        with Image.open(path) as image:
            if image.mode not in ("1", "L", "P", "I", "I;16"):
                image = image.convert("L")
            return np.array(image) > 0
    except OSError as e:
        raise ValueError(f"{path}: not a readable mask PNG ({e})") from None


def read_prediction(path: Path, per_object: bool) -> np.ndarray | None:
    """The prediction at `path` (label map or binary mask), or None when the file is absent."""
    if not path.is_file():
        return None
    return read_binary(path) if per_object else read_label_map(path)
