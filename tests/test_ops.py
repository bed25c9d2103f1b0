"""Unit tests of `sam2r.ops`: connected components, hole filling, image and prompt transforms."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, load_json
from PIL import Image

from sam2r.ops import (
    connected_components,
    fill_holes,
    fill_holes_and_remove_sprinkles,
    fill_holes_in_mask_scores,
    postprocess_masks,
    preprocess_batch,
    preprocess_image,
    remove_sprinkles,
    to_rgb_array,
    transform_boxes,
    transform_coords,
)

# ----------------------------------------------------------------------------------------------
# connected components
# ----------------------------------------------------------------------------------------------


def bfs_components(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reference 8-connected labelling of one (H, W) bool plane: (component id map, areas)."""
    h, w = plane.shape
    comp = np.full((h, w), -1, dtype=np.int64)
    sizes: list[int] = []
    for y0 in range(h):
        for x0 in range(w):
            if not plane[y0, x0] or comp[y0, x0] >= 0:
                continue
            cid, count = len(sizes), 0
            comp[y0, x0] = cid
            queue = deque([(y0, x0)])
            while queue:
                y, x = queue.popleft()
                count += 1
                for dy in (-1, 0, 1):
                    for dx in (-1, 0, 1):
                        yy, xx = y + dy, x + dx
                        if 0 <= yy < h and 0 <= xx < w and plane[yy, xx] and comp[yy, xx] < 0:
                            comp[yy, xx] = cid
                            queue.append((yy, xx))
            sizes.append(count)
    areas = np.where(comp >= 0, np.array(sizes + [0])[comp], 0)
    return comp, areas


def assert_matches_bfs(mask: np.ndarray) -> None:
    """connected_components agrees with BFS on a (N, 1, H, W) bool array."""
    labels, areas = connected_components(torch.from_numpy(mask))
    assert labels.dtype == torch.int32 and areas.dtype == torch.int32
    assert labels.shape == areas.shape == mask.shape
    for n in range(mask.shape[0]):
        plane = mask[n, 0]
        comp, ref_areas = bfs_components(plane)
        lab = labels[n, 0].numpy()
        np.testing.assert_array_equal(areas[n, 0].numpy(), ref_areas)
        np.testing.assert_array_equal(lab == 0, ~plane)
        # same partition: the map BFS id <-> label is a bijection on foreground pixels
        pairs = set(zip(comp[plane].tolist(), lab[plane].tolist(), strict=True))
        assert len(pairs) == len({c for c, _ in pairs}) == len({lb for _, lb in pairs})
        # documented numbering: 1 + raster index of the component's first pixel
        for c, lb in pairs:
            first = int(np.flatnonzero(comp.ravel() == c)[0])
            assert lb == first + 1


