"""The studio's state: its folders, the model, and the open documents of every browser tab.

Each tab opens its own session (a random id) on an image or a video of the root folder, an
upload, or a saved project; sessions never share objects or prompts. They share the model, and
one lock (`compute`) lets one model run at a time: on a CPU two at once only slow each other
down. At most `max_sessions` stay open: beyond that the longest-idle session is closed (it must
have been idle 5 minutes), else the new one is refused. Videos are tracked by one
`VideoPredictor` per memory mode (made when first used), the studio's default mode unless the
request or the project says otherwise.

What is left to others: the routes (`app`), the documents (`image_doc`, `video_doc`).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.atomic import write_atomic
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.video import VideoPredictor
from sam2r.predictor.video.persist import read_payload, saved_memory
from sam2r.predictor.video.selection import MEMORY_MODES
from sam2r.studio.files import StudioError, kind_of, resolve_inside, safe_name
from sam2r.studio.image_doc import ImageDoc
from sam2r.studio.video_doc import VideoDoc

IDLE_BEFORE_EVICTION_S = 300


def _doc_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem if path.is_file() else path.name)
    return stem.strip("._")[:48] or "untitled"


class Studio:
    """Folders, model and open sessions of one studio server.

    Args:
        root: the folder served (read only).
        workspace: where uploads, exports and projects are written (created if missing).
        model: the model every session uses.
        max_upload_mb: the largest upload accepted.
        state_budget_mb: RAM for the stored masks and memories of each video session.
        max_sessions: open sessions at most (one per browser tab).
        memory: the memory mode a video opens with unless the request names one ("official",
            "motion" or "distractor").
    """

    def __init__(
        self,
        root: Path,
        workspace: Path,
        model: SAM2Model,
        max_upload_mb: float = 200,
        state_budget_mb: float | None = 64,
        max_sessions: int = 8,
        memory: str = "official",
    ) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise ValueError(f"{root}: the studio serves a folder, and this is not one")
        self.workspace = Path(workspace).resolve()
        for sub in ("uploads", "exports", "projects"):
            (self.workspace / sub).mkdir(parents=True, exist_ok=True)
        self.model = model
        self.max_upload_bytes = int(max_upload_mb * 2**20)
        self.state_budget_mb = state_budget_mb
        self.max_sessions = max_sessions
        self.compute = threading.Lock()
        if not isinstance(memory, str) or memory not in MEMORY_MODES:
            raise ValueError(f"memory must be one of {MEMORY_MODES}, got {memory!r}")
        self.memory = memory
        self._predictors: dict[str, VideoPredictor] = {}
        self.video_predictor = self.predictor_for(self.memory)  # the default mode's
        self.docs: dict[str, ImageDoc | VideoDoc] = {}
        self.last_used: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def uploads(self) -> Path:
        return self.workspace / "uploads"

    @property
    def exports(self) -> Path:
        return self.workspace / "exports"

    @property
    def projects(self) -> Path:
        return self.workspace / "projects"

    def predictor_for(self, memory: str) -> VideoPredictor:
        """The video predictor of a memory mode (one per mode, sharing the model)."""
        memory = _check_memory(memory)
        if memory not in self._predictors:
            self._predictors[memory] = VideoPredictor(self.model, memory=memory)
        return self._predictors[memory]

    # ----------------------------------------------------------------------------------------
    def doc(self, sid: str) -> ImageDoc | VideoDoc:
        doc = self.docs.get(sid)
        if doc is None:
            raise StudioError(
                f"unknown session {sid!r} (closed, or the server restarted): open the file again",
                404,
            )
        self.last_used[sid] = time.monotonic()
        return doc

    def _register(self, doc: ImageDoc | VideoDoc) -> str:
        with self._lock:
            if len(self.docs) >= self.max_sessions:
                now = time.monotonic()
                idle = [
                    s for s, d in self.docs.items()
                    if now - self.last_used.get(s, 0) > IDLE_BEFORE_EVICTION_S
                    and not getattr(d, "busy", False)
                ]  # fmt: skip
                if not idle:
                    _close(doc)
                    raise StudioError(
                        f"{len(self.docs)} sessions are open (the limit): close a tab first", 429
                    )
                oldest = min(idle, key=lambda s: self.last_used.get(s, 0))
                _close(self.docs.pop(oldest))
                self.last_used.pop(oldest, None)
            sid = secrets.token_urlsafe(12)
            self.docs[sid] = doc
            self.last_used[sid] = time.monotonic()
            return sid

    def close(self, sid: str) -> None:
        with self._lock:
            doc = self.docs.pop(sid, None)
            self.last_used.pop(sid, None)
        if doc is None:
            raise StudioError(f"unknown session {sid!r}", 404)
        _close(doc)

    def close_all(self) -> None:
        for sid in list(self.docs):
            self.close(sid)

    # ----------------------------------------------------------------------------------------
    def open(self, request: dict[str, Any]) -> tuple[str, ImageDoc | VideoDoc]:
        """Open {"path": in the root} | {"upload": in the uploads} | {"project": name}.

        A path or an upload may name the memory mode a video is tracked with ({"memory":
        "motion"}; default: the studio's); a project reopens in the mode it was saved with.
        """
        keys = [k for k in ("path", "upload", "project") if k in request]
        if len(keys) != 1:
            raise StudioError('give exactly one of "path", "upload" or "project"')
        key = keys[0]
        if key == "project":
            if "memory" in request:
                raise StudioError("a project reopens in the memory mode it was saved with")
            return self._open_project(request["project"])
        memory = _check_memory(request.get("memory", self.memory))
        base, prefix = (self.root, "root") if key == "path" else (self.uploads, "upload")
        path = resolve_inside(base, request[key])
        doc = self._open_path(path, f"{prefix}:{request[key]}", memory=memory)
        return self._register(doc), doc

    def _open_path(
        self, path: Path, source: str, saved: Path | None = None, memory: str | None = None
    ) -> ImageDoc | VideoDoc:
        kind = kind_of(path)
        name = _doc_name(path)
        if kind == "image":
            from PIL import Image

            try:
                with Image.open(path) as im:
                    image = np.array(im.convert("RGB"))
            except OSError as e:
                raise StudioError(f"{path.name} cannot be read as an image ({e})", 415) from None
            return ImageDoc(name, source, image, self.model, self.compute)
        if kind == "video":
            try:
                predictor = self.predictor_for(memory if memory is not None else self.memory)
                return VideoDoc(
                    name, source, path, predictor, self.compute,
                    self.state_budget_mb, saved, self.predictor_for,
                )  # fmt: skip
            except ImportError as e:
                raise StudioError(str(e), 501) from None
            except (ValueError, OSError, RuntimeError) as e:
                raise StudioError(f"{path.name} cannot be opened as a video ({e})", 415) from None
        raise StudioError(f"{path.name} is neither an image, a video nor a folder of frames", 415)

    def _resolve_source(self, source: str) -> Path:
        prefix, _, rel = source.partition(":")
        if prefix == "root":
            return resolve_inside(self.root, rel)
        if prefix == "upload":
            return resolve_inside(self.uploads, rel)
        raise StudioError(f"a project names its file as root:... or upload:..., got {source!r}")

    # ----------------------------------------------------------------------------------------
    def list_projects(self) -> list[dict[str, Any]]:
        out = []
        for p in sorted(self.projects.iterdir()):
            if p.suffix in (".json", ".pt") and not p.name.endswith(".tmp"):
                kind = "image" if p.suffix == ".json" else "video"
                out.append({"name": p.stem, "kind": kind, "modified": p.stat().st_mtime})
        return out

    def save_project(self, sid: str, name: Any) -> dict[str, Any]:
        name = safe_name(name, "project name")
        doc = self.doc(sid)
        other = ".pt" if doc.kind == "image" else ".json"
        (self.projects / f"{name}{other}").unlink(missing_ok=True)  # one project per name
        if doc.kind == "image":
            text = json.dumps(doc.project())
            path = write_atomic(self.projects / f"{name}.json", lambda fh: fh.write(text.encode()))
        else:
            path = doc.save(self.projects / f"{name}.pt")
        return {"project": name, "kind": doc.kind, "bytes": path.stat().st_size}

    def _open_project(self, name: Any) -> tuple[str, ImageDoc | VideoDoc]:
        name = safe_name(name, "project name")
        image_file, video_file = self.projects / f"{name}.json", self.projects / f"{name}.pt"
        if image_file.is_file():
            try:
                data = json.loads(image_file.read_text())
                source = data["source"]
            except (ValueError, KeyError, TypeError):
                raise StudioError(
                    f"project {name!r} is damaged (not a studio project)", 422
                ) from None
            doc = self._open_path(self._resolve_source(source), source)
            try:
                doc.restore(data)
            except (KeyError, TypeError, ValueError, IndexError) as e:
                raise StudioError(f"project {name!r} is damaged ({e})", 422) from None
        elif video_file.is_file():
            try:
                payload = read_payload(video_file)
                meta = json.loads(payload["metadata"])
                source = meta["source"]
                memory = _check_memory(saved_memory(payload)["mode"])
            except (ValueError, KeyError, TypeError, StudioError) as e:
                raise StudioError(f"project {name!r} cannot be read ({e})", 422) from None
            del payload  # its tensors: `load_session` reads the file again
            try:
                doc = self._open_path(
                    self._resolve_source(source), source, saved=video_file, memory=memory
                )
            except StudioError as e:
                raise StudioError(f"project {name!r}: {e}", e.status) from None
            doc.restore(meta)
        else:
            raise StudioError(f"no project named {name!r}", 404)
        return self._register(doc), doc


def _check_memory(memory: Any) -> str:
    if not isinstance(memory, str) or memory not in MEMORY_MODES:
        raise StudioError(f"memory must be one of {', '.join(MEMORY_MODES)}, got {memory!r}")
    return memory


def _close(doc: ImageDoc | VideoDoc) -> None:
    if isinstance(doc, VideoDoc):
        doc.close()
