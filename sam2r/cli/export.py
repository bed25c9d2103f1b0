"""The `sam2r export` command, and the `--onnx DIR` option of `sam2r image` / `sam2r video`.

    sam2r export onnx [--model NAME | --checkpoint PT] --out DIR [--opset 17] [--image-size N]
        [--no-fused-attention]
    sam2r image photo.jpg --point 500,375 --onnx DIR
    sam2r video frames/ --point 0:1:210,350 --onnx DIR

`export onnx` writes the four graphs and `manifest.json` of `sam2r.onnx.export`; with
`--image-size` the model is rebuilt for another square input first (the weights do not depend
on it; the RoPE grid, position encodings and mask sizes follow); `--no-fused-attention` writes
standard ONNX ops only, for runtimes other than ONNX Runtime (`sam2r.onnx.attention`).
`--onnx DIR` runs the image predictor or the tracker on ONNX Runtime (`sam2r.onnx`) instead
of torch; the video command's outputs are written by the same code, so its results are wrapped
as the torch predictor's.

What is left to others: the exporter and the runtime (`sam2r.onnx`), the two commands
(`sam2r.cli.image`, `sam2r.cli.video`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from sam2r.cli.common import CliError, load_model


def cmd_export(args: argparse.Namespace) -> int:
    try:
        from sam2r.onnx import export
    except ImportError as e:
        raise CliError(f"{e}; ONNX export needs: pip install 'sam2r[onnx]'") from None
    model = load_model(args.model, args.checkpoint, "cpu", args.config)
    if args.image_size is not None and args.image_size != model.image_size:
        model = resized_model(model, args.image_size)
    try:
        manifest = export(
            model, Path(args.out), opset=args.opset, fused_attention=args.fused_attention
        )
    except (ImportError, ValueError) as e:
        raise CliError(str(e)) from None
    for graph in manifest["graphs"].values():
        size = (Path(args.out) / graph["file"]).stat().st_size / 2**20
        print(f"{graph['file']}: {size:.1f} MB, inputs {', '.join(graph['inputs'])}")
    print(f"wrote {manifest['model']} ({manifest['image_size']} px) to {args.out}/")
    return 0


def resized_model(model: Any, image_size: int) -> Any:
    """The same weights in a model built for another input size (a multiple of 32)."""
    from sam2r.model.sam2 import SAM2Model

    if image_size <= 0 or image_size % 32 != 0:
        raise CliError(f"--image-size must be a positive multiple of 32, got {image_size}")
    resized = SAM2Model(model.cfg.replace(image_size=image_size)).eval()
    resized.load_state_dict(model.state_dict(), strict=True)
    return resized


def add_export_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r export` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    ex = sub.add_parser("export", help="export the model (ONNX: four graphs + manifest.json)")
    ex.add_argument("format", choices=("onnx",), help="the export format")
    ex.add_argument("--out", required=True, help="output folder")
    ex.add_argument("--opset", type=int, default=17, help="ONNX opset (>= 14, default 17)")
    ex.add_argument(
        "--image-size", type=int, metavar="N", help="square input size (default: the model's)"
    )
    ex.add_argument(
        "--no-fused-attention",
        dest="fused_attention",
        action="store_false",
        help="standard ONNX ops only (no com.microsoft Attention / MultiHeadAttention / "
        "RotaryEmbedding nodes), for runtimes other than ONNX Runtime; slower on it",
    )
    model_args(ex)
    ex.set_defaults(func=cmd_export)
    return ex


def add_onnx_arg(parser: argparse.ArgumentParser) -> None:
    """`--onnx DIR` for `sam2r image`, `sam2r video` and `sam2r vos-infer`."""
    parser.add_argument(
        "--onnx",
        metavar="DIR",
        help="run an exported model (sam2r export onnx) on ONNX Runtime instead of torch",
    )


def check_onnx_options(args: argparse.Namespace) -> None:
    """CliError naming the options that choose or place a torch model, given with --onnx."""
    given = [f"--{k}" for k in ("model", "checkpoint", "config") if getattr(args, k) is not None]
    if args.device != "cpu":
        given.append(f"--device {args.device}")
    if args.precision != "fp32":
        given.append(f"--precision {args.precision}")
    if given:
        raise CliError(
            f"--onnx {args.onnx} runs the model exported there on ONNX Runtime's CPU provider; "
            f"{', '.join(given)} choose or place a torch model: drop them, or drop --onnx "
            "(to run another model on ONNX: sam2r export onnx --checkpoint PT --out DIR)"
        )


def onnx_image_predictor(args: argparse.Namespace) -> tuple[Any, str]:
    """(OnnxImagePredictor, model name) for `sam2r image --onnx DIR`."""
    from sam2r.onnx import OnnxImagePredictor

    check_onnx_options(args)
    try:
        predictor = OnnxImagePredictor(args.onnx, max_hole_area=args.max_hole_area)
    except (ImportError, FileNotFoundError, ValueError) as e:
        raise CliError(f"--onnx {args.onnx}: {e}") from None
    return predictor, predictor.model.manifest["model"]


def onnx_video_predictor(args: argparse.Namespace) -> Any:
    """The tracker of `sam2r video --onnx DIR`, with the torch predictor's method names."""
    if getattr(args, "everything", False) or getattr(args, "text", None) is not None:
        raise CliError("--onnx tracks clicks, boxes and masks (not --everything or --text)")
    check_onnx_options(args)
    try:
        return _TorchResults(
            args.onnx,
            args.fill_hole_area,
            True if args.non_overlap else None,
            getattr(args, "memory", "official"),
        )
    except (ImportError, FileNotFoundError, ValueError) as e:
        raise CliError(f"--onnx {args.onnx}: {e}") from None


class _TorchResults:
    """`OnnxVideoTracker` whose results hold torch tensors, as the video outputs expect."""

    def __init__(
        self,
        folder: str,
        fill_hole_area: int | None,
        non_overlap: bool | None,
        memory: str = "official",
    ):
        from sam2r.onnx import OnnxVideoTracker

        self.tracker = OnnxVideoTracker(folder, fill_hole_area, non_overlap, memory=memory)
        name = self.tracker.model.manifest["model"]
        self.model = SimpleNamespace(cfg=SimpleNamespace(name=f"{name} (onnx)"))
        self.precision = None

    @staticmethod
    def _wrap(result: Any) -> Any:
        import torch

        return SimpleNamespace(
            frame_idx=result.frame_idx,
            obj_ids=result.obj_ids,
            masks=torch.from_numpy(result.masks),
            object_score_logits=torch.from_numpy(result.object_score_logits),
        )

    def init_session(self, source: Any) -> Any:
        return self.tracker.init_session(source)

    def init_stream(self) -> Any:
        return self.tracker.init_stream()

    def add_points(self, session: Any, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.tracker.add_points(session, *args, **kwargs))

    def add_mask(self, session: Any, *args: Any, **kwargs: Any) -> Any:
        return self._wrap(self.tracker.add_mask(session, *args, **kwargs))

    def track(self, session: Any, frame: Any) -> Any:
        return self._wrap(self.tracker.track(session, frame))

    def propagate(self, session: Any, *args: Any, **kwargs: Any) -> Iterator[Any]:
        return (self._wrap(r) for r in self.tracker.propagate(session, *args, **kwargs))
