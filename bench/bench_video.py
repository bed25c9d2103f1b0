"""Video benchmark: sam2r vs the official SAM 2 video predictor in the same run.

1. Seconds per tracked frame for 1 and 3 objects (`sam2.1_hiera_t`, 1024 px, synthetic
   weights, a folder of JPEG frames, prompts on frame 0), three ways: over the first three
   tracked frames (the bank filling: they read 1, 2 and 3 memories, and the first pays every
   first-call cost), over the whole clip (the mean over every tracked frame, i.e. the
   propagation's time divided by its frames, which is what a user waits for), and once the
   bank is full (the median of frames 7 and later, which read the prompted frame and the
   6 latest, as every later frame of a video does).
   Each figure is measured twice: on the CPU as it is (`native`) and with torch, MKL and oneDNN
   capped at AVX2 (`avx2`, for both implementations), which is what a CPU without AVX-512 runs.
   With `--bf16`, sam2r's opt-in `precision="bf16"` is timed too (native only, where the CPU
   has native bfloat16), against the same official float32 figures.
2. Peak RSS of a whole session (open the video, prompt, propagate everything) for a 100- and a
   1,000-frame video. At 1024 px a 1,000-frame run takes hours on a 2-core CPU, so this part
   uses the `micro` config (256 px); what grows with the video length is the same.

Each measurement runs in its own process, the two implementations alternating. Hole filling is
off on both sides (the official code skips it on the CPU anyway). The output records the CPU
(model name, SIMD flags).

    python bench/bench_video.py [--frames 12] [--rounds 3] [--isa native,avx2] [--bf16]
        [--skip-speed] [--skip-rss] [--reference PYTHON]

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
from _common import (  # a sibling file
    AVX2_ENV,
    DEFAULT_REF,
    FIXTURES,
    ROOT,
    bf16_available,
    cpu_info,
    run_worker,
)
from PIL import Image

# the speed figures: tracked frames (1-based, inclusive) and the statistic over them
PHASES = {
    "first3": (1, 3, statistics.mean),  # the bank filling, first-call costs included
    "clip": (1, 10_000, statistics.mean),  # the whole propagation / its frames
    "full": (7, 10_000, statistics.median),
}
ISAS = {"native": {}, "avx2": AVX2_ENV}

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
precision = sys.argv[7]
if side == "sam2r":
    from sam2r import config_from_yaml
    from sam2r.predictor.video import VideoPredictor
    from sam2r.model.sam2 import SAM2Model
    from sam2r.testing import synth_state_dict
    model = SAM2Model(config_from_yaml(cfg_json)).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(synth_state_dict(shapes))
    pred = VideoPredictor(model, fill_hole_area=0, precision=precision)
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
print(json.dumps({"frame_s": times[1:], "init_s": init_s, "peak_rss_mb": peak,
                  "capability": torch.backends.cpu.get_cpu_capability()}))
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


def run(
    side: str,
    python: str,
    cfg: str,
    video: Path,
    n_obj: int,
    threads: int,
    env: dict | None = None,
    precision: str = "fp32",
) -> dict:
    args = [cfg, str(video), str(n_obj), str(threads), json.dumps(PROMPTS), precision]
    side_name = "reference" if side == "reference" else "sam2r"
    return run_worker(side_name, python, WORKER, args, env)


def speed(args: argparse.Namespace, sides: dict[str, str], clip: Path, tiny: str) -> dict:
    """Seconds per tracked frame of every side, for each ISA and object count (see PHASES)."""
    res: dict = {}
    for isa in args.isa.split(","):
        env = ISAS[isa]
        names = dict(sides)
        if args.bf16 and isa == "native" and bf16_available():
            names["sam2r_bf16"] = sides["sam2r"]
        res[isa] = {}
        for n_obj in (1, 3):
            per: dict[str, dict[str, list[float]]] = {p: {s: [] for s in names} for p in PHASES}
            rounds: dict[str, dict[str, list[float]]] = {
                p: {s: [] for s in names if s != "reference"} for p in PHASES
            }
            caps: dict[str, str] = {}
            for r in range(args.rounds):
                this: dict[str, dict[str, list[float]]] = {p: {} for p in PHASES}
                order = list(names) if r % 2 == 0 else list(names)[::-1]
                for side in order:
                    prec = "bf16" if side.endswith("bf16") else "fp32"
                    out = run(side, names[side], tiny, clip, n_obj, args.threads, env, prec)
                    caps[side] = out["capability"]
                    for phase, (lo, hi, _) in PHASES.items():
                        this[phase][side] = out["frame_s"][lo - 1 : hi]  # [0]: tracked frame 1
                        per[phase][side] += this[phase][side]
                    print(f"speed {isa} {n_obj} obj {side}: done", file=sys.stderr)
                for phase, t in this.items():
                    stat = PHASES[phase][2]  # median or mean
                    for side in rounds[phase]:
                        if t[side]:
                            rounds[phase][side].append(stat(t[side]) / stat(t["reference"]))
            for phase, p in per.items():
                if not p["sam2r"]:
                    continue
                stat = PHASES[phase][2]
                fig = {s: stat(v) for s, v in p.items()}
                entry = {
                    "s_per_frame": fig,
                    "statistic": stat.__name__,
                    "frames": PHASES[phase][:2],
                    "n_frames": len(p["sam2r"]),
                    "ratio": fig["sam2r"] / fig["reference"],
                    "ratio_per_round": rounds[phase]["sam2r"],
                }
                if "sam2r_bf16" in fig:
                    entry["ratio_bf16"] = fig["sam2r_bf16"] / fig["reference"]
                    entry["ratio_bf16_per_round"] = rounds[phase]["sam2r_bf16"]
                    entry["bf16_speedup_over_fp32"] = fig["sam2r"] / fig["sam2r_bf16"]
                res[isa][f"{n_obj}_obj_{phase}"] = entry
            res[isa]["capability"] = caps
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=12, help="frames tracked at 1024 px")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--isa", default="native,avx2", help="comma-separated: native, avx2")
    ap.add_argument("--bf16", action="store_true", help="also time sam2r's precision='bf16'")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reference", default=str(DEFAULT_REF))
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "video.json"))
    args = ap.parse_args()
    sides = {"sam2r": sys.executable, "reference": args.reference}
    tiny = str(FIXTURES / "configs" / "sam2.1_hiera_t.json")
    micro = str(FIXTURES / "configs" / "micro.json")
    res: dict = {"cpu": cpu_info(), "speed": {}, "rss": {}}
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_speed:
            clip = Path(tmp) / "short"
            write_clip(clip, args.frames + 1)
            res["speed"] = speed(args, sides, clip, tiny)
            res["speed"]["threads"] = args.threads
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
    for isa, figs in res["speed"].items():
        if not isinstance(figs, dict):
            continue
        for k, v in figs.items():
            if "s_per_frame" not in v:
                continue
            m = v["s_per_frame"]
            each = ", ".join(f"{x:.2f}" for x in v.get("ratio_per_round", []))
            line = (
                f"{isa} {k}: sam2r {m['sam2r']:.2f} s/frame, official {m['reference']:.2f}, "
                f"ratio {v['ratio']:.2f} (rounds: {each})"
            )
            if "sam2r_bf16" in m:
                line += f"; bf16 {m['sam2r_bf16']:.2f} s/frame, ratio {v['ratio_bf16']:.2f}"
            print(line)
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
