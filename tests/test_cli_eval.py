"""The `sam2r eval` command end to end on a tiny DAVIS-style dataset, and its errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2r.cli.main import main
from sam2r.io.masks import write_palette_png

H, W = 32, 48


def label_map(*boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    """Object ids (H, W) from (id, top, left, height, width) boxes."""
    out = np.zeros((H, W), np.uint8)
    for k, top, left, h, w in boxes:
        out[top : top + h, left : left + w] = k
    return out


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, Path]:
    """DAVIS root with sequences `cat` (2 objects) and `dog` (1), 5 frames each, and
    predictions: `cat` perfect, `dog` half the object on every frame."""
    gt, pred = tmp_path / "DAVIS", tmp_path / "pred"
    ann = gt / "Annotations" / "480p"
    for i in range(5):
        cat = label_map((1, 2, 2, 8, 8), (2, 20, 30, 8, 10))
        write_palette_png(ann / "cat" / f"{i:05d}.png", cat)
        write_palette_png(pred / "cat" / f"{i:05d}.png", cat)
        write_palette_png(ann / "dog" / f"{i:05d}.png", label_map((1, 4, 4, 10, 20)))
        write_palette_png(pred / "dog" / f"{i:05d}.png", label_map((1, 4, 4, 10, 10)))
    return gt, pred


def test_eval_prints_a_table_and_writes_both_csv_files(
    dataset: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    gt, pred = dataset
    out = tmp_path / "out"
    rc = main(["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "J&F-Mean" in printed and "cat_2" in printed and "dog_1" in printed
    rows = (out / "per-object_results.csv").read_text().splitlines()
    assert rows[0] == "Sequence,J-Mean,F-Mean"
    assert [r.split(",")[0] for r in rows[1:]] == ["cat_1", "cat_2", "dog_1"]
    assert rows[3].startswith("dog_1,0.500,")  # half the object: J = 100 / 200
    header, values = (out / "global_results.csv").read_text().splitlines()
    assert header == "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay"
    assert values.split(",")[1] == f"{(1 + 1 + 0.5) / 3:.3f}"
    assert values.split(",")[2] == f"{2 / 3:.3f}"  # J = 0.5 is not above 0.5


@pytest.mark.parametrize("convention", ["davis", "sav"])
def test_eval_subset_and_convention(
    dataset: tuple[Path, Path], tmp_path: Path, convention: str
) -> None:
    gt, pred = dataset
    out = tmp_path / "out"
    argv = ["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(out), "--quiet"]
    assert main([*argv, "--sequences", "dog", "--convention", convention]) == 0
    # F, tolerance 1 px: the rings (40 and 60 boundary pixels) share 33 matched pixels each
    # way (all but the far side and its corners), so F = 2 * 33 / (40 + 60)
    rows = (out / "per-object_results.csv").read_text().splitlines()
    assert rows == ["Sequence,J-Mean,F-Mean", "dog_1,0.500,0.660"]


@pytest.mark.parametrize(
    "change, extra, message",
    [
        ("drop_pred_seq", [], "no prediction for sequence 'dog'"),
        ("none", ["--sequences", "cat,bird"], "bird"),
        ("none", ["--sequences", ","], "--sequences"),
        ("no_gt", [], "does not exist"),
        ("resize_pred", [], "size of the annotations"),
    ],
)
def test_eval_errors_are_one_line_messages(
    dataset: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
    extra: list[str],
    message: str,
) -> None:
    gt, pred = dataset
    if change == "drop_pred_seq":
        for p in (pred / "dog").iterdir():
            p.unlink()
        (pred / "dog").rmdir()
    if change == "no_gt":
        gt = tmp_path / "nowhere"
    if change == "resize_pred":
        write_palette_png(pred / "cat" / "00002.png", np.zeros((H, W + 2), np.uint8))
    argv = ["eval", "--gt", str(gt), "--pred", str(pred), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv + extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam2r eval: ") and message in err
    assert not (tmp_path / "o" / "global_results.csv").exists()
