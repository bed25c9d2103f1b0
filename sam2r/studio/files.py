"""Where the studio may read and write: its root folder and its workspace, nothing else.

The server is started on a folder (the *root*, read only: the images and videos to annotate)
and writes into its *workspace* (uploads, exports, saved projects). Every path a request names
is relative to one of the two and is resolved here: absolute paths, `..` and symlinks that lead
outside are refused (`StudioError`, a 4xx for the page). Uploads are size-limited while they
are read and kept only if their content is an image Pillow opens or a video PyAV decodes,
whatever their name says.

What is left to others: the HTTP routes (`sam2r.studio.app`), opening what is found here as
frames (`sam2r.io`).
"""

from __future__ import annotations

import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sam2r.io.frames import IMAGE_EXTENSIONS

VIDEO_EXTENSIONS = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class StudioError(Exception):
    """A request the studio refuses; `status` is the HTTP code, the message says why."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def safe_name(name: str, what: str = "name") -> str:
    """A plain file name (letters, digits, `_.-`, at most 64), else StudioError."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise StudioError(
            f"bad {what} {name!r}: use 1-64 letters, digits, '_', '.' or '-' "
            "(starting with a letter or digit)"
        )
    return name


def resolve_inside(base: Path, rel: str) -> Path:
    """`base / rel`, refused unless it stays inside `base` once symlinks are followed."""
    if not isinstance(rel, str):
        raise StudioError(f"a path must be a string, got {type(rel).__name__}")
    if "\x00" in rel:
        raise StudioError("a path may not contain NUL characters")
    parts = Path(rel).parts
    if Path(rel).is_absolute() or rel.startswith(("/", "\\")) or ":" in rel.split("/")[0]:
        raise StudioError(f"{rel!r}: absolute paths are refused; give a path inside the folder")
    if ".." in parts:
        raise StudioError(f"{rel!r}: '..' is refused; give a path inside the folder")
    base = base.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise StudioError(f"{rel!r} leads outside the folder the studio serves (a symlink?)")
    if not target.exists():
        raise StudioError(f"{rel!r}: no such file or folder", 404)
    return target


def kind_of(path: Path) -> str | None:
    """'image', 'video' (a video file or a folder of frames), 'folder' or None."""
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix in IMAGE_EXTENSIONS:
            return "image"
        if suffix in VIDEO_EXTENSIONS:
            return "video"
        return None
    if path.is_dir():
        images = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS]
        numbered = [p for p in images if re.search(r"\d", p.stem)]
        return "video" if len(numbered) >= 2 and len(numbered) == len(images) else "folder"
    return None


def list_folder(base: Path, rel: str) -> list[dict[str, Any]]:
    """The entries of a folder under `base` the studio can open (hidden files left out)."""
    folder = resolve_inside(base, rel) if rel else base.resolve()
    if not folder.is_dir():
        raise StudioError(f"{rel!r} is not a folder")
    out = []
    for p in sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name.lower())):
        if p.name.startswith("."):
            continue
        try:
            resolve_inside(base, str(p.relative_to(base.resolve())))
        except StudioError:
            continue  # a symlink out of the root is not listed
        kind = kind_of(p)
        if kind is None:
            continue
        out.append({"name": p.name, "path": str(p.relative_to(base.resolve())), "kind": kind})
    return out


def _check_content(path: Path) -> str:
    """'image' or 'video' by what the file holds; StudioError (415) for anything else."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()  # verify() does not decode: a truncated image fails only here
        return "image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        pass
    try:
        from sam2r.io.video_file import import_av

        av = import_av()
    except ImportError:
        raise StudioError(
            "the upload is not an image, and video uploads need PyAV: pip install 'sam2r[video]'",
            415,
        ) from None
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            next(container.decode(video=0))
        return "video"
    except Exception:  # noqa: BLE001 - whatever PyAV raises, the file is not a usable video
        raise StudioError(
            "the upload is neither an image nor a video that can be decoded (checked by its "
            "content, not its name)",
            415,
        ) from None


def save_upload(
    uploads: Path, name: str, chunks: Iterable[bytes], max_bytes: int
) -> tuple[str, str]:
    """Store an upload under `uploads/<token>/<name>`; returns (relative path, kind).

    Raises StudioError 413 beyond `max_bytes` and 415 for content that is not an image or a
    video; nothing is kept in either case.
    """
    name = safe_name(name, "file name")
    token = secrets.token_hex(8)
    folder = uploads / token
    folder.mkdir(parents=True)
    path = folder / name
    size = 0
    try:
        with open(path, "wb") as f:
            for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise StudioError(
                        f"the upload is larger than the limit of {max_bytes / 2**20:.0f} MB "
                        "(start the studio with --max-upload-mb to change it)",
                        413,
                    )
                f.write(chunk)
        if size == 0:
            raise StudioError("the upload is empty")
        kind = _check_content(path)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if kind == "video" and path.suffix.lower() not in VIDEO_EXTENSIONS:
        path = path.rename(path.with_name(path.name + ".mp4"))  # the reader goes by suffix
    if kind == "image" and path.suffix.lower() not in IMAGE_EXTENSIONS:
        path = path.rename(path.with_name(path.name + ".png"))
    return f"{token}/{path.name}", kind
