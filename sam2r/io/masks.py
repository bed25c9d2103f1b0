"""Mask files: DAVIS-palette PNGs of object ids, and SAM / COCO-style JSON of mask records.

* `davis_palette`, `write_palette_png`, `read_palette_png`: label maps as indexed ("P" mode)
  PNGs with the palette of the DAVIS / PASCAL VOC annotations (0 black, 1 dark red, 2 green, ...),
  the format video-segmentation benchmarks read and write;
* `records_to_json`, `write_coco_json`: "everything"-mode records with COCO RLE segmentations,
  laid out like an SA-1B annotation file (`{"image": {...}, "annotations": [...]}`).

What is left to others: the RLE codec (`sam2r.ops.rle`), producing records
(`sam2r.predictor.automatic`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam2r.ops import rle as rle_ops


def davis_palette() -> np.ndarray:
    """(256, 3) uint8 RGB: the DAVIS / PASCAL VOC colour of each object id.

    The bits of the id are spread over the channels, most significant colour bit first:
    bit 0 -> red, bit 1 -> green, bit 2 -> blue, then the next three bits one level lower.
    """
    ids = np.arange(256)
    pal = np.zeros((256, 3), dtype=np.int64)
    for level in range(8):
        for ch in range(3):
            pal[:, ch] |= ((ids >> (3 * level + ch)) & 1) << (7 - level)
    return pal.astype(np.uint8)


def write_palette_png(
    path: str | os.PathLike[str], label_map: Any, palette: Sequence[int] | None = None
) -> Path:
    """Write object ids (H, W) uint8 (0 = background) as a palette PNG.

    Args:
        path: the PNG to write (parent folders are created).
        label_map: (H, W) integer array with values 0..255.
        palette: flat RGB list to store (e.g. copied from an input annotation); None: the DAVIS
            palette.

    Returns:
        The path written.
    """
    arr = np.asarray(label_map)
    if arr.ndim != 2:
        raise ValueError(f"label_map must have shape (H, W), got {arr.shape}")
    if arr.dtype != np.uint8:
        if not np.issubdtype(arr.dtype, np.integer) and arr.dtype != bool:
            raise TypeError(f"label_map must hold integer object ids, got dtype {arr.dtype}")
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(
                f"object ids must be in 0..255 for a palette PNG, got {arr.min()}..{arr.max()}"
            )
        arr = arr.astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(arr))  # mode "L"
    # -> mode "P", the ids are the indices
    image.putpalette(davis_palette().tobytes() if palette is None else list(palette))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG")
    return out


def read_palette_png(path: str | os.PathLike[str]) -> np.ndarray:
    """Object ids (H, W) uint8 of a label PNG.

    Indexed ("P") and grayscale PNGs give their values; RGB PNGs are mapped back through the
    DAVIS palette (an error names a colour that is not in it).
    """
    with Image.open(path) as image:
        if image.mode in ("P", "L"):
            return np.array(image, dtype=np.uint8)
        if image.mode in ("I", "I;16"):
            arr = np.array(image)
            if arr.size and arr.max() > 255:
                raise ValueError(f"{path}: ids above 255 ({arr.max()}) do not fit in uint8")
            return arr.astype(np.uint8)
        rgb = np.array(image.convert("RGB"), dtype=np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    pal = davis_palette().astype(np.int64)
    pal_code = (pal[:, 0] << 16) | (pal[:, 1] << 8) | pal[:, 2]
    order = np.argsort(pal_code)
    idx = np.searchsorted(pal_code[order], code).clip(0, 255)
    ids = order[idx]
    bad = pal_code[ids] != code
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise ValueError(
            f"{path}: colour {rgb[y, x].tolist()} at (x={x}, y={y}) is not a DAVIS palette "
            "colour; save label maps as indexed PNGs (write_palette_png)"
        )
    return ids.astype(np.uint8)


# ----------------------------------------------------------------------------------------------
# JSON records
# ----------------------------------------------------------------------------------------------
def _coco_segmentation(seg: Any) -> dict[str, Any]:
    """Any segmentation form of a record -> COCO RLE with a str counts (JSON-ready)."""
    if isinstance(seg, dict):
        counts = seg.get("counts")
        if isinstance(counts, (bytes, str)):
            out = {"size": [int(v) for v in seg["size"]], "counts": counts}
        else:
            out = rle_ops.compress(seg)
    else:
        out = rle_ops.encode(np.asarray(seg))  # type: ignore[assignment]
    if isinstance(out["counts"], bytes):
        out["counts"] = out["counts"].decode("ascii")
    return out


def mask_fields(mask: np.ndarray) -> dict[str, Any]:
    """An (H, W) bool mask as JSON record fields: "area", "bbox" (x, y, w, h; None when empty)
    and "segmentation" (COCO RLE, str counts)."""
    seg = _coco_segmentation(mask)
    area = int(rle_ops.area(seg))
    bbox = [int(v) for v in rle_ops.to_bbox(seg)] if area else None
    return {"area": area, "bbox": bbox, "segmentation": seg}


def _plain(value: Any) -> Any:
    """numpy / torch scalars and arrays -> JSON types."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, bytes):
        return value.decode("ascii")
    return value


def records_to_json(
    records: Sequence[dict[str, Any]],
    image_hw: tuple[int, int],
    file_name: str | None = None,
    image_id: int = 0,
) -> dict[str, Any]:
    """Mask records -> an SA-1B-style annotation dict, JSON-serialisable.

    Args:
        records: dicts with `segmentation` (binary mask, uncompressed or COCO RLE), `area`,
            `bbox` (x, y, w, h) and any other fields (`predicted_iou`, `point_coords`,
            `stability_score`, `crop_box`), e.g. from `MaskGenerator.generate`.
        image_hw: (H, W) of the image.
        file_name: the image's file name, stored in the `image` entry.
        image_id: the image's id, also set as each annotation's `image_id`.

    Returns:
        `{"image": {"image_id", "height", "width", "file_name"}, "annotations": [...]}` where
        annotation i has `id` i + 1 and its segmentation as COCO RLE (`counts` a str).
    """
    h, w = (int(v) for v in image_hw)
    annotations = []
    for i, rec in enumerate(records):
        if "segmentation" not in rec:
            raise ValueError(f"record {i} has no 'segmentation' (keys: {sorted(rec)})")
        ann = {"id": i + 1, "image_id": image_id}
        ann.update({k: _plain(v) for k, v in rec.items() if k != "segmentation"})
        ann["segmentation"] = _coco_segmentation(rec["segmentation"])
        if ann["segmentation"]["size"] != [h, w]:
            raise ValueError(
                f"record {i}: segmentation size {ann['segmentation']['size']} is not the "
                f"image size {[h, w]}"
            )
        annotations.append(ann)
    image = {"image_id": image_id, "height": h, "width": w, "file_name": file_name}
    return {"image": image, "annotations": annotations}


def write_coco_json(
    path: str | os.PathLike[str],
    records: Sequence[dict[str, Any]],
    image_hw: tuple[int, int],
    file_name: str | None = None,
    image_id: int = 0,
) -> Path:
    """Write `records_to_json(records, image_hw, file_name, image_id)` to `path`."""
    data = records_to_json(records, image_hw, file_name, image_id)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data))
    return out
