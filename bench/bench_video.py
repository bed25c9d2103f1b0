"""Video benchmark: sam2r vs the official SAM 2 video predictor in the same run.

1. Seconds per tracked frame for 1 and 3 objects (`sam2.1_hiera_t`, 1024 px, synthetic
   weights, a folder of JPEG frames, prompts on frame 0), three ways: over the whole clip (the
   mean over every tracked frame, i.e. the propagation's time divided by its frames, which is
   what a user waits for), while the memory bank fills (the median of tracked frames 2-6,
   which read 2-6 memories; the first tracked frame is left out there as warm-up) and once it
   is full (the median of frames 7 and later, which read the prompted frame and the 6 latest,
   as every later frame of a video does).
2. Peak RSS of a whole session (open the video, prompt, propagate everything) for a 100- and a
   1,000-frame video. At 1024 px a 1,000-frame run takes hours on a 2-core CPU, so this part
   uses the `micro` config (256 px); what grows with the video length is the same.

Each measurement runs in its own process, the two implementations alternating. Hole filling is
off on both sides (the official code skips it on the CPU anyway).

    python bench/bench_video.py [--frames 12] [--rounds 2] [--skip-speed] [--skip-rss]
        [--reference PYTHON]

A part skipped keeps its results from the last run in the output file. Each speed figure also
lists the ratio of every round on its own (sam2r's figure over the official's, same round), to
show how much the shared machine moved.
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
from PIL import Image

# the speed figures: tracked frames (1-based, inclusive) and the statistic over them
PHASES = {
    "clip": (1, 10_000, statistics.mean),  # the whole propagation / its frames
    "filling": (2, 6, statistics.median),
    "full": (7, 10_000, statistics.median),
}

PROMPTS = [  # (obj_id, points, labels) on frame 0 of the fixture clip (320x240)
    (1, [[58, 84]], [1]),
    (2, [[180, 60]], [1]),
    (3, [[250, 180]], [1]),
]

WORKER = r"""
import json, sys, time
import torch
side, cfg_json, video, n_obj, threads = sys.argv[1:6]
torch.set_num_threads(int(threads))
prompts = json.loads(sys.argv[6])[: int(n_obj)]
if side == "sam2r":
    from sam2r import config_from_yaml
    from sam2r.predictor.video import VideoPredictor
    from sam2r.model.sam2 import SAM2Model
    from sam2r.testing import synth_state_dict
    model = SAM2Model(config_from_yaml(cfg_json)).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(synth_state_dict(shapes))
    pred = VideoPredictor(model, fill_hole_area=0)
    t0 = time.perf_counter()
    state = pred.init_session(video)
    add = lambda o, p, l: pred.add_points(state, 0, o, points=p, labels=l)
    prop = lambda: pred.propagate(state)
else:
    from reference import build
    pred = build(cfg_json, kind="video", extra_overrides=["++model.fill_hole_area=0"])
    t0 = time.perf_counter()
    state = pred.init_state(video)
    add = lambda o, p, l: pred.add_new_points_or_box(state, 0, o, points=p, labels=l)
    prop = lambda: pred.propagate_in_video(state)
init_s = time.perf_counter() - t0
with torch.inference_mode():
    for o, p, l in prompts:
        add(o, p, l)
    times, last = [], time.perf_counter()
    for _ in prop():
        now = time.perf_counter(); times.append(now - last); last = now
peak = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM"):
        peak = int(line.split()[1]) / 1024
