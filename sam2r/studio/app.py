"""The studio's HTTP API (FastAPI) and its static page.

Every route answers JSON; refusals are `{"error": message}` with a 4xx status (`StudioError`,
and `ValueError`/`TypeError` from the predictors, which say what was wrong); the session stays
usable after any of them. Model work runs in the thread pool, never on the event loop. Tracking
streams server-sent events (`GET /api/s/{sid}/track`), one per frame.

Requests whose Host header is not this server's own name are refused while it is bound to
loopback, so a web page elsewhere cannot reach it through DNS rebinding.

    GET  /api/info                      model, limits, the file the server was started on
    GET  /api/browse?path=              what the root folder holds
    POST /api/upload?name=              raw body: an image or a video (checked by content)
    GET  /api/projects                  saved projects
    POST /api/sessions                  {"path"|"upload"|"project": ..., "memory"?} -> a session
    GET|DELETE /api/s/{sid}             the session's state / close it (POST .../close too)
    GET  /api/s/{sid}/frame/{i}         the frame as JPEG (?width= for a thumbnail)
    GET  /api/s/{sid}/masks/{i}         the masks of a frame
    GET  /api/s/{sid}/scores            object scores of every tracked frame
    POST /api/s/{sid}/objects           {"name"?} add an object
    PATCH|DELETE /api/s/{sid}/objects/{id}   {"name"?, "hidden"?} / remove it
    POST /api/s/{sid}/click             {"frame", "obj", "x", "y", "label"}
    POST /api/s/{sid}/box               {"frame", "obj", "box": [x0, y0, x1, y1]}
    POST /api/s/{sid}/undo              the last click or box
    POST /api/s/{sid}/candidate         {"obj", "index"} (images: one of the 3 masks)
    POST /api/s/{sid}/everything        {"points_per_side"?, "pred_iou_thresh"?, ...} (images)
    GET  /api/s/{sid}/track?start=&direction=forward|backward|both   (event stream)
    POST /api/s/{sid}/cancel            stop tracking
    POST /api/s/{sid}/export            {"formats": ["png", "coco", "mp4"]}
    POST /api/s/{sid}/save              {"name"} save the session as a project
    POST /api/s/{sid}/memory            {"memory": "official"|"motion"|"distractor", "clear"?}
                                        (videos; after tracking, clear=true drops tracked masks)
    GET  /api/files/{path}              download an export
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:  # this module is imported only to build the app (`sam2r.studio.build_app`)
    from fastapi import FastAPI, Request
    from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
    from starlette.concurrency import run_in_threadpool
except ImportError as e:
    raise ImportError(
        f"the studio needs FastAPI and uvicorn: pip install 'sam2r[web]' ({e})"
    ) from None

from sam2r.studio.exports import export
from sam2r.studio.files import StudioError, list_folder, resolve_inside, save_upload
from sam2r.studio.store import Studio

STATIC = Path(__file__).parent / "static"
STATIC_FILES = {"studio.js": "text/javascript", "studio.css": "text/css"}
LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def create_app(
    studio: Studio,
    *,
    initial: str | None = None,
    model_name: str = "",
    allowed_hosts: tuple[str, ...] | None = LOOPBACK,
) -> Any:
    """The FastAPI app of a `Studio`.

    Args:
        studio: folders, model and sessions.
        initial: a path in the root to open when the page loads (the command's PATH).
        model_name: shown on the page and written into exports.
        allowed_hosts: Host header names accepted (None: any, for a server bound to a public
            address on purpose).
    """
    app = FastAPI(title="sam2r studio", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.studio = studio

    @app.middleware("http")
    async def check_host(request: Request, call_next: Callable) -> Any:
        if allowed_hosts is not None:
            host = request.headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in allowed_hosts:
                return JSONResponse({"error": f"host {host!r} is not served here"}, 400)
        return await call_next(request)

    @app.exception_handler(StudioError)
    async def studio_error(_: Request, e: StudioError) -> Any:
        return JSONResponse({"error": str(e)}, e.status)

    @app.exception_handler(ValueError)
    async def value_error(_: Request, e: ValueError) -> Any:
        return JSONResponse({"error": str(e)}, 400)

    @app.exception_handler(TypeError)
    async def type_error(_: Request, e: TypeError) -> Any:
        return JSONResponse({"error": str(e)}, 400)

    async def body(request: Request) -> dict[str, Any]:
        raw = await request.body()
        try:
            data = json.loads(raw or b"{}")
        except ValueError as e:
            raise StudioError(f"malformed JSON in the request body ({e})") from None
        if not isinstance(data, dict):
            raise StudioError("the request body must be a JSON object")
        return data

    def need(data: dict[str, Any], *keys: str) -> list[Any]:
        missing = [k for k in keys if k not in data]
        if missing:
            raise StudioError(f"missing field(s) {missing} in the request body")
        return [data[k] for k in keys]

    # ------------------------------------------------------------------------------------------
    # page
    # ------------------------------------------------------------------------------------------
    @app.get("/")
    def index() -> Any:
        return Response((STATIC / "index.html").read_bytes(), media_type="text/html")

    @app.get("/static/{name}")
    def static(name: str) -> Any:
        if name not in STATIC_FILES:
            raise StudioError(f"no static file {name!r}", 404)
        return Response((STATIC / name).read_bytes(), media_type=STATIC_FILES[name])

    # ------------------------------------------------------------------------------------------
    # files
    # ------------------------------------------------------------------------------------------
    @app.get("/api/info")
    def info() -> Any:
        import sam2r

        return {
            "version": sam2r.__version__,
            "model": model_name,
            "image_size": studio.model.image_size,
            "initial": initial,
            "max_upload_mb": studio.max_upload_bytes / 2**20,
            "memory": studio.memory,
        }

    @app.get("/api/browse")
    def browse(path: str = "") -> Any:
        return {"path": path, "entries": list_folder(studio.root, path)}

    @app.post("/api/upload")
    async def upload(request: Request, name: str) -> Any:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > studio.max_upload_bytes:
            raise StudioError(
                f"the upload is larger than the limit of {studio.max_upload_bytes / 2**20:.0f} MB",
                413,
            )
        chunks = [c async for c in _limited(request.stream(), studio.max_upload_bytes)]
        rel, kind = await run_in_threadpool(
            save_upload, studio.uploads, name, chunks, studio.max_upload_bytes
        )
        return {"upload": rel, "kind": kind}

    @app.get("/api/projects")
    def projects() -> Any:
        return {"projects": studio.list_projects()}

    @app.get("/api/files/{path:path}")
    def download(path: str) -> Any:
        target = resolve_inside(studio.exports, path)
        if not target.is_file():
            raise StudioError(f"{path!r} is not a file", 404)
        return FileResponse(target, filename=target.name)

    # ------------------------------------------------------------------------------------------
    # sessions
    # ------------------------------------------------------------------------------------------
    @app.post("/api/sessions")
    async def open_session(request: Request) -> Any:
        data = await body(request)
        sid, doc = await run_in_threadpool(studio.open, data)
        return {"session": sid, **doc.info()}

    @app.get("/api/s/{sid}")
    def session_info(sid: str) -> Any:
        doc = studio.doc(sid)
        return {"session": sid, **doc.info(), "tracked": doc.tracked_frames()}

    @app.delete("/api/s/{sid}")
    def close_session(sid: str) -> Any:
        studio.close(sid)
        return {"closed": sid}

    @app.post("/api/s/{sid}/close")
    def close_session_beacon(sid: str) -> Any:  # navigator.sendBeacon can only POST
        studio.close(sid)
        return {"closed": sid}

    @app.get("/api/s/{sid}/frame/{index}")
    def frame(sid: str, index: int, width: int | None = None) -> Any:
        from PIL import Image

        doc = studio.doc(sid)
        image = Image.fromarray(doc.frame(index))
        if width is not None:
            if not 16 <= width <= 4096:
                raise StudioError(f"width must be in 16..4096, got {width}")
            image = image.resize((width, max(1, round(image.height * width / image.width))))
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=90)
        return Response(buf.getvalue(), media_type="image/jpeg")

    @app.get("/api/s/{sid}/masks/{index}")
    def masks(sid: str, index: int) -> Any:
        return studio.doc(sid).masks(index)

    @app.get("/api/s/{sid}/scores")
    def scores(sid: str) -> Any:
        doc = studio.doc(sid)
        return {"scores": doc.scores() if doc.kind == "video" else {}}

    @app.post("/api/s/{sid}/objects")
    async def add_object(sid: str, request: Request) -> Any:
        data = await body(request)
        return studio.doc(sid).add_object(data.get("name"))

    @app.patch("/api/s/{sid}/objects/{oid}")
    async def update_object(sid: str, oid: str, request: Request) -> Any:
        data = await body(request)
        doc = studio.doc(sid)
        return doc.objects.update(oid, data.get("name"), data.get("hidden")).info()

    @app.delete("/api/s/{sid}/objects/{oid}")
    async def remove_object(sid: str, oid: str) -> Any:
        await run_in_threadpool(studio.doc(sid).remove_object, oid)
        return {"removed": int(oid)}

    @app.post("/api/s/{sid}/click")
    async def click(sid: str, request: Request) -> Any:
        data = await body(request)
        frame_, obj, x, y = need(data, "frame", "obj", "x", "y")
        doc = studio.doc(sid)
        return await run_in_threadpool(doc.click, frame_, obj, x, y, data.get("label", 1))

    @app.post("/api/s/{sid}/box")
    async def box(sid: str, request: Request) -> Any:
        data = await body(request)
        frame_, obj, box_ = need(data, "frame", "obj", "box")
        return await run_in_threadpool(studio.doc(sid).set_box, frame_, obj, box_)

    @app.post("/api/s/{sid}/undo")
    async def undo(sid: str) -> Any:
        return await run_in_threadpool(studio.doc(sid).undo)

    @app.post("/api/s/{sid}/candidate")
    async def candidate(sid: str, request: Request) -> Any:
        data = await body(request)
        obj, index = need(data, "obj", "index")
        doc = studio.doc(sid)
        if doc.kind != "image":
            raise StudioError("candidates are chosen on images; on videos click to refine")
        return doc.choose(obj, index)

    @app.post("/api/s/{sid}/everything")
    async def everything(sid: str, request: Request) -> Any:
        data = await body(request)
        doc = studio.doc(sid)
        if doc.kind != "image":
            raise StudioError("'everything' runs on images")
        return await run_in_threadpool(
            doc.everything,
            data.get("points_per_side", 16),
            data.get("pred_iou_thresh", 0.7),
            data.get("stability_score_thresh", 0.9),
        )

    @app.get("/api/s/{sid}/track")
    async def track(sid: str, start: int | None = None, direction: str = "forward") -> Any:
        doc = studio.doc(sid)
        if doc.kind != "video":
            raise StudioError("tracking runs on videos")
        events = await run_in_threadpool(doc.track, start, direction)
        first = await run_in_threadpool(next, events)  # started: its cleanup always runs
        return StreamingResponse(
            _sse(first, events),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.post("/api/s/{sid}/cancel")
    def cancel(sid: str) -> Any:
        doc = studio.doc(sid)
        return {"cancelled": doc.kind == "video" and doc.cancel()}

    @app.post("/api/s/{sid}/export")
    async def export_(sid: str, request: Request) -> Any:
        data = await body(request)
        doc = studio.doc(sid)
        formats = data.get("formats", ["png", "coco", "mp4"])
        files = await run_in_threadpool(export, doc, studio.exports, formats, model_name)
        rels = [str(p.relative_to(studio.exports)) for p in files]
        listed = []
        for p, rel in zip(files, rels, strict=True):
            if p.is_dir():
                listed += [f"{rel}/{q.name}" for q in sorted(p.iterdir())]
            else:
                listed.append(rel)
        return {
            "folder": str(files[0].relative_to(studio.exports).parts[0]) if files else None,
            "path": str(files[0].parent) if files else None,
            "files": [{"name": r, "url": f"/api/files/{r}"} for r in listed],
        }

    @app.post("/api/s/{sid}/memory")
    async def memory(sid: str, request: Request) -> Any:
        data = await body(request)
        (mode,) = need(data, "memory")
        doc = studio.doc(sid)
        if doc.kind != "video":
            raise StudioError("the memory mode is a video's (images have no memory)")
        return await run_in_threadpool(doc.set_memory, mode, data.get("clear", False))

    @app.post("/api/s/{sid}/save")
    async def save(sid: str, request: Request) -> Any:
        data = await body(request)
        (name,) = need(data, "name")
        return await run_in_threadpool(studio.save_project, sid, name)

    return app


def _sse(first: dict[str, Any], events: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield f"data: {json.dumps(first)}\n\n"
    for event in events:
        yield f"data: {json.dumps(event)}\n\n"


async def _limited(stream: Any, max_bytes: int) -> Any:
    """The request body's chunks, stopping (413) once past `max_bytes`."""
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > max_bytes:
            raise StudioError(
                f"the upload is larger than the limit of {max_bytes / 2**20:.0f} MB", 413
            )
        yield chunk
