"""A video being annotated in the studio: prompts on any frame, tracking streamed frame by frame.

The document wraps one `VideoSession` of the shared `VideoPredictor`: frames are decoded when a
request or the tracker needs them and the session's stored masks and memories stay under its RAM
budget (`state_budget_mb`), so a long video costs no more memory than a short one. What the page
shows is kept here, compactly: per frame, each object's mask as run lengths, its object score
and the frame's label map (zlib-compressed), for display, the score track and exports.

Clicks are appended to the object's clicks on that frame (`add_points(clear_old_points=False)`);
a box replaces the frame's box and keeps its clicks. Undo takes back the last click or box and
re-runs what is left on that frame (from the frame's current mask, as every click does).
`track` is a generator of events, one per tracked frame; `cancel` stops it between two frames.
Only one tracking runs per document; prompts and removals wait for it (409).

The memory mode ("official", "motion" or "distractor", see `sam2r.predictor.video.selection`)
is the document's predictor's: set when the video is opened, changed with `set_memory`. A change
after tracking drops the tracked frames' outputs (`VideoPredictor.clear_tracking`: objects,
prompts and the prompted frames' masks stay; nothing tracked under the old mode is read under the
new one) and only when the caller confirms it (`clear=True`). Projects keep the mode (the session
file records it) and reopen in it.

What is left to others: the HTTP routes (`app`), the predictor and session files
(`sam2r.predictor.video`), exports (`exports`).
"""

from __future__ import annotations

import base64
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.predictor.video import FrameResult, VideoPredictor
from sam2r.predictor.video.order import propagation_order
from sam2r.predictor.video.results import label_map
from sam2r.predictor.video.selection import MEMORY_MODES
from sam2r.studio.files import StudioError
from sam2r.studio.objects import ObjectList, decode_mask, encode_mask
from sam2r.studio.prompts import check_box, check_click

DIRECTIONS = ("forward", "backward", "both")


@dataclass
class FramePrompts:
    """One object's clicks and box on one frame, as the annotator gave them."""

    points: list[list[float]] = field(default_factory=list)  # [x, y, label]
    box: list[float] | None = None


@dataclass
class FrameMasks:
    """What the page shows of one frame."""

    objects: dict[int, dict[str, Any]]  # id -> {"mask": run lengths (int32 array), "score"}
    labels: bytes  # zlib of the (H, W) uint8 label map
    hw: tuple[int, int]


