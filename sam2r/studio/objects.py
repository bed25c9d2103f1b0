"""The objects of a studio document and how their masks travel to the page.

An object has an integer id (its colour is the DAVIS palette colour of that id, as in the
exported PNGs and overlays), a name the annotator may change, and a hidden flag (display only:
hidden objects are still tracked and exported).

Masks go to the page as row-major run lengths, starting with a run of background, plus the point
where the page writes the id (`sam2r.io.draw.label_anchor`): small for the masks a person
annotates, and decoded in a few lines of JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sam2r.io.draw import label_anchor, object_colour
from sam2r.studio.files import StudioError


@dataclass
class StudioObject:
    """One annotated object."""

    id: int
    name: str
    hidden: bool = False

    def info(self) -> dict[str, Any]:
        r, g, b = object_colour(self.id)
        return {
            "id": self.id,
            "name": self.name,
            "hidden": self.hidden,
            "color": f"#{r:02x}{g:02x}{b:02x}",
        }


class ObjectList:
    """The objects of a document, in creation order, with ids 1, 2, ... never reused."""

    def __init__(self) -> None:
        self.objects: dict[int, StudioObject] = {}
        self.next_id = 1

    def add(self, name: str | None = None, obj_id: int | None = None) -> StudioObject:
        oid = self.next_id if obj_id is None else int(obj_id)
        if oid in self.objects:
            raise StudioError(f"object {oid} exists already")
        if not 1 <= oid <= 255:
            raise StudioError(f"object ids go from 1 to 255 (the palette PNGs), got {oid}")
        obj = StudioObject(oid, _clean_name(name) if name else f"object {oid}")
        self.objects[oid] = obj
        self.next_id = max(self.next_id, oid + 1)
        return obj

    def get(self, obj_id: Any) -> StudioObject:
        try:
            oid = int(obj_id)
        except (TypeError, ValueError):
            raise StudioError(f"bad object id {obj_id!r}: an integer is expected") from None
        if oid not in self.objects:
            raise StudioError(f"unknown object {oid}; objects here: {sorted(self.objects)}", 404)
        return self.objects[oid]

    def update(self, obj_id: Any, name: Any = None, hidden: Any = None) -> StudioObject:
        obj = self.get(obj_id)
        if name is not None:
            obj.name = _clean_name(name)
        if hidden is not None:
            if not isinstance(hidden, bool):
                raise StudioError(f"hidden must be true or false, got {hidden!r}")
            obj.hidden = hidden
        return obj

    def remove(self, obj_id: Any) -> StudioObject:
        return self.objects.pop(self.get(obj_id).id)

    def infos(self) -> list[dict[str, Any]]:
        return [o.info() for o in self.objects.values()]

    def to_json(self) -> dict[str, Any]:
        return {"next_id": self.next_id, "objects": [o.info() for o in self.objects.values()]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ObjectList:
        out = cls()
        for o in data["objects"]:
            out.add(o["name"], o["id"]).hidden = bool(o["hidden"])
        out.next_id = int(data["next_id"])
        return out


def _clean_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise StudioError(f"an object name must be a non-empty string, got {name!r}")
    if len(name) > 80:
        raise StudioError(f"an object name has at most 80 characters, got {len(name)}")
    return name.strip()


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """(H, W) bool -> {"size": [H, W], "counts": row-major runs from background, "anchor",
    "area"} for the page."""
    flat = np.asarray(mask, dtype=bool).reshape(-1)
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    edges = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(edges).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    anchor = label_anchor(mask)
    return {
        "size": list(mask.shape),
        "counts": counts,
        "anchor": None if anchor is None else list(anchor),
        "area": int(flat.sum()),
    }


def decode_mask(data: dict[str, Any]) -> np.ndarray:
    """The inverse of `encode_mask`."""
    h, w = data["size"]
    values = np.zeros(len(data["counts"]), bool)
    values[1::2] = True
    return np.repeat(values, data["counts"]).reshape(h, w)