print(json.dumps({"frame_s": times[1:], "init_s": init_s, "peak_rss_mb": peak}))
"""


def write_clip(folder: Path, n: int) -> None:
    """n JPEG frames: the fixture clip played forward and backward."""
    frames = [
        Image.open(p).convert("RGB") for p in sorted((FIXTURES / "inputs/video").glob("*.jpg"))
    ]
    cycle = frames + frames[-2:0:-1]
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        cycle[i % len(cycle)].save(folder / f"{i:05d}.jpg", quality=95)


def run(side: str, python: str, cfg: str, video: Path, n_obj: int, threads: int) -> dict:
    args = [cfg, str(video), str(n_obj), str(threads), json.dumps(PROMPTS)]
    return run_worker(side, python, WORKER, args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12, help="frames tracked at 1024 px")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", default=str(DEFAULT_REF))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "video.json"))
    args = ap.parse_args()
    sides = {"sam2r": sys.executable, "reference": args.reference}
    tiny = str(FIXTURES / "configs" / "sam2.1_hiera_t.json")
    micro = str(FIXTURES / "configs" / "micro.json")
    res: dict = {"speed": {}, "rss": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_speed:
            clip = Path(tmp) / "short"
            write_clip(clip, args.frames + 1)
            for n_obj in (1, 3):
                per: dict[str, dict[str, list[float]]] = {p: {s: [] for s in sides} for p in PHASES}
                rounds: dict[str, list[float]] = {p: [] for p in PHASES}  # each round's ratio
                for r in range(args.rounds):
                    this: dict[str, dict[str, list[float]]] = {p: {} for p in PHASES}
                    for side in sides if r % 2 == 0 else list(sides)[::-1]:
                        times = run(side, sides[side], tiny, clip, n_obj, args.threads)["frame_s"]
                        for phase, (lo, hi, _) in PHASES.items():
                            this[phase][side] = times[lo - 1 : hi]  # times[0]: tracked frame 1
                            per[phase][side] += this[phase][side]
                        print(f"speed {n_obj} obj {side}: done", file=sys.stderr)
                    for phase, t in this.items():
                        stat = PHASES[phase][2]  # median or mean
                        if t["sam2r"]:
                            rounds[phase].append(stat(t["sam2r"]) / stat(t["reference"]))
                for phase, p in per.items():
                    if not p["sam2r"]:
                        continue
                    stat = PHASES[phase][2]
                    fig = {s: stat(v) for s, v in p.items()}
                    res["speed"][f"{n_obj}_obj_{phase}"] = {
                        "s_per_frame": fig,
                        "statistic": stat.__name__,
                        "ratio": fig["sam2r"] / fig["reference"],
                        "ratio_per_round": rounds[phase],
                        "frames": len(p["sam2r"]),
                    }
        for n in () if args.skip_rss else (100, 1000):
            clip = Path(tmp) / f"clip{n}"
            write_clip(clip, n)
            res["rss"][f"{n}_frames"] = {
                s: run(s, py, micro, clip, 1, args.threads)["peak_rss_mb"]
                for s, py in sides.items()
            }
            print(f"rss {n}: done", file=sys.stderr)
    if not args.skip_rss:
        res["rss"]["growth_1000_over_100"] = {
            s: res["rss"]["1000_frames"][s] / res["rss"]["100_frames"][s] for s in sides
        }
    out = Path(args.out)
    if out.exists():  # a part skipped this time keeps its last results
        last = json.loads(out.read_text())
        for part, skipped in (("speed", args.skip_speed), ("rss", args.skip_rss)):
            if skipped and part in last:
                res[part] = last[part]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    for k, v in res["speed"].items():
        m = v["s_per_frame"]
        each = ", ".join(f"{x:.2f}" for x in v.get("ratio_per_round", []))
        print(
            f"{k}: sam2r {m['sam2r']:.2f} s/frame, official {m['reference']:.2f} s/frame, "
            f"ratio {v['ratio']:.2f} (rounds: {each})"
        )
    if "growth_1000_over_100" not in res["rss"]:
        return
    growth = res["rss"]["growth_1000_over_100"]
    for n in (100, 1000):
        r = res["rss"][f"{n}_frames"]
        print(
            f"peak RSS {n} frames (micro): sam2r {r['sam2r']:.0f} MB, "
            f"official {r['reference']:.0f} MB"
        )
    print(f"growth 1000/100: sam2r {growth['sam2r']:.2f}, official {growth['reference']:.2f}")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
