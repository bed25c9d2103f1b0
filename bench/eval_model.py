"""Accuracy of a (small, self-trained) model on held-out synthetic data: the figures the README
reports for the bundled `sam2r_micro`.

    python bench/eval_model.py [--checkpoint runs/synth_micro/model.pt] [--videos 30]

For each look of the data engine (`train`: the look it was trained on, unseen videos;
`unseen`: textures, colours, lighting and artefacts it never saw) this writes a DAVIS-style
validation set, runs the video predictor and scores it with the DAVIS J&F (`sam2r.eval`):

* `mask`: every object prompted with its first-frame ground-truth mask (the VOS protocol);
* `click`: one positive click per object on the first frame, at the interior point farthest
  from the object's boundary;
* `mask, no memory`: as `mask`, but the memory bank keeps only the prompted frame (the
  memories and pointers of tracked frames are dropped as soon as each frame is done), which
  shows what the streaming memory adds, e.g. through occlusions;

and the image task: mean IoU of the best-scored of 3 masks for one such click per object on
held-out synthetic images, and (to tell the masks from the IoU head that picks among them) the
mean IoU of the best of the 3 by their true IoU. Results go to `bench/results/model_eval.json`
and stdout.

Each video row also gives the standard error of its J&F over the objects, and the file keeps
every object's score (`per_object`), so two checkpoints can be compared object by object on the
same data: `--against other.json` prints the paired difference of each row ± its standard error
(two stages of one model differ by less than the spread between objects, so only a paired
comparison tells a change from noise).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sam2r.build import build_model
from sam2r.data.synthetic import SynthConfig, make_image, split_seed
from sam2r.eval.davis import evaluate
from sam2r.eval.vos_infer import LabelMerger, VosDataset, collect_prompts
from sam2r.io.masks import write_palette_png
from sam2r.predictor.image import ImagePredictor
from sam2r.predictor.video import VideoPredictor

RESULTS = Path(__file__).parent / "results" / "model_eval.json"
EVAL_SEED = 20261121  # the validation data: never drawn in training (other split names)
VIDEO_ROWS = (  # (row, prompt, memory)
    ("mask", "mask", True),
    ("click", "click", True),
    ("mask, no memory", "mask", False),
    ("click, no memory", "click", False),
)


def center_click(mask: np.ndarray) -> tuple[float, float]:
    """(x, y) of the interior pixel farthest from the boundary (ties: nearest the centroid)."""
    m = mask.astype(bool)
    last = m
    while m.any():
        last = m
        p = np.pad(m, 1)
        m = m & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]
    ys, xs = np.nonzero(last)
    cy, cx = np.nonzero(mask)
    k = np.argmin((ys - cy.mean()) ** 2 + (xs - cx.mean()) ** 2)
    return float(xs[k]) + 0.5, float(ys[k]) + 0.5


def track_sequence(
    predictor: VideoPredictor, seq, out_dir: Path, prompt: str, memory: bool
) -> None:
    """Prompt frame 0 (mask or one click per object), propagate, write palette PNGs."""
    prompts, palette = collect_prompts(seq)
    session = predictor.init_session(seq.frames)
    merger = LabelMerger(0.0, non_overlap=True)
    try:
        for p in prompts:
            if prompt == "mask":
                predictor.add_mask(session, p.frame_idx, p.obj_id, p.mask)
            else:
                x, y = center_click(p.mask)
                predictor.add_points(session, p.frame_idx, p.obj_id, [[x, y]], [1])
        for result in predictor.propagate(session, start_frame_idx=0):
            t = result.frame_idx
            for row, obj_id in enumerate(result.obj_ids):
                merger.add(t, int(obj_id), result.masks[row, 0])
            labels = merger.pop(t, seq.frames.hw)
            write_palette_png(out_dir / seq.name / f"{seq.frame_names[t]}.png", labels, palette)
            if not memory:
                for track in session.objects.values():
                    track.non_cond_outputs.pop(t, None)
    finally:
        session.close()


def video_scores(
    model, root: Path, work: Path, prompt: str, memory: bool
) -> tuple[dict[str, float], list[float]]:
    """(the DAVIS global statistics with the J&F's standard error, each object's J&F)."""
    predictor = VideoPredictor(model, fill_hole_area=0)
    data = VosDataset.open(root)
    names = data.sequence_names("val")
    pred = work / f"pred_{prompt}_{'mem' if memory else 'nomem'}"
    for name in names:
        track_sequence(predictor, data.sequence(name), pred, prompt, memory)
    res = evaluate(root, pred, "davis", sequences=names)
    g = {k: round(100 * float(v), 1) for k, v in res.global_stats().items()}
    per = [100 * (o.j_stats.mean + o.f_stats.mean) / 2 for o in res.objects]
    g["J&F s.e."] = round(_se(per), 1)
    return g, [round(v, 2) for v in per]


def _se(values: list[float]) -> float:
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def compare(report: dict, other: dict) -> None:
    """Print each row's paired difference (this - other) over the same objects ± its s.e."""
    for look in ("train", "unseen"):
        ours, theirs = report[look].get("per_object"), other.get(look, {}).get("per_object")
        if not theirs:
            print(f"[{look}] the other file keeps no per-object scores: nothing to pair")
            continue
        print(f"[{look} look] difference to {other.get('checkpoint')}")
        for row, values in ours.items():
            if row not in theirs or len(theirs[row]) != len(values):
                print(f"  {row:20s} not comparable (other objects)")
                continue
            d = np.asarray(values) - np.asarray(theirs[row])
            print(f"  {row:20s} {d.mean():+.1f} ± {_se(list(d)):.1f}")


