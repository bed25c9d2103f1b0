"""Everything-mode benchmark: sam2r's MaskGenerator vs the official SAM2AutomaticMaskGenerator.

One 640x480 image (tests/fixtures/parity/inputs/image_main.png, embedded at 1024 px),
`sam2.1_hiera_t` with the synthetic weights of the parity fixtures, on the CPU. Each
implementation runs in its own process (A B A B ... rounds so machine drift hits both), and
the records of the two are compared (count, order, mask pixels, scores).

Settings (`--settings`, comma-separated):
* `default`: the official defaults (32x32 clicks, pred_iou_thresh 0.8, stability 0.95). With
  random weights no mask reaches IoU 0.8, so this times the encoder and the decoder on 1024
  clicks, and sam2r skips upsampling every mask (its filter runs before the upscaler);
* `permissive`: pred_iou_thresh 0, stability_score_thresh 0: all 3072 masks go through every
  step (upscaler, full-resolution stability, boxes, NMS), the worst case for sam2r's shortcuts.

    python bench/bench_amg.py [--rounds 3] [--settings default,permissive] [--threads 2]

Writes bench/results/amg.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from _common import DEFAULT_REF, FIXTURES, ROOT, run_worker  # a sibling file

SETTINGS = {
    "default": {},
    "permissive": {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
}

# One worker script for both sides: SIDE picks the implementation. Records go to an npz.
WORKER = r"""
import json, sys, time, gc
import numpy as np, torch
from PIL import Image
side, cfg_json, image_path, ckpt, threads, params_json, out_npz = sys.argv[1:8]
torch.set_num_threads(int(threads))
img = np.array(Image.open(image_path).convert("RGB"))
params = json.loads(params_json)
if side == "sam2r":
    from sam2r import build_model
    from sam2r.predictor.automatic import MaskGenerator
    model = build_model("sam2.1_hiera_t", checkpoint=ckpt)
    make = lambda **kw: MaskGenerator(model, output_mode="binary", **kw)
else:
    from reference import build
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    model = build(cfg_json, kind="image")
    make = lambda **kw: SAM2AutomaticMaskGenerator(model, output_mode="binary_mask", **kw)
make(points_per_side=2).generate(img)  # warm-up: allocator, kernels
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark: measure the work, not the model build
t = time.perf_counter()
records = make(**params).generate(img)
elapsed = time.perf_counter() - t
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
h, w = img.shape[:2]
masks = np.stack([r["segmentation"] for r in records]) if records else np.zeros((0, h, w), bool)
np.savez_compressed(
    out_npz,
    masks=np.packbits(masks.reshape(len(records), h * w), axis=1),
    iou=np.array([r["predicted_iou"] for r in records]),
    stability=np.array([r["stability_score"] for r in records]),
    points=np.array([r["point_coords"][0] for r in records]).reshape(-1, 2),
    bbox=np.array([r["bbox"] for r in records]).reshape(-1, 4),
)
print(json.dumps({"seconds": elapsed, "records": len(records), "peak_rss_mb": rss("VmHWM")}))
"""


def run_side(side: str, python: str, ckpt: str, params: dict, out: Path, threads: int) -> dict:
    config = str(FIXTURES / "configs" / "sam2.1_hiera_t.json")
    image = str(FIXTURES / "inputs" / "image_main.png")
    return run_worker(
        side, python, WORKER, [config, image, ckpt, str(threads), json.dumps(params), str(out)]
    )


def compare(ours: Path, ref: Path) -> dict:
    """How the two record lists differ (same count, order and masks expected)."""
    a, b = np.load(ours), np.load(ref)
    same_count = a["iou"].shape == b["iou"].shape
    out: dict = {"records": [int(a["iou"].shape[0]), int(b["iou"].shape[0])]}
    out["same_count"] = bool(same_count)
    if same_count and a["iou"].size:
        out["same_points_in_order"] = bool(np.array_equal(a["points"], b["points"]))
        ma, mb = np.unpackbits(a["masks"], axis=1), np.unpackbits(b["masks"], axis=1)
        out["max_pixel_disagreement"] = float((ma != mb).mean(axis=1).max())
        out["max_bbox_diff_px"] = float(np.abs(a["bbox"] - b["bbox"]).max())
        out["max_iou_diff"] = float(np.abs(a["iou"] - b["iou"]).max())
        out["max_stability_diff"] = float(np.nanmax(np.abs(a["stability"] - b["stability"])))
    out["same_records"] = bool(
        same_count
        and (
            a["iou"].size == 0
            or (
                out["same_points_in_order"]
                and out["max_pixel_disagreement"] <= 1e-4
                and out["max_bbox_diff_px"] <= 1
                and out["max_iou_diff"] <= 1e-4
                and out["max_stability_diff"] <= 1e-3
            )
        )
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--settings", default="default,permissive")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", default=str(DEFAULT_REF))
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "amg.json"))
    args = ap.parse_args()
    if not Path(args.reference).exists():
        raise SystemExit(
            f"no reference interpreter at {args.reference}: run `bash ../shared/reference/setup.sh`"
        )
    names = [s.strip() for s in args.settings.split(",") if s.strip()]
    unknown = set(names) - set(SETTINGS)
    if unknown:
        raise SystemExit(f"unknown settings {sorted(unknown)}: choose from {sorted(SETTINGS)}")

    from sam2r import build_model
    from sam2r.testing import synthetic_checkpoint

    summary: dict = {
        "model": "sam2.1_hiera_t",
        "image": "tests/fixtures/parity/inputs/image_main.png (640x480)",
        "threads": args.threads,
        "rounds": args.rounds,
        "settings": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = str(Path(tmp) / "sam2.1_hiera_t_synth.pt")
        synthetic_checkpoint(build_model("sam2.1_hiera_t", device="meta"), ckpt, seed=0)
        for name in names:
            runs: dict[str, list[dict]] = {"sam2r": [], "reference": []}
            files = {side: Path(tmp) / f"{name}_{side}.npz" for side in runs}
            for r in range(args.rounds):
                for side in ("sam2r", "reference") if r % 2 == 0 else ("reference", "sam2r"):
                    py = sys.executable if side == "sam2r" else args.reference
                    res = run_side(side, py, ckpt, SETTINGS[name], files[side], args.threads)
                    runs[side].append(res)
                    print(f"{name} round {r} {side}: {res['seconds']:.1f}s", file=sys.stderr)
            med = {s: statistics.median(x["seconds"] for x in runs[s]) for s in runs}
            summary["settings"][name] = {
                "params": SETTINGS[name],
                "seconds": med,
                "speedup_reference_over_sam2r": med["reference"] / med["sam2r"],
                "peak_rss_mb": {s: max(x["peak_rss_mb"] for x in runs[s]) for s in runs},
                "comparison": compare(files["sam2r"], files["reference"]),
                "raw": runs,
            }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(f"{'setting':12}{'sam2r':>10}{'official':>10}{'speedup':>9}  records (same?)")
    for name, s in summary["settings"].items():
        c = s["comparison"]
        print(
            f"{name:12}{s['seconds']['sam2r']:>9.1f}s{s['seconds']['reference']:>9.1f}s"
            f"{s['speedup_reference_over_sam2r']:>8.2f}x  {c['records'][0]} vs {c['records'][1]}"
            f" ({'same' if c['same_records'] else 'DIFFERENT'})"
        )


if __name__ == "__main__":
    main()
