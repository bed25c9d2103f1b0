"""Box geometry of everything mode: crops, point grids, NMS, mask boxes, the crop-edge filter.

Expected crop boxes and edge decisions are the official `sam2.utils.amg` outputs for the same
arguments (computed once with the reference implementation and written down here).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2r.ops.boxes import (
    batched_nms,
    box_area,
    box_iou,
    box_xyxy_to_xywh,
    crop_boxes,
    is_box_near_crop_edge,
    layer_point_grids,
    mask_areas,
    masks_to_boxes,
    nms,
    point_grid,
)


@pytest.mark.parametrize(
    ("hw", "layers", "ratio", "boxes"),
    [
        ((480, 640), 0, 512 / 1500, [[0, 0, 640, 480]]),
        ((480, 640), 1, 512 / 1500,
         [[0, 0, 640, 480], [0, 0, 402, 322], [0, 159, 402, 480], [239, 0, 640, 322],
          [239, 159, 640, 480]]),
        ((101, 37), 1, 0.3,
         [[0, 0, 37, 101], [0, 0, 24, 56], [0, 45, 24, 101], [13, 0, 37, 56], [13, 45, 37, 101]]),
    ],
)  # fmt: skip
def test_crop_boxes_table(
    hw: tuple[int, int], layers: int, ratio: float, boxes: list[list[int]]
) -> None:
    got, layer_idx = crop_boxes(hw, layers, ratio)
    assert got == boxes
    assert layer_idx == [0] + [1] * (len(boxes) - 1)


def test_second_crop_layer_is_a_4x4_grid_listed_by_column() -> None:
    got, layer_idx = crop_boxes((480, 640), 2, 512 / 1500)
    assert len(got) == 1 + 4 + 16 and layer_idx.count(2) == 16
    assert got[5:9] == [[0, 0, 221, 181], [0, 100, 221, 281], [0, 200, 221, 381],
                        [0, 300, 221, 480]]  # fmt: skip
    assert max(b[2] for b in got) == 640 and max(b[3] for b in got) == 480


def test_point_grids() -> None:
    np.testing.assert_allclose(
        point_grid(2), [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    )
    g = point_grid(32)
    assert g.shape == (1024, 2) and g.min() == 1 / 64 and g.max() == 1 - 1 / 64
    assert [len(x) for x in layer_point_grids(8, 2, 2)] == [64, 16, 4]
    assert [len(x) for x in layer_point_grids(5, 1, 1)] == [25, 25]


# ----------------------------------------------------------------------------------------------
# NMS
# ----------------------------------------------------------------------------------------------
BOXES = torch.tensor(
    [[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10], [21, 21, 29, 29]],
    dtype=torch.float32,
)


@pytest.mark.parametrize(
    ("scores", "thresh", "kept"),
    [
        ([0.9, 0.8, 0.7, 0.6, 0.5], 0.5, [0, 2]),  # 1, 3 overlap 0; 4 inside 2 (IoU .64)
        ([0.9, 0.8, 0.7, 0.6, 0.5], 0.7, [0, 1, 2, 4]),  # IoU(0, 1) = 81/119 = .68 < .7
        ([0.9, 0.8, 0.7, 0.6, 0.5], 1.0, [0, 1, 2, 3, 4]),  # identical boxes: IoU 1 is not > 1
        ([0.5, 0.5, 0.5, 0.5, 0.5], 0.5, [0, 2]),  # ties keep the input order
        ([0.1, 0.9, 0.2, 0.3, 0.8], 0.5, [1, 4]),  # best first
        ([0.1, 0.9, 0.2, 0.3, 0.8], 0.0, [1, 4]),  # any overlap suppresses
    ],
)
def test_nms_table(scores: list[float], thresh: float, kept: list[int]) -> None:
    assert nms(BOXES, torch.tensor(scores), thresh).tolist() == kept


def test_nms_iou_equal_to_threshold_is_kept() -> None:
    boxes = torch.tensor([[0, 0, 2, 1], [1, 0, 3, 1]], dtype=torch.float32)  # IoU 1/3
    iou = float(box_iou(boxes[:1], boxes[1:])[0, 0])
    assert nms(boxes, torch.tensor([1.0, 0.5]), iou).tolist() == [0, 1]
    assert nms(boxes, torch.tensor([1.0, 0.5]), iou - 1e-6).tolist() == [0]


def test_nms_zero_area_boxes_suppress_nothing() -> None:
    # a single-pixel mask has an inclusive box with zero area: 0/0 IoU compares False
    boxes = torch.tensor([[5, 5, 5, 5], [5, 5, 5, 5]], dtype=torch.float32)
    assert nms(boxes, torch.tensor([1.0, 0.5]), 0.5).tolist() == [0, 1]


def test_batched_nms_separates_categories() -> None:
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    cats = torch.tensor([0, 1, 0, 1, 0])
    assert batched_nms(BOXES, scores, cats, 0.5).tolist() == [0, 1, 2]
    assert batched_nms(BOXES, scores, torch.zeros(5), 0.5).tolist() == [0, 2]
    empty = torch.zeros(0, 4)
    assert batched_nms(empty, torch.zeros(0), torch.zeros(0), 0.5).tolist() == []


def test_nms_matches_a_plain_greedy_loop() -> None:
    g = torch.Generator().manual_seed(0)
    xy = torch.rand(300, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + torch.rand(300, 2, generator=g) * 40 + 1], dim=1)
    scores = torch.rand(300, generator=g).round(decimals=1)  # many ties
    order = sorted(range(300), key=lambda i: -float(scores[i]))  # stable
    kept: list[int] = []
    for i in order:
        if all(float(box_iou(boxes[i : i + 1], boxes[j : j + 1])) <= 0.3 for j in kept):
            kept.append(i)
    assert nms(boxes, scores, 0.3).tolist() == kept


def test_nms_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        nms(torch.zeros(3, 5), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match="scores"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)


# ----------------------------------------------------------------------------------------------
# boxes of masks, edges
# ----------------------------------------------------------------------------------------------
def test_masks_to_boxes() -> None:
    m = torch.zeros(4, 6, 9, dtype=torch.bool)
    m[1] = True
    m[2, 3, 4] = True
    m[3, 1:3, 2] = True
    m[3, 5, 7] = True
    boxes = masks_to_boxes(m)
    assert boxes.tolist() == [[0, 0, 0, 0], [0, 0, 8, 5], [4, 3, 4, 3], [2, 1, 7, 5]]
    assert masks_to_boxes(m.view(2, 2, 6, 9)).shape == (2, 2, 4)
    assert masks_to_boxes(torch.zeros(0, 6, 9, dtype=torch.bool)).shape == (0, 4)
    assert mask_areas(m).tolist() == [0, 54, 1, 3]
    assert box_xyxy_to_xywh(boxes).tolist()[3] == [2, 1, 5, 4]
    assert box_area(boxes).tolist() == [0, 40, 0, 20]


@pytest.mark.parametrize(
    ("crop", "near"),
    [
        ([239, 0, 640, 322], [True, True, True, False]),
        ([0, 159, 402, 480], [True, False, True, False]),
        ([0, 0, 640, 480], [False, False, False, False]),  # the whole image has no crop edge
    ],
)
def test_box_near_crop_edge_table(crop: list[int], near: list[bool]) -> None:
    boxes = torch.tensor([[0, 0, 50, 50], [15, 30, 200, 120], [5, 5, 630, 470],
                          [100, 100, 300, 300]])  # fmt: skip
    assert is_box_near_crop_edge(boxes, crop, [0, 0, 640, 480]).tolist() == near
