"""What a person waits for in the studio, measured through its HTTP API on this CPU.

1. Click-to-mask latency (request sent -> masks received, JSON included): on an image, the first
   click (which encodes the image) and the next ones (the decoder only); on a video, a click on
   a frame not seen yet (encoder + memory-free decoder) and a second click there.
2. Frames per second streamed while tracking the example clip (one object), against the same
   propagation called directly on `VideoPredictor` in the same process: the ratio is what the
   studio's streaming (RLE encoding, label maps, server-sent events) costs.
3. Resident memory while tracking a long video (the example clip's frames repeated), sampled
   every 100 frames: it grows until the session's stored masks and memories reach their RAM
   budget (`--long-budget-mb`), then stays flat, whatever the video's length.

For the bundled `sam2r_micro` and for `sam2.1_hiera_t` at 1024 px (synthetic weights: the
timings are those of the real model, the masks are not). Writes `bench/results/studio.json`.

    python bench/bench_studio.py [--long-frames 600] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
from _common import cpu_info  # noqa: E402

EXAMPLES = REPO / "examples"
CLIP = EXAMPLES / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
GT = EXAMPLES / "synth_davis" / "Annotations" / "480p" / "val_00000" / "00000.png"
TINY = REPO / "tests" / "fixtures" / "parity" / "configs" / "sam2.1_hiera_t.json"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def load(name: str):  # noqa: ANN201
    if name == "sam2r_micro":
        from sam2r.build import from_pretrained

        return from_pretrained("sam2r_micro")
    from sam2r import config_from_yaml
    from sam2r.model.sam2 import SAM2Model
    from sam2r.testing import synth_state_dict

    model = SAM2Model(config_from_yaml(TINY)).eval()
    model.load_state_dict(
        synth_state_dict({k: tuple(v.shape) for k, v in model.state_dict().items()})
    )
    return model


class Server:
    def __init__(self, root: Path, model, workspace: Path, budget_mb: float = 64) -> None:  # noqa: ANN001
        import uvicorn

        from sam2r.studio import build_app

        self.app = build_app(root, model, workspace=workspace, state_budget_mb=budget_mb)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.srv = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.srv.run, daemon=True)

    def __enter__(self):  # noqa: ANN204
        import httpx

        self.thread.start()
        while not self.srv.started:
            time.sleep(0.05)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=600)
        return self

    def __exit__(self, *exc: object) -> None:
        self.http.close()
        self.srv.should_exit = True
        self.thread.join(10)

    def post(self, path: str, body: dict) -> tuple[dict, float]:
        t0 = time.perf_counter()
        r = self.http.post(path, json=body)
        dt = time.perf_counter() - t0
        r.raise_for_status()
        return r.json(), dt

    def track(self, sid: str, on_frame=None) -> tuple[int, float]:  # noqa: ANN001
        n, t_first, t_end = 0, None, None
        with self.http.stream("GET", f"/api/s/{sid}/track") as r:
            for line in r.iter_lines():
                if not line.startswith("data: "):
                    continue
                ev = json.loads(line[6:])
                if ev["type"] == "frame":
                    n += 1
                    if t_first is None:
                        t_first = time.perf_counter()
                    if on_frame is not None:
                        on_frame(ev)
                elif ev["type"] in ("done", "error", "cancelled"):
                    t_end = time.perf_counter()
                    assert ev["type"] == "done", ev
        return n, (n - 1) / (t_end - t_first)  # frames after the first (which is the prompt's)


def anchor(label: int) -> tuple[float, float]:
    from sam2r.io.draw import label_anchor

    x, y = label_anchor(np.array(Image.open(GT)) == label)
    return float(x), float(y)


def bench_model(name: str, root: Path, work: Path, rounds: int) -> dict:
    model = load(name)
    out: dict = {"model": name, "image_size": model.image_size}
    x, y = anchor(1)
    with Server(root, model, work / name) as s:
        firsts, nexts = [], []
        for _ in range(rounds):
            sid = s.post("/api/sessions", {"path": "shapes.png"})[0]["session"]
            s.post(f"/api/s/{sid}/objects", {})
            firsts.append(
                s.post(f"/api/s/{sid}/click", {"frame": 0, "obj": 1, "x": 148, "y": 156})[1]
            )
            for k in range(5):
                body = {"frame": 0, "obj": 1, "x": 150 + 20 * k, "y": 160, "label": k % 2}
                nexts.append(s.post(f"/api/s/{sid}/click", body)[1])
            s.http.delete(f"/api/s/{sid}")
        out["image_first_click_s"] = statistics.median(firsts)
        out["image_next_click_s"] = statistics.median(nexts)

        # the studio's stream and the same propagation called directly, alternating, so that
        # load from elsewhere on a shared CPU falls on both alike
        predictor = s.app.state.studio.video_predictor
        vfirst, vnext, fps, direct = [], [], [], []
        for _ in range(rounds):
            sid = s.post("/api/sessions", {"path": "clip"})[0]["session"]
            s.post(f"/api/s/{sid}/objects", {})
            vfirst.append(s.post(f"/api/s/{sid}/click", {"frame": 0, "obj": 1, "x": x, "y": y})[1])
            body = {"frame": 0, "obj": 1, "x": x + 3, "y": y + 3, "label": 1}
            vnext.append(s.post(f"/api/s/{sid}/click", body)[1])
            fps.append(s.track(sid)[1])
            s.http.delete(f"/api/s/{sid}")

            session = predictor.init_session(str(root / "clip"))
            predictor.add_points(session, 0, 1, [[x, y]], [1])
            predictor.add_points(session, 0, 1, [[x + 3, y + 3]], [1], clear_old_points=False)
            it = predictor.propagate(session)
            next(it)
            t0 = time.perf_counter()
            n = sum(1 for _ in it)
            direct.append(n / (time.perf_counter() - t0))
            session.close()
        out["video_click_new_frame_s"] = statistics.median(vfirst)
        out["video_next_click_s"] = statistics.median(vnext)
        out["studio_tracking_fps"] = statistics.median(fps)
    out["direct_tracking_fps"] = statistics.median(direct)
    out["studio_over_direct_time"] = out["direct_tracking_fps"] / out["studio_tracking_fps"]
    return out


def bench_long(root: Path, work: Path, frames: int, budget_mb: float) -> dict:
    long = root / "long"
    long.mkdir()
    src = sorted(CLIP.glob("*.jpg"))
    for i in range(frames):
        shutil.copy(src[i % len(src)], long / f"{i:05d}.jpg")
    model = load("sam2r_micro")
    x, y = anchor(1)
    samples: dict[int, float] = {}

    def sample(ev: dict) -> None:
        if ev["done"] % 100 == 0:
            samples[ev["done"]] = round(rss_mb(), 1)

    with Server(root, model, work / "long", budget_mb) as s:
        sid = s.post("/api/sessions", {"path": "long"})[0]["session"]
        s.post(f"/api/s/{sid}/objects", {})
        s.post(f"/api/s/{sid}/click", {"frame": 0, "obj": 1, "x": x, "y": y})
        before = rss_mb()
        n, fps = s.track(sid, sample)
    return {
        "frames": n,
        "fps": fps,
        "state_budget_mb": budget_mb,
        "rss_before_mb": round(before, 1),
        "rss_mb_by_frame": samples,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--long-frames", type=int, default=600)
    ap.add_argument("--long-budget-mb", type=float, default=16, help="the long video's budget")
    ap.add_argument("--skip-models", action="store_true", help="only the long video")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "results" / "studio.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        root, work = Path(tmp) / "root", Path(tmp) / "work"
        root.mkdir()
        shutil.copytree(CLIP, root / "clip")
        shutil.copy(EXAMPLES / "shapes.png", root / "shapes.png")
        results = {"cpu": cpu_info(), "threads": args.threads, "models": []}
        # first, before a larger model inflates the process's memory
        results["long_video"] = bench_long(root, work, args.long_frames, args.long_budget_mb)
        print(json.dumps(results["long_video"]), flush=True)
        for name in () if args.skip_models else ("sam2r_micro", "sam2.1_hiera_t"):
            r = bench_model(name, root, work, args.rounds)
            print(json.dumps(r), flush=True)
            results["models"].append(r)
    Path(args.out).write_text(json.dumps(results, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
