"""Saving a video session to a file and reopening it: prompts, objects and every stored output.

A saved session holds what the predictor would need to go on exactly where it stopped: each
object's clicks, boxes and masks per frame, its conditioning and tracked outputs (mask logits,
object pointer, object score, bfloat16 memory) in their memory-bank order, the pending outputs of
frames prompted since the last propagation, which frames were tracked in which direction, and
the memory position encoding. Under an opt-in memory mode (`memory="motion"` or
`"distractor"`) it also holds each object's `ObjectMemory`: the mode and its thresholds, the
admitted memories, pointers, distractor and lost frames (as references to the stored outputs; an
output no output dict holds any more is stored once beside them), the Kalman filter's state and
covariance and the lost-frame counter. Reopened over the same frames with the same model and
the same memory mode, the session gives the same masks and the same later tracking, bit for
bit (`tests/test_video_persist.py`).

Not saved: the frames of a video (the file names their count and size and the caller passes
the video again) and the cached image features (recomputed on demand, deterministically).

A live session (`init_stream`) is saved too, to stop a stream and resume it later or
elsewhere: its bank is already pruned to what later frames can read, so the file holds that,
the stream's `keep`, its frame count and size, and the last `keep` frames it still holds (uint8
RGB arrays, PIL frames converted), for prompts on them. Its size does not grow with the
length of the stream. It reopens with no video (`open_stream`); the next `track` gets index =
the saved count and gives the same masks as a stream that never stopped, bit for bit.

The file is a `torch.save` of plain tensors, numbers, strings, lists and dicts, read back with
`torch.load(weights_only=True)`: opening a session file never runs code from it. Object ids
must be ints or strings. Version 2 added the memory mode, version 3 live sessions; files of
versions 1 (always the official memory) and 2 still load. A `metadata` dict of JSON values
(an application's own notes: object names, colours, ...) travels with it.

What is left to others: the session's dataclasses (`session`), opening videos (`sam2r.io`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from sam2r.atomic import write_atomic
from sam2r.io.frames import LiveFrames
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video.ids import check_ids_to_save
from sam2r.predictor.video.kalman import BoxKalman
from sam2r.predictor.video.policy import (
    check_memory_settings,
    check_mode_to_save,
    memory_settings,
)
from sam2r.predictor.video.selection import MemorySelection, ObjectMemory
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

FORMAT = "sam2r.video_session"
VERSION = 3
READABLE = (1, 2, 3)  # version 1: no memory mode (always "official"); 1, 2: no live session
_OUTPUT_DICTS = ("cond_outputs", "non_cond_outputs", "temp_cond_outputs", "temp_non_cond_outputs")


def model_fingerprint(model: SAM2Model) -> str:
    """A short digest of a model's config and weights (to refuse a session of another model)."""
    digest = hashlib.sha1(repr(model.cfg).encode())
    with torch.no_grad():
        for name, p in model.state_dict().items():
            flat = p.detach().reshape(-1)
            head = flat[:4].double().cpu().tolist() if flat.numel() else []
            total = float(flat.double().sum()) if flat.is_floating_point() else 0.0
            digest.update(f"{name}{tuple(p.shape)}{head}{total:.10e}".encode())
    return digest.hexdigest()[:16]


