"""Saving a video session to a file and reopening it: prompts, objects and every stored output.

A saved session holds what the predictor would need to go on exactly where it stopped: each
object's clicks, boxes and masks per frame, its conditioning and tracked outputs (mask logits,
object pointer, object score, bfloat16 memory) in their memory-bank order, the pending outputs of
frames prompted since the last propagation, which frames were tracked in which direction, and
the memory position encoding. Reopened over the same frames with the same model, the session
gives the same masks and the same later tracking, bit for bit (`tests/test_video_persist.py`).

Not saved: the frames themselves (the file names their count and size and the caller passes
the video again) and the cached image features (recomputed on demand, deterministically).

The file is a `torch.save` of plain tensors, numbers, strings, lists and dicts, read back with
`torch.load(weights_only=True)`: opening a session file never runs code from it. Object ids
must be ints or strings. A `metadata` dict of JSON values (an application's own notes: object
names, colours, ...) travels with it.

What is left to others: the session's dataclasses (`session`), opening videos (`sam2r.io`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video.session import FrameState, ObjectTrack, PointPrompt, VideoSession

FORMAT = "sam2r.video_session"
VERSION = 1
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


def save_session(
    model: SAM2Model,
    session: VideoSession,
    path: str | os.PathLike[str],
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a session to `path` (see the module docstring); returns the path."""
    if not isinstance(session, VideoSession):
        raise TypeError(f"session must be a VideoSession, got {type(session).__name__}")
    if session.live:
        raise ValueError(
            "a live session (init_stream) cannot be saved: its past frames are gone; "
            "save the session of a video opened with init_session"
        )
    if any(getattr(t, "selection", None) is not None for t in session.objects.values()):
        raise ValueError(
            "this session was tracked with an opt-in memory mode (memory='motion' or "
            "'distractor'), whose per-object state session files do not hold yet; save "
            "sessions of the default memory='official'"
        )
    for obj_id in session.objects:
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, str)):
            raise ValueError(f"only int or str object ids can be saved, got {obj_id!r}")
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
        objects.append(entry)
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.cfg.name,
        "fingerprint": model_fingerprint(model),
        "num_frames": session.num_frames,
        "hw": list(session.frames.hw),
        "image_size": session.image_size,
        "maskmem_pos": _cpu(session.maskmem_pos),
        "objects": objects,
        "metadata": meta,
    }
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)  # a crash mid-write never leaves half a file under the real name
    return path


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
    if payload.get("version") != VERSION:
        raise ValueError(
            f"{path} is a session file of version {payload.get('version')}; "
            f"this sam2r reads version {VERSION}"
        )
    return payload


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The `metadata` dict saved with a session."""
    return json.loads(read_payload(path)["metadata"])


def restore_session(
    model: SAM2Model, session: VideoSession, payload: dict[str, Any], check_model: bool = True
) -> VideoSession:
    """Fill a new, empty session (over the same video) with a saved payload."""
    if session.num_frames != payload["num_frames"] or list(session.frames.hw) != payload["hw"]:
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
    device, storage = model.device, session.storage_device
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
                mem = s["maskmem_features"]
                target[f] = FrameState(
                    low_res_masks=s["low_res_masks"].to(storage),
                    obj_ptr=s["obj_ptr"].to(device),
                    object_score_logits=s["object_score_logits"].to(device),
                    maskmem_features=None if mem is None else mem.to(storage),
                ).attach(session.pool)
        session.objects[obj_id] = track
    return session
