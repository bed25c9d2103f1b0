"""The bundled `sam2r_micro` (trained here on the synthetic data engine): it ships in the
package, loads offline, is the command line's default, and it segments and tracks held-out
synthetic data (thresholds well below the figures measured by bench/eval_model.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

import sam2r
from sam2r.build import bundled_checkpoint, read_state_dict
from sam2r.cli.main import main

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "synth_davis"


@pytest.fixture(scope="module")
def bundled() -> sam2r.SAM2Model:
    return sam2r.from_pretrained("sam2r_micro")


def test_bundled_checkpoint_is_small_official_format_and_loads_strictly(
    bundled: sam2r.SAM2Model,
) -> None:
    path = bundled_checkpoint()
    assert path.stat().st_size <= 10 * 2**20
    state = read_state_dict(path)
    assert set(state) == set(bundled.state_dict())
    assert sam2r.detect_variant(state) == "sam2r_micro"
    for name in ("sam2r-micro", "sam2r_micro", "sam2r"):
        assert sam2r.get_config(name).name == "sam2r_micro"


def test_bundled_model_segments_held_out_images_from_one_click(
    bundled: sam2r.SAM2Model,
) -> None:
    from sam2r.data.synthetic import SynthConfig, make_image, split_seed

    predictor = sam2r.ImagePredictor(bundled)
    ious = []
    for i in range(4):
        sample = make_image(split_seed(4242, "test-image", i), SynthConfig())
        predictor.set_image(sample.image)
        for obj in np.unique(sample.masks)[1:]:
            gt = sample.masks == obj
            ys, xs = np.nonzero(gt)
            k = np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2)  # a pixel near the centre
            out = predictor.predict(point_coords=[[xs[k], ys[k]]], point_labels=[1])
            m = out.best()
            ious.append((m & gt).sum() / max((m | gt).sum(), 1))
    assert np.mean(ious) > 0.5, ious


def test_default_model_offline_tracks_the_example_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    pred, scores = tmp_path / "pred", tmp_path / "scores"
    assert main(["vos-infer", "--data", str(EXAMPLE), "--out", str(pred), "--quiet"]) == 0
    assert main(["eval", "--gt", str(EXAMPLE), "--pred", str(pred), "--out", str(scores)]) == 0
    with open(scores / "global_results.csv") as f:
        row = next(csv.DictReader(f))
    assert float(row["J&F-Mean"]) > 0.6, row


def test_main_job_runs_offline_with_the_default_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    image = str(REPO / "examples" / "shapes.png")
    assert main(["image", image, "--point", "148,156", "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "shapes_masks.json").read_text())
    assert summary["model"] == "sam2r_micro" and summary["masks"][0]["area"] > 0
