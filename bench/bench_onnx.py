"""Speed of the ONNX Runtime path against sam2r's torch path and the official code, same run.

    python bench/bench_onnx.py [--config sam2.1_hiera_t] [--frames 10] [--objects 1 3]
        [--threads 2] [--reference PYTHON] [--skip-reference] [--memory motion]

The model is the fixture config with the synthetic weights (the same numbers on every side),
exported once with `sam2r.onnx.export`. sam2r's torch path and its ONNX path run in one process
with their steps interleaved (image after image, frame after frame), so that a change of load
on a shared machine hits both alike; the official code runs in its own process (its venv). All
use the same number of threads (torch.set_num_threads / onnxruntime intra-op threads on the CPU
provider):

* image: seconds per image = set_image + one click predicted (median of 3 images);
* video: seconds per tracked frame, over the fixture clip played forward and back, with
  1 and 3 objects clicked on frame 0 (mean over the tracked frames after the first, as
  `bench_video.py`'s "clip" figure), hole filling off on every side.

Writes `bench/results/onnx.json` with the figures and the ratios onnx / sam2r-torch and
onnx / official, and the CPU they ran on. `--memory motion|distractor` tracks both sam2r sides
in that opt-in memory mode (the official code has none: no reference side) and writes
`bench/results/onnx_<mode>.json`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _common import DEFAULT_REF, FIXTURES, ROOT, cpu_info, run_worker
from bench_video import PROMPTS, write_clip

WORKER = r"""
import json, sys, time
side, cfg_json, onnx_dir, video, image, n_obj, threads, n_frames = sys.argv[1:9]
prompts = json.loads(sys.argv[9])[: int(n_obj)]
memory = sys.argv[10]
threads = int(threads)
import numpy as np
from PIL import Image
img = np.asarray(Image.open(image).convert("RGB"))
click, label = np.array([[148, 156]]), np.array([1])
runs = {}  # name -> (image predictor, video predictor, session, add, propagate)
if side == "pair":  # sam2r on torch and on ONNX Runtime in one process, steps interleaved
    import torch
    torch.set_num_threads(threads)
    torch.inference_mode().__enter__()
    from sam2r import config_from_yaml, ImagePredictor
    from sam2r.predictor.video import VideoPredictor
    from sam2r.model.sam2 import SAM2Model
    from sam2r.testing import synth_state_dict
    from sam2r.onnx import OnnxImagePredictor, OnnxVideoTracker
    from sam2r.onnx.runtime import OnnxModel
    model = SAM2Model(config_from_yaml(cfg_json)).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(synth_state_dict(shapes))
    onnx_model = OnnxModel(onnx_dir, num_threads=threads)
    sides = {
        "sam2r": (ImagePredictor(model), VideoPredictor(model, fill_hole_area=0, memory=memory)),
        "onnx": (
            OnnxImagePredictor(onnx_model),
            OnnxVideoTracker(onnx_model, fill_hole_area=0, memory=memory),
        ),
    }
    for name, (ip, vp) in sides.items():
        state = vp.init_session(video)
        runs[name] = (ip, vp, state, vp.add_points, vp.propagate)
else:
    import torch
    torch.set_num_threads(threads)
    torch.inference_mode().__enter__()
    from reference import build
    from sam2.sam2_image_predictor import SAM2ImagePredictor
    ip = SAM2ImagePredictor(build(cfg_json, kind="image"))
    s = ip.model.image_size  # its feature sizes are written for 1024 px
    ip._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    vp = build(cfg_json, kind="video", extra_overrides=["++model.fill_hole_area=0"])
    state = vp.init_state(video)
    runs["reference"] = (ip, vp, state, vp.add_new_points_or_box, vp.propagate_in_video)
out = {name: {"image_s": [], "frame_s": []} for name in runs}
for i in range(4):  # the first of each is a warm-up
    for name, (ip, *_) in runs.items():
        t0 = time.perf_counter()
        ip.set_image(img)
        ip.predict(point_coords=click, point_labels=label)
        if i:
            out[name]["image_s"].append(time.perf_counter() - t0)