def _cpu(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().to("cpu").clone()


def _state_dict(state: FrameState) -> dict[str, Tensor | None]:
    return {
        "low_res_masks": _cpu(state.low_res_masks),
        "obj_ptr": _cpu(state.obj_ptr),
        "object_score_logits": _cpu(state.object_score_logits),
        "maskmem_features": _cpu(state.maskmem_features),
    }


def _selection_entry(track: ObjectTrack, ms: ObjectMemory) -> dict[str, Any]:
    """An object's `ObjectMemory` as plain values.

    A remembered output is written as [frame, dict name, key] when one of the track's output
    dicts holds that very object (the usual case), else as [frame, "extra", i] into a list of
    outputs stored here once (e.g. a memory `clear_memory_around` dropped from the dicts).
    """
    where: dict[int, list[Any]] = {}
    for name in _OUTPUT_DICTS:
        for f, s in getattr(track, name).items():
            where.setdefault(id(s), [name, f])
    extra: list[dict[str, Tensor | None]] = []
    extra_at: dict[int, int] = {}

    def ref(frame_idx: int, state: FrameState) -> list[Any]:
        found = where.get(id(state))
        if found is not None:
            return [frame_idx, *found]
        if id(state) not in extra_at:
            extra_at[id(state)] = len(extra)
            extra.append(_state_dict(state))
        return [frame_idx, "extra", extra_at[id(state)]]

    kf = ms.kalman
    return {
        "memories": [ref(t, s) for t, s in ms.memories],
        "pointers": [ref(t, s) for t, s in ms.pointers],
        "distractors": [ref(t, s) for t, s in ms.distractors],
        "absent": [ref(t, s) for t, s in ms.absent],
        "extra": extra,
        "kalman": None
        if kf is None
        else {
            "mean": torch.from_numpy(np.array(kf.mean, np.float64)),
            "cov": torch.from_numpy(np.array(kf.cov, np.float64)),
            "updates": int(kf.updates),
        },
        "lost": int(ms.lost),
    }


def save_session(
    model: SAM2Model,
    session: VideoSession,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
    selection: MemorySelection | None = None,
) -> Path:
    """Write a session to `path` (see the module docstring); returns the path.

    `selection` is the memory mode of the predictor that tracked the session (None: official).
    """
    if not isinstance(session, VideoSession):
        raise TypeError(f"session must be a VideoSession, got {type(session).__name__}")
    tracks = session.objects.values()
    check_mode_to_save(tracks, selection is None, "predictor", "VideoPredictor(model, memory=...)")
    check_ids_to_save(session.objects)
    meta = json.dumps(metadata if metadata is not None else {})  # raises on non-JSON values
    objects = []
    for track in session.objects.values():
        entry: dict[str, Any] = {
            "obj_id": track.obj_id,
            "points": {f: [_cpu(p.coords), _cpu(p.labels)] for f, p in track.points.items()},
            "masks": {f: _cpu(m) for f, m in track.masks.items()},
            "tracked": dict(track.tracked),
        }
        for name in _OUTPUT_DICTS:
            entry[name] = {f: _state_dict(s) for f, s in getattr(track, name).items()}
        ms = track.selection
        entry["selection"] = None if ms is None else _selection_entry(track, ms)
        objects.append(entry)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.cfg.name,
        "fingerprint": model_fingerprint(model),
        "num_frames": session.num_frames,
        "hw": _hw(session),
        "live": _live_entry(session),
        "image_size": session.image_size,
        "maskmem_pos": _cpu(session.maskmem_pos),
        "memory": memory_settings(selection),
        "objects": objects,
        "metadata": meta,
    }
    return write_atomic(path, lambda fh: torch.save(payload, fh))


def _hw(session: VideoSession) -> list[int] | None:
    """[height, width] of the video (None: a stream that has no frame yet)."""
    return list(session.frames.hw) if session.num_frames else None


def _live_entry(session: VideoSession) -> dict[str, Any] | None:
    """A live session's stream: `keep` and the frames it holds (None for a video session)."""
    if not session.live:
        return None
    frames = session.frames
    assert isinstance(frames, LiveFrames)  # init_stream's
    held = {i: torch.from_numpy(np.ascontiguousarray(f)) for i, f in frames.held().items()}
    return {"keep": frames.keep, "frames": held}  # frames: index -> (H, W, 3) uint8


def open_stream(
    payload: dict[str, Any], path: str | os.PathLike[str], video: Any
) -> LiveFrames | None:
    """The resumed stream of a live session file (None for a video session's file), after
    checking that `video` was given for a video session's file and only for one."""
    live = payload.get("live")  # absent before version 3: a video session
    if live is None:
        if video is None:
            raise ValueError(
                f"{path} holds the session of a video ({payload['num_frames']} frames); "
                "pass that video again: load_session(path, video)"
            )
        return None
    if video is not None:
        raise ValueError(
            f"{path} holds a live session (saved from init_stream), which goes on with the "
            "frames given to track(); load it without a video: load_session(path)"
        )
    held = {int(i): f.numpy() for i, f in live["frames"].items()}
    if any(f.dtype != np.uint8 or [*f.shape] != [*payload["hw"], 3] for f in held.values()):
        raise ValueError(
            f"the session file {path} is damaged: a held frame is not a uint8 array of the "
            f"stream's size {payload['hw']} x 3"
        )
    return LiveFrames.resume(int(live["keep"]), int(payload["num_frames"]), held)


