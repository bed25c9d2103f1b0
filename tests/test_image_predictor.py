"""ImagePredictor behaviour on the micro model: input types, prompt mixes, post-processing, and a
table of bad inputs — each a clear error that leaves the predictor usable."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from PIL import Image

from sam2r import ImagePredictor, SAM2Model


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    return np.array(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))


@pytest.fixture
def pred(model: SAM2Model, image: np.ndarray) -> ImagePredictor:
    p = ImagePredictor(model)
    p.set_image(image)
    return p


def test_image_types_give_the_same_embedding(model: SAM2Model, image: np.ndarray) -> None:
    p = ImagePredictor(model)
    p.set_image(Image.fromarray(image))
    from_pil = p.get_image_embedding().clone()
    p.set_image(image)
    assert torch.equal(from_pil, p.get_image_embedding())
    rgba = np.concatenate([image, np.full(image.shape[:2] + (1,), 7, np.uint8)], axis=2)
    p.set_image(rgba)
    assert torch.equal(from_pil, p.get_image_embedding())
    gray = image[:, :, 1]
    p.set_image(gray)
    g = p.get_image_embedding().clone()
    p.set_image(np.repeat(gray[:, :, None], 3, axis=2))
    assert torch.equal(g, p.get_image_embedding())


def test_prompt_mixes_and_shapes(pred: ImagePredictor) -> None:
    out = pred.predict([[148, 156]], [1])
    assert out.masks.shape == (3, 480, 640) and out.masks.dtype == np.bool_
    assert out.scores.shape == (3,) and out.low_res_logits.shape == (3, 64, 64)
    assert out.best().shape == (480, 640)
    boxes = pred.predict(box=[[10, 10, 100, 100], [200, 200, 400, 300]], multimask_output=False)
    assert boxes.masks.shape == (2, 1, 480, 640) and boxes.best().shape == (2, 480, 640)
    shared = pred.predict([[50, 50]], [1], box=[[10, 10, 100, 100], [20, 20, 90, 90]])
    assert shared.masks.shape == (2, 3, 480, 640)
    refined = pred.predict(
        [[148, 156]], [1], mask_input=out.low_res_logits[:1], multimask_output=False
    )
    assert refined.masks.shape == (1, 480, 640)
    norm = pred.predict([[148 / 640, 156 / 480]], [1], normalize_coords=False, return_logits=True)
    logits = pred.predict([[148, 156]], [1], return_logits=True)
    assert np.allclose(norm.masks, logits.masks, atol=1e-5)
    assert np.array_equal(logits.masks > 0, out.masks)


def test_hole_filling_only_adds_foreground(model: SAM2Model, image: np.ndarray) -> None:
    plain = ImagePredictor(model)
    filled = ImagePredictor(model, max_hole_area=50)
    cleaned = ImagePredictor(model, max_sprinkle_area=50)
    for p in (plain, filled, cleaned):
        p.set_image(image)
    a = plain.predict([[455, 300]], [1], multimask_output=False).masks
    b = filled.predict([[455, 300]], [1], multimask_output=False).masks
    c = cleaned.predict([[455, 300]], [1], multimask_output=False).masks
    assert (b >= a).all() and (c <= a).all()


BAD_IMAGES = [
    (np.zeros((10, 10, 3), np.float32), ValueError, "uint8"),
    (torch.zeros(3, 10, 10, dtype=torch.uint8), TypeError, "Tensor"),
    (np.zeros((3, 10, 10), np.uint8), ValueError, "channels-first"),
    (np.zeros((0, 10, 3), np.uint8), ValueError, "non-empty"),
    ("image.png", TypeError, "str"),
]


@pytest.mark.parametrize(("bad", "err", "msg"), BAD_IMAGES)
def test_bad_images(pred: ImagePredictor, bad: object, err: type, msg: str) -> None:
    before = pred.get_image_embedding().clone()
    with pytest.raises(err, match=msg):
        pred.set_image(bad)
    # a failed set_image keeps nothing half-done; the old image is gone only on success
    assert pred.is_image_set and torch.equal(before, pred.get_image_embedding())


BAD_PROMPTS = [
    (dict(point_coords=[[1, 1]]), "point_labels"),
    (dict(point_labels=[1]), "point_coords"),
    (dict(point_coords=[[1, 1], [2, 2]], point_labels=[1]), "one label per point"),
    (dict(point_coords=[[1, 1, 1]], point_labels=[1]), r"\(P, 2\)"),
    (dict(point_coords=[[1, 1]], point_labels=[5]), "foreground"),
    (dict(point_coords=[[700, 10]], point_labels=[1]), "outside the 640x480 image"),
    (
        dict(point_coords=[[0.5, 2.0]], point_labels=[1], normalize_coords=False),
        r"outside \[0, 1\]",
    ),
    (dict(point_coords=[[np.nan, 1]], point_labels=[1]), "NaN"),
    (dict(box=[1, 2, 3]), r"\(4,\)"),
    (dict(box=[100, 10, 50, 60]), "x0 <= x1"),
    (
        dict(box=[[1, 1, 9, 9]] * 2, point_coords=[[[1, 1]]] * 3, point_labels=[[1]] * 3),
        "point sets",
    ),
    (dict(mask_input=np.zeros((1, 256, 256))), r"\(1, 64, 64\)"),
    (dict(point_coords="a,b", point_labels=[1]), "numbers"),
]


@pytest.mark.parametrize(("kwargs", "msg"), BAD_PROMPTS)
def test_bad_prompts(pred: ImagePredictor, kwargs: dict, msg: str) -> None:
    with pytest.raises((ValueError, TypeError), match=msg):
        pred.predict(**kwargs)
    assert pred.predict([[148, 156]], [1]).masks.shape == (3, 480, 640)  # still usable


def test_state_errors(model: SAM2Model, image: np.ndarray) -> None:
    p = ImagePredictor(model)
    with pytest.raises(RuntimeError, match="set_image"):
        p.predict([[1, 1]], [1])
    with pytest.raises(RuntimeError, match="set_image"):
        p.get_image_embedding()
    p.set_image_batch([image, image])
    with pytest.raises(RuntimeError, match="predict_batch"):
        p.predict([[1, 1]], [1])
    with pytest.raises(ValueError, match="2 images"):
        p.predict_batch([[[1, 1]]], [[1]])
    with pytest.raises(TypeError, match="list of images"):
        p.set_image_batch(image)
    with pytest.raises(ValueError, match="max_hole_area"):
        ImagePredictor(model, max_hole_area=-1)
    with pytest.raises(TypeError, match="SAM2Model"):
        ImagePredictor("model")  # type: ignore[arg-type]
    p.reset()
    assert not p.is_image_set
