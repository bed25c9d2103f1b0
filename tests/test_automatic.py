"""Everything mode beyond parity: option checking, output modes, the exactness of the shortcuts
(IoU filter before upsampling, folded cross-attention projections), the compat signature."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam2r import SAM2Model
from sam2r.compat import SAM2AutomaticMaskGenerator
from sam2r.ops import rle
from sam2r.predictor.automatic import MaskGenerator, MaskRecord

IMAGE = Path(__file__).parent / "fixtures" / "amg_extra" / "image_small.png"
SMALL = dict(points_per_side=4, pred_iou_thresh=0.3, stability_score_thresh=0.3, box_nms_thresh=1.0)


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.array(Image.open(IMAGE).convert("RGB"))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points_per_side": None}, "exactly one of points_per_side"),
        ({"point_grids": [np.zeros((4, 2))]}, "exactly one of points_per_side"),
        ({"points_per_side": 0}, "points_per_side must be an int >= 1"),
        ({"points_per_side": 8.0}, "points_per_side must be an int"),
        ({"points_per_batch": 0}, "points_per_batch must be an int >= 1"),
        ({"pred_iou_thresh": 1.5}, r"pred_iou_thresh must be in \[0, 1\]"),
        ({"stability_score_thresh": -0.1}, r"stability_score_thresh must be in \[0, 1\]"),
        ({"stability_score_offset": -1.0}, "stability_score_offset must be >= 0"),
        ({"mask_threshold": float("nan")}, "mask_threshold must be finite"),
        ({"box_nms_thresh": 2}, r"box_nms_thresh must be in \[0, 1\]"),
        ({"crop_nms_thresh": "0.7"}, "crop_nms_thresh must be a number"),
        ({"crop_n_layers": -1}, "crop_n_layers must be an int >= 0"),
        ({"crop_overlap_ratio": 1.0}, r"crop_overlap_ratio must be in \[0, 1\)"),
        ({"crop_overlap_ratio": -0.2}, r"crop_overlap_ratio must be in \[0, 1\)"),
        ({"crop_n_points_downscale_factor": 0}, "crop_n_points_downscale_factor must be"),
        ({"points_per_side": 2, "crop_n_layers": 2, "crop_n_points_downscale_factor": 2},
         "leaves no point in crop layer 2"),
        ({"min_mask_region_area": -5}, "min_mask_region_area must be a number >= 0"),
        ({"output_mode": "png"}, "unknown output_mode 'png'"),
        ({"points_per_side": None, "point_grids": [np.zeros((4, 3))]}, r"shape \(N, 2\)"),
        ({"points_per_side": None, "point_grids": [np.full((4, 2), 2.0)]}, r"in \[0, 1\]"),
        ({"points_per_side": None, "point_grids": [np.zeros((4, 2))], "crop_n_layers": 1},
         "needs 2"),
    ],
)  # fmt: skip
def test_bad_options_raise_actionable_errors(
    model: SAM2Model, kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MaskGenerator(model, **kwargs)  # type: ignore[arg-type]


def test_not_a_model() -> None:
    with pytest.raises(TypeError, match="SAM2Model"):
        MaskGenerator(object())  # type: ignore[arg-type]


def test_output_modes_hold_the_same_masks(model: SAM2Model, image: np.ndarray) -> None:
    binary = MaskGenerator(model, **SMALL, output_mode="binary").generate(image)
    alias = MaskGenerator(model, **SMALL, output_mode="binary_mask").generate(image)
    unc = MaskGenerator(model, **SMALL, output_mode="uncompressed_rle").generate(image)
    coco = MaskGenerator(model, **SMALL, output_mode="coco_rle").generate(image)
    assert len(binary) == len(unc) == len(coco) == len(alias) > 0
    for b, a, u, c in zip(binary, alias, unc, coco, strict=True):
        m = b["segmentation"]
        assert m.dtype == bool and m.shape == image.shape[:2]
        np.testing.assert_array_equal(a["segmentation"], m)
        assert u["segmentation"] == rle.mask_to_uncompressed(m)
        assert isinstance(c["segmentation"]["counts"], str)
        assert c["segmentation"]["counts"].encode() == rle.encode(m)["counts"]
        assert b["area"] == int(m.sum())
        ys, xs = np.nonzero(m)
        assert b["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        assert set(b) == {"segmentation", "area", "bbox", "predicted_iou", "point_coords",
                          "stability_score", "crop_box"}  # fmt: skip


def test_typed_records(model: SAM2Model, image: np.ndarray) -> None:
    records = MaskGenerator(model, **SMALL).generate_records(image)
    assert records and all(isinstance(r, MaskRecord) for r in records)
    r = records[0]
    assert isinstance(r.area, int) and isinstance(r.predicted_iou, float)
    assert len(r.bbox) == 4 and len(r.point_coords) == 1 and len(r.crop_box) == 4
    assert r.to_dict()["segmentation"] is r.segmentation


@pytest.mark.parametrize(
    "options",
    [
        {},  # multimask: prompts are skipped on the best of the 3 multimask IoUs
        {"multimask_output": False},  # single mask + dynamic fallback: all 4 IoUs count
        {"use_m2m": True},
        {"pred_iou_thresh": 0.45},
    ],
)
def test_filtering_before_upsampling_changes_nothing(
    model: SAM2Model,
    image: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
    options: dict[str, object],
) -> None:
    kwargs = {**SMALL, "points_per_side": 6, **options}
    fast = MaskGenerator(model, **kwargs).generate(image)  # type: ignore[arg-type]
    decode = MaskGenerator._decode

    def no_prefilter(self, *args):  # type: ignore[no-untyped-def]
        return decode(self, *args[:-1], False)

    monkeypatch.setattr(MaskGenerator, "_decode", no_prefilter)
    slow = MaskGenerator(model, **kwargs).generate(image)  # type: ignore[arg-type]
    assert len(fast) == len(slow) > 0
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a["segmentation"], b["segmentation"])
        assert a["predicted_iou"] == b["predicted_iou"]


def test_folded_projections_match_the_reference_order(model: SAM2Model) -> None:
    g = torch.Generator().manual_seed(0)
    side = model.image_size // 16
    embed = torch.randn(1, model.hidden_dim, side, side, generator=g)
    high_res = (
        torch.randn(1, model.hidden_dim // 8, 4 * side, 4 * side, generator=g),
        torch.randn(1, model.hidden_dim // 4, 2 * side, 2 * side, generator=g),
    )
    coords = torch.rand(9, 1, 2, generator=g) * model.image_size
    labels = torch.ones(9, 1, dtype=torch.int32)
    masks_in = torch.randn(9, 1, 4 * side, 4 * side, generator=g)
    with torch.inference_mode():
        for mask_input in (None, masks_in):
            ref = model.prompt_and_decode(
                embed, high_res, coords, labels, mask_input, True, repeat_image=True
            )
            tok = model.prompt_tokens(
                embed, coords, labels, mask_input, repeat_image=True, fold_projections=True
            )
            out = model.masks_from_tokens(tok, high_res, True)
            torch.testing.assert_close(out.masks, ref.masks, atol=1e-4, rtol=1e-5)
            torch.testing.assert_close(out.iou, ref.iou, atol=1e-6, rtol=1e-6)
            torch.testing.assert_close(out.tokens, ref.tokens, atol=1e-5, rtol=1e-5)


def test_no_mask_with_crops_gives_an_empty_list(model: SAM2Model, image: np.ndarray) -> None:
    # the official generator raises IndexError here
    gen = MaskGenerator(model, points_per_side=2, pred_iou_thresh=1.0, crop_n_layers=1)
    assert gen.generate(image) == []


def test_min_mask_region_area_cleans_low_res_masks(model: SAM2Model, image: np.ndarray) -> None:
    plain = MaskGenerator(model, **SMALL).generate(image)
    cleaned = MaskGenerator(model, **SMALL, min_mask_region_area=40).generate(image)
    assert len(plain) == len(cleaned)
    changed = sum(
        int((a["segmentation"] != b["segmentation"]).sum())
        for a, b in zip(plain, cleaned, strict=True)
    )
    assert changed > 0


def test_compat_signature_matches_the_official_one() -> None:
    params = inspect.signature(SAM2AutomaticMaskGenerator.__init__).parameters
    expected = {
        "points_per_side": 32, "points_per_batch": 64, "pred_iou_thresh": 0.8,
        "stability_score_thresh": 0.95, "stability_score_offset": 1.0, "mask_threshold": 0.0,
        "box_nms_thresh": 0.7, "crop_n_layers": 0, "crop_nms_thresh": 0.7,
        "crop_overlap_ratio": 512 / 1500, "crop_n_points_downscale_factor": 1,
        "point_grids": None, "min_mask_region_area": 0, "output_mode": "binary_mask",
        "use_m2m": False, "multimask_output": True,
    }  # fmt: skip
    names = list(params)
    assert names[:2] == ["self", "model"] and names[-1] == "kwargs"
    assert {k: params[k].default for k in expected} == expected
    assert callable(SAM2AutomaticMaskGenerator.from_pretrained)


def test_compat_rejects_the_short_mode_name(model: SAM2Model) -> None:
    with pytest.raises(ValueError, match="binary_mask"):
        SAM2AutomaticMaskGenerator(model, output_mode="binary")
    gen = SAM2AutomaticMaskGenerator(model, points_per_side=2, unknown_option=1)
    # a sam2r model is seen through the official SAM2Base surface, over the same parameters
    assert gen.predictor.model.sam2r is model and len(gen.point_grids[0]) == 4


@pytest.mark.parametrize("hw", [(1, 1), (2, 3)])
def test_tiny_images_with_crops(model: SAM2Model, hw: tuple[int, int]) -> None:
    # crops of a 1-pixel side are empty; the official code crashes on them
    img = np.full((*hw, 3), 100, dtype=np.uint8)
    gen = MaskGenerator(model, points_per_side=2, pred_iou_thresh=0, stability_score_thresh=0,
                        crop_n_layers=1)  # fmt: skip
    for r in gen.generate(img):
        assert r["segmentation"].shape == hw