@pytest.mark.parametrize(
    "shape,density,seed",
    [
        ((3, 1, 17, 23), 0.3, 0),
        ((3, 1, 17, 23), 0.5, 1),
        ((2, 1, 32, 32), 0.6, 2),
        ((4, 1, 9, 9), 0.45, 3),
        ((1, 1, 1, 40), 0.5, 4),
        ((1, 1, 40, 1), 0.5, 5),
        ((2, 1, 64, 48), 0.55, 6),
    ],
)
def test_connected_components_random(shape: tuple[int, ...], density: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    assert_matches_bfs(rng.random(shape) < density)


def _checkerboard(h: int, w: int) -> np.ndarray:
    return (np.add.outer(np.arange(h), np.arange(w)) % 2 == 0)[None, None]


def _diagonal_pairs() -> np.ndarray:
    m = np.zeros((1, 1, 6, 6), dtype=bool)
    m[0, 0, [0, 1, 3, 4], [0, 1, 5, 4]] = True  # two diagonal pairs, one anti-diagonal step
    return m


def _spiral(n: int) -> np.ndarray:
    m = np.zeros((n, n), dtype=bool)
    y, x, dy, dx = 0, 0, 0, 1
    for _ in range(n * n):
        m[y, x] = True
        ny, nx = y + dy, x + dx
        ahead_ok = 0 <= ny < n and 0 <= nx < n and not m[ny, nx]
        two_ok = not (0 <= ny + dy < n and 0 <= nx + dx < n and m[ny + dy, nx + dx])
        if not (ahead_ok and two_ok):
            dy, dx = dx, -dy
            ny, nx = y + dy, x + dx
            if not (0 <= ny < n and 0 <= nx < n) or m[ny, nx]:
                break
        y, x = ny, nx
    return m[None, None]


@pytest.mark.parametrize(
    "name,mask",
    [
        ("empty", np.zeros((2, 1, 8, 8), dtype=bool)),
        ("full", np.ones((2, 1, 8, 8), dtype=bool)),
        ("single_pixel", np.pad(np.ones((1, 1, 1, 1), bool), ((0, 0), (0, 0), (3, 4), (2, 5)))),
        ("checkerboard", _checkerboard(7, 9)),  # one component under 8-connectivity
        ("diagonal_pairs", _diagonal_pairs()),
        ("spiral", _spiral(24)),
        ("one_by_one", np.ones((1, 1, 1, 1), dtype=bool)),
    ],
)
def test_connected_components_cases(name: str, mask: np.ndarray) -> None:
    assert_matches_bfs(mask)


def test_connected_components_diagonal_is_connected() -> None:
    mask = torch.zeros(1, 1, 3, 3, dtype=torch.uint8)
    mask[0, 0, 0, 0] = mask[0, 0, 1, 1] = mask[0, 0, 2, 2] = 1
    labels, areas = connected_components(mask)
    assert areas[0, 0].max() == 3 and labels[0, 0, 2, 2] == labels[0, 0, 0, 0] == 1


def test_connected_components_planes_are_independent() -> None:
    mask = torch.ones(3, 1, 4, 5, dtype=torch.bool)
    labels, areas = connected_components(mask)
    assert (labels == 1).all() and (areas == 20).all()


@pytest.mark.parametrize("shape", [(8, 8), (2, 2, 8, 8), (1, 1, 1, 8, 8)])
def test_connected_components_rejects_bad_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        connected_components(torch.zeros(shape, dtype=torch.bool))


def test_connected_components_is_fast_enough() -> None:
    mask = torch.rand(8, 1, 256, 256, generator=torch.Generator().manual_seed(0)) < 0.5
    start = time.perf_counter()
    connected_components(mask)
    assert time.perf_counter() - start < 5.0


# ----------------------------------------------------------------------------------------------
# holes and sprinkles
# ----------------------------------------------------------------------------------------------


def _logits(rows: list[str]) -> torch.Tensor:
    """(1, 1, H, W) logits from a picture: '#' = +2 (foreground), '.' = -2 (background)."""
    grid = [[2.0 if c == "#" else -2.0 for c in r] for r in rows]
    return torch.tensor(grid, dtype=torch.float32)[None, None]


RING = ["#####", "#...#", "#.#.#", "#...#", "#####"]  # 8-pixel hole holding a 1-pixel speck
DIAG = [".#####", "#.####", "######", "####.#", "###.##", "######"]  # two 2-px 8-connected holes


@pytest.mark.parametrize(
    "rows,max_area,filled",
    [
        (RING, 8, [(1, 1), (1, 2), (1, 3), (2, 1), (2, 3), (3, 1), (3, 2), (3, 3)]),
        (RING, 7, []),
        (DIAG, 2, [(0, 0), (1, 1), (3, 4), (4, 3)]),  # diagonal neighbours are one hole
        (DIAG, 1, []),
        (["##.##"], 1, [(0, 2)]),  # background touching the border counts as a hole
        (["#####"], 5, []),
        (["....."], 5, [(0, 0), (0, 1), (0, 2), (0, 3), (0, 4)]),  # all background: filled
    ],
)
def test_fill_holes(rows: list[str], max_area: int, filled: list[tuple[int, int]]) -> None:
    x = _logits(rows)
    out = fill_holes(x, max_area)
    expected = x.clone()
    for y, xx in filled:
        expected[0, 0, y, xx] = 10.0
    assert torch.equal(out, expected)


@pytest.mark.parametrize(
    "rows,max_area,removed",
    [
        (RING, 1, [(2, 2)]),
        (RING, 0, []),
        (["#.#", "...", "..#"], 1, [(0, 0), (0, 2), (2, 2)]),
        (["#..", ".#.", "..#"], 2, []),  # the diagonal is one component of 3 pixels
        (["#..", ".#.", "..#"], 3, [(0, 0), (1, 1), (2, 2)]),
    ],
)
def test_remove_sprinkles(rows: list[str], max_area: int, removed: list[tuple[int, int]]) -> None:
    x = _logits(rows)
    out = remove_sprinkles(x, max_area)
    expected = x.clone()
    for y, xx in removed:
        expected[0, 0, y, xx] = -10.0
    assert torch.equal(out, expected)


@pytest.mark.parametrize("threshold", [-1.0, 0.0, 1.5])
def test_threshold_sets_values(threshold: float) -> None:
    x = torch.full((1, 1, 5, 5), threshold + 1.0)
    x[0, 0, 2, 2] = threshold  # <= threshold: background (a 1-pixel hole)
    x[0, 0, 0, 0] = threshold - 3.0
    assert fill_holes(x, 1, threshold)[0, 0, 2, 2] == threshold + 10.0
    y = -x + 2 * threshold  # mirror: the centre stays at the threshold, a background value
    y[0, 0, 2, 2] = threshold + 0.5
    assert remove_sprinkles(y, 1, threshold)[0, 0, 2, 2] == threshold - 10.0


def test_planes_are_processed_separately() -> None:
    a, b = _logits(RING), _logits(["#####"] * 5)
    x = torch.cat([torch.cat([a, b], 1), torch.cat([b, a], 1)], 0)  # (2, 2, 5, 5)
    out = fill_holes(x, 8)
    assert torch.equal(out[0, 1], b[0, 0]) and torch.equal(out[1, 0], b[0, 0])
    assert torch.equal(out[0, 0], fill_holes(a, 8)[0, 0])
    assert torch.equal(out[1, 1], fill_holes(a, 8)[0, 0])


def test_combined_finds_sprinkles_on_the_input() -> None:
    # the official image post-processing finds holes and sprinkles on the same input logits:
    # filling the middle hole must not merge the two specks into one 5-pixel component
    x = _logits(["##.##"])
    out = fill_holes_and_remove_sprinkles(x, max_hole_area=1, max_sprinkle_area=3)
    assert out[0, 0, 0].tolist() == [-10.0, -10.0, 10.0, -10.0, -10.0]
    sequential = remove_sprinkles(fill_holes(x, 1), 3)
    assert sequential[0, 0, 0].tolist() == [2.0, 2.0, 10.0, 2.0, 2.0]


@pytest.mark.parametrize("hole,sprinkle", [(0, 0), (8, 0), (0, 1), (8, 1)])
def test_combined_matches_single_steps(hole: int, sprinkle: int) -> None:
    x = _logits(RING)
    out = fill_holes_and_remove_sprinkles(x, hole, sprinkle)
    expected = x
    if hole:
        expected = torch.where(fill_holes(x, hole) != x, 10.0, expected)
    if sprinkle:
        expected = torch.where(remove_sprinkles(x, sprinkle) != x, -10.0, expected)
    assert torch.equal(out, expected)


def test_fill_holes_in_mask_scores() -> None:
    x = torch.cat([_logits(RING), _logits(DIAG[:5])[..., :5]], 0)  # (2, 1, 5, 5)
    out = fill_holes_in_mask_scores(x, 8)
    hole = (x <= 0) & (fill_holes(x, 8) != x)
    assert hole.sum() == 8 + 4  # the ring's inside; two diagonal pairs
    assert torch.equal(out, torch.where(hole, torch.tensor(0.1), x))
    assert (out[hole] == torch.tensor(0.1, dtype=torch.float32)).all()
    # the speck inside the ring stays: the official video path removes no sprinkles
    assert out[0, 0, 2, 2] == 2.0


def test_fill_holes_in_mask_scores_off_and_sprinkles() -> None:
    x = _logits(RING)
    assert fill_holes_in_mask_scores(x, 0) is x
    out = fill_holes_in_mask_scores(x, 0, max_sprinkle_area=1)
    assert out[0, 0, 2, 2] == pytest.approx(-0.1) and (out != x).sum() == 1
    # sprinkles are looked for after hole filling: the filled ring is one 25-pixel component
    assert torch.equal(fill_holes_in_mask_scores(x, 8, max_sprinkle_area=1)[x > 0], x[x > 0])


@pytest.mark.parametrize(
    "fn,args,error",
    [
        (fill_holes, (torch.zeros(5, 5), 3), ValueError),
        (fill_holes, (torch.zeros(1, 1, 5, 5), -1), ValueError),
        (fill_holes, (torch.zeros(1, 1, 5, 5, dtype=torch.long), 3), ValueError),
        (remove_sprinkles, (np.zeros((1, 1, 5, 5)), 3), TypeError),
        (remove_sprinkles, (torch.zeros(1, 1, 5, 5), 2.5), ValueError),
        (fill_holes_in_mask_scores, (torch.zeros(1, 1, 5, 5), -8), ValueError),
    ],
)
def test_post_processing_rejects_bad_input(fn, args: tuple, error: type) -> None:
    with pytest.raises(error):
        fn(*args)


# ----------------------------------------------------------------------------------------------
# transforms
# ----------------------------------------------------------------------------------------------


def _main_image() -> np.ndarray:
    return np.array(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))


