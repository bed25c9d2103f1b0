"""Exports of a studio document, written into the workspace.

* `png`: DAVIS palette PNGs, each pixel the id of the object there (`masks/<frame:05d>.png`;
  an image gives `<name>.png`);
* `coco`: `masks.json`, each object's own mask per frame as COCO RLE with its name, area, box and
  score (the same layout as `sam2r video`'s `masks.json`; an image gives one `annotations` list);
* `mp4`: `overlay.mp4`, the masks drawn over the video in the overlay style of `sam2r.io.draw`
  (needs PyAV); an image gives `<name>_overlay.png`.

Only tracked (or prompted) frames are exported. Where masks overlap, the PNG takes the object with
the highest logit (video) or the later object (image); the JSON keeps every mask whole.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam2r.io.draw import draw_label_map, draw_masks
from sam2r.io.masks import mask_fields, write_palette_png
from sam2r.studio.files import StudioError

FORMATS = ("png", "coco", "mp4")


def _segment(obj_id: int, name: str, mask: np.ndarray, score: float) -> dict[str, Any]:
    return {"obj_id": obj_id, "name": name, "score": round(float(score), 6), **mask_fields(mask)}


def check_formats(formats: Any) -> list[str]:
    if not isinstance(formats, list) or not formats:
        raise StudioError(f"formats must be a non-empty list of {', '.join(FORMATS)}")
    bad = [f for f in formats if f not in FORMATS]
    if bad:
        raise StudioError(f"unknown export format(s) {bad}: use {', '.join(FORMATS)}")
    return list(dict.fromkeys(formats))


def export(doc: Any, exports: Path, formats: Sequence[str], model_name: str) -> list[Path]:
    """Write the chosen formats of a document into a new folder under `exports`."""
    formats = check_formats(list(formats))
    out = exports / f"{doc.name}-{time.strftime('%Y%m%d-%H%M%S')}"
    n = 1
    while out.exists():
        n += 1
        out = exports / f"{doc.name}-{time.strftime('%Y%m%d-%H%M%S')}-{n}"
    out.mkdir(parents=True)
    names = {o.id: o.name for o in doc.objects.objects.values()}
    if doc.kind == "image":
        return _export_image(doc, out, formats, names, model_name)
    return _export_video(doc, out, formats, names, model_name)


def _export_image(
    doc: Any, out: Path, formats: list[str], names: dict[int, str], model_name: str
) -> list[Path]:
    items = doc.frame_masks(0)
    h, w = doc.hw
    files = []
    if "png" in formats:
        labels = np.zeros((h, w), np.uint8)
        for oid, mask, _ in items:
            labels[mask] = oid
        files.append(write_palette_png(out / f"{doc.name}.png", labels))
    if "coco" in formats:
        data = {
            "image": doc.source,
            "model": model_name,
            "height": h,
            "width": w,
            "annotations": [_segment(oid, names[oid], m, s) for oid, m, s in items],
        }
        (out / "masks.json").write_text(json.dumps(data))
        files.append(out / "masks.json")
    if "mp4" in formats:
        drawn = draw_masks(doc.image, [m for _, m, _ in items], [oid for oid, _, _ in items])
        Image.fromarray(drawn).save(out / f"{doc.name}_overlay.png")
        files.append(out / f"{doc.name}_overlay.png")
    return files


def _export_video(
    doc: Any, out: Path, formats: list[str], names: dict[int, str], model_name: str
) -> list[Path]:
    frames = doc.tracked_frames()
    if not frames:
        raise StudioError("nothing to export yet: prompt an object and track it first")
    h, w = doc.hw
    files: list[Path] = []
    sink = None
    if "mp4" in formats:
        from sam2r.io.video_file import VideoSink

        try:
            sink = VideoSink(out / "overlay.mp4", fps=24.0).__enter__()
        except ImportError as e:
            raise StudioError(f"overlay.mp4 needs PyAV: {e}", 501) from None
    records = []
    try:
        for f in frames:
            labels = doc.frame_labels(f)
            if "png" in formats:
                write_palette_png(out / "masks" / f"{f:05d}.png", labels)
            if "coco" in formats:
                objects = [
                    _segment(oid, names.get(oid, str(oid)), m, s)
                    for oid, m, s in doc.frame_masks(f)
                ]
                records.append({"frame_idx": f, "file_name": f"{f:05d}.png", "objects": objects})
            if sink is not None:
                sink.write(draw_label_map(doc.frame(f), labels))
    finally:
        if sink is not None:
            sink.__exit__(None, None, None)
    if "png" in formats:
        files.append(out / "masks")
    if "coco" in formats:
        data = {
            "video": doc.source,
            "model": model_name,
            "height": h,
            "width": w,
            "frames": records,
        }
        (out / "masks.json").write_text(json.dumps(data))
        files.append(out / "masks.json")
    if sink is not None:
        files.append(out / "overlay.mp4")
    return files
