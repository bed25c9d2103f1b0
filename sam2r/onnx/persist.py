"""Saving an ONNX tracker session to a file and reopening it, with numpy and json only (no
torch, no pickle).

The file holds what `OnnxVideoTracker` needs to go on exactly where it stopped: each object's
clicks, boxes and masks per frame, every stored output (mask logits, object pointer, object
score, bfloat16 memory) in its output dict and in insertion order (the order conditioning
frames are read), the pending outputs of prompts made since the last propagation, which frames
were tracked in which direction, the memory position encoding and, under an opt-in memory mode
("motion", "distractor"), each object's `ObjectMemory` (admitted memories, pointers,
distractor and lost frames, the Kalman filter, the lost-frame count). Every output is stored
once and referenced by number, so an output held in two places (a dict and the mode's memory)
is one object again after loading. Reopened with the same exported model and memory mode, the
session gives the same masks and the same later tracking, bit for bit
(`tests/test_onnx_persist.py`).

A live session (`init_stream`) saves its pruned bank, the stream's `keep`, its frame count and
size and the frames it still holds (uint8 RGB), so the file does not grow with the stream; it
reopens without a video and the next `track` goes on at the saved count.

The file is one `np.savez` archive: a `header` entry (JSON bytes: format "sam2r.onnx_session",
version 2, the model's identity, the memory mode and its thresholds, the video's frame count and
size, the objects and where their arrays are) and one named array per tensor. It is read with
`np.load(allow_pickle=False)`: opening a session file never runs code from it. Object ids must
be ints or strings. It is not the torch predictor's format (`sam2r.predictor.video.persist`,
a `torch.save`); the two do not read each other's files.

The model's identity is its name, a digest of its config and of the trained constants the
manifest carries, and a digest of its four graph files, so that a session is refused by a
tracker on an export of other weights (a fine-tuned checkpoint exported with the same config):
its memories were made by the other weights and would be tracked on silently. The graph digests
are the files' sha256, hashed once per model on the first save or load (`OnnxModel.graph_sha256`)
and checked against the ones the exporter wrote into the manifest (an older export's has none).
Files of version 1 (saved before the identity covered the graphs) still load: they are checked
on the name, config and constants alone, as they were then, since they cannot tell the weights
apart; saved again, they become version 2.

Not saved: the frames of a video (the caller passes the video again; its frame count and size
are checked) and the cached image features (recomputed on demand, deterministically). What is
left to others: the session's dataclasses (`sam2r.onnx.session`, `.bank`), the tracker that
runs them (`sam2r.onnx.tracker`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam2r.atomic import write_atomic
from sam2r.onnx.bank import State, Track
from sam2r.onnx.export_names import GRAPHS
from sam2r.onnx.frames import LiveFrames
from sam2r.onnx.runtime import OnnxModel
from sam2r.onnx.session import OnnxSession
from sam2r.predictor.video.ids import check_ids_to_save
from sam2r.predictor.video.kalman import BoxKalman
from sam2r.predictor.video.policy import (
    MemoryPolicy,
    check_memory_settings,
    check_mode_to_save,
    memory_settings,
)

FORMAT = "sam2r.onnx_session"
VERSION = 2
READS = (1, 2)  # version 1: the identity has no `weights` (the graphs were not hashed)
_OUTPUT_DICTS = ("cond_outputs", "non_cond_outputs", "temp_cond_outputs", "temp_non_cond_outputs")
_MODE_DEQUES = ("memories", "pointers", "distractors", "absent")
_HEADER_KEYS = {"identity", "memory", "num_frames", "hw", "live", "objects", "metadata"}


def model_identity(model: OnnxModel) -> dict[str, str]:
    """The exported model's name and digests of what makes its numbers: `digest`, of its config
    and the trained constants the manifest carries (the no-object pointer, the mask
    downsampler), and `weights`, of its four graph files (`OnnxModel.graph_sha256`), so an
    export of other weights or another config is told apart; two exports of one model agree
    (the exporter writes the same bytes)."""
    m = model.manifest
    keep = {k: m.get(k) for k in ("model", "image_size", "hidden_dim", "mem_dim", "config")}
    keep["constants"] = m.get("constants")
    text = json.dumps(keep, sort_keys=True, default=str)
    graphs = model.graph_sha256()
    weights = "\n".join(f"{name} {graphs[name]}" for name in GRAPHS)
    return {
        "model": str(m.get("model")),
        "digest": hashlib.sha1(text.encode()).hexdigest()[:16],
        "weights": hashlib.sha1(weights.encode()).hexdigest()[:16],
    }


def _describe(identity: dict[str, str]) -> str:
    text = f"{identity.get('model')}, digest {identity.get('digest')}"
    return text + (f", weights {identity['weights']}" if "weights" in identity else "")


# ----------------------------------------------------------------------------------------------
# saving
# ----------------------------------------------------------------------------------------------
class _Writer:
    """Collects named arrays; each distinct `State` is stored once and referenced by number."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.states: dict[int, int] = {}  # id(state) -> number
        self.scores: list[float] = []

    def put(self, name: str, a: np.ndarray) -> str:
        self.arrays[name] = np.ascontiguousarray(a)
        return name

    def state(self, s: State) -> int:
        k = self.states.get(id(s))
        if k is None:
            k = self.states[id(s)] = len(self.scores)
            self.scores.append(float(s.score))
            self.put(f"state{k}.low_res", s.low_res)
            self.put(f"state{k}.obj_ptr", s.obj_ptr)
            if s.maskmem is not None:
                self.put(f"state{k}.maskmem", s.maskmem)
        return k