class VideoDoc:
    """One video, its objects, prompts and tracked masks (all methods are thread-safe)."""

    kind = "video"

    def __init__(
        self,
        name: str,
        source: str,
        path: Path,
        predictor: VideoPredictor,
        compute: threading.Lock,
        state_budget_mb: float | None = 64,
        saved: Path | None = None,
        predictor_for: Callable[[str], VideoPredictor] | None = None,
    ) -> None:
        self.name = name
        self.source = source
        self.path = path
        self.predictor = predictor  # its `memory` is the document's memory mode
        self.predictor_for = predictor_for  # mode -> the studio's predictor of that mode
        self.compute = compute
        self.lock = threading.RLock()
        if saved is None:
            self.session = predictor.init_session(str(path), state_budget_mb=state_budget_mb)
        else:
            self.session = predictor.load_session(saved, str(path), state_budget_mb=state_budget_mb)
        self.objects = ObjectList()
        self.prompts: dict[tuple[int, int], FramePrompts] = {}  # (object, frame) -> prompts
        self.history: list[tuple[int, int, str, Any]] = []  # (object, frame, kind, old box)
        self.store: dict[int, FrameMasks] = {}
        self.busy = False
        self._cancel = threading.Event()

    @property
    def hw(self) -> tuple[int, int]:
        return self.session.frames.hw

    @property
    def num_frames(self) -> int:
        return self.session.num_frames

    def check_frame(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise StudioError(f"a frame index is an integer, got {index!r}")
        if not 0 <= index < self.num_frames:
            raise StudioError(
                f"frame {index} is out of range: this video has frames 0..{self.num_frames - 1}",
                404,
            )
        return index

    def frame(self, index: int) -> np.ndarray:
        index = self.check_frame(index)
        img = self.session.frames.frame(index)
        return np.asarray(img.convert("RGB") if hasattr(img, "convert") else img)

    def info(self) -> dict[str, Any]:
        with self.lock:
            return {
                "kind": self.kind,
                "name": self.name,
                "height": self.hw[0],
                "width": self.hw[1],
                "num_frames": self.num_frames,
                "objects": self.objects.infos(),
                "busy": self.busy,
                "memory": self.memory,
                "has_tracked": self.session.has_tracked,
            }

    @property
    def memory(self) -> str:
        """The memory mode tracking uses: "official", "motion" or "distractor"."""
        return self.predictor.memory

    def close(self) -> None:
        self._cancel.set()
        with self.lock:
            self.session.close()

    def _idle(self) -> None:
        if self.busy:
            raise StudioError("tracking is running: cancel it or wait for it to finish", 409)

    # ----------------------------------------------------------------------------------------
    # objects and prompts
    # ----------------------------------------------------------------------------------------
    def add_object(self, name: str | None = None) -> dict[str, Any]:
        with self.lock:
            return self.objects.add(name).info()

    def remove_object(self, obj_id: Any) -> None:
        with self.lock:
            self._idle()
            obj = self.objects.get(obj_id)
            with self.compute:
                self.predictor.remove_object(self.session, obj.id, need_output=False)
            self.objects.remove(obj.id)
            self.prompts = {k: v for k, v in self.prompts.items() if k[0] != obj.id}
            self.history = [h for h in self.history if h[0] != obj.id]
            for fm in self.store.values():
                if fm.objects.pop(obj.id, None) is not None:
                    labels = _labels(fm)
                    labels[labels == obj.id] = 0
                    fm.labels = zlib.compress(labels.tobytes())

    def click(self, frame: Any, obj_id: Any, x: Any, y: Any, label: Any) -> dict[str, Any]:
        with self.lock:
            self._idle()
            frame = self.check_frame(frame)
            obj = self.objects.get(obj_id)
            point = check_click(x, y, label, self.hw)
            with self.compute:
                result = self.predictor.add_points(
                    self.session, frame, obj.id, [point[:2]], [point[2]], clear_old_points=False
                )
            self.prompts.setdefault((obj.id, frame), FramePrompts()).points.append(point)
            self.history.append((obj.id, frame, "point", None))
            return self._keep(result)

    def set_box(self, frame: Any, obj_id: Any, box: Any) -> dict[str, Any]:
        with self.lock:
            self._idle()
            frame = self.check_frame(frame)
            obj = self.objects.get(obj_id)
            box = check_box(box, self.hw)
            fp = self.prompts.setdefault((obj.id, frame), FramePrompts())
            result = self._run(obj.id, frame, fp.points, box)
            self.history.append((obj.id, frame, "box", fp.box))
            fp.box = box
            return self._keep(result)

    def undo(self) -> dict[str, Any]:
        """Take back the last click or box (of any object, on any frame)."""
        with self.lock:
            self._idle()
            if not self.history:
                raise StudioError("nothing to undo", 409)
            oid, frame, what, old_box = self.history.pop()
            fp = self.prompts[(oid, frame)]
            if what == "point":
                fp.points.pop()
            else:
                fp.box = old_box
            if not fp.points and fp.box is None:
                del self.prompts[(oid, frame)]
                with self.compute:
                    result = self.predictor.clear_prompts_in_frame(self.session, frame, oid)
            else:
                result = self._run(oid, frame, fp.points, fp.box)
            return self._keep(result)

    def _run(
        self, oid: int, frame: int, points: list[list[float]], box: list[float] | None
    ) -> FrameResult:
        """Give the frame's full prompts of one object again (replacing what it had)."""
        coords = [p[:2] for p in points] or None
        labels = [p[2] for p in points] or None
        with self.compute:
            return self.predictor.add_points(
                self.session, frame, oid, coords, labels, clear_old_points=True, box=box
            )

    # ----------------------------------------------------------------------------------------
    # memory mode
    # ----------------------------------------------------------------------------------------
    def set_memory(self, mode: Any, clear: bool = False) -> dict[str, Any]:
        """Track with another memory mode from now on.

        Before any tracking this only changes the mode. Once frames were tracked, their outputs
        were made under the old mode's memory: they are dropped (prompts and the prompted
        frames' masks stay), and only with `clear=True` (else StudioError 409 saying so).
        """
        if not isinstance(mode, str) or mode not in MEMORY_MODES:
            raise StudioError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {mode!r}")
        if not isinstance(clear, bool):
            raise StudioError(f"clear must be true or false, got {clear!r}")
        with self.lock:
            self._idle()
            if mode == self.memory:
                return {"memory": mode, "cleared": False, "tracked": self.tracked_frames()}
            if self.predictor_for is None:
                raise StudioError(f"this video is tracked with memory {self.memory!r} only")
            tracked = self.session.has_tracked
            if tracked and not clear:
                raise StudioError(
                    f"frames were tracked with memory {self.memory!r}: changing it to {mode!r} "
                    "clears the tracked masks (prompts stay); confirm with clear=true",
                    409,
                )
            predictor = self.predictor_for(mode)
            if tracked:
                with self.compute:
                    results = predictor.clear_tracking(self.session)
                self.store = {}
                for result in results:
                    self._keep(result)
            self.predictor = predictor
            return {"memory": mode, "cleared": tracked, "tracked": self.tracked_frames()}

    # ----------------------------------------------------------------------------------------
    # tracking
    # ----------------------------------------------------------------------------------------
    def track(self, start: Any = None, direction: str = "forward") -> Iterator[dict[str, Any]]:
        """Propagate every object; yields one event per frame, then "done" or "cancelled".

        Checks run before the first event (StudioError): the generator is ready to stream.
        """
        if direction not in DIRECTIONS:
            raise StudioError(
                f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}"
            )
        with self.lock:
            self._idle()
            if start is not None:
                start = self.check_frame(start)
            known = [
                f
                for t in self.session.objects.values()
                for f in [*t.prompted_frames(), *t.cond_outputs, *t.temp_cond_outputs]
            ]
            if not known:
                raise StudioError("nothing to track yet: click on an object first")
            if start is None:
                start = min(known)  # the earliest conditioning frame, as propagate() takes it
            passes = (
                [False]
                if direction == "forward"
                else [True]
                if direction == "backward"
                else [False, True]
            )
            plans = [(rev, propagation_order(self.session, start, None, rev)) for rev in passes]
            self.busy = True
            self._cancel.clear()
        return self._stream(start, plans)

    def _stream(
        self, start: int | None, plans: list[tuple[bool, list[int]]]
    ) -> Iterator[dict[str, Any]]:
        total = sum(len(order) for _, order in plans)
        done = 0
        try:
            yield {"type": "start", "total": total}
            for reverse, _ in plans:
                with self.lock, self.compute:
                    frames = self.predictor.propagate(self.session, start, reverse=reverse)
                while True:
                    if self._cancel.is_set():
                        yield {"type": "cancelled", "done": done, "total": total}
                        return
                    with self.lock, self.compute:
                        result = next(frames, None)
                        if result is None:
                            break
                        event = self._keep(result)
                    done += 1
                    yield {"type": "frame", "done": done, "total": total, **event}
            yield {"type": "done", "done": done, "total": total}
        except Exception as e:  # noqa: BLE001 - the page is told; the session stays usable
            yield {"type": "error", "message": str(e)}
        finally:
            self.busy = False

    def cancel(self) -> bool:
        """Ask a running tracking to stop after the frame it is on; False if none runs."""
        if not self.busy:
            return False
        self._cancel.set()
        return True

    # ----------------------------------------------------------------------------------------
    # outputs
    # ----------------------------------------------------------------------------------------
    def _keep(self, result: FrameResult) -> dict[str, Any]:
        """Store a frame's result for the page and return it as the page receives it."""
        scores = result.object_score_logits.float().cpu().tolist()
        binary = (result.masks[:, 0] > 0).cpu().numpy()
        objects = {}
        for oid, score, mask in zip(result.obj_ids, scores, binary, strict=True):
            if score <= -1000:  # no output of this object on this frame
                continue
            enc = encode_mask(mask & (score > 0))
            enc["counts"] = np.asarray(enc["counts"], np.int32)  # 4 bytes a run, not a PyObject
            objects[int(oid)] = {"mask": enc, "score": round(score, 4)}
        labels = label_map(result.masks, result.object_score_logits, result.obj_ids)
        self.store[result.frame_idx] = FrameMasks(
            objects, zlib.compress(labels.tobytes()), labels.shape
        )
        return self.masks(result.frame_idx)

    def masks(self, frame: Any) -> dict[str, Any]:
        with self.lock:
            frame = self.check_frame(frame)
            fm = self.store.get(frame)
            objs = [] if fm is None else [_for_page(k, v) for k, v in fm.objects.items()]
            prompts = [
                {"id": oid, "points": fp.points, "box": fp.box}
                for (oid, f), fp in self.prompts.items()
                if f == frame
            ]
            return {"frame": frame, "objects": objs, "prompts": prompts}

    def scores(self) -> dict[str, Any]:
        """Per tracked frame, each object's score: the page's track under the frame strip."""
        with self.lock:
            return {
                str(f): {str(k): v["score"] for k, v in fm.objects.items()}
                for f, fm in sorted(self.store.items())
            }

    def tracked_frames(self) -> list[int]:
        with self.lock:
            return sorted(self.store)

    def frame_labels(self, frame: int) -> np.ndarray:
        with self.lock:
            return _labels(self.store[frame])

    def frame_masks(self, frame: int) -> list[tuple[int, np.ndarray, float]]:
        with self.lock:
            fm = self.store.get(frame)
            if fm is None:
                return []
            return [(k, decode_mask(v["mask"]), v["score"]) for k, v in fm.objects.items()]

    # ----------------------------------------------------------------------------------------
    # projects
    # ----------------------------------------------------------------------------------------
    def save(self, path: Path) -> Path:
        with self.lock:
            self._idle()
            meta = {
                "format": "sam2r.studio.video",
                "source": self.source,
                "name": self.name,
                "memory": self.memory,  # for people reading it; the session file decides
                "objects": self.objects.to_json(),
                "prompts": [[o, f, fp.points, fp.box] for (o, f), fp in self.prompts.items()],
                "history": [list(h) for h in self.history],
                "store": {
                    str(f): {
                        "objects": {str(k): _for_page(k, v) for k, v in fm.objects.items()},
                        "labels": base64.b64encode(fm.labels).decode("ascii"),
                    }
                    for f, fm in self.store.items()
                },
            }
            return self.predictor.save_session(self.session, path, metadata=meta)

    def restore(self, meta: dict[str, Any]) -> None:
        """Fill the studio's side from a project's metadata (the session is loaded already)."""
        with self.lock:
            self.objects = ObjectList.from_json(meta["objects"])
            self.prompts = {
                (int(o), int(f)): FramePrompts([list(p) for p in pts], box)
                for o, f, pts, box in meta["prompts"]
            }
            self.history = [(int(h[0]), int(h[1]), str(h[2]), h[3]) for h in meta["history"]]
            self.store = {
                int(f): FrameMasks(
                    {int(k): _stored(v) for k, v in d["objects"].items()},
                    base64.b64decode(d["labels"]),
                    self.hw,
                )
                for f, d in meta["store"].items()
            }


def _labels(fm: FrameMasks) -> np.ndarray:
    """The (H, W) label map of a stored frame."""
    return np.frombuffer(zlib.decompress(fm.labels), np.uint8).reshape(fm.hw).copy()


def _for_page(oid: int, entry: dict[str, Any]) -> dict[str, Any]:
    """A stored object entry as JSON values."""
    mask = dict(entry["mask"], counts=entry["mask"]["counts"].tolist())
    return {"id": oid, "mask": mask, "score": entry["score"]}


def _stored(entry: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `_for_page` (for projects)."""
    mask = dict(entry["mask"], counts=np.asarray(entry["mask"]["counts"], np.int32))
    return {"mask": mask, "score": entry["score"]}
