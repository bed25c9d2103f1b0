"""Training: prompt simulation, losses, layer-wise decay, the rollout learning, the loop
(checkpoints in the official format, resume) and DDP with 2 gloo processes."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from sam2r.build import build_model, load_checkpoint
from sam2r.io.masks import write_palette_png
from sam2r.train.config import LossSection, OptimSection, train_config_from_yaml
from sam2r.train.data import scenario_clip, to_sample
from sam2r.train.loss import dice_loss, focal_loss, iou_rank_loss, mask_iou, prediction_loss
from sam2r.train.optim import apply_freezing, layer_id, lr_factor, param_groups
from sam2r.train.prompts import click_inside, correction_click, jittered_box
from sam2r.train.rollout import TrainStep

REPO = Path(__file__).resolve().parents[1]


def _square_masks() -> torch.Tensor:
    gt = torch.zeros(2, 32, 32, dtype=torch.bool)
    gt[0, 4:12, 6:20] = True
    gt[1, 20:30, 20:30] = True
    return gt


# ---------------------------------------------------------------------------------------------
# prompts
# ---------------------------------------------------------------------------------------------
def test_click_inside_lands_in_the_object() -> None:
    gt = _square_masks()
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        coords, labels = click_inside(gt, gen)
        assert coords.shape == (2, 1, 2) and labels.tolist() == [[1], [1]]
        for i in range(2):
            x, y = coords[i, 0].long().tolist()
            assert gt[i, y, x]


def test_jittered_box_contains_roughly_the_object() -> None:
    gt = _square_masks()
    coords, labels = jittered_box(gt, 0.0, torch.Generator().manual_seed(0))
    assert labels.tolist() == [[2, 3], [2, 3]]
    assert coords[0].tolist() == [[6.0, 4.0], [20.0, 12.0]]
    coords, _ = jittered_box(gt, 0.2, torch.Generator().manual_seed(1))
    assert (coords[:, 0] <= coords[:, 1]).all()  # x0 <= x1, y0 <= y1
    assert (coords[0] - torch.tensor([[6.0, 4.0], [20.0, 12.0]])).abs().max() <= 0.2 * 14 + 1e-5


def test_correction_click_comes_from_the_error_region() -> None:
    gt = _square_masks()
    pred = gt.clone()
    pred[0] = False  # object 0 missed entirely -> positive click inside it
    pred[1, 0:5, 0:5] = True  # object 1 has a false positive -> negative click there
    pred[1, 20:30, 20:30] = True
    gen = torch.Generator().manual_seed(0)
    for _ in range(10):
        coords, labels = correction_click(pred, gt, gen)
        x0, y0 = coords[0, 0].long().tolist()
        x1, y1 = coords[1, 0].long().tolist()
        assert labels.tolist() == [[1], [0]]
        assert gt[0, y0, x0] and x1 < 5 and y1 < 5


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------
def test_losses_are_small_for_a_confident_correct_mask_and_large_for_a_wrong_one() -> None:
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:6, 2:6] = 1
    good = (target * 2 - 1) * 20
    bad = -good
    logits = torch.cat([good, bad], dim=1)  # (1, 2, 8, 8)
    f = focal_loss(logits, target, 0.25, 2.0)
    d = dice_loss(logits, target)
    assert f[0, 0] < 1e-6 < f[0, 1]
    assert d[0, 0] < 0.05 and d[0, 1] > 0.9
    assert mask_iou(logits, target).tolist() == [[1.0, 0.0]]


def test_prediction_loss_supervises_the_best_mask_and_skips_absent_objects() -> None:
    w = LossSection()
    target = torch.zeros(2, 1, 8, 8)
    target[0, :, 2:6, 2:6] = 1  # object 1 absent
    good = (target[:1] * 2 - 1) * 20
    logits = torch.cat([torch.cat([-good, good], 1), torch.full((1, 2, 8, 8), -20.0)])
    iou = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    scores = torch.tensor([[10.0], [-10.0]])
    terms = prediction_loss(logits, iou, scores, target, w)
    assert float(terms.focal) < 1e-6 and float(terms.dice) < 0.05  # best candidate chosen
    assert float(terms.iou) < 1e-6 and float(terms.object_score) < 1e-3
    worse = prediction_loss(logits, iou.flip(1), scores.neg(), target, w)
    assert float(worse.iou) > 0.4 and float(worse.object_score) > 4


def test_iou_rank_loss_orders_the_candidates_and_is_off_by_default() -> None:
    actual = torch.tensor([[0.9, 0.5, 0.2], [0.4, 0.41, 0.4]])
    right = torch.tensor([[0.6, 0.5, 0.4], [0.0, 0.0, 0.0]])
    wrong = right.flip(1)
    r, w = iou_rank_loss(right, actual), iou_rank_loss(wrong, actual)
    assert float(r[0]) < 0.2 < 1.5 < float(w[0])  # the scale is 0.05: 0.1 apart is settled
    assert float(r[1]) == 0.0 == float(w[1])  # true IoUs within the 0.02 margin: no pair
    target = torch.zeros(1, 1, 8, 8)
    target[0, :, 2:6, 2:6] = 1
    good = (target * 2 - 1) * 20
    logits = torch.cat([good, -good, good * 0.1 - 1], 1)
    scores = torch.tensor([[10.0]])
    upside_down = torch.tensor([[0.0, 0.5, 1.0]])
    off = prediction_loss(logits, upside_down, scores, target, LossSection())
    on = prediction_loss(logits, upside_down, scores, target, LossSection(iou_rank=2.0))
    assert float(off.iou_rank) > 5  # reported even when off
    assert float(on.total - off.total) == pytest.approx(2.0 * float(off.iou_rank), rel=1e-5)


# ---------------------------------------------------------------------------------------------
# optimiser
# ---------------------------------------------------------------------------------------------
def test_layer_ids_and_layerwise_decay() -> None:
    assert layer_id("image_encoder.trunk.patch_embed.proj.weight", 7) == 0
    assert layer_id("image_encoder.trunk.blocks.3.attn.qkv.weight", 7) == 4
    assert layer_id("image_encoder.neck.convs.0.conv.weight", 7) == 8
    assert layer_id("sam_mask_decoder.iou_token.weight", 7) == 8
    model = build_model("sam2r_micro")
    groups = param_groups(model, OptimSection(layer_decay=0.5, weight_decay=0.1))
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["image_encoder.trunk.blocks.0.attn.qkv.weight"]["lr_scale"] == 0.5**7
    assert by_name["image_encoder.trunk.blocks.6.attn.qkv.weight"]["lr_scale"] == 0.5
    assert by_name["memory_attention.layers.0.linear1.weight"]["lr_scale"] == 1.0
    assert by_name["memory_attention.layers.0.linear1.weight"]["weight_decay"] == 0.1
    assert by_name["memory_attention.layers.0.linear1.bias"]["weight_decay"] == 0.0
    assert by_name["image_encoder.trunk.pos_embed"]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_lr_schedule_warms_up_then_decays() -> None:
    cfg = OptimSection(warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, 100, cfg) == pytest.approx(0.1)
    assert lr_factor(9, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(10, 100, cfg) == pytest.approx(1.0)
    assert lr_factor(100, 100, cfg) == pytest.approx(0.1)
    assert lr_factor(40, 100, cfg) > lr_factor(70, 100, cfg)


@pytest.mark.parametrize(
    ("options", "trainable", "frozen"),
    [
        ({"freeze_image_encoder": True}, "sam_mask_decoder.iou_token.weight", "image_encoder."),
        ({"train_only_memory": True}, "memory_attention.layers.0.linear1.weight", "sam_mask"),
    ],
)
def test_freezing_options(options: dict, trainable: str, frozen: str) -> None:
    from sam2r.train.config import ModelSection

    model = build_model("sam2r_micro")
    apply_freezing(model, ModelSection(**options))
    params = dict(model.named_parameters())
    assert params[trainable].requires_grad
    assert not any(p.requires_grad for n, p in params.items() if n.startswith(frozen))


def test_bad_configs_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown key 'lrr'"):
        train_config_from_yaml(None, ["optim.lrr=1"])
    with pytest.raises(ValueError, match="unknown section"):
        train_config_from_yaml(None, ["optimizer.lr=1"])
    with pytest.raises(ValueError, match="expected int"):
        train_config_from_yaml(None, ["run.steps=many"])
    with pytest.raises(ValueError, match="section.key=value"):
        train_config_from_yaml(None, ["steps=3"])
    assert train_config_from_yaml(None, ["optim.lr=1e-4"]).optim.lr == 1e-4
    with pytest.raises(ValueError, match="scenario_prob must be in"):
        train_config_from_yaml(None, ["data.scenario_prob=1.5"])
    with pytest.raises(ValueError, match="'crowd'"):
        train_config_from_yaml(None, ["data.scenarios=[occlusion, crowd]"])


def test_scenario_clips_span_the_event() -> None:
    """A scenario clip is every k-th frame of the hard case from frame 0: an occlusion clip
    shows the target, loses it and (when the hidden span ends in the clip) gets it back."""
    from sam2r.data.scenarios import SCENARIO_FRAMES, make_scenario_video
    from sam2r.data.synthetic import SynthConfig

    cfg = train_config_from_yaml(None, ["data.scenarios=[occlusion]"]).data
    synth = SynthConfig(height=cfg.height, width=cfg.width, num_frames=cfg.num_frames)
    gaps = 0
    for seed in range(6):
        clip = scenario_clip(seed, cfg, synth, np.random.default_rng(seed))
        full = make_scenario_video(seed, "occlusion", replace(synth, num_frames=48))
        stride = (SCENARIO_FRAMES["occlusion"] - 1) // (cfg.num_frames - 1)
        assert clip.frames.shape == (cfg.num_frames, cfg.height, cfg.width, 3)
        np.testing.assert_array_equal(clip.masks, full.masks[::stride][: cfg.num_frames])
        shown = (clip.masks == 1).reshape(cfg.num_frames, -1).any(axis=1)
        assert shown[0]
        gaps += int((~shown).any())
    assert gaps >= 4  # hidden 10..40 of 48 frames: most 8-frame clips see it hidden


# ---------------------------------------------------------------------------------------------
# the rollout learns
# ---------------------------------------------------------------------------------------------
def _moving_squares(t_len: int = 3, h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 60, (t_len, h, w, 3)).astype(np.uint8)
    ids = np.zeros((t_len, h, w), np.uint8)
    for t in range(t_len):
        ids[t, 8 + 2 * t : 24 + 2 * t, 10:30] = 1
        ids[t, 28:44, 36 + 2 * t : 56 + 2 * t] = 2
    frames[ids == 1] = (220, 40, 40)
    frames[ids == 2] = (40, 200, 60)
    return frames, ids


def test_the_rollout_loss_falls_when_fitting_one_clip() -> None:
    torch.manual_seed(0)
    model = build_model("sam2r_micro").train()
    frames, ids = _moving_squares()
    sample = to_sample(frames, ids, 256, 2, np.random.default_rng(0))
    assert sample is not None and sample.masks.shape == (2, 3, 256, 256)
    cfg = train_config_from_yaml(None, ["prompts.correction_clicks=1", "prompts.mask_prob=0"])
    step = TrainStep(model, cfg.prompts, cfg.loss, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    losses = []
    for i in range(12):
        step.gen.manual_seed(i % 2)  # the same prompts every other step: a fixed target
        loss, terms = step([sample])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        assert set(terms) == {"total", "focal", "dice", "iou", "object_score", "iou_rank"}
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses


# ---------------------------------------------------------------------------------------------
# the loop: official-format checkpoints, resume, DDP
# ---------------------------------------------------------------------------------------------
def _davis_tree(root: Path, n_seq: int = 2, t_len: int = 4) -> Path:
    from PIL import Image

    for s in range(n_seq):
        frames, ids = _moving_squares(t_len)
        for t in range(t_len):
            name = f"{t:05d}"
            jpg = root / "JPEGImages" / "480p" / f"seq{s}" / f"{name}.jpg"
            jpg.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frames[t]).save(jpg, quality=95)
            write_palette_png(root / "Annotations" / "480p" / f"seq{s}" / f"{name}.png", ids[t])
    return root


def _tiny_overrides(root: Path, out: Path, steps: int) -> list[str]:
    return [
        "data.source=davis",
        f"data.root={root}",
        "data.num_frames=2",
        "data.max_objects=1",
        "prompts.correction_clicks=1",
        "run.batch_size=1",
        f"run.steps={steps}",
        "run.log_every=1",
        "run.checkpoint_every=2",
        f"run.out_dir={out}",
        "run.device=cpu",
    ]


def test_train_writes_official_checkpoints_and_resumes(tmp_path: Path) -> None:
    from sam2r.cli.main import main

    root = _davis_tree(tmp_path / "davis")
    out = tmp_path / "run"
    assert main(["train", *_tiny_overrides(root, out, 2)]) == 0
    state = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=True)
    assert state["steps"] == 2 and "optimizer" in state
    model = build_model("sam2r_micro")
    load_checkpoint(model, out / "model.pt", strict=True)  # official {"model": ...} format
    load_checkpoint(model, out / "checkpoints" / "checkpoint.pt", strict=True)
    # a run stopped after logging step 3 but before its checkpoint: the resumed run logs it again
    with open(out / "log.csv") as f:
        last = f.read().splitlines()[-1]
    with open(out / "log.csv", "a") as f:
        f.write(last.replace("2,", "3,", 1) + "\n")
    # resume: two more steps continue the log from step 3
    assert main(["train", *_tiny_overrides(root, out, 4)]) == 0
    with open(out / "log.csv") as f:
        steps = [int(r["step"]) for r in csv.DictReader(f)]
    assert steps == [1, 2, 3, 4]
    assert torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=True)["steps"] == 4


def test_train_cli_reports_bad_config(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from sam2r.cli.main import main

    assert main(["train", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["train", "data.source=davis", f"run.out_dir={tmp_path}"]) == 2
    assert "data.root" in capsys.readouterr().err


def test_ddp_with_two_gloo_processes(tmp_path: Path) -> None:
    root = _davis_tree(tmp_path / "davis")
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
        "--master_port=29531", "-m", "sam2r.cli", "train", *_tiny_overrides(root, out, 2),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 processes" in proc.stdout
    state = torch.load(out / "checkpoints" / "checkpoint.pt", weights_only=True)
    assert state["world_size"] == 2 and state["steps"] == 2


def test_plot_curve_of_two_stages(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from sam2r.cli.train import plot_curve

    logs = []
    for k in range(2):
        log = tmp_path / f"s{k}" / "log.csv"
        log.parent.mkdir()
        with open(log, "w", newline="") as f:
            w = csv.DictWriter(
                f, fieldnames=("step", "loss", "focal", "dice", "iou", "object_score")
            )
            w.writeheader()
            for step in (10, 20):
                w.writerow(
                    dict(step=step, loss=1.0 / step, focal=0.1, dice=0.5, iou=0.2, object_score=0.1)
                )
        logs.append(log)
    png = plot_curve(logs, tmp_path / "curve.png")
    from PIL import Image

    assert Image.open(png).size == (1100, 400)


def test_finetune_from_a_checkpoint_with_a_frozen_image_encoder(tmp_path: Path) -> None:
    """The documented fine-tuning recipe: start from official-format weights, keep Hiera fixed."""
    from sam2r.build import save_checkpoint
    from sam2r.cli.main import main

    start = build_model("sam2r_micro")
    ckpt = save_checkpoint(start, tmp_path / "start.pt")
    root = _davis_tree(tmp_path / "davis")
    out = tmp_path / "run"
    args = [
        *_tiny_overrides(root, out, 2),
        f"model.checkpoint={ckpt}",
        "model.freeze_image_encoder=true",
        "optim.lr=1e-2",
        "prompts.mask_prob=0",
    ]
    assert main(["train", *args]) == 0
    after = build_model("sam2r_micro", checkpoint=out / "model.pt").state_dict()
    before = start.state_dict()
    encoder = [k for k in before if k.startswith("image_encoder.")]
    assert all(torch.equal(before[k], after[k]) for k in encoder)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert any(k.startswith("sam_mask_decoder.") for k in changed)
