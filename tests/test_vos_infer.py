"""`sam2r vos-infer`: the output tree on a tiny DAVIS-style dataset, agreement with the video
predictor run by hand, the overlap rules, sharding, a real 2-process gloo run, and errors.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURES, synthetic_model
from PIL import Image

from sam2r import build_model, config_from_yaml, save_checkpoint
from sam2r.cli.common import CliError
from sam2r.cli.main import main
from sam2r.cli.vos_infer import Dist
from sam2r.eval.vos_infer import LabelMerger, shard
from sam2r.io.masks import davis_palette, read_palette_png, write_palette_png
from sam2r.io.vos_dataset import VosDataset
from sam2r.predictor.video import VideoPredictor, non_overlapping

MICRO = str(FIXTURES / "configs" / "micro.json")
H, W, T = 64, 80, 4
SEQS = ("bear", "cars", "dogs")
LATE_SEQ, LATE_ID, LATE_FRAME = "dogs", 3, 2  # an object that is annotated from frame 2 on
# a palette that is not DAVIS's, to check it is copied: id i -> (255 - i, i, 7)
CUSTOM = [c for i in range(256) for c in (255 - i, i, 7)]


# ----------------------------------------------------------------------------------------------
# a tiny dataset
# ----------------------------------------------------------------------------------------------
def _scene(seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(frames (H, W, 3) uint8, label maps (H, W) uint8) of moving blobs on a texture."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :W]
    base = rng.integers(40, 90, size=(H, W, 3))
    frames, labels = [], []
    for t in range(T):
        img, lab = base.copy(), np.zeros((H, W), np.uint8)
        disc = (yy - 20 - 2 * t) ** 2 + (xx - 22 - 3 * t) ** 2 < 11**2
        box = (np.abs(yy - 42) < 9) & (np.abs(xx - 58 + 2 * t) < 12)
        img[disc], lab[disc] = (220, 40, 40), 1
        img[box], lab[box] = (40, 200, 60), 2
        if seed == 2 and t >= LATE_FRAME:
            late = (np.abs(yy - 10) < 6) & (np.abs(xx - 68) < 7)
            img[late], lab[late] = (240, 240, 20), LATE_ID
        frames.append(img.astype(np.uint8))
        labels.append(lab)
    return frames, labels


def _write_dataset(root: Path, level: str = "480p", image_set: bool = True) -> None:
    for s, name in enumerate(SEQS):
        frames, labels = _scene(s)
        fdir = root / "JPEGImages" / level / name
        adir = root / "Annotations" / level / name
        fdir.mkdir(parents=True)
        for t, (img, lab) in enumerate(zip(frames, labels, strict=True)):
            Image.fromarray(img).save(fdir / f"{t:05d}.jpg", quality=95)
            if name == "cars":  # custom palette, written by PIL
                im = Image.fromarray(lab, mode="L")
                im.putpalette(CUSTOM)
                adir.mkdir(parents=True, exist_ok=True)
                im.save(adir / f"{t:05d}.png")
            else:
                write_palette_png(adir / f"{t:05d}.png", lab)
    if image_set:
        (root / "ImageSets" / "2017").mkdir(parents=True)
        (root / "ImageSets" / "2017" / "val.txt").write_text("\n".join(SEQS) + "\n")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("davis")
    _write_dataset(root)
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    save_checkpoint(synthetic_model("micro"), path)
    return str(path)


def _run(data: Path, out: Path, ckpt: str, *extra: str) -> int:
    args = ["vos-infer", "--data", str(data), "--out", str(out), "--checkpoint", ckpt]
    return main([*args, "--config", MICRO, "--quiet", *extra])


@pytest.fixture(scope="module")
def single(data: Path, ckpt: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The outputs of one in-process run on one thread (the reference of the 2-process run)."""
    out = tmp_path_factory.mktemp("single")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        assert _run(data, out, ckpt) == 0
    finally:
        torch.set_num_threads(threads)
    return out


def _tree(out: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(out)): read_palette_png(p) for p in sorted(out.rglob("*.png"))}


# ----------------------------------------------------------------------------------------------
# outputs
# ----------------------------------------------------------------------------------------------
def test_output_tree_names_sizes_palettes_and_ids(data: Path, single: Path) -> None:
    assert sorted(p.name for p in single.iterdir()) == list(SEQS)
    for name in SEQS:
        pngs = sorted((single / name).iterdir())
        assert [p.name for p in pngs] == [f"{t:05d}.png" for t in range(T)]
        gt_ids = set(np.unique(read_palette_png(data / f"Annotations/480p/{name}/00000.png")))
        for p in pngs:
            with Image.open(p) as im:
                assert (im.mode, im.size) == ("P", (W, H))
                pal = np.array(im.getpalette()[:768]).reshape(-1, 3)
            expected = np.array(CUSTOM).reshape(-1, 3) if name == "cars" else davis_palette()
            assert np.array_equal(pal, expected)
            ids = set(np.unique(read_palette_png(p)))
            assert ids <= gt_ids  # first-frame objects only (not the late one in dogs)
        first = read_palette_png(pngs[0])
        assert np.array_equal(first, read_palette_png(data / f"Annotations/480p/{name}/00000.png"))
    assert LATE_ID not in set(np.unique(read_palette_png(single / LATE_SEQ / "00003.png")))


