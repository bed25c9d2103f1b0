"""The `sam2r` command line: the parser of every subcommand, and `main`.

    sam2r image IMAGE --point X,Y [--box X0,Y0,X1,Y1 ...] [--out DIR]
    sam2r everything IMAGE [--points-per-side 32] [--out DIR]
    sam2r video INPUT --point FRAME:OBJ:X,Y [--box ...] [--mask PNG] [--out DIR]
    sam2r synth --out DIR --train N --val N
    sam2r train CONFIG [section.key=value ...]
    sam2r eval --gt ROOT --pred DIR --out DIR
    sam2r vos-infer --data ROOT --out DIR
    sam2r studio [PATH] [--host 127.0.0.1] [--port 8000]
    sam2r export onnx [--model NAME] --out DIR [--opset N] [--image-size N]

Each subcommand lives in its own module of `sam2r.cli` (`image`, `everything`, `video`, `synth`,
`train`, `eval`, `vos_infer`, `studio`), which registers its arguments (`add_*_parser`) and
runs it; what they share (`CliError`, the model options, `load_model`) is `sam2r.cli.common`.
A `CliError` is printed as `sam2r COMMAND: message` without a traceback, and the exit status is 2.
"""

from __future__ import annotations

import argparse
import sys

from sam2r.cli.common import CliError, model_args
from sam2r.cli.eval import add_eval_parser
from sam2r.cli.everything import add_everything_parser
from sam2r.cli.export import add_export_parser
from sam2r.cli.image import add_image_parser
from sam2r.cli.studio import add_studio_parser
from sam2r.cli.synth import add_synth_parser
from sam2r.cli.train import add_train_parser
from sam2r.cli.video import add_video_parser
from sam2r.cli.vos_infer import add_vos_parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sam2r", description="SAM 2 / SAM 2.1 segmentation")
    sub = p.add_subparsers(dest="command", required=True)
    add_image_parser(sub, model_args)
    add_everything_parser(sub, model_args)
    add_video_parser(sub, model_args)
    add_synth_parser(sub, model_args)
    add_train_parser(sub, model_args)
    add_eval_parser(sub, model_args)
    add_vos_parser(sub, model_args)  # the `vos-infer` subcommand
    add_studio_parser(sub, model_args)
    add_export_parser(sub, model_args)  # `sam2r export onnx`
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CliError as e:
        print(f"sam2r {args.command}: {e}", file=sys.stderr)
        return 2
