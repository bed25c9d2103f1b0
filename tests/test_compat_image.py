"""`sam2r.compat` image half: official builder signature, override strings, official return
values, and a script written for the official package running with only its import changed.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, load_json
from PIL import Image

from sam2r import build_model, config_from_yaml
from sam2r.compat import SAM2ImagePredictor, build_sam2, build_sam2_hf
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")


@pytest.fixture(scope="module")
def micro_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path, seed=0)
    return str(path)


def _image() -> np.ndarray:
    return np.array(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))


def test_official_script_runs_unchanged(micro_ckpt: str) -> None:
    # the official README's image example, with `from sam2...` replaced by `from sam2r.compat`
    checkpoint, model_cfg = micro_ckpt, MICRO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CUDA absent: the builder and autocast warn
        predictor = SAM2ImagePredictor(build_sam2(model_cfg, checkpoint))
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            predictor.set_image(_image())
            masks, scores, logits = predictor.predict(
                point_coords=np.array([[148, 156]]), point_labels=np.array([1])
            )
    assert masks.dtype == np.float32 and masks.shape == (3, 480, 640)
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert scores.shape == (3,) and logits.shape == (3, 64, 64)
    ref = load_json("micro/image_index.json")["steps"][1]
    assert ref["name"] == "point1_multi"
    assert np.abs(scores - np.array(ref["iou_predictions"])).max() < 1e-5


def test_predict_batch_and_private_predict(micro_ckpt: str) -> None:
    predictor = SAM2ImagePredictor(build_sam2(MICRO, micro_ckpt, device="cpu"))
    img = _image()
    predictor.set_image_batch([img, img[:240, :320]])
    masks, ious, lows = predictor.predict_batch(
        [np.array([[100, 100]]), None],
        [np.array([1]), None],
        [None, np.array([10, 10, 200, 200])],
        multimask_output=False,
    )
    assert masks[0].shape == (1, 480, 640) and masks[1].shape == (1, 240, 320)
    assert ious[1].shape == (1,) and lows[0].shape == (1, 64, 64)
    m, iou, low = predictor._predict(
        torch.tensor([[[50.0, 60.0]]]), torch.tensor([[1]]), img_idx=0, multimask_output=True
    )
    assert m.shape == (1, 3, 480, 640) and iou.shape == (1, 3)
    assert predictor._features["image_embed"].shape == (2, 64, 16, 16)


def test_postprocessing_and_overrides_reach_the_model(micro_ckpt: str) -> None:
    on = build_sam2(MICRO, micro_ckpt, device="cpu")
    off = build_sam2(MICRO, micro_ckpt, device="cpu", apply_postprocessing=False)
    assert on.sam_mask_decoder.dynamic_multimask_via_stability
    assert not off.sam_mask_decoder.dynamic_multimask_via_stability
    tuned = build_sam2(
        MICRO,
        micro_ckpt,
        device="cpu",
        hydra_overrides_extra=[
            "++model.sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh=0.5"
        ],
    )
    assert tuned.sam_mask_decoder.dynamic_multimask_stability_thresh == 0.5
    assert build_sam2(MICRO, micro_ckpt, device="cpu", mode="train").training


def test_official_config_names_build_random_models() -> None:
    model = build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu")
    assert model.cfg.name == "sam2.1_hiera_t" and not model.training
    with pytest.raises(ValueError, match="mode"):
        build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", None, device="cpu", mode="test")


def test_wrong_checkpoint_for_config_is_refused(micro_ckpt: str) -> None:
    with pytest.raises(ValueError, match="micro|sam2|missing|unexpected|shape"):
        build_sam2("configs/sam2/sam2_hiera_t.yaml", micro_ckpt, device="cpu")


def test_predict_before_set_image_is_an_error(micro_ckpt: str) -> None:
    predictor = SAM2ImagePredictor(build_sam2(MICRO, micro_ckpt, device="cpu"))
    with pytest.raises(RuntimeError, match="set_image"):
        predictor.predict(point_coords=np.array([[1, 1]]), point_labels=np.array([1]))
    assert Path(MICRO).exists()


def test_no_postprocessing_keeps_what_the_yaml_says(micro_ckpt: str, tmp_path: Path) -> None:
    # the official builder adds nothing without post-processing: the YAML's own setting stays
    doc = load_json("configs/micro.json")
    doc["model"]["sam_mask_decoder_extra_args"] = {"dynamic_multimask_via_stability": True}
    path = tmp_path / "micro_dynamic.yaml"
    path.write_text(json.dumps(doc))
    model = build_sam2(str(path), micro_ckpt, device="cpu", apply_postprocessing=False)
    assert model.sam_mask_decoder.dynamic_multimask_via_stability


def test_build_sam2_hf_passes_options_to_build_sam2(
    micro_ckpt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2r.build
    import sam2r.compat.builder as build_sam

    calls = []
    monkeypatch.setattr(
        sam2r.build, "download_checkpoint", lambda name: calls.append(name) or "x.pt"
    )
    monkeypatch.setattr(build_sam, "_build", lambda *a: a)
    monkeypatch.setattr(build_sam, "SAM2Base", lambda a: a)  # what _build returned, unwrapped
    cfg, ckpt, device, mode, overrides = build_sam2_hf(
        "facebook/sam2.1-hiera-tiny",
        device="cpu",
        hydra_overrides_extra=["++model.fill_hole_area=0"],
    )
    assert calls == ["facebook/sam2.1-hiera-tiny"] and (cfg, ckpt) == ("sam2.1_hiera_t", "x.pt")
    assert device == "cpu" and mode == "eval" and overrides[-1] == "++model.fill_hole_area=0"


def test_the_official_module_name_holds_the_four_builders() -> None:
    # `from sam2.build_sam import ...` becomes `from sam2r.compat.build_sam import ...`
    import sam2r.compat
    from sam2r.compat import build_sam

    for name in (
        "build_sam2",
        "build_sam2_hf",
        "build_sam2_video_predictor",
        "build_sam2_video_predictor_hf",
    ):
        assert getattr(build_sam, name) is getattr(sam2r.compat, name)
