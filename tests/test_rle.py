"""Mask encodings: the numpy COCO-RLE codec against pycocotools (byte for byte), uncompressed
RLE round trips, and the palette-PNG / JSON writers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from sam2r.io.masks import (
    davis_palette,
    read_palette_png,
    records_to_json,
    write_coco_json,
    write_palette_png,
)
from sam2r.ops import rle

SHAPES = st.tuples(st.integers(1, 24), st.integers(1, 24))


@st.composite
def masks(draw: st.DrawFn) -> np.ndarray:
    """Binary masks of every density, including empty, full and single pixels."""
    h, w = draw(SHAPES)
    kind = draw(st.sampled_from(["random", "empty", "full", "pixel", "blocks"]))
    if kind == "empty":
        return np.zeros((h, w), dtype=bool)
    if kind == "full":
        return np.ones((h, w), dtype=bool)
    if kind == "pixel":
        m = np.zeros((h, w), dtype=bool)
        m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
        return m
    if kind == "blocks":  # long runs, several columns wide
        m = np.zeros((h, w), dtype=bool)
        y0, x0 = draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))
        m[y0 : draw(st.integers(y0, h)) + 1, x0 : draw(st.integers(x0, w)) + 1] = True
        return m
    return draw(arrays(bool, (h, w)))


def _bbox_by_hand(m: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(m)
    if len(xs) == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


@settings(max_examples=300, deadline=None)
@given(masks())
def test_coco_round_trip_area_and_bbox(m: np.ndarray) -> None:
    r = rle.encode(m)
    assert r["size"] == list(m.shape) and isinstance(r["counts"], bytes)
    np.testing.assert_array_equal(rle.decode(r), m.astype(np.uint8))
    assert rle.area(r) == int(m.sum())
    np.testing.assert_array_equal(rle.to_bbox(r), _bbox_by_hand(m))
    # the uncompressed form holds the same runs
    u = rle.mask_to_uncompressed(m)
    assert sum(u["counts"]) == m.size and (m.flat[0] == 0) == (u["counts"][0] > 0 or m.size == 0)
    assert rle.compress(u) == r
    assert rle.decompress(r) == u
    np.testing.assert_array_equal(rle.uncompressed_to_mask(u), m)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # pycocotools vs numpy 2
@settings(max_examples=300, deadline=None)
@given(masks())
def test_bytes_identical_to_pycocotools(m: np.ndarray) -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    theirs = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
    ours = rle.encode(m)
    assert ours == theirs
    assert rle.area(ours) == int(mask_utils.area(theirs))
    np.testing.assert_array_equal(rle.to_bbox(ours), mask_utils.toBbox(theirs))
    np.testing.assert_array_equal(rle.decode(theirs), mask_utils.decode(theirs))
    u = rle.mask_to_uncompressed(m)
    h, w = m.shape
    assert rle.compress(u) == mask_utils.frPyObjects(u, h, w)


def test_batched_forms_match_pycocotools() -> None:
    mask_utils = pytest.importorskip("pycocotools.mask")
    rng = np.random.default_rng(0)
    stack = rng.random((37, 23, 5)) < np.array([0.0, 0.1, 0.5, 0.9, 1.0])
    theirs = mask_utils.encode(np.asfortranarray(stack.astype(np.uint8)))
    ours = rle.encode(stack)
    assert ours == theirs
    np.testing.assert_array_equal(rle.area(ours), mask_utils.area(theirs))
    np.testing.assert_array_equal(rle.to_bbox(ours), mask_utils.toBbox(theirs))
    np.testing.assert_array_equal(rle.decode(ours), stack.astype(np.uint8))


def test_large_counts_and_negative_deltas_round_trip() -> None:
    # counts far above 2**16 and differences of both signs between runs two apart
    counts = [0, 70_000, 3, 1_000_000, 5, 2, 400_000, 1]
    s = rle.counts_to_string(counts)
    np.testing.assert_array_equal(rle.string_to_counts(s), counts)
    np.testing.assert_array_equal(rle.string_to_counts(s.decode("ascii")), counts)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**31 - 1), min_size=0, max_size=40))
def test_string_code_round_trip(counts: list[int]) -> None:
    np.testing.assert_array_equal(rle.string_to_counts(rle.counts_to_string(counts)), counts)


def test_batched_uncompressed_matches_one_by_one() -> None:
    g = torch.Generator().manual_seed(0)
    m = (
        torch.rand(6, 17, 11, generator=g)
        < torch.tensor([0.0, 0.2, 0.5, 0.8, 1.0, 0.5])[:, None, None]
    )
    m[5] = False
    m[5, 16, 10] = True  # only the last pixel
    batch = rle.masks_to_uncompressed(m)
    for i in range(6):
        assert batch[i] == rle.mask_to_uncompressed(m[i].numpy())
        np.testing.assert_array_equal(rle.uncompressed_to_mask(batch[i]), m[i].numpy())
    assert batch[0]["counts"] == [17 * 11]  # all background: one run
    assert batch[4]["counts"] == [0, 17 * 11]  # all foreground: an empty first run
    assert rle.masks_to_uncompressed(torch.zeros(0, 4, 4, dtype=torch.bool)) == []


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"size": [2, 2], "counts": [1, 2]}, "sum to 3"),
        ({"size": [2, 2], "counts": [5, -1]}, ">= 0"),
        ({"counts": [4]}, "'size'"),
        ([1, 2], "dict"),
        ({"size": [2, 2], "counts": b"\x7f"}, "not a COCO RLE"),
    ],
)
def test_bad_rles_are_rejected(bad: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        rle.decode(bad if isinstance(bad, dict) else [bad])  # type: ignore[arg-type]


def test_encode_rejects_float_masks() -> None:
    with pytest.raises(TypeError, match="bool or integer"):
        rle.encode(np.zeros((3, 3), dtype=np.float32))


# ----------------------------------------------------------------------------------------------
# files
# ----------------------------------------------------------------------------------------------
def test_davis_palette_colours() -> None:
    pal = davis_palette()
    assert pal.shape == (256, 3) and pal.dtype == np.uint8
    expected = {0: [0, 0, 0], 1: [128, 0, 0], 2: [0, 128, 0], 3: [128, 128, 0],
                4: [0, 0, 128], 7: [128, 128, 128], 8: [64, 0, 0], 9: [192, 0, 0],
                255: [224, 224, 192]}  # fmt: skip
    for i, rgb in expected.items():
        assert pal[i].tolist() == rgb
    assert len({tuple(c) for c in pal.tolist()}) == 256


def test_palette_png_round_trip(tmp_path: Path) -> None:
    labels = np.zeros((30, 40), dtype=np.uint8)
    labels[5:10, 5:20] = 1
    labels[12:25, 22:38] = 2
    labels[0, 0] = 255
    path = write_palette_png(tmp_path / "sub" / "00000.png", labels)
    with Image.open(path) as im:
        assert im.mode == "P"
        assert im.getpalette()[3:6] == [128, 0, 0]
    np.testing.assert_array_equal(read_palette_png(path), labels)
    # an RGB rendering of the same labels maps back through the palette
    rgb_path = tmp_path / "rgb.png"
    Image.fromarray(davis_palette()[labels]).save(rgb_path)
    np.testing.assert_array_equal(read_palette_png(rgb_path), labels)


def test_palette_png_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="0..255"):
        write_palette_png(tmp_path / "x.png", np.full((2, 2), 300))
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        write_palette_png(tmp_path / "x.png", np.zeros((2, 2, 3), dtype=np.uint8))
    Image.fromarray(np.full((2, 2, 3), 7, dtype=np.uint8)).save(tmp_path / "odd.png")
    with pytest.raises(ValueError, match="not a DAVIS palette colour"):
        read_palette_png(tmp_path / "odd.png")


def test_coco_json_from_every_segmentation_form(tmp_path: Path) -> None:
    m = np.zeros((6, 8), dtype=bool)
    m[1:4, 2:7] = True
    base = {"area": 15, "bbox": [2.0, 1.0, 4.0, 2.0], "predicted_iou": np.float32(0.9)}
    records = [
        {**base, "segmentation": m},
        {**base, "segmentation": rle.mask_to_uncompressed(m)},
        {**base, "segmentation": rle.encode(m)},
    ]
    path = write_coco_json(tmp_path / "m.json", records, (6, 8), file_name="a.png")
    data = json.loads(path.read_text())
    assert data["image"] == {"image_id": 0, "height": 6, "width": 8, "file_name": "a.png"}
    segs = [a["segmentation"] for a in data["annotations"]]
    assert segs[0] == segs[1] == segs[2] and isinstance(segs[0]["counts"], str)
    np.testing.assert_array_equal(rle.decode(segs[0]), m)
    assert [a["id"] for a in data["annotations"]] == [1, 2, 3]
    assert data["annotations"][0]["predicted_iou"] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="image size"):
        records_to_json(records, (7, 8))