def image_ious(model, look: str, n: int) -> tuple[list[float], list[float]]:
    """Per object, in percent: (IoU of the best-scored mask, best IoU of the 3 masks)."""
    predictor = ImagePredictor(model)
    cfg = SynthConfig(look=look)
    ious, oracle = [], []
    for i in range(n):
        sample = make_image(split_seed(EVAL_SEED, f"image-{look}", i), cfg)
        predictor.set_image(sample.image)
        for obj in np.unique(sample.masks):
            if obj == 0:
                continue
            gt = sample.masks == obj
            if gt.sum() < 16:
                continue
            x, y = center_click(gt)
            out = predictor.predict(point_coords=[[x, y]], point_labels=[1], multimask_output=True)
            m = out.best()
            ious.append(100 * float((m & gt).sum() / max((m | gt).sum(), 1)))
            oracle.append(
                100 * float(max((c & gt).sum() / max((c | gt).sum(), 1) for c in out.masks))
            )
    return ious, oracle


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="official-format .pt (default: the bundled model)")
    ap.add_argument(
        "--config", help="official-layout model YAML of the checkpoint (default: sam2r_micro's)"
    )
    ap.add_argument("--videos", type=int, default=30, help="validation videos per look")
    ap.add_argument("--frames", type=int, default=16, help="frames per validation video")
    ap.add_argument("--images", type=int, default=50, help="validation images per look")
    ap.add_argument("--out", default=str(RESULTS), help="JSON file for the results")
    ap.add_argument("--against", help="an earlier results JSON: print paired differences")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    from sam2r.data.davis_io import write_dataset

    if args.config and not args.checkpoint:
        ap.error("--config needs --checkpoint")
    if args.checkpoint:
        from sam2r.configs.yaml import config_from_yaml

        variant = config_from_yaml(args.config) if args.config else "sam2r_micro"
        model = build_model(variant, checkpoint=args.checkpoint)
    else:
        from sam2r.build import from_pretrained

        model = from_pretrained("sam2r_micro")
    t0 = time.perf_counter()
    report: dict = {
        "checkpoint": args.checkpoint or "bundled sam2r_micro",
        "videos_per_look": args.videos,
        "frames_per_video": args.frames,
        "images_per_look": args.images,
        "metric": "DAVIS 2017 J&F (first and last frames not scored), percent",
    }
    with tempfile.TemporaryDirectory() as tmp:
        for look in ("train", "unseen"):
            root = Path(tmp) / look
            cfg = SynthConfig(num_frames=args.frames, look=look)
            write_dataset(root, 0, args.videos, cfg, seed=EVAL_SEED)
            rows: dict = {}
            per_object: dict[str, list[float]] = {}
            for name, prompt, memory in VIDEO_ROWS:
                rows[name], per_object[name] = video_scores(
                    model, root, Path(tmp) / look, prompt, memory
                )
            ious, oracle = image_ious(model, look, args.images)
            rows["image 1-click mIoU"] = round(float(np.mean(ious)), 1)
            # what a perfect IoU head would pick
            rows["image 1-click, best of 3 masks"] = round(float(np.mean(oracle)), 1)
            per_object["image 1-click mIoU"] = [round(v, 2) for v in ious]
            per_object["image 1-click, best of 3 masks"] = [round(v, 2) for v in oracle]
            print(f"[{look} look]")
            for k, v in rows.items():
                print(f"  {k:20s} {v if isinstance(v, float) else v.get('J&F-Mean')}  {v}")
            rows["per_object"] = per_object
            report[look] = rows
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report, indent=1)  # per-object lists of numbers on one line each
    text = re.sub(r"\[\s+([-\d.,\s]+?)\s+\]", lambda m: "[" + " ".join(m[1].split()) + "]", text)
    out.write_text(text + "\n")
    print(f"wrote {out}")
    if args.against:
        compare(report, json.loads(Path(args.against).read_text()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
