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

Results go to `bench/results/memory_modes.json` and stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sam2r.build import build_model
from sam2r.data.davis_io import write_davis
from sam2r.data.scenarios import SCENARIO_FRAMES, SCENARIOS, make_scenario_video
from sam2r.data.synthetic import SynthConfig, make_video, split_seed
from sam2r.eval.davis import evaluate
from sam2r.eval.vos_infer import LabelMerger, VosDataset, collect_prompts
from sam2r.io.masks import write_palette_png
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video.frame_step import frame_features

RESULTS = Path(__file__).parent / "results" / "memory_modes.json"
EVAL_SEED = 20261121  # as bench/eval_model.py: held-out seeds (split names never used in training)
MODES = ("official", "motion", "distractor")


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
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    if args.checkpoint:
        model = build_model("sam2r_micro", checkpoint=args.checkpoint)
    else:
        from sam2r.build import from_pretrained

        model = from_pretrained("sam2r_micro")
    predictors = {m: VideoPredictor(model, fill_hole_area=0, memory=m) for m in MODES}
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
            per_video: dict[str, list[float]] = {m: [] for m in MODES}  # ms per object-frame
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
                k = len(per_video["official"])  # the first mode changes from video to video
                for mode in MODES[k % len(MODES) :] + MODES[: k % len(MODES)]:
                    s, w = track(predictors[mode], seq, feats, Path(tmp) / f"pred_{mode}")
                    per_video[mode].append(1000 * s / max(w, 1))
            rows, per_object = {}, {}
            for mode in MODES:
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
                for m in MODES
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