gens = {}
for name, (ip, vp, state, add, prop) in runs.items():
    for o, p, l in prompts:
        add(state, 0, o, points=p, labels=l)
    gens[name] = prop(state, max_frame_num_to_track=int(n_frames))
for t in range(int(n_frames) + 1):
    for name, gen in gens.items():
        t0 = time.perf_counter()
        next(gen)
        if t:  # frame 0 is the prompted frame
            out[name]["frame_s"].append(time.perf_counter() - t0)
print(json.dumps(out))
"""


def export_model(cfg: str, out: Path) -> None:
    """The fixture config with the synthetic weights, exported to `out`."""
    from sam2r import config_from_yaml
    from sam2r.model.sam2 import SAM2Model
    from sam2r.onnx import export
    from sam2r.testing import synth_state_dict

    model = SAM2Model(config_from_yaml(cfg)).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(synth_state_dict(shapes))
    export(model, out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="sam2.1_hiera_t", help="fixture config name")
    ap.add_argument("--frames", type=int, default=10, help="frames tracked after frame 0")
    ap.add_argument("--objects", type=int, nargs="+", default=[1, 3])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2, help="rounds of every side (medians)")
    ap.add_argument("--reference", default=str(DEFAULT_REF))
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--memory", default="official", choices=("official", "motion", "distractor"))
    ap.add_argument("--out", help="JSON file (default bench/results/onnx[_<mode>].json)")
    args = ap.parse_args()
    suffix = "" if args.memory == "official" else f"_{args.memory}"
    out_path = Path(args.out or ROOT / "bench" / "results" / f"onnx{suffix}.json")
    cfg = str(FIXTURES / "configs" / f"{args.config}.json")
    sides = {"pair": sys.executable}  # sam2r's torch and ONNX paths, interleaved
    if not args.skip_reference and args.memory == "official":
        sides["reference"] = args.reference
    image = str(FIXTURES / "inputs" / "image_main.png")
    result: dict = {"config": args.config, "threads": args.threads, "memory": args.memory}
    result["cpu"] = cpu_info()
    with tempfile.TemporaryDirectory() as tmp:
        onnx_dir, clip = Path(tmp) / "onnx", Path(tmp) / "clip"
        export_model(cfg, onnx_dir)
        write_clip(clip, args.frames + 1)
        for n_obj in args.objects:
            names = ["sam2r", "onnx"] + (["reference"] if "reference" in sides else [])
            runs: dict[str, dict[str, list[float]]] = {
                name: {"image_s": [], "frame_s": []} for name in names
            }
            for r in range(args.rounds):  # sides alternate, so that load changes hit all
                for side, python in sides.items():
                    wargs = [cfg, str(onnx_dir), str(clip), image, str(n_obj), str(args.threads)]
                    wargs += [str(args.frames), json.dumps(PROMPTS), args.memory]
                    out = run_worker(side, python, WORKER, wargs)
                    for name, fig in out.items():
                        runs[name]["image_s"].append(statistics.median(fig["image_s"]))
                        runs[name]["frame_s"].append(statistics.mean(fig["frame_s"]))
                    print(f"round {r}, {n_obj} obj: {out}", file=sys.stderr)
            figs = {
                side: {k: statistics.median(v) for k, v in fig.items()}
                for side, fig in runs.items()
            }
            entry: dict = {"sides": figs, "rounds": runs}
            for what in ("image_s", "frame_s"):
                entry[f"{what}_onnx_over_sam2r"] = figs["onnx"][what] / figs["sam2r"][what]
                if "reference" in figs:
                    ref = figs["reference"][what]
                    entry[f"{what}_onnx_over_official"] = figs["onnx"][what] / ref
                    entry[f"{what}_sam2r_over_official"] = figs["sam2r"][what] / ref
            result[f"{n_obj}_objects"] = entry
    out_path.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
