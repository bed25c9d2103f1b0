"""How close the opt-in bf16 mode comes to float32: mask IoU per frame and object on the parity
video (the fixture clip, synthetic weights), for every parity config.

The session is the first part of the parity fixtures' `main` session: object 1 from a click
and object 2 from a box on frame 0, then propagation through the clip. Both runs use the same
model; bf16 is forced (`Precision("bf16", "cpu")`), so this runs on any CPU, slowly where
bfloat16 is emulated. Also times both modes on the way (informative only: the speed figures
are `bench_video.py --bf16`'s).

    python bench/bf16_accuracy.py [--configs micro,sam2.1_hiera_t,sam2_hiera_t]

Writes bench/results/bf16_accuracy.json and prints one line per config.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from _common import FIXTURES, ROOT, cpu_info  # a sibling file

sys.path.insert(0, str(ROOT / "tests"))
from conftest import synthetic_model  # noqa: E402  (the fixtures' synthetic weights)

from sam2r.predictor.precision import Precision  # noqa: E402
from sam2r.predictor.video import VideoPredictor  # noqa: E402

VIDEO = str(FIXTURES / "inputs" / "video")


def track(pred: VideoPredictor) -> tuple[dict[int, np.ndarray], float]:
    """Every frame's (num_obj, H, W) boolean masks, and the propagation's seconds per frame."""
    session = pred.init_session(VIDEO)
    pred.add_points(session, 0, 1, points=[[58, 84]], labels=[1])
    pred.add_points(session, 0, 2, box=[196, 34, 271, 106])
    out = {}
    t0 = time.perf_counter()
    for r in pred.propagate(session):
        out[r.frame_idx] = (r.masks[:, 0] > 0).numpy()
    return out, (time.perf_counter() - t0) / len(out)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", default="micro,sam2.1_hiera_t,sam2_hiera_t")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "bf16_accuracy.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res: dict = {"cpu": cpu_info(), "configs": {}}
    for name in args.configs.split(","):
        model = synthetic_model(name)
        fp32, t32 = track(VideoPredictor(model, fill_hole_area=0))
        bf16, t16 = track(VideoPredictor(model, fill_hole_area=0, precision=Precision("bf16")))
        ious = {
            f"{t}:{o + 1}": iou(fp32[t][o], bf16[t][o]) for t in fp32 for o in range(len(fp32[t]))
        }
        values = list(ious.values())
        res["configs"][name] = {
            "mean_iou": float(np.mean(values)),
            "min_iou": float(np.min(values)),
            "iou_per_frame_and_object": ious,
            "s_per_frame": {"fp32": t32, "bf16": t16},
        }
        print(
            f"{name}: mask IoU bf16 vs fp32 mean {np.mean(values):.4f}, min {np.min(values):.4f} "
            f"over {len(values)} frame-objects; s/frame fp32 {t32:.2f}, bf16 {t16:.2f}"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