@pytest.mark.parametrize("cfg", ["micro", "sam2.1_hiera_t"])
def test_preprocess_matches_official(cfg: str) -> None:
    step = load_json(f"{cfg}/image_index.json")["steps"][0]
    assert step["op"] == "set_image"
    size = load_json(f"configs/{cfg}.json")["model"]["image_size"]
    ref = np.load(FIXTURES / cfg / "image.npz")[step["input_tensor"]]
    x = preprocess_image(_main_image(), size)
    assert x.shape == (1, 3, size, size) and x.dtype == torch.float32
    if ref.shape[-1] != size:  # 1024-px configs store the centre crop
        lo = (size - ref.shape[-1]) // 2
        x = x[:, :, lo : lo + ref.shape[-2], lo : lo + ref.shape[-1]]
    np.testing.assert_allclose(x.numpy(), ref, rtol=0, atol=1e-5)


def test_preprocess_skips_resize_at_model_size() -> None:
    img = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    x = preprocess_image(img, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255 - mean) / std
    assert torch.equal(x, expected)


def test_preprocess_batch_equals_singles() -> None:
    rng = np.random.default_rng(1)
    images = [rng.integers(0, 256, hw + (3,), dtype=np.uint8) for hw in [(40, 60), (64, 64)]]
    batch = preprocess_batch(images, 64)
    assert batch.shape == (2, 3, 64, 64)
    for i, im in enumerate(images):
        assert torch.equal(batch[i : i + 1], preprocess_image(im, 64))


