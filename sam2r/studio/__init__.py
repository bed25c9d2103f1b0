"""sam2r studio: annotate images and videos in the browser with a SAM 2 model.

    sam2r studio examples/synth_davis/JPEGImages/480p/val_00000      # prints the URL

or from Python:

    from sam2r.studio import serve
    serve("clips/", model=sam2r.build_model("sam2r_micro"))

A local web app (FastAPI + uvicorn, the `web` extra) serving one static page (no JS build step,
no CDN: it works offline). Modules: `files` (the folders it may touch, uploads), `objects`,
`prompts`, `image_doc` and `video_doc` (one annotated image / video), `store` (the sessions of
every tab), `exports`, `app` (the HTTP API, documented there) and `static/` (the page).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sam2r.studio.files import StudioError, kind_of

__all__ = ["StudioError", "build_app", "serve"]


def build_app(
    path: str | Path | None,
    model: Any,
    *,
    workspace: str | Path | None = None,
    model_name: str | None = None,
    max_upload_mb: float = 200,
    state_budget_mb: float | None = 64,
    max_sessions: int = 8,
    allowed_hosts: tuple[str, ...] | None = ("127.0.0.1", "localhost", "::1", "[::1]"),
    memory: str = "official",
) -> Any:
    """The studio's FastAPI app on `path` (an image, a video file, a frame folder or a folder).

    The folder served is `path` itself, or the folder holding it; a file or a frame folder is
    opened when the page loads. `workspace` (default `./sam2r-studio`) receives uploads,
    exports and projects. `memory` is the memory mode videos open with ("official", "motion"
    or "distractor"; the page changes it per video).
    """
    from sam2r.studio.app import create_app
    from sam2r.studio.store import Studio

    target = Path(path if path is not None else ".").resolve()
    if not target.exists():
        raise ValueError(f"{path}: no such file or folder")
    initial: str | None
    if target.is_dir():
        root = target
        initial = "." if kind_of(target) == "video" else None
    else:
        if kind_of(target) not in ("image", "video"):
            raise ValueError(f"{path}: neither an image nor a video file")
        root, initial = target.parent, target.name
    ws = Path(workspace) if workspace is not None else Path.cwd() / "sam2r-studio"
    studio = Studio(root, ws, model, max_upload_mb, state_budget_mb, max_sessions, memory)
    name = model_name if model_name is not None else model.cfg.name
    return create_app(studio, initial=initial, model_name=name, allowed_hosts=allowed_hosts)


def serve(
    path: str | Path | None,
    model: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    log_level: str = "warning",
    **options: Any,
) -> None:
    """Run the studio until interrupted (see `build_app` for the options)."""
    try:
        import uvicorn
    except ImportError:
        raise ImportError("the studio needs uvicorn: pip install 'sam2r[web]'") from None
    loopback = host in ("127.0.0.1", "localhost", "::1")
    if not loopback:
        print(
            f"warning: the studio listens on {host}: anyone who can reach this machine can "
            "read the served folder and run the model. Use the default 127.0.0.1 unless you "
            "mean it.",
            file=sys.stderr,
        )
        options.setdefault("allowed_hosts", None)
    app = build_app(path, model, **options)
    studio = app.state.studio
    shown = f"[{host}]" if ":" in host else host
    print(f"sam2r studio: http://{shown}:{port}/")
    print(f"  serving {studio.root}; workspace {studio.workspace}")
    try:
        uvicorn.run(app, host=host, port=port, log_level=log_level)
    finally:
        studio.close_all()
