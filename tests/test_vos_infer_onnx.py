"""`sam2r vos-infer --onnx DIR`: the bundled micro model exported once, run over the first
frames of `examples/synth_davis` (2 sequences, 5 objects) on ONNX Runtime and on torch with
the same weights; the label maps must agree object by object (IoU, not bit-equality: the two
runtimes round differently and errors compound over propagated frames), in the official
memory and an opt-in mode, and with the per-object passes of `--track-later-objects`. Also
the options that make no sense with `--onnx` are refused, and a 2-process torchrun launch
(slow) gives the single-process masks.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from onnx_helpers import exported, iou  # noqa: E402

from sam2r.cli.main import main  # noqa: E402
from sam2r.io.masks import read_palette_png  # noqa: E402

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "synth_davis"
SEQS = ("val_00000", "val_00001")
FRAMES = 8  # of each sequence's 16
IOU_MIN = 0.99
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example dataset cut to its first FRAMES frames (and their annotations)."""
    root = tmp_path_factory.mktemp("synth_davis")
    for kind, ext in (("JPEGImages", "jpg"), ("Annotations", "png")):
        for seq in SEQS:
            (root / kind / "480p" / seq).mkdir(parents=True)
            for t in range(FRAMES):
                name = f"480p/{seq}/{t:05d}.{ext}"
                shutil.copy(EXAMPLE / kind / name, root / kind / name)
    (root / "ImageSets" / "2017").mkdir(parents=True)
    (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(SEQS) + "\n")
    return root


@pytest.fixture(scope="module")
def onnx_dir() -> Path:
    return exported("bundled")  # sam2r_micro, the default model of the torch run


def _vos(data: Path, out: Path, *extra: str) -> int:
    return main(["vos-infer", "--data", str(data), "--out", str(out), "--quiet", *extra])


def _tree(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): read_palette_png(p) for p in sorted(out.rglob("*.png"))}


@pytest.fixture(scope="module")
def runs(data: Path, onnx_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    """`run(onnx, *options)`: the output tree of one vos-infer run (each run once per module)."""
    done: dict[tuple[str, ...], dict[str, np.ndarray]] = {}

    def run(onnx: bool, *extra: str) -> dict[str, np.ndarray]:
        key = (str(onnx), *extra)
        if key not in done:
            out = tmp_path_factory.mktemp("onnx" if onnx else "torch")
            more = ("--onnx", str(onnx_dir)) if onnx else ()
            threads = torch.get_num_threads()
            torch.set_num_threads(1)  # torch, and ONNX Runtime following it: quick when shared
            try:
                assert _vos(data, out, *more, *extra) == 0
            finally:
                torch.set_num_threads(threads)
            done[key] = _tree(out)
        return done[key]

    return run


def _worst_iou(got: dict[str, np.ndarray], ref: dict[str, np.ndarray]) -> tuple[float, int]:
    """(lowest IoU of one object on one frame, object-frames where the reference has the
    object) over two output trees with the same files."""
    assert sorted(got) == sorted(ref)
    worst, present = 1.0, 0
    for name, want in ref.items():
        have = got[name]
        assert have.shape == want.shape and have.dtype == np.uint8, name
        for obj in sorted((set(np.unique(want).tolist()) | set(np.unique(have).tolist())) - {0}):
            worst = min(worst, iou(have == obj, want == obj))
            present += bool((want == obj).any())
    return worst, present


@pytest.mark.parametrize(
    "extra",
    [
        [],
        ["--memory", "motion"],
        ["--track-later-objects", "--no-non-overlap", "--sequences", "val_00001"],
    ],
    ids=["official", "motion", "later-objects-overlap"],
)
def test_onnx_masks_agree_with_torch(runs, extra: list[str], capsys) -> None:
    ref, got = runs(False, *extra), runs(True, *extra)
    lines = capsys.readouterr().out.splitlines()
    seqs = 1 if "--sequences" in extra else len(SEQS)
    summary = f"vos-infer: {seqs} sequence(s), {seqs * FRAMES} frame(s)"
    assert len(lines) == 2 and all(line.startswith(summary) for line in lines), lines
    assert len(ref) == seqs * FRAMES
    if extra[:2] == ["--memory", "motion"]:  # the mode is engaged: its masks differ somewhere
        official = runs(False)
        assert any(not np.array_equal(ref[k], official[k]) for k in ref)
    worst, present = _worst_iou(got, ref)
    print(f"{extra}: worst per-object IoU onnx vs torch {worst:.6f} over {present} object-frames")
    assert present >= seqs * FRAMES * 2  # the objects are tracked, not lost: IoU means something
    assert worst >= IOU_MIN, worst


@pytest.mark.parametrize(
    "extra, named",
    [
        (["--checkpoint", "sam2.1_hiera_tiny.pt"], "--checkpoint"),
        (["--model", "sam2r_micro"], "--model"),
        (["--config", "micro.yaml"], "--config"),
        (["--device", "cuda"], "--device cuda"),
        (["--precision", "bf16"], "--precision bf16"),
    ],
)
def test_torch_model_options_are_refused(
    data: Path, onnx_dir: Path, tmp_path: Path, extra: list[str], named: str,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    assert _vos(data, tmp_path, "--onnx", str(onnx_dir), *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam2r vos-infer: --onnx") and named in err, err
    assert not any(tmp_path.iterdir())  # refused before anything ran


def test_not_an_export_is_an_error(data: Path, tmp_path: Path, capsys) -> None:
    assert _vos(data, tmp_path / "out", "--onnx", str(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sam2r vos-infer: --onnx {tmp_path}:"), err


@pytest.mark.slow
def test_two_process_torchrun_equals_single_process(
    data: Path, onnx_dir: Path, runs, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    for v in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(v, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "sam2r.cli", "vos-infer", "--data", str(data), "--out", str(tmp_path / "two"),
        "--onnx", str(onnx_dir), "--quiet",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(SEQS)} sequence(s), {len(SEQS) * FRAMES} frame(s)" in proc.stdout
    assert "on 2 processes" in proc.stdout
    got, ref = _tree(tmp_path / "two"), runs(True)
    assert sorted(got) == sorted(ref)
    for k in ref:  # the same graphs on one thread in both: the same numbers
        assert np.array_equal(got[k], ref[k]), k
