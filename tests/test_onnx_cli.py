"""`sam2r export onnx` and `--onnx DIR` on `sam2r image` / `sam2r video`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from sam2r.cli.main import main  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "synth_davis"


def test_export_and_run_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "exported"
    # a smaller input than the model's 256 px: the same weights rebuilt for 128 px
    assert main(["export", "onnx", "--model", "sam2r_micro", "--out", str(out),
                 "--image-size", "128"]) == 0  # fmt: skip
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["image_size"] == 128 and manifest["model"] == "sam2r_micro"
    assert "memory_attention.onnx" in capsys.readouterr().out

    img_out = tmp_path / "image"
    image = ROOT / "examples" / "shapes.png"
    args = ["image", str(image), "--point", "148,156", "--onnx", str(out), "--out", str(img_out)]
    assert main(args) == 0
    summary = json.loads((img_out / "shapes_masks.json").read_text())
    assert summary["model"] == "sam2r_micro" and summary["masks"][0]["area"] > 0

    vid_out = tmp_path / "video"
    frames = EXAMPLE / "JPEGImages" / "480p" / "val_00000"
    mask = EXAMPLE / "Annotations" / "480p" / "val_00000" / "00000.png"
    args = ["video", str(frames), "--mask", str(mask), "--onnx", str(out), "--out", str(vid_out),
            "--max-frames", "3", "--no-overlay"]  # fmt: skip
    assert main(args) == 0
    masks = json.loads((vid_out / "masks.json").read_text())
    assert [f["frame_idx"] for f in masks["frames"]] == [0, 1, 2]
    assert masks["model"] == "sam2r_micro (onnx)"
    assert all(o["area"] > 0 for o in masks["frames"][0]["objects"])


def test_onnx_option_errors(tmp_path, capsys):
    image = ROOT / "examples" / "shapes.png"
    assert main(["image", str(image), "--point", "1,1", "--onnx", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err
    assert main(["export", "onnx", "--model", "sam2r_micro", "--out", str(tmp_path),
                 "--image-size", "100"]) == 2  # fmt: skip
    assert "multiple of 32" in capsys.readouterr().err
    # the options that choose a torch model mean nothing with --onnx: refused, not ignored
    frames = EXAMPLE / "JPEGImages" / "480p" / "val_00000"
    for args in (
        ["image", str(image), "--point", "1,1", "--checkpoint", "x.pt"],
        ["video", str(frames), "--point", "0:1:10,10", "--model", "sam2.1-tiny"],
        ["video", str(frames), "--point", "0:1:10,10", "--precision", "bf16"],
    ):
        assert main([*args, "--onnx", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert "choose or place a torch model" in err and args[-2] in err, err


def test_export_without_fused_attention(tmp_path):
    import onnx

    out = tmp_path / "plain"
    assert main(["export", "onnx", "--model", "sam2r_micro", "--out", str(out),
                 "--no-fused-attention"]) == 0  # fmt: skip
    assert json.loads((out / "manifest.json").read_text())["fused_attention"] is False
    for name in ("image_encoder", "memory_attention"):
        domains = {n.domain for n in onnx.load(str(out / f"{name}.onnx")).graph.node}
        assert "com.microsoft" not in domains, name
