"""The overlay style (`sam2r.io.draw`): fill, contour with a white outer line, id on the mask."""

from __future__ import annotations

import numpy as np
import pytest

from sam2r.io.draw import contour, draw_label_map, draw_masks, label_anchor, object_colour
from sam2r.io.masks import davis_palette


def _square(h: int = 120, w: int = 160, box: tuple[int, int, int, int] = (30, 40, 90, 120)):
    m = np.zeros((h, w), bool)
    y0, x0, y1, x1 = box
    m[y0:y1, x0:x1] = True
    return m


@pytest.mark.parametrize(("obj_id", "index"), [(1, 1), (2, 2), (255, 255), (256, 1), (0, 255)])
def test_colours_are_the_palette_pngs(obj_id: int, index: int) -> None:
    assert object_colour(obj_id) == tuple(int(c) for c in davis_palette()[index])


def test_string_ids_get_a_stable_non_black_colour() -> None:
    assert object_colour("car") == object_colour("car") != (0, 0, 0)


def test_contour_and_anchor() -> None:
    m = _square()
    edge = contour(m, 2)
    assert edge[30, 60] and edge[31, 60] and not edge[32, 60] and not edge[29, 60]
    assert not edge[60, 80]  # the inside
    x, y = label_anchor(m)
    assert m[y, x] and abs(x - 80) <= 2 and abs(y - 60) <= 2
    ring = np.zeros((100, 100), bool)
    ring[10:90, 10:90] = True
    ring[20:80, 20:80] = False  # the centroid is outside the mask: the anchor must not be
    x, y = label_anchor(ring)
    assert ring[y, x]
    assert label_anchor(np.zeros((5, 5), bool)) is None


def test_a_red_object_under_a_red_mask_stays_visible() -> None:
    image = np.full((120, 160, 3), (40, 90, 40), np.uint8)
    m = _square()
    red = object_colour(1)
    image[m] = red  # the object has the mask's own colour
    out = draw_masks(image, [m], [1], show_ids=False, thickness=2)
    assert tuple(out[30, 60]) == red  # the contour, solid
    assert tuple(out[29, 60]) == (255, 255, 255)  # the white line just outside
    assert tuple(out[5, 5]) == (40, 90, 40)  # the background untouched
    inside = out[60, 60].astype(int)
    assert np.abs(inside - np.array(red)).max() <= 1  # fill of red over red


def test_fill_alpha_and_ids_written() -> None:
    image = np.zeros((120, 160, 3), np.uint8)
    m = _square()
    plain = draw_masks(image, [m], [2], show_ids=False)
    colour = np.array(object_colour(2))
    assert np.abs(plain[45, 100].astype(int) - np.round(colour * 0.5)).max() <= 1
    labelled = draw_masks(image, [m], [2])
    x, y = label_anchor(m)
    patch = labelled[y - 8 : y + 8, x - 8 : x + 8]
    assert (patch > 220).all(axis=-1).any()  # white text
    assert (patch < 20).all(axis=-1).any()  # its dark outline


def test_label_map_draws_each_object() -> None:
    labels = np.zeros((120, 160), np.uint8)
    labels[10:50, 10:50] = 1
    labels[60:110, 80:150] = 3
    out = draw_label_map(np.zeros((120, 160, 3), np.uint8), labels)
    assert tuple(out[10, 20]) == object_colour(1) and tuple(out[60, 100]) == object_colour(3)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        draw_masks(np.zeros((4, 4, 3), np.float32), [])
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        draw_masks(np.zeros((4, 4, 3), np.uint8), [np.zeros((5, 5), bool)])
    with pytest.raises(ValueError, match="ids"):
        draw_masks(np.zeros((4, 4, 3), np.uint8), [np.zeros((4, 4), bool)], [1, 2])
