"""The `sam2r everything` command on the micro model: JSON + overlay, and actionable errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from sam2r import build_model, config_from_yaml
from sam2r.cli.main import main
from sam2r.ops import rle
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
IMAGE = str(Path(__file__).parent / "fixtures" / "amg_extra" / "image_small.png")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path)
    return str(path)


def test_everything_writes_coco_json_and_overlay(
    ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main([
        "everything", IMAGE, "--points-per-side", "4", "--pred-iou-thresh", "0.3",
        "--stability-score-thresh", "0.3", "--box-nms-thresh", "1.0",
        "--checkpoint", ckpt, "--config", MICRO, "--out", str(tmp_path),
    ])  # fmt: skip
    assert rc == 0
    data = json.loads((tmp_path / "image_small_masks.json").read_text())
    assert data["image"]["height"] == 180 and data["image"]["width"] == 240
    anns = data["annotations"]
    assert len(anns) > 0 and f"found {len(anns)} mask(s)" in capsys.readouterr().out
    for a in anns:
        m = rle.decode(a["segmentation"])
        assert m.shape == (180, 240) and int(m.sum()) == a["area"]
        assert set(a) >= {"id", "bbox", "predicted_iou", "stability_score", "point_coords"}
    overlay = np.array(Image.open(tmp_path / "image_small_overlay.png"))
    assert overlay.shape == (180, 240, 3)


def test_everything_with_no_mask_says_what_to_try(
    ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main([
        "everything", IMAGE, "--points-per-side", "2",
        "--checkpoint", ckpt, "--config", MICRO, "--out", str(tmp_path),
    ])  # fmt: skip
    assert rc == 0
    assert json.loads((tmp_path / "image_small_masks.json").read_text())["annotations"] == []
    assert "--pred-iou-thresh" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--pred-iou-thresh", "2"], "pred-iou-thresh must be in [0, 1]"),
        (["--points-per-side", "0"], "points-per-side must be an int >= 1"),
    ],
)
def test_everything_bad_options(
    ckpt: str, args: list[str], msg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["everything", IMAGE, *args, "--checkpoint", ckpt, "--config", MICRO]) == 2
    assert msg in capsys.readouterr().err


def test_everything_missing_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["everything", "/nonexistent.png"]) == 2
    assert "no such image" in capsys.readouterr().err
