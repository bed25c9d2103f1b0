"""J&F of each memory mode on the hard-case scenarios, with the bundled model, and its cost.

    python bench/eval_memory.py [--videos 12] [--checkpoint runs/synth_micro/model.pt]
        [--look train|unseen] [--out bench/results/memory_modes.json]

For each scenario of the data engine (`sam2r.data.scenarios`: occlusion, distractor, fast, cut;
held-out seeds, in the `train` look or with `--look unseen` the textures, lighting and artefacts
no training video has) and for the ordinary held-out videos of `bench/eval_model.py`
(`plain`, 16 frames, 1..4 objects), this writes a DAVIS-style set, prompts every object with its
first-frame ground-truth mask, propagates it with `VideoPredictor(memory=mode)` for each mode
("official", "motion", "distractor") and scores it with the DAVIS J&F (`sam2r.eval`).

Each video's image features are computed once and handed to every mode's session (the modes
differ only after the encoder), and the modes run one after another on each video, so the time
per frame of each mode is measured on the same frames under the same load (the mode that goes
first rotates from video to video). `vs official` is the mean J&F difference to the official
mode over the same objects, with its standard error; `ms/object-frame` is the median over
videos of the memory attention + heads + memory encoder + the mode's policy, per object and
frame; the image encoder's time per frame is reported once beside it.

With `--oracle` two more rows bound what any rule of these kinds could gain with this model
(diagnosis only: they read the ground truth): `oracle-admit` admits a tracked frame to memory
only when its kept mask's true IoU is above 0.5 (the memory rule of the modes, with a perfect
IoU; the candidate is the model's), `oracle-pick` keeps, among the decoder's three candidates,
the one with the best true IoU and remembers every frame as the official memory does.

Results go to `bench/results/memory_modes.json` and stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from sam2r.build import build_model
from sam2r.data.davis_io import write_davis
from sam2r.data.scenarios import SCENARIO_FRAMES, SCENARIOS, make_scenario_video
from sam2r.data.synthetic import SynthConfig, make_video, split_seed
from sam2r.eval.davis import evaluate
from sam2r.eval.vos_infer import LabelMerger, VosDataset, collect_prompts
from sam2r.io.masks import write_palette_png
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video.frame_step import frame_features
from sam2r.predictor.video.selection import MemorySelection

RESULTS = Path(__file__).parent / "results" / "memory_modes.json"
EVAL_SEED = 20261121  # as bench/eval_model.py: held-out seeds (split names never used in training)
MODES = ("official", "motion", "distractor")
ORACLE_MODES = ("oracle-admit", "oracle-pick")


@dataclass(frozen=True)
class Oracle(MemorySelection):
    """A memory rule that reads the ground truth (`truth[(frame, obj_id)]`: (h, w) bool at the
    decoder's low resolution; the frame being tracked is the last one `plan` was asked for).
    `pick`: keep the candidate with the best true IoU; else: admit by the kept mask's true IoU
    (the model's candidate)."""

    pick_best: bool = False
    truth: dict = field(default_factory=dict, compare=False, repr=False)

    def plan(self, frame_idx, reverse, track, num_frames, cfg):
        self.truth["frame"] = frame_idx
        return super().plan(frame_idx, reverse, track, num_frames, cfg)

    def _true_ious(self, masks: torch.Tensor, obj_id) -> np.ndarray:
        """(M,) true IoUs of (M, h, w) logits; a hidden object's: 1 for an empty mask, else 0."""
        m = (masks > 0).cpu().numpy().reshape(masks.shape[0], -1)
        gt = self.truth.get((self.truth.get("frame"), int(obj_id)))
        if gt is None or not gt.any():
            return (~m.any(1)).astype(np.float64)
        g = gt.reshape(1, -1)
        return (m & g).sum(1) / np.maximum((m | g).sum(1), 1)

    def chooser(self, track, cfg):
        choose = super().chooser(track, cfg)
        if not self.pick_best:
            return choose

        def best(multimasks: torch.Tensor, iou: torch.Tensor) -> torch.Tensor:
            choose(multimasks, iou)  # records the model's choice on the object
            true = self._true_ious(multimasks[0], track.obj_id)
            ms = track.selection
            if true.max() > 0:  # else (hidden, every candidate shows something): the model's
                ms.choice.index = int(np.argmax(true))
            return torch.tensor([ms.choice.index])

        return best

    def observe(self, track, frame_idx, out, state, cfg):
        ms = self.state(track, cfg)
        if not self.pick_best and ms.choice is not None:
            true = self._true_ious(out.low_res_masks[0, :1], track.obj_id)
            ious = ms.choice.ious.copy()
            ious[ms.choice.index] = float(true[0])
            ms.choice.ious = ious
        super().observe(track, frame_idx, out, state, cfg)


def oracle(mode: str) -> Oracle:
    """The oracle rows: no distractor bank; lost frames read as the official memory would."""
    if mode == "oracle-admit":
        return Oracle("distractor", distractor_iou=2.0)
    return Oracle("distractor", pick_best=True, mask_threshold=-1e9, distractor_iou=2.0)


def load_truth(root: Path, seq, size: int) -> dict:
    """Every object's ground truth on every frame of a sequence, as (size, size) bool masks (the
    decoder's low-resolution grid: the frame squashed to the model's square input, / 4)."""
    truth = {}
    for t, name in enumerate(seq.frame_names):
        labels = np.array(Image.open(root / "Annotations" / "480p" / seq.name / f"{name}.png"))
        for obj in np.unique(labels):
            if obj:
                m = Image.fromarray(((labels == obj) * 255).astype(np.uint8))
                truth[(t, int(obj))] = np.array(m.resize((size, size), Image.BILINEAR)) > 127
    return truth


def write_set(root: Path, scenario: str, n: int, look: str = "train") -> list[str]:
    """Write `n` held-out videos of a scenario (or "plain") as the val split of a DAVIS root."""
    if scenario == "plain":
        cfg = SynthConfig(num_frames=16, look=look)
        videos = (make_video(split_seed(EVAL_SEED, "val", i), cfg) for i in range(n))
    else:
        cfg = SynthConfig(num_frames=SCENARIO_FRAMES[scenario], look=look)
        videos = (
            make_scenario_video(split_seed(EVAL_SEED, f"scenario-{scenario}", i), scenario, cfg)
            for i in range(n)
        )
    return write_davis(root, videos, "val")


def track(predictor: VideoPredictor, seq, feats: dict, out_dir: Path) -> tuple[float, int]:
    """Prompt frame 0 with the GT masks, propagate, write PNGs; (seconds, object-frames)."""
    prompts, palette = collect_prompts(seq)
    session = predictor.init_session(seq.frames)
    session.feature_cache_size = len(feats) + 1
    for t, f in feats.items():
        session.cache_features(t, f)
    merger = LabelMerger(0.0, non_overlap=True)
    seconds, work = 0.0, 0
    try:
        for p in prompts:
            predictor.add_mask(session, p.frame_idx, p.obj_id, p.mask)
        it = iter(predictor.propagate(session, start_frame_idx=0))
        while True:
            t0 = time.perf_counter()
            result = next(it, None)
            seconds += time.perf_counter() - t0
            if result is None:
                break
            work += len(result.obj_ids)
            t = result.frame_idx
            for row, obj_id in enumerate(result.obj_ids):
                merger.add(t, int(obj_id), result.masks[row, 0])
            labels = merger.pop(t, seq.frames.hw)
            write_palette_png(out_dir / seq.name / f"{seq.frame_names[t]}.png", labels, palette)
    finally:
        session.close()
    return seconds, work


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="official-format .pt (default: the bundled model)")
    ap.add_argument("--videos", type=int, default=12, help="held-out videos per scenario")
    ap.add_argument(
        "--scenarios", default=",".join(("plain", *SCENARIOS)), help="comma-separated subset"
    )
    ap.add_argument("--look", default="train", choices=("train", "unseen"), help="data look")
    ap.add_argument("--out", default=str(RESULTS), help="JSON file for the results")
    ap.add_argument(
        "--oracle", action="store_true", help="add the ground-truth rows (see the docstring)"
    )
    args = ap.parse_args(argv)
    modes = MODES + (ORACLE_MODES if args.oracle else ())
    torch.manual_seed(0)
    if args.checkpoint:
        model = build_model("sam2r_micro", checkpoint=args.checkpoint)
    else:
        from sam2r.build import from_pretrained

        model = from_pretrained("sam2r_micro")
    predictors = {
        m: VideoPredictor(model, fill_hole_area=0, memory=oracle(m) if m in ORACLE_MODES else m)
        for m in modes
    }
    report: dict = {
        "checkpoint": args.checkpoint or "bundled sam2r_micro",
        "videos_per_scenario": args.videos,
        "frames": {"plain": 16, **SCENARIO_FRAMES},
        "look": args.look,
        "prompt": "first-frame ground-truth mask of every object",
        "metric": "DAVIS 2017 J&F (first and last frames not scored), percent",
        "torch_threads": torch.get_num_threads(),
        "scenarios": {},
    }
    t_start = time.perf_counter()
    enc_seconds, enc_frames = 0.0, 0
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for scenario in args.scenarios.split(","):
            root = Path(tmp) / scenario
            names = write_set(root, scenario, args.videos, args.look)
            data = VosDataset.open(root)
            per_video: dict[str, list[float]] = {m: [] for m in modes}  # ms per object-frame
            for name in names:
                seq = data.sequence(name)
                probe = predictors["official"].init_session(seq.frames)
                feats = {}
                t0 = time.perf_counter()
                for t in range(len(seq.frames)):
                    feats[t] = frame_features(model, probe, t)
                enc_seconds += time.perf_counter() - t0
                enc_frames += len(seq.frames)
                probe.close()
                low_res = model.cfg.image_size // 4
                for m in ORACLE_MODES if args.oracle else ():
                    predictors[m].selection.truth.clear()
                    predictors[m].selection.truth.update(load_truth(root, seq, low_res))
                k = len(per_video["official"])  # the first mode changes from video to video
                for mode in modes[k % len(modes) :] + modes[: k % len(modes)]:
                    s, w = track(predictors[mode], seq, feats, Path(tmp) / f"pred_{mode}")
                    per_video[mode].append(1000 * s / max(w, 1))
            rows, per_object = {}, {}
            for mode in modes:
                res = evaluate(root, Path(tmp) / f"pred_{mode}", "davis", sequences=names)
                g = {k: round(100 * float(v), 1) for k, v in res.global_stats().items()}
                g["ms/object-frame"] = round(float(np.median(per_video[mode])), 1)
                per_object[mode] = np.array([100 * o.jf_mean for o in res.objects])
                diff = per_object[mode] - per_object["official"]
                # paired over the same objects: mean difference and its standard error
                g["vs official"] = round(float(diff.mean()), 1)
                g["vs official s.e."] = round(float(diff.std(ddof=1) / np.sqrt(len(diff))), 1)
                rows[mode] = g
            report["scenarios"][scenario] = rows
            line = "  ".join(
                f"{m} {rows[m]['J&F-Mean']:5.1f} ({rows[m]['vs official']:+.1f} "
                f"± {rows[m]['vs official s.e.']}, {rows[m]['ms/object-frame']} ms)"
                for m in modes
            )
            print(f"{scenario:10s} {line}", flush=True)
    report["encoder ms/frame"] = round(1000 * enc_seconds / max(enc_frames, 1), 1)
    report["seconds"] = round(time.perf_counter() - t_start, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"encoder {report['encoder ms/frame']} ms/frame; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
