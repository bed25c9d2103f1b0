"""Hard-case scenarios of the data engine: occlusion, distractor, fast motion, shot cut."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sam2r.cli.main import main
from sam2r.data import SCENARIOS, make_scenario_video, make_video, read_sequence
from sam2r.data.scenarios import SCENARIO_FRAMES, _distractor
from sam2r.data.synthetic import SynthConfig


def _cfg(scenario: str) -> SynthConfig:
    return SynthConfig(num_frames=SCENARIO_FRAMES[scenario])


def _centroids(masks: np.ndarray) -> np.ndarray:
    """(T, 2) x, y of each frame's mask (NaN where empty)."""
    out = np.full((len(masks), 2), np.nan)
    for t, m in enumerate(masks):
        ys, xs = np.nonzero(m)
        if len(xs):
            out[t] = xs.mean(), ys.mean()
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_is_deterministic_and_promptable_on_frame_0(scenario: str) -> None:
    cfg = _cfg(scenario)
    a, b = make_scenario_video(3, scenario, cfg), make_scenario_video(3, scenario, cfg)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.masks, b.masks)
    assert a.frames.shape == (cfg.num_frames, cfg.height, cfg.width, 3)
    assert set(np.unique(a.masks)) <= {0, 1}  # only the target is annotated
    assert a.masks[0].sum() >= cfg.min_area_frac * cfg.height * cfg.width
    other = make_scenario_video(4, scenario, cfg)
    assert not np.array_equal(a.frames, other.frames)
    assert a.name == f"{scenario}_train_3"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_occlusion_hides_the_target_for_10_to_40_frames_then_shows_it_again(seed: int) -> None:
    masks = make_scenario_video(seed, "occlusion", _cfg("occlusion")).masks
    empty = masks.reshape(len(masks), -1).sum(1) == 0
    runs, run = [], 0
    for e in empty:
        run = run + 1 if e else 0
        runs.append(run)
    longest = max(runs)
    assert 10 <= longest <= 40 + 2 * 4  # hidden 10..40 frames, + the occluder sliding over
    end = int(np.argmax(runs))
    assert not empty[end + 1 :].all() and not empty[0]  # visible before and after


def test_distractor_is_a_look_alike_that_crosses_the_target() -> None:
    cfg = _cfg("distractor")
    rng = np.random.default_rng(np.random.SeedSequence([5, SCENARIOS.index("distractor")]))
    scene = _distractor(5, cfg, rng)
    target, twin = scene.objects
    assert twin.shape is target.shape and twin.texture is target.texture
    gap = np.linalg.norm(target.pose[:, :, 2] - twin.pose[:, :, 2], axis=1)
    assert gap.min() < 1e-6 and gap[0] > 5  # apart on frame 0, centres meet later
    video = make_scenario_video(5, "distractor", cfg)
    assert video.masks[0].any()


def test_fast_motion_moves_much_faster_than_ordinary_videos() -> None:
    def speed(masks: np.ndarray) -> float:
        c = _centroids(masks)
        return float(np.nanmedian(np.linalg.norm(np.diff(c, axis=0), axis=1)))

    fast = [speed(make_scenario_video(s, "fast", _cfg("fast")).masks) for s in range(3)]
    plain = [
        speed(make_video(s, SynthConfig(num_frames=24, max_objects=1)).masks) for s in range(3)
    ]
    assert np.median(fast) > 4 * np.median(plain), (fast, plain)


def test_cut_changes_the_shot_and_keeps_the_object() -> None:
    video = make_scenario_video(2, "cut", _cfg("cut"))
    f = video.frames.astype(np.float32)
    step = np.abs(np.diff(f, axis=0)).mean(axis=(1, 2, 3))  # (T-1,) mean change per frame
    cut = int(np.argmax(step)) + 1
    assert step[cut - 1] > 5 * np.median(step)
    assert 24 // 3 <= cut <= 2 * 24 // 3
    assert video.masks[cut - 1].any() and video.masks[cut:].any(axis=(1, 2)).all()


def test_bad_scenario_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown scenario"):
        make_scenario_video(0, "crowd")
    with pytest.raises(ValueError, match="needs at least 24 frames"):
        make_scenario_video(0, "occlusion", SynthConfig(num_frames=16))


def test_synth_command_writes_a_scenario_set(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    root = tmp_path / "occl"
    args = ["synth", "--out", str(root), "--train", "0", "--val", "1", "--scenario", "cut"]
    assert main(args) == 0
    assert "cut videos of 24 frames" in capsys.readouterr().out
    record = json.loads((root / "synth.json").read_text())
    assert record["scenario"] == "cut" and record["config"]["num_frames"] == 24
    seq = read_sequence(root, "val_00000")
    seed = record["splits"]["val"]["seeds"]["val_00000"]
    assert np.array_equal(seq.masks, make_scenario_video(seed, "cut", _cfg("cut")).masks)
    bad = ["synth", "--out", str(tmp_path / "x"), "--val", "1", "--scenario", "occlusion"]
    assert main([*bad, "--frames", "10"]) != 0
    assert "--frames 10" in capsys.readouterr().err