def test_equals_video_predictor_by_hand(data: Path, ckpt: str, single: Path) -> None:
    model = build_model(config_from_yaml(MICRO), checkpoint=ckpt)
    predictor = VideoPredictor(model, fill_hole_area=0, non_overlap_masks=True)
    gt = read_palette_png(data / "Annotations/480p/bear/00000.png")
    session = predictor.init_session(str(data / "JPEGImages/480p/bear"))
    for obj_id in (1, 2):
        predictor.add_mask(session, 0, obj_id, gt == obj_id)
    for r in predictor.propagate(session):
        logits = r.masks[:, 0].numpy()  # (N, H, W)
        ids = np.array(r.obj_ids, dtype=np.uint8)
        expected = np.where(logits.max(0) > 0, ids[logits.argmax(0)], 0)
        assert np.array_equal(
            read_palette_png(single / "bear" / f"{r.frame_idx:05d}.png"), expected
        )


def test_later_objects_are_tracked_from_their_first_frame(
    data: Path, ckpt: str, single: Path, tmp_path: Path
) -> None:
    assert _run(data, tmp_path, ckpt, "--sequences", LATE_SEQ, "--track-later-objects") == 0
    got = [read_palette_png(tmp_path / LATE_SEQ / f"{t:05d}.png") for t in range(T)]
    present = [LATE_ID in np.unique(g) for g in got]
    assert present[:LATE_FRAME] == [False] * LATE_FRAME and present[LATE_FRAME]
    # the objects of frame 0 are tracked alone, each by itself; with one object per pixel and
    # independent memories, their masks outside the late object's are those of the joint run
    for t in range(LATE_FRAME):
        assert np.array_equal(got[t], read_palette_png(single / LATE_SEQ / f"{t:05d}.png"))


def test_skip_existing(
    data: Path, ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert _run(data, tmp_path, ckpt, "--sequences", "bear") == 0
    png = tmp_path / "bear" / "00002.png"
    write_palette_png(png, np.zeros((H, W), np.uint8))  # a marker: kept only when skipped
    assert _run(data, tmp_path, ckpt, "--sequences", "bear", "--skip-existing") == 0
    assert "1 skipped" in capsys.readouterr().out and not read_palette_png(png).any()
    assert _run(data, tmp_path, ckpt, "--sequences", "bear") == 0
    assert read_palette_png(png).any()


def test_root_without_480p_level_or_image_set(tmp_path: Path) -> None:
    _write_dataset(tmp_path, level="", image_set=False)
    ds = VosDataset.open(tmp_path)
    assert ds.frames_root == tmp_path / "JPEGImages"
    assert ds.sequence_names("val") == sorted(SEQS)
    assert ds.frame_counts(["bear"]) == {"bear": T}


# ----------------------------------------------------------------------------------------------
# overlap rules
# ----------------------------------------------------------------------------------------------
def _official_labels(logits: torch.Tensor, ids: list[int], thresh: float, non_overlap: bool):
    """The reference: optional non-overlap, threshold, paint from the largest id down."""
    if non_overlap:
        logits = non_overlapping(logits[:, None])[:, 0]
    out = np.zeros(logits.shape[1:], np.uint8)
    for i in sorted(range(len(ids)), key=lambda i: -ids[i]):
        out[(logits[i] > thresh).numpy()] = ids[i]
    return out


@pytest.mark.parametrize("non_overlap", [True, False])
@pytest.mark.parametrize("thresh", [0.0, 2.5, -9.0, -10.0, -12.0])
def test_label_merger_matches_the_official_rules(non_overlap: bool, thresh: float) -> None:
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(4, 12, 9, generator=g) * 12).round()  # rounding makes ties
    logits[3, :2] = -1024.0  # an object absent there
    ids = [1, 3, 4, 7]
    merger = LabelMerger(thresh, non_overlap)
    for k in (0, 1):  # two frames, objects added one call at a time
        for i, obj_id in enumerate(ids):
            merger.add(k, obj_id, logits[i])
    expected = _official_labels(logits, ids, thresh, non_overlap)
    assert np.array_equal(merger.pop(0, (12, 9)), expected)
    assert np.array_equal(merger.pop(1, (12, 9)), expected)
    assert not merger.pop(5, (12, 9)).any()  # a frame without objects: background


def test_label_merger_rejects_ids_out_of_order() -> None:
    merger = LabelMerger()
    merger.add(0, 2, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="ascending"):
        merger.add(0, 1, torch.zeros(3, 3))


# ----------------------------------------------------------------------------------------------
# sharding
# ----------------------------------------------------------------------------------------------
def _names(n: int) -> list[str]:
    return [f"seq{i:02d}" for i in range(n)]


