"""The transformers adapter, end to end, with tiny random OWLv2 / OWL-ViT / Grounding DINO models.

No download: each model is built from a tiny config with random weights, its processor from a
tokenizer whose vocabulary is written on the spot (`sam2r.text.tiny_detectors`), and both are
saved to a folder that `load_detector` reads as a user's offline copy would be read. The
decoding (scores, labels, box scaling) is checked on fixed outputs, where the answer is known.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

transformers = pytest.importorskip("transformers")

import sam2r  # noqa: E402
from sam2r.predictor.video import VideoPredictor  # noqa: E402
from sam2r.text import TextPredictor, TextTracker, TransformersDetector, load_detector  # noqa: E402
from sam2r.text.tiny_detectors import KINDS, save_tiny_detector  # noqa: E402


@pytest.fixture(scope="module")
def tiny_folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A saved tiny model + processor per family."""
    return {kind: save_tiny_detector(kind, tmp_path_factory.mktemp(kind)) for kind in KINDS}


@pytest.fixture(scope="module")
def model() -> sam2r.SAM2Model:
    return sam2r.from_pretrained("sam2r_micro")


IMAGE = np.random.default_rng(0).integers(0, 256, (48, 80, 3), dtype=np.uint8)  # H 48, W 80


@pytest.mark.filterwarnings("ignore:dropped")  # OWLv2's boxes on the padding below the image
@pytest.mark.parametrize("kind", KINDS)
def test_tiny_models_end_to_end(kind: str, tiny_folders: dict[str, Path], model: Any) -> None:
    det = load_detector(tiny_folders[kind])  # a local folder: read offline
    assert isinstance(det, TransformersDetector) and det.kind == kind
    raw = det(IMAGE, ["red car", "person"])
    assert len(raw) > 0 and raw.boxes.shape == (len(raw), 4)
    assert set(raw.labels) <= {"red car", "person"}
    assert ((raw.scores >= 0) & (raw.scores <= 1)).all()
    # the image pipeline and the tracker, with every box kept (random weights score ~0.5)
    pred = TextPredictor(model, det, box_threshold=0.0, max_detections=3).predict(
        IMAGE, "red car. person"
    )
    assert len(pred) == 3 and pred.masks.shape == (3, 48, 80)
    assert (pred.boxes[:, 2:] <= [80, 48]).all() and (pred.boxes >= 0).all()  # clipped
    vp = VideoPredictor(model)
    tracker = TextTracker(vp, det, box_threshold=0.0, max_objects=2)
    results = list(tracker.track(vp.init_session([IMAGE, IMAGE[::-1].copy()]), "person"))
    assert [r.frame_idx for r in results] == [0, 1]
    assert 1 <= len(results[0].obj_ids) <= 2 and set(tracker.labels.values()) == {"person"}


class _Fixed(torch.nn.Module):
    """Stands in for a detector model: returns fixed logits and boxes."""

    def __init__(self, config: Any, logits: torch.Tensor, boxes: torch.Tensor) -> None:
        super().__init__()
        self.config = config
        self.p = torch.nn.Parameter(torch.zeros(1))
        self.logits, self.boxes = logits, boxes

    def forward(self, **inputs: Any) -> Any:
        return SimpleNamespace(logits=self.logits[None], pred_boxes=self.boxes[None])


# one box, normalised cx, cy, w, h = 0.5, 0.5, 0.5, 0.5; the image is 80 x 48 (W x H)
CENTRE = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.1, 0.1]])


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("owlv2", [20, 20, 60, 60]),  # relative to the 80 x 80 square padded at the bottom right
        ("owlvit", [20, 12, 60, 36]),  # relative to the (stretched) image
    ],
)
def test_owl_decoding(kind: str, expected: list[float], tiny_folders: dict[str, Path]) -> None:
    det = load_detector(tiny_folders[kind])
    logits = torch.tensor([[-1.0, 2.0], [0.5, -3.0]])  # (boxes, queries)
    det.model = _Fixed(det.model.config, logits, CENTRE)
    out = det(IMAGE, ["cat", "red car"])
    assert out.labels == ["red car", "cat"]
    assert out.scores.tolist() == pytest.approx(torch.sigmoid(torch.tensor([2.0, 0.5])).tolist())
    assert out.boxes[0].tolist() == pytest.approx(expected)


