"""Image-path benchmark: sam2r vs the official SAM 2 in the same run.

Times `set_image` and `predict` (one click, multimask) for `sam2.1_hiera_t` at 1024 px on the
CPU, with the same synthetic weights and image, each implementation in its own process
(A B A B ... rounds so machine drift hits both), and measures each process's peak RSS during the
timed work (the high-water mark is reset after the model is built).

    python bench/bench_image.py [--rounds 3] [--reference PYTHON] [--threads 2] [--bf16]

`--bf16` also times sam2r's `precision="bf16"` (where the CPU accepts it).

PYTHON is the interpreter of the official implementation's venv
(`bash ../shared/reference/setup.sh` prints it). Writes bench/results/image.json and prints a
table; the README quotes it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (  # a sibling file
    DEFAULT_REF,
    FIXTURES,
    ROOT,
    bf16_available,
    cpu_info,
    run_worker,
)

# One worker script for both sides: SIDE picks the implementation.
WORKER = r"""
import json, os, sys, time, gc
import numpy as np, torch
from PIL import Image
side, cfg_json, image_path, ckpt, n_set, n_pred, threads, precision = sys.argv[1:9]
torch.set_num_threads(int(threads))
img = np.array(Image.open(image_path).convert("RGB"))
if side == "sam2r":
    from sam2r import build_model, ImagePredictor
    model = build_model("sam2.1_hiera_t", checkpoint=ckpt)
    pred = ImagePredictor(model, precision=precision)
    def predict():
        return pred.predict(point_coords=[[148, 156]], point_labels=[1], multimask_output=True)
else:
    from reference import build
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    pred = SAM2ImagePredictor(build(cfg_json, kind="image"))
    def predict():
        return pred.predict(point_coords=np.array([[148, 156]]), point_labels=np.array([1]),
                            multimask_output=True)
pred.set_image(img); predict()  # warm-up
gc.collect()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset the peak-RSS mark: measure the work, not the model build
def rss(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) / 1024
t_set, t_pred = [], []
for _ in range(int(n_set)):
    t = time.perf_counter(); pred.set_image(img); t_set.append(time.perf_counter() - t)
for _ in range(int(n_pred)):
    t = time.perf_counter(); predict(); t_pred.append(time.perf_counter() - t)
print(json.dumps({"set_image": t_set, "predict": t_pred, "peak_rss_mb": rss("VmHWM"),
                  "rss_mb": rss("VmRSS")}))
"""


def run_side(side: str, python: str, ckpt: str, args: argparse.Namespace) -> dict:
    config = str(FIXTURES / "configs" / "sam2.1_hiera_t.json")
    image = str(FIXTURES / "inputs" / "image_main.png")
    precision = "bf16" if side == "sam2r_bf16" else "fp32"
    counts = [str(args.n_set), str(args.n_pred), str(args.threads), precision]
    name = "reference" if side == "reference" else "sam2r"
    return run_worker(name, python, WORKER, [config, image, ckpt, *counts])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n-set", type=int, default=3)
    ap.add_argument("--n-pred", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", default=str(DEFAULT_REF))
    ap.add_argument("--bf16", action="store_true", help="also time sam2r's precision='bf16'")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "image.json"))
    args = ap.parse_args()
    if not Path(args.reference).exists():
        raise SystemExit(
            f"no reference interpreter at {args.reference}: run `bash ../shared/reference/setup.sh`"
        )

    from sam2r import build_model
    from sam2r.testing import synthetic_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        ckpt = str(Path(tmp) / "sam2.1_hiera_t_synth.pt")
        synthetic_checkpoint(build_model("sam2.1_hiera_t", device="meta"), ckpt, seed=0)
        runs: dict[str, list[dict]] = {"sam2r": [], "reference": []}
        if args.bf16 and bf16_available():
            runs["sam2r_bf16"] = []
        for r in range(args.rounds):
            for side in list(runs) if r % 2 == 0 else list(runs)[::-1]:
                py = args.reference if side == "reference" else sys.executable
                runs[side].append(run_side(side, py, ckpt, args))
                print(f"round {r} {side}: done", file=sys.stderr)

    def med(side: str, key: str) -> float:
        return statistics.median(x for run in runs[side] for x in run[key])

    def peak(side: str) -> float:
        return max(run["peak_rss_mb"] for run in runs[side])

    summary = {
        "cpu": cpu_info(),
        "model": "sam2.1_hiera_t",
        "image_size": 1024,
        "threads": args.threads,
        "rounds": args.rounds,
        "set_image_s": {s: med(s, "set_image") for s in runs},
        "predict_s": {s: med(s, "predict") for s in runs},
        "peak_rss_mb_during_work": {s: peak(s) for s in runs},
    }
    summary["ratios_sam2r_over_reference"] = {
        "set_image": summary["set_image_s"]["sam2r"] / summary["set_image_s"]["reference"],
        "predict": summary["predict_s"]["sam2r"] / summary["predict_s"]["reference"],
        "peak_rss": peak("sam2r") / peak("reference"),
    }
    if "sam2r_bf16" in runs:
        summary["ratios_sam2r_over_reference"]["set_image_bf16"] = (
            summary["set_image_s"]["sam2r_bf16"] / summary["set_image_s"]["reference"]
        )
    summary["raw"] = runs
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=1))
    r = summary["ratios_sam2r_over_reference"]
    print(f"{'':12}{'sam2r':>10}{'official':>10}{'ratio':>8}")
    for key, label in (("set_image_s", "set_image"), ("predict_s", "predict")):
        v = summary[key]
        print(f"{label:12}{v['sam2r']:>9.3f}s{v['reference']:>9.3f}s{r[label]:>8.2f}")
    if "sam2r_bf16" in runs:
        v = summary["set_image_s"]["sam2r_bf16"]
        print(f"{'set_image bf16':12}{v:>9.3f}s{'':>10}{r['set_image_bf16']:>8.2f}")
    p = summary["peak_rss_mb_during_work"]
    print(f"{'peak RSS':12}{p['sam2r']:>8.0f}MB{p['reference']:>8.0f}MB{r['peak_rss']:>8.2f}")


if __name__ == "__main__":
    main()
