"""Outputs of `sam2r video`, written as tracked frames come.

* `OUT/masks/<frame:05d>.png`: DAVIS palette PNG, each pixel the id of the object there (0:
  none); objects absent from the frame (object score <= 0) are not drawn; where masks overlap,
  the object with the higher logit wins (`label_map`);
* `OUT/masks.json`: per frame and object, the object's own mask as COCO RLE (overlaps kept),
  its area, box (x, y, w, h) and object-score logit;
* `OUT/overlay.mp4`: the masks over the video (`overlay_labels`; needs PyAV, skipped with a
  message without it).

What is left to others: the command (`sam2r.cli.video`), the RLE codec (`sam2r.ops.rle`),
palette files and colours (`sam2r.io.masks`), drawing (`sam2r.io.draw`), video encoding
(`sam2r.io.video_file.VideoSink`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.predictor.video.results import label_map


def overlay_labels(frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Draw each object over the frame (DAVIS palette fill, contour and id: `sam2r.io.draw`)."""
    from sam2r.io.draw import draw_label_map

    return draw_label_map(frame, labels, alpha=alpha)


class Outputs:
    """Writes the PNGs, the overlay and (on close) the JSON of a run; a context manager.

    Args:
        out: output folder.
        video: what was read (recorded in the JSON).
        model_name: the model's config name (recorded in the JSON).
        fps: frame rate of the overlay video.
        overlay: write `overlay.mp4` (skipped with a message when PyAV is missing).
    """

    def __init__(
        self, out: Path, video: str, model_name: str, fps: float, overlay: bool = True
    ) -> None:
        self.out = out
        self.video = video
        self.model_name = model_name
        self.fps = fps
        self.overlay = overlay
        self.frames: list[dict[str, Any]] = []
        self.hw: tuple[int, int] | None = None
        self.num_objects = 0
        self._sink: Any = None

    def __enter__(self) -> Outputs:
        (self.out / "masks").mkdir(parents=True, exist_ok=True)
        if self.overlay:
            from sam2r.io.video_file import VideoSink

            try:
                self._sink = VideoSink(self.out / "overlay.mp4", fps=self.fps).__enter__()
            except ImportError as e:
                print(f"skipping overlay.mp4: {e}", file=sys.stderr)
        return self

    def write(self, frame: Any, result: Any) -> None:
        """One tracked frame: `frame` uint8 (H, W, 3) or PIL (None: no overlay), a FrameResult."""
        from sam2r.io.masks import mask_fields, write_palette_png

        labels = label_map(result.masks, result.object_score_logits, result.obj_ids)
        self.hw = labels.shape
        self.num_objects = len(result.obj_ids)
        name = f"{result.frame_idx:05d}.png"
        write_palette_png(self.out / "masks" / name, labels)
        scores = result.object_score_logits.float().cpu().tolist()
        binary = ((result.masks[:, 0] > 0) & (result.object_score_logits.view(-1, 1, 1) > 0)).cpu()
        objects = []
        for obj_id, score, mask in zip(result.obj_ids, scores, binary.numpy(), strict=True):
            objects.append(
                {
                    "obj_id": obj_id,
                    "object_score_logit": round(float(score), 6),
                    **mask_fields(mask),
                }
            )
        self.frames.append({"frame_idx": result.frame_idx, "file_name": name, "objects": objects})
        if self._sink is not None and frame is not None:
            rgb = np.asarray(frame.convert("RGB") if hasattr(frame, "convert") else frame)
            self._sink.write(overlay_labels(rgb, labels))

    def __exit__(self, *exc: object) -> None:
        if self._sink is not None:
            self._sink.__exit__(*exc)
        h, w = self.hw if self.hw is not None else (None, None)
        summary = {
            "video": self.video,
            "model": self.model_name,
            "height": h,
            "width": w,
            "frames": self.frames,
        }
        (self.out / "masks.json").write_text(json.dumps(summary))

    def report(self) -> str:
        files = f"{len(self.frames)} PNG(s) in {self.out / 'masks'}/, {self.out / 'masks.json'}"
        if self._sink is not None:
            files += f", {self.out / 'overlay.mp4'}"
        return files
