"""J, F and their statistics (sam2r.eval.metrics) on hand-made masks whose scores are worked out
by hand, checked against brute-force definitions, and the DAVIS / SA-V dataset conventions
(sam2r.eval.evaluate) on tiny folders of PNGs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sam2r.eval import (
    boundary_map,
    boundary_tolerance,
    contour_accuracy,
    decay,
    dilate_disk,
    disk,
    evaluate,
    mean,
    recall,
    region_similarity,
    statistics,
)
from sam2r.eval.metrics import decay_bins
from sam2r.io.masks import write_palette_png


def square(shape: tuple[int, int], top: int, left: int, size: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[top : top + size, left : left + size] = True
    return m


def band(shape: tuple[int, int], *row_ranges: tuple[int, int]) -> np.ndarray:
    """Full-width horizontal bands: their boundary is one full row above and their last row."""
    m = np.zeros(shape, dtype=bool)
    for start, stop in row_ranges:
        m[start:stop] = True
    return m


# ----------------------------------------------------------------------------------------------
# J
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (square((40, 40), 5, 5, 10), square((40, 40), 5, 5, 10), 1.0),
        (square((40, 40), 5, 8, 10), square((40, 40), 5, 5, 10), 70 / 130),  # 10x7 of 200-70
        (square((40, 40), 8, 8, 10), square((40, 40), 5, 5, 10), 49 / 151),  # 7x7 of 200-49
        (square((40, 40), 5, 15, 10), square((40, 40), 5, 5, 10), 0.0),  # side by side
        (np.zeros((40, 40), bool), np.zeros((40, 40), bool), 1.0),  # both empty
        (np.zeros((40, 40), bool), square((40, 40), 5, 5, 10), 0.0),
        (square((40, 40), 5, 5, 10), np.zeros((40, 40), bool), 0.0),
    ],
)
def test_region_similarity(pred: np.ndarray, gt: np.ndarray, expected: float) -> None:
    assert region_similarity(pred, gt) == pytest.approx(expected)


# ----------------------------------------------------------------------------------------------
# boundary map, disk, dilation
# ----------------------------------------------------------------------------------------------
def naive_boundary(m: np.ndarray) -> np.ndarray:
    """Pixel by pixel: differs from its right, bottom or bottom-right neighbour, a neighbour
    outside the image being the nearest pixel inside it."""
    h, w = m.shape
    out = np.zeros_like(m)
    for y in range(h):
        for x in range(w):
            for dy, dx in ((0, 1), (1, 0), (1, 1)):
                if m[y, x] != m[min(y + dy, h - 1), min(x + dx, w - 1)]:
                    out[y, x] = True
    return out


def test_boundary_of_a_square_is_the_ring_shifted_towards_the_origin() -> None:
    m = square((8, 8), 2, 2, 3)  # rows/cols 2..4
    ring = np.zeros((8, 8), bool)
    ring[1:5, 1:5] = True
    ring[2:4, 2:4] = False  # the interior pixels whose three neighbours are inside too
    assert (boundary_map(m) == ring).all()
    assert boundary_map(m).sum() == 12


@pytest.mark.parametrize(
    "mask, expected_pixels",
    [
        (np.ones((5, 6), bool), []),  # the image border is not a boundary
        (np.zeros((5, 6), bool), []),
        (np.pad(np.ones((4, 1), bool), ((0, 0), (3, 0))), [(0, 2), (1, 2), (2, 2), (3, 2)]),
        (np.pad(np.ones((1, 1), bool), ((4, 0), (5, 0))), [(3, 4), (3, 5), (4, 4)]),  # corner
        (np.pad(np.ones((1, 1), bool), ((0, 4), (0, 5))), [(0, 0)]),  # top-left pixel
    ],
)
def test_boundary_at_the_image_border(mask: np.ndarray, expected_pixels: list) -> None:
    assert sorted(map(tuple, np.argwhere(boundary_map(mask)).tolist())) == expected_pixels
    assert (boundary_map(mask) == naive_boundary(mask)).all()


def test_boundary_map_matches_its_definition_on_random_masks() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        m = rng.random((int(rng.integers(1, 12)), int(rng.integers(1, 12)))) > 0.5
        assert (boundary_map(m) == naive_boundary(m)).all()


def test_disk_is_the_skimage_disk() -> None:
    assert disk(1).astype(int).tolist() == [[0, 1, 0], [1, 1, 1], [0, 1, 0]]
    assert disk(2).sum() == 13 and disk(8).shape == (17, 17) and disk(8).sum() == 197
    assert disk(0).tolist() == [[True]]


def test_dilate_disk_matches_brute_force() -> None:
    rng = np.random.default_rng(1)
    for _ in range(15):
        m = rng.random((int(rng.integers(1, 25)), int(rng.integers(1, 25)))) > 0.92
        r = int(rng.integers(0, 6))
        h, w = m.shape
        ys, xs = np.mgrid[0:h, 0:w]
        expected = np.zeros_like(m)
        for y, x in np.argwhere(m):
            expected |= (ys - y) ** 2 + (xs - x) ** 2 <= r * r
        assert (dilate_disk(m, r) == expected).all()


@pytest.mark.parametrize(
    "shape, bound_th, pixels",
    [
        ((480, 854), 0.008, 8),  # ceil(0.008 * 979.6) : DAVIS 480p
        ((100, 100), 0.008, 2),  # ceil(1.13)
        ((40, 60), 0.008, 1),  # ceil(0.58)
        ((100, 100), 3, 3),  # >= 1: pixels
        ((100, 100), 1.0, 1),
    ],
)
def test_boundary_tolerance(shape: tuple[int, int], bound_th: float, pixels: int) -> None:
    assert boundary_tolerance(shape, bound_th) == pixels


# ----------------------------------------------------------------------------------------------
# F
# ----------------------------------------------------------------------------------------------
S = (100, 100)  # tolerance 2 px


@pytest.mark.parametrize(
    "pred, gt, expected",
    [
        (band(S, (40, 60)), band(S, (40, 60)), 1.0),
        (band(S, (42, 62)), band(S, (40, 60)), 1.0),  # both rows 2 px off: within tolerance
        (band(S, (43, 63)), band(S, (40, 60)), 0.0),  # 3 px off: nothing matches, P + R = 0
        (band(S, (40, 63)), band(S, (40, 60)), 0.5),  # top row matches, bottom row 3 px off
        (band(S, (40, 60), (80, 90)), band(S, (40, 60)), 2 / 3),  # P = 1/2, R = 1
        (band(S, (40, 60)), band(S, (40, 60), (80, 90)), 2 / 3),  # P = 1, R = 1/2
        (np.zeros(S, bool), np.zeros(S, bool), 1.0),  # no boundary on either side
        (np.ones(S, bool), np.ones(S, bool), 1.0),  # full masks have no boundary either
        (np.zeros(S, bool), band(S, (40, 60)), 0.0),  # P = 1, R = 0
        (band(S, (40, 60)), np.zeros(S, bool), 0.0),  # P = 0, R = 1
    ],
)
def test_contour_accuracy(pred: np.ndarray, gt: np.ndarray, expected: float) -> None:
    assert contour_accuracy(pred, gt) == pytest.approx(expected)


@pytest.mark.parametrize("shift, perfect", [(0, True), (5, True), (8, True), (9, False)])
def test_tolerance_comes_from_the_whole_image_not_the_object(shift: int, perfect: bool) -> None:
    # 480x854: 8 px. A 30 px square moved right by up to 8 px keeps every boundary pixel
    # within 8 px of the other boundary; at 9 px the middle of the vertical sides is too far.
    gt = square((480, 854), 100, 200, 30)
    pred = square((480, 854), 100, 200 + shift, 30)
    f = contour_accuracy(pred, gt)
    assert (f == 1.0) == perfect and 0.0 < f <= 1.0


def naive_f(pred: np.ndarray, gt: np.ndarray, radius: int) -> float:
    pb, gb = naive_boundary(pred), naive_boundary(gt)
    if not pb.any() and not gb.any():
        return 1.0
    if not pb.any() or not gb.any():
        return 0.0
    p_pts, g_pts = np.argwhere(pb), np.argwhere(gb)
    d2 = ((p_pts[:, None, :] - g_pts[None, :, :]) ** 2).sum(-1)  # (P, G) squared distances
    precision = (d2.min(1) <= radius**2).mean()
    rec = (d2.min(0) <= radius**2).mean()
    return 0.0 if precision + rec == 0 else 2 * precision * rec / (precision + rec)


def test_contour_accuracy_matches_a_brute_force_definition() -> None:
    rng = np.random.default_rng(2)
    for _ in range(25):
        shape = (int(rng.integers(4, 30)), int(rng.integers(4, 30)))
        pred = rng.random(shape) > rng.uniform(0.3, 0.95)
        gt = rng.random(shape) > rng.uniform(0.3, 0.95)
        radius = int(rng.integers(1, 4))
        assert contour_accuracy(pred, gt, bound_th=radius) == pytest.approx(
            naive_f(pred, gt, radius)
        )


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: region_similarity(np.zeros((4, 4)), np.zeros((4, 5))), "shape"),
        (lambda: region_similarity(np.zeros((2, 4, 4)), np.zeros((2, 4, 4))), "2-D"),
        (lambda: contour_accuracy(np.zeros((4, 4)), np.zeros((5, 4))), "resize"),
        (lambda: contour_accuracy(np.zeros((4, 4)), np.zeros((4, 4)), bound_th=2.5), "whole"),
        (lambda: contour_accuracy(np.zeros((4, 4)), np.zeros((4, 4)), bound_th=0), "positive"),
        (lambda: region_similarity(np.zeros((0, 4)), np.zeros((0, 4))), "empty"),
        (lambda: statistics(np.zeros((2, 2))), "1-D"),
    ],
)
def test_bad_input_raises_value_error(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()


# ----------------------------------------------------------------------------------------------
# statistics
# ----------------------------------------------------------------------------------------------
LINEAR = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1]


def test_decay_bins_share_their_edges_as_in_the_toolkit() -> None:
    assert decay_bins(10) == [slice(0, 3), slice(2, 6), slice(5, 8), slice(7, 10)]
    assert decay_bins(1) == [slice(0, 1)] * 4
    # np.array_split would give 3, 3, 2, 2 frames and a decay of 0.9 - 0.15 = 0.75
    assert decay(LINEAR) == pytest.approx(0.9 - 0.2)


@pytest.mark.parametrize(
    "values, m, r, d",
    [
        (LINEAR, 0.55, 0.5, 0.7),  # 0.5 itself is not above 0.5
        ([1.0] * 7, 1.0, 1.0, 0.0),
        ([0.2, 0.4, 0.6, 0.8], 0.5, 0.5, 0.3 - 0.7),  # bins 0-1, 1-2, 2, 2-3; negative
        ([0.7], 0.7, 1.0, 0.0),
        ([float("nan"), 1.0, 0.5, 0.0, 0.0], 0.375, 0.2, 1.0 - 0.0),  # NaN skipped in means
    ],
)
def test_statistics(values: list[float], m: float, r: float, d: float) -> None:
    stats = statistics(values)
    assert (stats.mean, stats.recall, stats.decay) == pytest.approx((m, r, d))
    assert (mean(values), recall(values), decay(values)) == pytest.approx((m, r, d))


def test_statistics_of_no_frames_are_nan_and_long_sequences_have_a_decay() -> None:
    assert all(math.isnan(v) for v in statistics([]))
    values = np.linspace(1.0, 0.0, 300)  # the toolkit's uint8 bin edges would wrap here
    assert decay(values) == pytest.approx(values[0:76].mean() - values[224:300].mean())


# ----------------------------------------------------------------------------------------------
# datasets: the DAVIS and SA-V conventions
# ----------------------------------------------------------------------------------------------
H, W = 40, 60


def obj(top: int, left: int, size: int = 10) -> np.ndarray:
    return square((H, W), top, left, size)


def labels(*objects: tuple[int, np.ndarray | None]) -> np.ndarray:
    out = np.zeros((H, W), np.uint8)
    for k, m in objects:
        if m is not None:
            out[m] = k
    return out


def write_seq(root: Path, name: str, frames: list[np.ndarray | None]) -> None:
    for i, lab in enumerate(frames):
        if lab is not None:
            write_palette_png(root / name / f"{i:05d}.png", lab)


A, B = obj(5, 5), obj(20, 30)


def test_first_and_last_frames_are_not_scored(tmp_path: Path) -> None:
    gt = [labels((1, A))] * 5
    pred = [labels(), labels((1, A)), labels((1, A)), labels((1, A)), labels()]
    write_seq(tmp_path / "gt", "s", gt)
    write_seq(tmp_path / "pred", "s", pred)
    for convention in ("davis", "sav"):
        result = evaluate(tmp_path / "gt", tmp_path / "pred", convention)
        (o,) = result.objects
        assert o.frames == ("00001.png", "00002.png", "00003.png")
        assert o.j.tolist() == [1.0, 1.0, 1.0] and result.jf_mean == 1.0


def test_missing_frames_are_empty_and_other_ids_ignored(tmp_path: Path) -> None:
    gt = [labels((1, A), (2, B))] * 5
    pred = [labels((1, A), (2, B)), labels((1, A), (2, B), (7, obj(0, 45, 5))), None]
    pred += [labels((1, A)), labels()]  # frame 2 missing; object 2 missing on frame 3
    write_seq(tmp_path / "gt", "s", gt)
    write_seq(tmp_path / "pred", "s", pred)
    result = evaluate(tmp_path / "gt", tmp_path / "pred")
    assert [o.name for o in result.objects] == ["s_1", "s_2"]  # id 7 is not a GT object
    assert result.objects[0].j.tolist() == [1.0, 0.0, 1.0]
    assert result.objects[1].j.tolist() == [1.0, 0.0, 0.0]
    assert result.missing_predictions == ["s/00002.png"]
    assert result.global_stats()["J-Mean"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    assert "missing" in result.table()


def test_davis_counts_ids_up_to_the_first_frame_maximum(tmp_path: Path) -> None:
    # first frame: ids 1 and 3 -> objects 1, 2, 3; id 4 appearing later is not an object
    gt = [labels((1, A), (3, B))] + [labels((1, A), (3, B), (4, obj(25, 5)))] * 4
    write_seq(tmp_path / "gt", "s", gt)
    write_seq(tmp_path / "pred", "s", gt)
    davis = evaluate(tmp_path / "gt", tmp_path / "pred", "davis")
    assert [o.object_id for o in davis.objects] == ["1", "2", "3"]
    assert davis.objects[1].j.tolist() == [1.0] * 3  # empty GT, empty prediction
    sav = evaluate(tmp_path / "gt", tmp_path / "pred", "sav")
    assert [o.object_id for o in sav.objects] == ["1", "3", "4"]


def test_sav_scores_an_object_from_its_first_appearance(tmp_path: Path) -> None:
    # object 2: in the first frame, absent on frames 1-2, back on 3-5; predicted right on 1-3,
    # lost on frame 4. 255 is DAVIS void: background for davis, an object for sav.
    void = obj(0, 50, 4)
    gt = [labels((1, A), (2, B), (255, void))]
    gt += [labels((1, A), (255, void))] * 2 + [labels((1, A), (2, B), (255, void))] * 3
    pred = [labels((1, A), (2, B))] + [labels((1, A))] * 2 + [labels((1, A), (2, B))]
    pred += [labels((1, A))] * 2
    write_seq(tmp_path / "gt", "s", gt)
    write_seq(tmp_path / "pred", "s", pred)
    davis = evaluate(tmp_path / "gt", tmp_path / "pred", "davis")
    sav = evaluate(tmp_path / "gt", tmp_path / "pred", "sav")
    assert [o.name for o in davis.objects] == ["s_1", "s_2"]
    assert davis.objects[1].j.tolist() == [1.0, 1.0, 1.0, 0.0]  # frames 1-4
    assert [o.name for o in sav.objects] == ["s_1", "s_2", "s_255"]
    assert sav.objects[1].frames == ("00003.png", "00004.png")
    assert sav.objects[1].j.tolist() == [1.0, 0.0]
    assert sav.objects[2].j.tolist() == [0.0] * 4  # the void region, never predicted
    assert davis.objects[1].j_stats.mean == 0.75 and sav.objects[1].j_stats.mean == 0.5


def test_sav_per_object_layout(tmp_path: Path) -> None:
    # SA-V: <seq>/<obj>/<frame>.png, binary masks; object 001 only appears from frame 2
    for root in ("gt", "pred"):
        for i in range(5):
            write_palette_png(tmp_path / root / "v" / "000" / f"{i:05d}.png", A * 255)
            m = B if i >= 2 and not (root == "pred" and i == 3) else np.zeros((H, W), bool)
            write_palette_png(tmp_path / root / "v" / "001" / f"{i:05d}.png", m * 1)
    sav = evaluate(tmp_path / "gt", tmp_path / "pred", "sav")
    assert [o.name for o in sav.objects] == ["v_000", "v_001"]
    assert sav.objects[1].frames == ("00002.png", "00003.png")
    assert sav.objects[1].j.tolist() == [1.0, 0.0]
    davis = evaluate(tmp_path / "gt", tmp_path / "pred", "davis")
    assert davis.objects[1].j.tolist() == [1.0, 1.0, 0.0]


def test_davis_root_image_set_and_csv_files(tmp_path: Path) -> None:
    ann = tmp_path / "DAVIS" / "Annotations" / "480p"
    write_seq(ann, "a", [labels((1, A))] * 4)
    write_seq(ann, "b", [labels((1, A), (2, B))] * 4)
    (tmp_path / "DAVIS" / "ImageSets" / "2017").mkdir(parents=True)
    (tmp_path / "DAVIS" / "ImageSets" / "2017" / "val.txt").write_text("b\n")
    write_seq(tmp_path / "pred", "b", [labels((1, A), (2, obj(20, 33)))] * 4)  # 2: 3 px off
    result = evaluate(tmp_path / "DAVIS", tmp_path / "pred")
    assert [o.name for o in result.objects] == ["b_1", "b_2"]
    j2 = 70 / 130
    assert result.objects[1].j.tolist() == pytest.approx([j2, j2])
    # F of object 2: rings of 40 boundary pixels 3 px apart, tolerance 1 px: 9 + 9 pixels of
    # the top and bottom rows match and 2 of the side nearer the other ring -> P = R = 1/2
    assert result.objects[1].f.tolist() == [0.5, 0.5]
    g, per_object = result.write_csv(tmp_path / "out")
    assert g.name == "global_results.csv" and per_object.name == "per-object_results.csv"
    # J-Mean (1 + 7/13) / 2 = 0.769, F-Mean 0.75, J&F 0.7596; F-Recall: 0.5 is not above 0.5
    assert g.read_text() == (
        "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n"
        "0.760,0.769,1.000,0.000,0.750,0.500,0.000\n"
    )
    assert per_object.read_text() == "Sequence,J-Mean,F-Mean\nb_1,1.000,1.000\nb_2,0.538,0.500\n"
    only_b = evaluate(tmp_path / "DAVIS", tmp_path / "pred", sequences=["b"])
    assert only_b.global_stats() == result.global_stats()


@pytest.mark.parametrize(
    "setup, kwargs, match",
    [
        ("no_pred_seq", {}, r"no prediction for sequence 't'.*pred/t"),
        ("pred_shape", {}, "masks must have the size of the annotations"),
        ("short", {}, "at least 3"),
        ("ok", {"convention": "youtube"}, "convention"),
        ("ok", {"sequences": ["nope"]}, "nope"),
        ("no_gt", {}, "does not exist"),
        ("pred_layout", {}, "layout of the ground truth"),
    ],
)
def test_dataset_errors(tmp_path: Path, setup: str, kwargs: dict, match: str) -> None:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    write_seq(gt, "s", [labels((1, A))] * (2 if setup == "short" else 4))
    write_seq(pred, "s", [labels((1, A))] * 4)
    if setup == "no_pred_seq":
        write_seq(gt, "t", [labels((1, A))] * 4)
    if setup == "pred_shape":
        write_palette_png(pred / "s" / "00002.png", np.zeros((H + 1, W), np.uint8))
    if setup == "pred_layout":
        write_palette_png(pred / "u" / "000" / "00000.png", np.zeros((H, W), np.uint8))
        write_seq(gt, "u", [labels((1, A))] * 4)
    if setup == "no_gt":
        gt = tmp_path / "missing"
    with pytest.raises(ValueError, match=match):
        evaluate(gt, pred, **kwargs)