def read_payload(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The checked contents of a session file (ValueError for anything else)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such session file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
        raise ValueError(f"{path} is not a readable sam2r session file ({e})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a sam2r session file (saved by save_session)")
    if payload.get("version") not in READABLE:
        raise ValueError(
            f"{path} is a session file of version {payload.get('version')}; "
            f"this sam2r reads versions {', '.join(map(str, READABLE))}"
        )
    return payload


def saved_memory(payload: dict[str, Any]) -> dict[str, Any]:
    """The memory mode and thresholds a payload was saved with (version 1: official)."""
    saved = dict(payload.get("memory") or {"mode": "official"})
    if saved["mode"] != "official":
        saved.setdefault("absent_slots", 0)  # saved before the knob: no lost frames were kept
    return saved


def read_memory_mode(path: str | os.PathLike[str]) -> str:
    """The memory mode ("official", "motion" or "distractor") a session file was saved with."""
    return str(saved_memory(read_payload(path))["mode"])


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `metadata` dict saved with a session."""
    return json.loads(read_payload(path)["metadata"])


def _check_memory(payload: dict[str, Any], selection: MemorySelection | None) -> None:
    check_memory_settings(
        saved_memory(payload),
        memory_settings(selection),
        "predictor",
        "VideoPredictor(model, memory={mode})",
        "MemorySelection",
    )


def _restore_selection(
    track: ObjectTrack,
    saved: dict[str, Any],
    selection: MemorySelection,
    model: SAM2Model,
    session: VideoSession,
) -> None:
    """Rebuild an object's `ObjectMemory` (its output dicts are restored already)."""
    extra = [_frame_state(s, model, session) for s in saved["extra"]]

    def state(ref: list[Any]) -> tuple[int, FrameState]:
        frame_idx, name, key = ref
        if name == "extra":
            return int(frame_idx), extra[key]
        if name not in _OUTPUT_DICTS or key not in getattr(track, name):
            raise ValueError(
                f"the session file is damaged: object {track.obj_id!r} remembers frame "
                f"{frame_idx} in {name}[{key}], which the file does not hold"
            )
        return int(frame_idx), getattr(track, name)[key]

    ms = selection.state(track, model.cfg)  # new deques, bounded as the mode bounds them
    ms.memories.extend(state(r) for r in saved["memories"])
    ms.pointers.extend(state(r) for r in saved["pointers"])
    ms.distractors.extend(state(r) for r in saved["distractors"])
    ms.absent.extend(state(r) for r in saved.get("absent", ()))  # absent before absent_slots
    kf = saved["kalman"]
    if kf is not None:
        ms.kalman = BoxKalman(
            mean=kf["mean"].numpy().copy(), cov=kf["cov"].numpy().copy(), updates=kf["updates"]
        )
    ms.lost = int(saved["lost"])


def _frame_state(s: dict[str, Any], model: SAM2Model, session: VideoSession) -> FrameState:
    mem = s["maskmem_features"]
    return FrameState(
        low_res_masks=s["low_res_masks"].to(session.storage_device),
        obj_ptr=s["obj_ptr"].to(model.device),
        object_score_logits=s["object_score_logits"].to(model.device),
        maskmem_features=None if mem is None else mem.to(session.storage_device),
    ).attach(session.pool)


def restore_session(
    model: SAM2Model,
    session: VideoSession,
    payload: dict[str, Any],
    check_model: bool = True,
    selection: MemorySelection | None = None,
) -> VideoSession:
    """Fill a new, empty session (over the same video) with a saved payload.

    `selection` is the loading predictor's memory mode (None: official); a file saved with
    another mode or other thresholds is refused. A refused payload closes the session (its
    spill file), which nothing else holds yet.
    """
    try:
        return _restore(model, session, payload, check_model, selection)
    except Exception:
        session.close()
        raise


def _restore(
    model: SAM2Model,
    session: VideoSession,
    payload: dict[str, Any],
    check_model: bool,
    selection: MemorySelection | None,
) -> VideoSession:
    if session.num_frames != payload["num_frames"] or _hw(session) != payload["hw"]:
        raise ValueError(
            f"the session was saved on a video of {payload['num_frames']} frames of "
            f"{payload['hw'][1]}x{payload['hw'][0]}; the video given has {session.num_frames} "
            f"frames of {session.frames.hw[1]}x{session.frames.hw[0]}"
        )
    if session.image_size != payload["image_size"]:
        raise ValueError(
            f"the session was saved at image_size {payload['image_size']}, "
            f"the model runs at {session.image_size}"
        )
    if check_model and payload["fingerprint"] != model_fingerprint(model):
        raise ValueError(
            f"the session was saved with another model ({payload['model']}, weights "
            f"{payload['fingerprint']}); its memories only make sense to that model. "
            "Load it with the same model (or check_model=False to load it anyway)"
        )
    _check_memory(payload, selection)
    device = model.device
    pos = payload["maskmem_pos"]
    session.maskmem_pos = None if pos is None else pos.to(device)
    session.objects.clear()
    for entry in payload["objects"]:
        obj_id: Hashable = entry["obj_id"]
        track = ObjectTrack(obj_id)
        for f, (coords, labels) in entry["points"].items():
            track.points[f] = PointPrompt(coords.to(device), labels.to(device))
        track.masks.update({f: m.to(device) for f, m in entry["masks"].items()})
        track.tracked.update(entry["tracked"])
        for name in _OUTPUT_DICTS:
            target = getattr(track, name)
            for f, s in entry[name].items():
                target[f] = _frame_state(s, model, session)
        saved = entry.get("selection")
        if saved is not None:
            if selection is None:  # a mode's state in a file that says "official"
                raise ValueError(
                    f"the session file is damaged: object {obj_id!r} holds the state of an "
                    "opt-in memory mode but the file's memory is 'official'"
                )
            _restore_selection(track, saved, selection, model, session)
        session.objects[obj_id] = track
    return session
