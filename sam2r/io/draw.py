"""Drawing masks a person can read: a colour fill, the mask's contour and the object's id.

One style for every picture sam2r makes (`sam2r image` and `sam2r everything` overlay PNGs,
`sam2r video`'s `overlay.mp4`, the studio's exports; the studio page draws the same in the
browser from the same colours and label anchors):

* each object filled with its own colour at a visible alpha (the DAVIS palette colour of its id,
  as in the palette PNGs, so a mask and its PNG agree);
* its contour drawn solid in that colour, with a one-pixel white line just outside it, so an
  object stays visible under a mask of its own colour (a red object under a red fill);
* its id (or a given label) written on it, white with a dark outline, at the point inside the
  mask farthest from its edge (`label_anchor`).

What is left to others: the palette itself (`sam2r.io.masks.davis_palette`), writing files.
Pure numpy + Pillow; the same result on every machine.
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from sam2r.io.masks import davis_palette


def object_colour(obj_id: Hashable) -> tuple[int, int, int]:
    """The RGB colour of an object id: its DAVIS palette colour (ids 1-255 as in the palette
    PNGs; larger ids wrap around, other ids are hashed onto the palette)."""
    if isinstance(obj_id, (int, np.integer)) and not isinstance(obj_id, bool):
        index = int(obj_id)
    else:
        index = zlib.crc32(str(obj_id).encode())
    index = (index - 1) % 255 + 1  # never 0 (black, the background)
    r, g, b = davis_palette()[index]
    return int(r), int(g), int(b)


def _erode(mask: np.ndarray) -> np.ndarray:
    """One step of 4-neighbour erosion; pixels outside the image count as background."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    out[0] = out[-1] = False
    out[:, 0] = out[:, -1] = False
    return out


def _dilate(mask: np.ndarray) -> np.ndarray:
    out = mask.copy()
    out[1:] |= mask[:-1]
    out[:-1] |= mask[1:]
    out[:, 1:] |= mask[:, :-1]
    out[:, :-1] |= mask[:, 1:]
    return out


def contour(mask: np.ndarray, thickness: int = 2) -> np.ndarray:
    """(H, W) bool: the mask's pixels within `thickness` pixels of its edge."""
    inner = mask
    for _ in range(max(thickness, 1)):
        inner = _erode(inner)
    return mask & ~inner


def label_anchor(mask: np.ndarray) -> tuple[int, int] | None:
    """(x, y) of a point deep inside the mask (where its id is written), None if empty.

    The mask is eroded (on a copy at most ~128 px a side) until one more step would empty
    it; of what is left, the pixel nearest its centroid is taken. Deterministic and cheap.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return None
    h, w = mask.shape
    step = max(1, -(-max(h, w) // 128))
    small = mask[::step, ::step]
    if not small.any():  # a thin mask missed by the stride: use it at full size
        small, step = mask, 1
    core = small
    while True:
        nxt = _erode(core)
        if not nxt.any():
            break
        core = nxt
    ys, xs = np.nonzero(core)
    cy, cx = ys.mean(), xs.mean()
    i = int(np.argmin((ys - cy) ** 2 + (xs - cx) ** 2))
    y, x = int(ys[i]) * step, int(xs[i]) * step
    if not mask[y, x]:  # the stride's sample is in the mask by construction; keep it safe
        ys, xs = np.nonzero(mask)
        i = int(np.argmin((ys - y) ** 2 + (xs - x) ** 2))
        y, x = int(ys[i]), int(xs[i])
    return x, y


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: a fixed bitmap font
        return ImageFont.load_default()


def draw_masks(
    image: np.ndarray,
    masks: Sequence[np.ndarray] | np.ndarray,
    ids: Sequence[Hashable] | None = None,
    *,
    labels: Sequence[str] | None = None,
    alpha: float = 0.5,
    thickness: int | None = None,
    show_ids: bool = True,
) -> np.ndarray:
    """Draw masks over an image: fill, contour and id of each.

    Args:
        image: (H, W, 3) uint8 RGB.
        masks: N masks (H, W), bool or 0/1.
        ids: the object id of each mask (its colour and default label); default 1..N.
        labels: text written on each mask (default: its id).
        alpha: opacity of the fill.
        thickness: contour width in pixels (default: ~1/240 of the image's larger side, >= 2).
        show_ids: write the labels.

    Returns:
        (H, W, 3) uint8: a new image.
    """
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(
            f"image must be uint8 (H, W, 3) RGB, got {image.dtype} {tuple(image.shape)}"
        )
    h, w = image.shape[:2]
    masks = [np.asarray(m).astype(bool) for m in masks]
    for m in masks:
        if m.shape != (h, w):
            raise ValueError(f"each mask must be (H, W) = {(h, w)}, got {m.shape}")
    ids = list(range(1, len(masks) + 1)) if ids is None else list(ids)
    if len(ids) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(ids)} ids")
    if labels is not None and len(labels) != len(masks):
        raise ValueError(f"{len(masks)} masks but {len(labels)} labels")
    thickness = max(2, round(max(h, w) / 240)) if thickness is None else thickness

    out = image.astype(np.float32)
    colours = [np.array(object_colour(i), np.float32) for i in ids]
    for m, colour in zip(masks, colours, strict=True):  # fills first, so contours stay on top
        out[m] = (1 - alpha) * out[m] + alpha * colour
    for m, colour in zip(masks, colours, strict=True):
        if not m.any():
            continue
        edge = contour(m, thickness)
        out[_dilate(m) & ~m] = 255.0  # the white line outside
        out[edge] = colour
    out = out.round().clip(0, 255).astype(np.uint8)
    if not show_ids:
        return out

    canvas = Image.fromarray(out)
    draw = ImageDraw.Draw(canvas)
    size = max(14, round(max(h, w) / 32))
    font = _font(size)
    for k, m in enumerate(masks):
        anchor = label_anchor(m)
        if anchor is None:
            continue
        text = str(ids[k]) if labels is None else str(labels[k])
        draw.text(
            anchor, text, fill=(255, 255, 255), font=font, anchor="mm",
            stroke_width=max(1, size // 10), stroke_fill=(0, 0, 0),
        )  # fmt: skip
    return np.asarray(canvas)


def draw_label_map(image: np.ndarray, label_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """`draw_masks` for an (H, W) map of object ids (0: background), e.g. a DAVIS PNG."""
    label_map = np.asarray(label_map)
    ids = [int(i) for i in np.unique(label_map) if i != 0]
    return draw_masks(image, [label_map == i for i in ids], ids, alpha=alpha)
