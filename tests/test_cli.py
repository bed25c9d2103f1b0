"""The `sam2r image` command: outputs on the micro model, and actionable errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES
from PIL import Image

from sam2r import build_model, config_from_yaml
from sam2r.cli.main import main
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
IMAGE = str(Path(__file__).parents[1] / "examples" / "shapes.png")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path)
    return str(path)


def test_image_command_writes_masks_overlay_and_json(ckpt: str, tmp_path: Path) -> None:
    rc = main([
        "image", IMAGE, "--box", "62,70,234,242", "--box", "350,94,578,266",
        "--checkpoint", ckpt, "--config", MICRO, "--out", str(tmp_path),
    ])  # fmt: skip
    assert rc == 0
    summary = json.loads((tmp_path / "shapes_masks.json").read_text())
    assert [m["object"] for m in summary["masks"]] == [1, 2]
    for i in (1, 2):
        mask = np.array(Image.open(tmp_path / f"shapes_mask{i}.png"))
        assert mask.shape == (480, 640) and set(np.unique(mask)) <= {0, 255}
        assert int((mask > 0).sum()) == summary["masks"][i - 1]["area"]
    assert np.array(Image.open(tmp_path / "shapes_overlay.png")).shape == (480, 640, 3)


def test_offline_without_cache_says_how_to_pass_a_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    out = str(tmp_path / "out")
    rc = main(["image", IMAGE, "--point", "148,156", "--model", "sam2.1-tiny", "--out", out])
    assert rc == 2
    assert "--checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--point", "1;2"], "comma-separated"),
        (["--point", "1,2,3,4"], "X,Y"),
        ([], "at least one"),
        (["--point", "1,1", "--checkpoint", "/nonexistent.pt"], "no such file"),
        (["--point", "1,1", "--config", MICRO], "needs --checkpoint"),
    ],
)
def test_bad_arguments(args: list[str], msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", IMAGE, *args]) == 2
    assert msg in capsys.readouterr().err


def test_missing_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["image", "/nonexistent.png", "--point", "1,1"]) == 2
    assert "no such image" in capsys.readouterr().err