@pytest.mark.parametrize(
    ("n", "world", "sizes"),
    [
        (10, 1, None), (10, 3, None), (2, 4, None), (7, 7, None),
        (10, 3, [50, 3, 80, 80, 12, 7, 40, 40, 90, 1]),
        (5, 2, [100, 1, 1, 1, 1]),
        (3, 4, [5, 5, 5]),
        (30, 4, [int(v) for v in np.random.default_rng(1).integers(25, 105, 30)]),
    ],
)  # fmt: skip
def test_shard_is_a_disjoint_balanced_cover(n: int, world: int, sizes: list[int] | None) -> None:
    names = _names(n)[::-1]  # the input order does not matter
    size_map = None if sizes is None else dict(zip(_names(n), sizes, strict=True))
    parts = [shard(names, r, world, size_map) for r in range(world)]
    flat = [s for p in parts for s in p]
    assert sorted(flat) == sorted(names) and len(flat) == len(set(flat))
    assert all(p == sorted(p) for p in parts)
    if size_map is None:
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
        assert parts[0] == sorted(names)[::world]
    else:
        loads = [sum(size_map[s] for s in p) for p in parts]
        assert max(loads) - min(loads) <= max(size_map.values())


@pytest.mark.parametrize(
    ("rank", "world", "match"),
    [(0, 0, "world size"), (2, 2, "rank"), (-1, 2, "rank"), (True, 2, "rank")],
)
def test_shard_rejects_bad_ranks(rank: int, world: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        shard(_names(3), rank, world)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Dist()),
        ({"WORLD_SIZE": "4", "RANK": "2", "LOCAL_RANK": "0"}, Dist(2, 4, 0, enabled=True)),
    ],
)
def test_dist_from_env(env: dict[str, str], expected: Dist) -> None:
    assert Dist.from_env(env) == expected


def test_dist_from_partial_env_is_an_error() -> None:
    with pytest.raises(CliError, match="LOCAL_RANK"):
        Dist.from_env({"WORLD_SIZE": "2", "RANK": "0"})


# ----------------------------------------------------------------------------------------------
# a real 2-process run (torchrun, gloo)
# ----------------------------------------------------------------------------------------------
def test_two_process_gloo_run_equals_single_process(
    data: Path, ckpt: str, single: Path, tmp_path: Path
) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[1])}
    for v in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(v, None)
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "sam2r.cli", "vos-infer", "--data", str(data), "--out", str(tmp_path),
        "--checkpoint", ckpt, "--config", MICRO, "--quiet",
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"{len(SEQS)} sequence(s), {len(SEQS) * T} frame(s)" in proc.stdout
    assert "on 2 processes" in proc.stdout and proc.stdout.count("vos-infer:") == 1
    got, ref = _tree(tmp_path), _tree(single)
    assert sorted(got) == sorted(ref)
    for k in ref:
        assert np.array_equal(got[k], ref[k]), k


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def _broken(root: Path, how: str) -> tuple[Path, list[str], str]:
    """(dataset root, extra args, text the error must contain) of a broken dataset."""
    _write_dataset(root)
    ann = root / "Annotations/480p/bear"
    if how == "missing root":
        return root / "nope", [], str(root / "nope")
    if how == "no JPEGImages":
        (root / "JPEGImages").rename(root / "frames")
        return root, [], str(root / "JPEGImages")
    if how == "no annotation folder":
        for p in ann.iterdir():
            p.unlink()
        ann.rmdir()
        return root, [], str(ann)
    if how == "no annotation of a frame":
        for p in ann.iterdir():
            p.rename(p.with_name("x" + p.name))
        return root, [], str(ann)
    if how == "rgb annotation":
        Image.fromarray(np.zeros((H, W, 3), np.uint8)).save(ann / "00000.png")
        return root, [], str(ann / "00000.png")
    if how == "wrong size":
        write_palette_png(ann / "00000.png", np.ones((H, W + 1), np.uint8))
        return root, [], "does not match the frames"
    if how == "empty first mask":
        write_palette_png(ann / "00000.png", np.zeros((H, W), np.uint8))
        return root, [], "--track-later-objects"
    if how == "unknown sequence":
        return root, ["--sequences", "bear,zebra"], str(root / "JPEGImages/480p/zebra")
    if how == "missing image set":
        return root, ["--image-set", str(root / "test.txt")], str(root / "test.txt")
    raise AssertionError(how)


@pytest.mark.parametrize(
    "how",
    [
        "missing root", "no JPEGImages", "no annotation folder", "no annotation of a frame",
        "rgb annotation", "wrong size", "empty first mask", "unknown sequence",
        "missing image set",
    ],
)  # fmt: skip
def test_bad_inputs_are_errors_naming_the_path(
    how: str, ckpt: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root, extra, needle = _broken(tmp_path / "data", how)
    assert _run(root, tmp_path / "out", ckpt, *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("sam2r vos-infer: ") and needle in err, err
