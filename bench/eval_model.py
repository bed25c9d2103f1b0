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
from sam2r.data.synthetic import SynthConfig, make_image, split_seed
from sam2r.eval.davis import evaluate
from sam2r.eval.vos_infer import LabelMerger, VosDataset, collect_prompts
from sam2r.io.masks import write_palette_png
from sam2r.predictor.image import ImagePredictor
from sam2r.predictor.video import VideoPredictor

RESULTS = Path(__file__).parent / "results" / "model_eval.json"
EVAL_SEED = 20261121  # the validation data: never drawn in training (other split names)


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


def video_scores(model, root: Path, work: Path, prompt: str, memory: bool) -> dict[str, float]:
    predictor = VideoPredictor(model, fill_hole_area=0)
    data = VosDataset.open(root)
    names = data.sequence_names("val")
    pred = work / f"pred_{prompt}_{'mem' if memory else 'nomem'}"
    for name in names:
        track_sequence(predictor, data.sequence(name), pred, prompt, memory)
    res = evaluate(root, pred, "davis", sequences=names)
    g = res.global_stats()
    return {k: round(100 * float(v), 1) for k, v in g.items()}


def image_miou(model, look: str, n: int) -> tuple[float, float]:
    """(mIoU of the best-scored mask, mIoU of the best of the 3 masks by their true IoU)."""
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
            ious.append((m & gt).sum() / max((m | gt).sum(), 1))
            oracle.append(max((c & gt).sum() / max((c | gt).sum(), 1) for c in out.masks))
    return round(100 * float(np.mean(ious)), 1), round(100 * float(np.mean(oracle)), 1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", help="official-format .pt (default: the bundled model)")
    ap.add_argument("--videos", type=int, default=30, help="validation videos per look")
    ap.add_argument("--frames", type=int, default=16, help="frames per validation video")
    ap.add_argument("--images", type=int, default=50, help="validation images per look")
    ap.add_argument("--out", default=str(RESULTS), help="JSON file for the results")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    from sam2r.data.davis_io import write_dataset

    if args.checkpoint:
        model = build_model("sam2r_micro", checkpoint=args.checkpoint)
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
            rows = {
                "mask": video_scores(model, root, Path(tmp) / look, "mask", True),
                "click": video_scores(model, root, Path(tmp) / look, "click", True),
                "mask, no memory": video_scores(model, root, Path(tmp) / look, "mask", False),
                "click, no memory": video_scores(model, root, Path(tmp) / look, "click", False),
            }
            miou, oracle = image_miou(model, look, args.images)
            rows["image 1-click mIoU"] = miou
            rows["image 1-click, best of 3 masks"] = oracle  # what a perfect IoU head would pick
            report[look] = rows
            print(f"[{look} look]")
            for k, v in rows.items():
                print(f"  {k:20s} {v if isinstance(v, float) else v.get('J&F-Mean')}  {v}")
    report["seconds"] = round(time.perf_counter() - t0, 1)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
