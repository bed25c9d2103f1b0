"""`python -m sam2r.compat SCRIPT.py`: an unmodified script written for the official `sam2`
runs on sam2r (its `import sam2` resolving to `sam2r.compat` for that run only), gives the
official numbers, and is refused where the real `sam2` is already imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, load_json

from sam2r import build_model, config_from_yaml
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
SCRIPT = """
import sys
import numpy as np
from PIL import Image
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor
from sam2.modeling.sam2_base import SAM2Base
from sam2.utils.amg import rle_to_mask

predictor = SAM2ImagePredictor(build_sam2(sys.argv[1], sys.argv[2], device="cpu"))
predictor.set_image(np.array(Image.open(sys.argv[3]).convert("RGB")))
masks, scores, _ = predictor.predict(np.array([[148, 156]]), np.array([1]))
print("SCORES", *scores.tolist(), isinstance(predictor.model, SAM2Base))
try:
    import sam2.modeling.backbones.hieradet
except ModuleNotFoundError as e:
    print("MISSING", e)
"""


def test_an_unmodified_official_script_runs(tmp_path: Path) -> None:
    ckpt = tmp_path / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), ckpt, seed=0)
    script = tmp_path / "official_example.py"
    script.write_text(SCRIPT)
    image = str(FIXTURES / "inputs" / "image_main.png")
    run = subprocess.run(
        [sys.executable, "-m", "sam2r.compat", str(script), MICRO, str(ckpt), image],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    *scores, is_base = lines["SCORES"].split()
    ref = load_json("micro/image_index.json")["steps"][1]
    assert ref["name"] == "point1_multi" and is_base == "True"
    assert np.abs(np.array(scores, float) - np.array(ref["iou_predictions"])).max() < 1e-5
    assert "sam2.modeling.backbones" in lines["MISSING"] and "covered:" in lines["MISSING"]


def test_refused_when_the_real_sam2_is_imported() -> None:
    code = (
        "import sys, types; sys.modules['sam2'] = types.ModuleType('sam2'); "
        "from sam2r.compat.run import main; main(['script.py'])"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1 and "already imported" in run.stderr


def test_usage_without_a_script() -> None:
    from sam2r.compat.run import main

    with pytest.raises(SystemExit) as e:
        main([])
    assert e.value.code == 2
