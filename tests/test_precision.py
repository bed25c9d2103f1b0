"""The opt-in bf16 mode: refused where it would be slower, close to float32 where it runs, and
float32 stays the default and stays exact.

The accuracy tests force bf16 with a `Precision` object (no speed check), so they run on any
CPU; on one without native bfloat16 they are merely slow.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_model

from sam2r import ImagePredictor
from sam2r.predictor import precision as prec
from sam2r.predictor.precision import Precision, resolve_precision
from sam2r.predictor.video import VideoPredictor

BF16 = Precision("bf16", "cpu")  # forced: skips the speed check
VIDEO = str(FIXTURES / "inputs" / "video")


@pytest.mark.parametrize(
    ("given", "name"),
    [("fp32", "fp32"), ("float32", "fp32"), ("FP32", "fp32"), ("bfloat16", "bf16")],
)
def test_names_and_aliases(given: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx512_bf16"})
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: 5.0)
    assert resolve_precision(given, torch.device("cpu")).name == name


@pytest.mark.parametrize("bad", ["fp16", "int8", "", None, 16])
def test_unknown_precision_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision(bad, torch.device("cpu"))  # type: ignore[arg-type]


def test_bf16_refused_without_native_bfloat16(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx2", "fma"})
    with pytest.raises(ValueError, match="no native bfloat16"):
        resolve_precision("bf16", torch.device("cpu"))


def test_bf16_refused_where_it_measures_slower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx2", "avx512_bf16"})
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: 0.4)
    with pytest.raises(ValueError, match=r"0\.40x"):
        resolve_precision("bf16", torch.device("cpu"))


@pytest.mark.skipif(
    os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() != "AVX2", reason="only under the AVX2 cap"
)
def test_bf16_refused_when_onednn_is_capped_at_avx2() -> None:
    # the real measurement, no stubs: oneDNN without AVX512_BF16/AMX emulates bfloat16
    with pytest.raises(ValueError, match="precision='bf16'"):
        resolve_precision("bf16", torch.device("cpu"))
    with pytest.raises(ValueError, match="precision='bf16'"):
        VideoPredictor(synthetic_model("micro"), precision="bf16")


def test_the_measurement_is_a_speed_ratio() -> None:
    speedup = prec.cpu_bf16_speedup()
    assert 0.01 < speedup < 100.0
    if {"avx512_bf16", "amx_bf16"} & prec.cpu_flags() and os.environ.get(
        "ONEDNN_MAX_CPU_ISA", ""
    ).upper() not in ("AVX2", "AVX512_CORE"):
        assert speedup > 1.0  # native bfloat16 beats float32


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def _track(pred: VideoPredictor) -> dict[int, torch.Tensor]:
    session = pred.init_session(VIDEO)
    pred.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    pred.add_points(session, 0, 2, box=[196, 34, 271, 106])
    return {r.frame_idx: r.masks for r in pred.propagate(session)}


def test_video_bf16_masks_agree_with_float32() -> None:
    model = synthetic_model("micro")
    fp32 = _track(VideoPredictor(model, fill_hole_area=0))
    bf16 = _track(VideoPredictor(model, fill_hole_area=0, precision=BF16))
    ious = []
    for t, masks in fp32.items():
        assert bf16[t].dtype == torch.float32 and bf16[t].shape == masks.shape
        for o in range(masks.shape[0]):
            ious.append(_iou(masks[o, 0].numpy() > 0, bf16[t][o, 0].numpy() > 0))
    assert len(ious) == 2 * len(fp32)
    assert np.mean(ious) >= 0.98, ious
    assert min(ious) >= 0.9, ious
    # and it is a different computation: not bit-identical to float32
    assert any(not torch.equal(fp32[t], bf16[t]) for t in fp32)


def test_float32_is_the_default_and_unchanged() -> None:
    model = synthetic_model("micro")
    default = _track(VideoPredictor(model, fill_hole_area=0))
    explicit = _track(VideoPredictor(model, fill_hole_area=0, precision="fp32"))
    assert all(torch.equal(default[t], explicit[t]) for t in default)
    assert VideoPredictor(model).precision.name == "fp32"
    assert ImagePredictor(model).precision.name == "fp32"


def test_image_bf16_masks_agree_with_float32() -> None:
    from PIL import Image

    model = synthetic_model("micro")
    image = np.array(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))
    outs = []
    for p in ("fp32", BF16):
        pred = ImagePredictor(model, precision=p)
        pred.set_image(image)
        outs.append(pred.predict(point_coords=[[148, 156]], point_labels=[1]))
    a, b = outs
    assert b.masks.dtype == a.masks.dtype and b.scores.dtype == np.float32
    assert b.low_res_logits.dtype == np.float32
    for i in range(a.masks.shape[0]):
        assert _iou(a.masks[i], b.masks[i]) >= 0.97
    assert np.abs(a.scores - b.scores).max() < 0.05


IMAGE = str(FIXTURES / "inputs" / "image_main.png")


def test_cli_refuses_bf16_where_it_is_slower(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    from sam2r.cli.main import main

    monkeypatch.setattr(prec, "cpu_flags", lambda: {"avx2", "fma"})
    for cmd in (["image", IMAGE, "--point", "148,156"], ["everything", IMAGE], ["video", VIDEO]):
        args = [*cmd, "--precision", "bf16", "--out", str(tmp_path / cmd[0])]
        if cmd[0] == "video":
            args += ["--point", "0:1:58,84"]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "--precision bf16" in err and "no native bfloat16" in err, err
        assert "--precision fp32" in err and "precision='" not in err, err


def test_cli_runs_bf16_where_it_pays_off(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from sam2r.cli.main import main

    monkeypatch.setattr(prec, "cpu_flags", lambda: {"amx_bf16"})
    monkeypatch.setattr(prec, "cpu_bf16_speedup", lambda: 3.0)
    out = tmp_path / "out"
    assert (
        main(["image", IMAGE, "--point", "148,156", "--precision", "bf16", "--out", str(out)]) == 0
    )
    assert (out / "image_main_mask1.png").is_file()
