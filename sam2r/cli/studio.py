"""The `sam2r studio` command: the browser annotation tool on a file or a folder.

    sam2r studio [PATH] [--model NAME | --checkpoint FILE] [--host 127.0.0.1] [--port 8000]
                 [--memory official|motion|distractor]

PATH is an image, a video file, a frame folder or a folder of those (default: the current
folder). The studio binds to 127.0.0.1 unless `--host` says otherwise (then it warns).

What is left to others: the app (`sam2r.studio`), the model (`sam2r.cli.common.load_model`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sam2r.cli.common import CliError, load_model


def cmd_studio(args: argparse.Namespace) -> int:
    try:
        from sam2r.studio import serve
    except ImportError as e:
        raise CliError(str(e)) from None
    if not 1 <= args.port <= 65535:
        raise CliError(f"--port must be in 1..65535, got {args.port}")
    if args.max_upload_mb <= 0:
        raise CliError(f"--max-upload-mb must be > 0, got {args.max_upload_mb}")
    model = load_model(args.model, args.checkpoint, args.device, args.config)
    try:
        serve(
            args.path,
            model,
            host=args.host,
            port=args.port,
            workspace=args.workspace,
            max_upload_mb=args.max_upload_mb,
            state_budget_mb=args.state_budget_mb,
            memory=args.memory,
        )
    except (ImportError, ValueError) as e:
        raise CliError(str(e)) from None
    return 0


def add_studio_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r studio` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    st = sub.add_parser("studio", help="annotate images and videos in the browser")
    st.add_argument(
        "path", nargs="?", default=".",
        help="an image, a video file, a frame folder or a folder of those (default: .)",
    )  # fmt: skip
    model_args(st)
    st.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback)")
    st.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    st.add_argument(
        "--workspace", help="folder for uploads, exports and projects (default: ./sam2r-studio)"
    )
    st.add_argument("--max-upload-mb", type=float, default=200, help="largest upload accepted (MB)")
    st.add_argument(
        "--state-budget-mb", type=float, default=64,
        help="RAM for each video session's stored masks and memories; the rest spills to disk",
    )  # fmt: skip
    st.add_argument(
        "--memory", choices=("official", "motion", "distractor"), default="official",
        help="the memory mode videos open with (the page changes it per video; default: "
        "official)",
    )  # fmt: skip
    st.set_defaults(func=cmd_studio)
    return st