def _track_entry(w: _Writer, i: int, track: Track) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "obj_id": track.obj_id,
        "points": [
            [f, w.put(f"obj{i}.points{f}.coords", c), w.put(f"obj{i}.points{f}.labels", lab)]
            for f, (c, lab) in track.points.items()
        ],
        "masks": [[f, w.put(f"obj{i}.mask{f}", m)] for f, m in track.masks.items()],
        "tracked": [[f, bool(r)] for f, r in track.tracked.items()],
    }
    for name in _OUTPUT_DICTS:
        entry[name] = [[f, w.state(s)] for f, s in getattr(track, name).items()]
    ms = track.selection
    if ms is None:
        entry["selection"] = None
    else:
        sel: dict[str, Any] = {
            n: [[t, w.state(s)] for t, s in getattr(ms, n)] for n in _MODE_DEQUES
        }
        kf = ms.kalman
        sel["kalman"] = None
        if kf is not None:
            w.put(f"obj{i}.kalman.mean", np.asarray(kf.mean, np.float64))
            w.put(f"obj{i}.kalman.cov", np.asarray(kf.cov, np.float64))
            sel["kalman"] = {"updates": int(kf.updates)}
        sel["lost"] = int(ms.lost)
        entry["selection"] = sel
    return entry


def save_session(
    model: OnnxModel,
    policy: MemoryPolicy | None,
    session: OnnxSession,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write `session` to `path` (see the module docstring); returns the path.

    Args:
        model: the tracker's exported model (its identity is recorded).
        policy: the tracker's memory mode (None: official).
        session: from `init_session` or `init_stream`.
        path: the file to write (replaced atomically: written under a temporary name first).
        metadata: JSON values of the application's own (names, colours, ...).
    """
    if not isinstance(session, OnnxSession):
        raise TypeError(f"session must be an OnnxSession, got {type(session).__name__}")
    tracks = session.objects.values()
    check_mode_to_save(tracks, policy is None, "tracker", "OnnxVideoTracker(..., memory=...)")
    check_ids_to_save(session.objects)
    meta = json.dumps(metadata if metadata is not None else {})  # raises on non-JSON values
    w = _Writer()
    objects = [_track_entry(w, i, t) for i, t in enumerate(session.objects.values())]
    live = None
    if session.live:
        frames = session.frames
        assert isinstance(frames, LiveFrames)
        held = []
        for f, im in sorted(frames.recent.items()):
            rgb = np.asarray(im.convert("RGB")) if isinstance(im, Image.Image) else im
            held.append([f, w.put(f"frame{f}", rgb)])
        live = {"keep": int(frames.keep), "frames": held}
    if session.maskmem_pos is not None:
        w.put("maskmem_pos", session.maskmem_pos)
    w.put("scores", np.array(w.scores, np.float64))
    header = {
        "format": FORMAT,
        "version": VERSION,
        "identity": model_identity(model),
        "memory": memory_settings(policy),
        "num_frames": int(session.num_frames),
        "hw": [int(x) for x in session.frames.hw],
        "live": live,
        "objects": objects,
        "metadata": meta,
    }
    w.put("header", np.frombuffer(json.dumps(header).encode(), np.uint8))
    # a file object: np.savez would add ".npz" to a name
    return write_atomic(path, lambda fh: np.savez(fh, **w.arrays))


# ----------------------------------------------------------------------------------------------
# loading
# ----------------------------------------------------------------------------------------------
def read_file(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The checked header and the arrays of a session file (ValueError for anything else)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such session file")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        header = json.loads(arrays.pop("header").tobytes().decode())
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{path} is not a readable sam2r ONNX session file ({e})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a sam2r ONNX session file (saved by OnnxVideoTracker.save_session)"
        )
    if header.get("version") not in READS:
        raise ValueError(
            f"{path} is an ONNX session file of version {header.get('version')}; "
            f"this sam2r reads versions {', '.join(map(str, READS))}"
        )
    missing = sorted(_HEADER_KEYS - header.keys())
    if missing or "scores" not in arrays:
        raise ValueError(f"the session file {path} is damaged: it lacks {missing or 'scores'}")
    return header, arrays


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `metadata` dict saved with a session."""
    return json.loads(read_file(path)[0]["metadata"])


def check_file(
    header: dict[str, Any], path: str | os.PathLike[str], model: OnnxModel, policy: Any, video: Any
) -> None:
    """Refuse a file of another model (its name, config, constants or graph weights differ) or
    memory mode, and a video given to a live file or missing for a video file, with a message
    saying what differs or which call to make. A version-1 file, saved before the identity
    covered the graphs' weights, is checked on the rest of it (see the module docstring)."""
    saved, ours = header["identity"], model_identity(model)
    if header["version"] == 1:
        ours.pop("weights")
    if saved != ours:
        raise ValueError(
            f"{path} was saved with another model ({_describe(saved)}; this tracker runs "
            f"{_describe(ours)}); its memories only make sense to that model. Load it with a "
            "tracker of the same exported model"
        )
    check_memory_settings(
        header["memory"],
        memory_settings(policy),
        "tracker",
        "OnnxVideoTracker(..., memory={mode})",
        "MemoryPolicy",
    )
    if header["live"] is None and video is None:
        raise ValueError(
            f"{path} holds the session of a video ({header['num_frames']} frames); "
            "pass that video again: load_session(path, video)"
        )
    if header["live"] is not None and video is not None:
        raise ValueError(
            f"{path} holds a live session (saved from init_stream), which goes on with the "
            "frames given to track(); load it without a video: load_session(path)"
        )


def check_video(header: dict[str, Any], session: OnnxSession) -> None:
    """The video given to a video file's `load_session` must be the saved one's shape."""
    n, hw = header["num_frames"], header["hw"]
    if session.num_frames != n or list(session.frames.hw) != hw:
        got = session.frames.hw
        raise ValueError(
            f"the session was saved on a video of {n} frames of {hw[1]}x{hw[0]}; the video "
            f"given has {session.num_frames} frames of {got[1]}x{got[0]}"
        )


def live_frames(header: dict[str, Any], arrays: dict[str, np.ndarray]) -> LiveFrames:
    """The resumed stream of a live file: `keep`, count, size and the held frames."""
    live = header["live"]
    frames = LiveFrames(int(live["keep"]))
    frames.count = int(header["num_frames"])
    frames.hw = (int(header["hw"][0]), int(header["hw"][1]))
    for f, name in live["frames"]:
        a = arrays[name]
        if a.dtype != np.uint8 or list(a.shape) != [*frames.hw, 3]:
            raise ValueError(
                f"the session file is damaged: held frame {f} is not a uint8 array of the "
                f"stream's size {list(frames.hw)} x 3"
            )
        frames.recent[int(f)] = a
    return frames


def restore(
    session: OnnxSession,
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    policy: MemoryPolicy | None,
    cfg: dict[str, Any],
) -> OnnxSession:
    """Fill a new, empty session with the objects of a checked file (ValueError if damaged)."""
    try:
        return _restore(session, header, arrays, policy, cfg)
    except (KeyError, IndexError, TypeError) as e:
        raise ValueError(f"the session file is damaged: {type(e).__name__} {e}") from None


def _restore(
    session: OnnxSession,
    header: dict[str, Any],
    arrays: dict[str, np.ndarray],
    policy: MemoryPolicy | None,
    cfg: dict[str, Any],
) -> OnnxSession:
    scores = arrays["scores"]
    states: dict[int, State] = {}

    def state(k: int) -> State:
        if k not in states:
            mem = arrays.get(f"state{k}.maskmem")
            states[k] = State(
                arrays[f"state{k}.low_res"], arrays[f"state{k}.obj_ptr"], float(scores[k]), mem
            )
        return states[k]

    session.maskmem_pos = arrays.get("maskmem_pos")
    session.objects.clear()
    for i, entry in enumerate(header["objects"]):
        obj_id: Hashable = entry["obj_id"]
        track = Track(obj_id)
        for f, c, lab in entry["points"]:
            track.points[int(f)] = (arrays[c], arrays[lab])
        track.masks.update({int(f): arrays[m] for f, m in entry["masks"]})
        track.tracked.update({int(f): bool(r) for f, r in entry["tracked"]})
        for name in _OUTPUT_DICTS:
            getattr(track, name).update({int(f): state(k) for f, k in entry[name]})
        sel = entry["selection"]
        if sel is not None:
            if policy is None:
                raise ValueError(
                    f"the session file is damaged: object {obj_id!r} holds the state of an "
                    "opt-in memory mode but the file's memory is 'official'"
                )
            ms = policy.new_memory(int(cfg["num_maskmem"]), int(cfg["max_obj_ptrs_in_encoder"]))
            for n in _MODE_DEQUES:
                getattr(ms, n).extend((int(t), state(k)) for t, k in sel[n])
            if sel["kalman"] is not None:
                ms.kalman = BoxKalman(
                    mean=arrays[f"obj{i}.kalman.mean"].copy(),
                    cov=arrays[f"obj{i}.kalman.cov"].copy(),
                    updates=int(sel["kalman"]["updates"]),
                )
            ms.lost = int(sel["lost"])
            track.selection = ms
        session.objects[obj_id] = track
    return session