def test_grounding_dino_decoding(tiny_folders: dict[str, Path]) -> None:
    det = load_detector(tiny_folders["grounding-dino"])
    # caption "red car. cat." -> [CLS] red car . cat . [SEP]
    ids = det.processor(images=IMAGE, text="red car. cat.", return_tensors="pt")["input_ids"][0]
    assert det.processor.tokenizer.convert_ids_to_tokens(ids.tolist()) == [
        "[CLS]", "red", "car", ".", "cat", ".", "[SEP]",
    ]  # fmt: skip
    logits = torch.full((2, 32), -5.0)
    logits[0, 2] = 3.0  # box 0: 'car', inside the query 'red car'
    logits[1, 4] = 1.0  # box 1: 'cat' ...
    logits[1, 3] = logits[1, 6] = 4.0  # ... and a separator and [SEP], which name no query
    det.model = _Fixed(det.model.config, logits, CENTRE)
    out = det(IMAGE, ["red car", "cat"])
    assert out.labels == ["red car", "cat"]
    assert out.scores.tolist() == pytest.approx(torch.sigmoid(torch.tensor([3.0, 1.0])).tolist())
    assert out.boxes[0].tolist() == pytest.approx([20, 12, 60, 36])
    assert out.boxes[1].tolist() == pytest.approx([16, 9.6, 24, 14.4])


@pytest.mark.filterwarnings("ignore:dropped")
def test_cli_reads_a_local_detector(tiny_folders: dict[str, Path], tmp_path: Path) -> None:
    from sam2r.cli.main import main

    image = Path(__file__).parents[1] / "examples" / "shapes.png"
    argv = ["image", str(image), "--text", "person. red car", "--out", str(tmp_path)]
    assert main([*argv, "--detector", str(tiny_folders["owlv2"]), "--box-threshold", "0"]) == 0
    summary = json.loads((tmp_path / "shapes_masks.json").read_text())
    assert summary["masks"] and {m["label"] for m in summary["masks"]} <= {"person", "red car"}
    frames = Path(__file__).parents[1] / "examples/synth_davis/JPEGImages/480p/val_00000"
    argv = ["video", str(frames), "--text", "person", "--detect-every", "2", "--max-frames", "3"]
    argv += ["--detector", str(tiny_folders["grounding-dino"]), "--box-threshold", "0"]
    assert main([*argv, "--no-overlay", "--out", str(tmp_path / "video")]) == 0
    summary = json.loads((tmp_path / "video" / "masks.json").read_text())
    assert len(summary["frames"]) == 3 and summary["objects"]
    assert {o["label"] for o in summary["objects"].values()} == {"person"}


def test_missing_extra_and_unreachable_models(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'sam2r\[text\]'"):
        load_detector("IDEA-Research/grounding-dino-tiny")
    monkeypatch.undo()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="(?s)could not load the detector.*save_pretrained"):
        load_detector("IDEA-Research/grounding-dino-tiny", local_files_only=True)
    with pytest.raises(RuntimeError, match="could not load the detector from the folder"):
        load_detector(tmp_path)  # an empty folder
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is a file"):
        load_detector(tmp_path / "weights.pt")


def test_unsupported_model_type() -> None:
    config = SimpleNamespace(model_type="detr")
    with pytest.raises(ValueError, match="unsupported detector type 'detr'"):
        TransformersDetector(_Fixed(config, torch.zeros(1, 1), torch.zeros(1, 4)), None)