@pytest.mark.parametrize("bad", [np.zeros((8, 8, 3), np.uint8), [], "x.png"])
def test_preprocess_batch_rejects(bad: object) -> None:
    with pytest.raises((TypeError, ValueError)):
        preprocess_batch(bad, 16)  # type: ignore[arg-type]


_RGB = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
_RGBA = np.concatenate([_RGB, np.full((5, 7, 1), 17, np.uint8)], axis=2)


def _pil(mode: str) -> Image.Image:
    return Image.fromarray(_RGB).convert(mode)


@pytest.mark.parametrize(
    "image,expected",
    [
        (_RGB, _RGB),
        (_RGBA, _RGB),
        (_RGB[:, :, 0], np.repeat(_RGB[:, :, :1], 3, axis=2)),
        (_RGB[:, :, :1], np.repeat(_RGB[:, :, :1], 3, axis=2)),
        (Image.fromarray(_RGB), _RGB),
        (Image.fromarray(_RGBA), _RGB),
        (Image.fromarray(_RGB[:, :, 1]), np.repeat(_RGB[:, :, 1:2], 3, axis=2)),
        (_pil("P"), np.asarray(_pil("P").convert("RGB"))),
        (_pil("1"), np.asarray(_pil("1").convert("RGB"))),
        (_pil("CMYK"), np.asarray(_pil("CMYK").convert("RGB"))),
    ],
)
def test_to_rgb_array_accepts(image: object, expected: np.ndarray) -> None:
    out = to_rgb_array(image)
    assert out.dtype == np.uint8 and out.shape == expected.shape and out.flags.c_contiguous
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    "image,error,match",
    [
        (_RGB.astype(np.float32) / 255, ValueError, "uint8"),
        (_RGB.astype(np.int64), ValueError, "uint8"),
        (np.ascontiguousarray(_RGB.transpose(2, 0, 1)), ValueError, "channels-first"),
        (np.zeros((5, 7, 2), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((2, 5, 7, 3), np.uint8), ValueError, r"\(H, W, 3\)"),
        (np.zeros((0, 7, 3), np.uint8), ValueError, "non-empty"),
        (torch.zeros(3, 5, 7, dtype=torch.uint8), TypeError, "permute"),
        (_RGB.tolist(), TypeError, "list"),
        ("image.png", TypeError, "str"),
    ],
)
def test_to_rgb_array_rejects(image: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        to_rgb_array(image)


@pytest.mark.parametrize(
    "coords,orig_hw,size,normalize,expected",
    [
        ([[320.0, 240.0]], (480, 640), 1024, True, [[512.0, 512.0]]),
        ([[0.0, 480.0], [640.0, 0.0]], (480, 640), 256, True, [[0.0, 256.0], [256.0, 0.0]]),
        ([[[0.5, 0.25]]], (480, 640), 1024, False, [[[512.0, 256.0]]]),
        (np.array([[64.0, 16.0]]), (32, 128), 64, True, [[32.0, 32.0]]),
    ],
)
def test_transform_coords(coords, orig_hw, size: int, normalize: bool, expected) -> None:
    out = transform_coords(coords, orig_hw, size, normalize)
    assert out.dtype == torch.float32
    assert torch.equal(out, torch.tensor(expected, dtype=torch.float32))


def test_transform_coords_does_not_modify_input() -> None:
    pts = torch.tensor([[320.0, 240.0]])
    transform_coords(pts, (480, 640), 1024)
    assert pts.tolist() == [[320.0, 240.0]]


@pytest.mark.parametrize(
    "boxes,expected",
    [
        ([0, 0, 640, 480], [[[0.0, 0.0], [1024.0, 1024.0]]]),
        (
            [[64, 48, 320, 240], [0, 240, 640, 480]],
            [[[102.4, 102.4], [512.0, 512.0]], [[0.0, 512.0], [1024.0, 1024.0]]],
        ),
    ],
)
def test_transform_boxes(boxes, expected) -> None:
    out = transform_boxes(boxes, (480, 640), 1024)
    torch.testing.assert_close(out, torch.tensor(expected), rtol=0, atol=1e-4)


@pytest.mark.parametrize(
    "fn,args",
    [
        (transform_coords, ([1.0, 2.0, 3.0], (4, 4), 8)),
        (transform_coords, ([[1.0, 2.0]], (4,), 8)),
        (transform_coords, ([[1.0, 2.0]], (0, 4), 8)),
        (transform_boxes, ([[1.0, 2.0]], (4, 4), 8)),
    ],
)
def test_transforms_reject_bad_shapes(fn, args: tuple) -> None:
    with pytest.raises(ValueError):
        fn(*args)


def test_postprocess_matches_official_upsampled_masks() -> None:
    index = load_json("micro/image_index.json")
    case = next(s for s in index["steps"] if s.get("name") == "point1_multi")
    data = np.load(FIXTURES / "micro" / "image.npz")
    low_res = torch.from_numpy(data[case["low_res_masks"]])[None]  # (1, 3, 64, 64)
    ref = data[case["masks"]].astype(np.float32)  # (3, 480, 640), stored as float16
    out = postprocess_masks(low_res, (480, 640))
    assert out.shape == (1, 3, 480, 640)
    np.testing.assert_allclose(out[0].numpy(), ref, rtol=2e-3, atol=1e-2)


def test_postprocess_default_is_plain_bilinear() -> None:
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    expected = F.interpolate(x, (30, 20), mode="bilinear", align_corners=False)
    assert torch.equal(postprocess_masks(x, (30, 20)), expected)
    filled = postprocess_masks(x, (16, 16), max_hole_area=3, max_sprinkle_area=3)
    ref = fill_holes_and_remove_sprinkles(x, 3, 3)
    assert torch.equal(filled, F.interpolate(ref, (16, 16), mode="bilinear"))
