"""An image being annotated in the studio: objects made of clicks and boxes, or found by
"everything", each with the mask the model proposes.

The image is encoded once (on the first prompt; the `ImagePredictor` keeps the embedding) and
every click is one `predict` of that object's clicks and box, from scratch: so undoing a click
gives back exactly the mask before it. An object with one click or only a box gets the three
multimask candidates (the annotator picks one, the best-scored by default); with more prompts
the single-mask output is used, as SAM recommends. "Everything" runs the automatic mask
generator and adds its masks as objects; clicking on one refines it from the click that found
it plus the new ones.

What is left to others: the HTTP routes (`app`), files (`files`), exports (`exports`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.automatic import MaskGenerator
from sam2r.predictor.image import ImagePredictor
from sam2r.studio.files import StudioError
from sam2r.studio.objects import ObjectList, decode_mask, encode_mask
from sam2r.studio.prompts import check_box, check_click


@dataclass
class ObjectPrompts:
    """What one object of an image was given, and what the model proposed."""

    points: list[list[float]] = field(default_factory=list)  # [x, y, label]
    box: list[float] | None = None
    seed: list[float] | None = None  # the grid click that found an "everything" mask
    fixed: np.ndarray | None = None  # an "everything" mask, until the object is clicked
    candidates: list[np.ndarray] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    chosen: int = 0

    @property
    def mask(self) -> np.ndarray | None:
        return self.candidates[self.chosen] if self.candidates else None


class ImageDoc:
    """One image, its objects and their masks (all methods are thread-safe)."""

    kind = "image"

    def __init__(
        self, name: str, source: str, image: np.ndarray, model: SAM2Model, compute: threading.Lock
    ) -> None:
        self.name = name
        self.source = source  # where it came from, for projects ("root:" / "upload:" path)
        self.image = image  # (H, W, 3) uint8
        self.model = model
        self.compute = compute  # one model run at a time across documents
        self.predictor = ImagePredictor(model)
        self.objects = ObjectList()
        self.prompts: dict[int, ObjectPrompts] = {}
        self.history: list[tuple[int, str, Any]] = []  # (object, "point" | "box", old box)
        self.lock = threading.RLock()

    @property
    def hw(self) -> tuple[int, int]:
        return self.image.shape[0], self.image.shape[1]

    @property
    def num_frames(self) -> int:
        return 1

    def frame(self, index: int) -> np.ndarray:
        if index != 0:
            raise StudioError(f"frame {index} is out of range: an image has frame 0 only", 404)
        return self.image

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "kind": self.kind,
                "name": self.name,
                "height": self.hw[0],
                "width": self.hw[1],
                "num_frames": 1,
                "objects": self.objects.infos(),
            }

    # ----------------------------------------------------------------------------------------
    # objects and prompts
    # ----------------------------------------------------------------------------------------
    def add_object(self, name: str | None = None) -> dict[str, Any]:
        with self.lock:
            obj = self.objects.add(name)
            self.prompts[obj.id] = ObjectPrompts()
            return obj.info()

    def remove_object(self, obj_id: Any) -> None:
        with self.lock:
            obj = self.objects.remove(obj_id)
            self.prompts.pop(obj.id, None)
            self.history = [h for h in self.history if h[0] != obj.id]

    def click(self, frame: Any, obj_id: Any, x: Any, y: Any, label: Any) -> dict[str, Any]:
        self.frame(frame if isinstance(frame, int) else -1)
        with self.lock:
            obj = self.objects.get(obj_id)
            point = check_click(x, y, label, self.hw)
            p = self.prompts[obj.id]
            if not p.points and p.seed is not None:
                p.points.append([*p.seed, 1])  # an "everything" mask: keep the click that found it
            p.points.append(point)
            self.history.append((obj.id, "point", None))
            self._predict(obj.id)
            return self.masks(0)

    def set_box(self, frame: Any, obj_id: Any, box: Any) -> dict[str, Any]:
        self.frame(frame if isinstance(frame, int) else -1)
        with self.lock:
            obj = self.objects.get(obj_id)
            p = self.prompts[obj.id]
            box = check_box(box, self.hw)
            self.history.append((obj.id, "box", p.box))
            p.box = box
            self._predict(obj.id)
            return self.masks(0)

    def undo(self) -> dict[str, Any]:
        """Take back the last click or box (of any object)."""
        with self.lock:
            if not self.history:
                raise StudioError("nothing to undo", 409)
            oid, what, old_box = self.history.pop()
            p = self.prompts[oid]
            if what == "point":
                p.points.pop()
                if p.seed is not None and len(p.points) == 1:
                    p.points.clear()  # back to the "everything" mask itself
            else:
                p.box = old_box
            self._predict(oid)
            return self.masks(0)

    def choose(self, obj_id: Any, index: Any) -> dict[str, Any]:
        with self.lock:
            p = self.prompts[self.objects.get(obj_id).id]
            if isinstance(index, bool) or not isinstance(index, int):
                raise StudioError(f"a candidate index is an integer, got {index!r}")
            if not 0 <= index < len(p.candidates):
                raise StudioError(
                    f"candidate {index} does not exist: this object has {len(p.candidates)}"
                )
            p.chosen = index
            return self.masks(0)

    def _predict(self, oid: int) -> None:
        p = self.prompts[oid]
        n = len(p.points) + (p.box is not None)
        if n == 0:
            p.candidates = [] if p.fixed is None else [p.fixed]
            p.scores = [] if p.fixed is None else [1.0]
            p.chosen = 0
            return
        coords = np.array([q[:2] for q in p.points], np.float32) if p.points else None
        labels = np.array([q[2] for q in p.points], np.int32) if p.points else None
        box = None if p.box is None else np.array(p.box, np.float32)
        with self.compute:
            if not self.predictor.is_image_set:
                self.predictor.set_image(self.image)  # once: the embedding is kept
            out = self.predictor.predict(coords, labels, box, multimask_output=n == 1)
        p.candidates = [m.astype(bool) for m in out.masks]
        p.scores = [float(s) for s in out.scores]
        p.chosen = int(np.argmax(out.scores))

    def everything(
        self,
        points_per_side: Any = 16,
        pred_iou_thresh: Any = 0.7,
        stability_score_thresh: Any = 0.9,
    ) -> dict[str, Any]:
        """Add the automatic mask generator's masks as objects, largest first.

        The filters default looser than the generator's (0.8 / 0.95): a person reviews every
        mask here, and removing one is a click.
        """
        if isinstance(points_per_side, bool) or not isinstance(points_per_side, int):
            raise StudioError(f"points_per_side must be an integer, got {points_per_side!r}")
        if not 2 <= points_per_side <= 64:
            raise StudioError(f"points_per_side must be in 2..64, got {points_per_side}")
        generator = MaskGenerator(
            self.model,
            points_per_side=points_per_side,
            pred_iou_thresh=pred_iou_thresh,
            stability_score_thresh=stability_score_thresh,
        )
        with self.compute:
            records = generator.generate_records(self.image)
        with self.lock:
            room = 255 - len(self.objects.objects)
            for r in sorted(records, key=lambda r: -r.area)[:room]:
                obj = self.objects.add()
                seg = np.asarray(r.segmentation, bool)
                self.prompts[obj.id] = ObjectPrompts(
                    seed=[float(v) for v in r.point_coords[0]],
                    fixed=seg,
                    candidates=[seg],
                    scores=[float(r.predicted_iou)],
                )
            return {"added": min(len(records), room), **self.masks(0)}

    # ----------------------------------------------------------------------------------------
    # outputs
    # ----------------------------------------------------------------------------------------
    def masks(self, frame: int) -> dict[str, Any]:
        self.frame(frame)
        with self.lock:
            out = []
            for oid in self.objects.objects:
                p = self.prompts[oid]
                mask = p.mask
                out.append(
                    {
                        "id": oid,
                        "mask": None if mask is None else encode_mask(mask),
                        "score": p.scores[p.chosen] if p.candidates else None,
                        "candidates": [round(s, 4) for s in p.scores],
                        "chosen": p.chosen,
                        "prompts": {"points": p.points, "box": p.box},
                    }
                )
            return {"frame": 0, "objects": out}

    def frame_masks(self, frame: int) -> list[tuple[int, np.ndarray, float]]:
        """(object id, mask, score) of each object that has a mask."""
        self.frame(frame)
        with self.lock:
            return [
                (oid, p.mask, p.scores[p.chosen])
                for oid, p in self.prompts.items()
                if p.mask is not None
            ]

    def tracked_frames(self) -> list[int]:
        return [0]

    # ----------------------------------------------------------------------------------------
    # projects
    # ----------------------------------------------------------------------------------------
    def project(self) -> dict[str, Any]:
        with self.lock:
            return {
                "format": "sam2r.studio.image",
                "version": 1,
                "source": self.source,
                "objects": self.objects.to_json(),
                "prompts": {
                    str(oid): {
                        "points": p.points,
                        "box": p.box,
                        "seed": p.seed,
                        "fixed": None if p.fixed is None else encode_mask(p.fixed),
                        "chosen": p.chosen,
                    }
                    for oid, p in self.prompts.items()
                },
                "history": [list(h) for h in self.history],
            }

    def restore(self, data: dict[str, Any]) -> None:
        """Fill this (new) document from `project()`; the masks are predicted again."""
        with self.lock:
            self.objects = ObjectList.from_json(data["objects"])
            self.prompts = {}
            for key, q in data["prompts"].items():
                fixed = None if q["fixed"] is None else decode_mask(q["fixed"])
                self.prompts[int(key)] = ObjectPrompts(
                    points=[list(v) for v in q["points"]],
                    box=q["box"],
                    seed=q["seed"],
                    fixed=fixed,
                )
                self._predict(int(key))
                p = self.prompts[int(key)]
                if 0 <= q["chosen"] < len(p.candidates):
                    p.chosen = q["chosen"]
            self.history = [(int(h[0]), str(h[1]), h[2]) for h in data["history"]]
