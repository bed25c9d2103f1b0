"""The `sam2r eval` command: J&F of predicted masks against annotations.

    sam2r eval --gt DAVIS --pred predictions/ --out eval_out/
    sam2r eval --gt sav_val/Annotations_6fps --pred predictions/ --out eval_out/ --convention sav

`--gt` is a DAVIS root (`Annotations/480p/<seq>/<frame>.png`, sequences from
`ImageSets/2017/val.txt` when present) or a folder of sequence folders, each holding label-map
PNGs (pixel = object id) or, SA-V style, one folder of binary PNGs per object. `--pred` holds
one folder per sequence in the same layout and with the same file names (e.g. the `masks/`
folders written by `sam2r video`, one per sequence). Prints the global and per-sequence /
per-object scores and writes `OUT/global_results.csv` and `OUT/per-object_results.csv` in the
format of the DAVIS 2017 toolkit.

What is left to others: everything about scoring (`sam2r.eval`).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from sam2r.cli.common import CliError


def cmd_eval(args: argparse.Namespace) -> int:
    from sam2r.eval import evaluate

    sequences = None
    if args.sequences is not None:
        sequences = [s.strip() for s in args.sequences.split(",") if s.strip()]
        if not sequences:
            raise CliError(f"--sequences {args.sequences!r}: expected names like a,b")
    try:
        result = evaluate(
            args.gt,
            args.pred,
            convention=args.convention,
            sequences=sequences,
            bound_th=args.bound_th,
            progress=not args.quiet,
        )
        global_csv, object_csv = result.write_csv(args.out)
    except ValueError as e:
        raise CliError(str(e)) from None
    print(result.table())
    print(f"\nwrote {global_csv} and {object_csv}")
    return 0


def add_eval_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.ArgumentParser:
    """Register `sam2r eval` on the subcommand parsers of `sam2r.cli.main.build_parser`.

    `model_args` is accepted for symmetry with the other subcommands; evaluation needs no model.
    """
    ep = sub.add_parser("eval", help="J&F of predicted masks against DAVIS / SA-V annotations")
    ep.add_argument("--gt", required=True, metavar="GT_ROOT", help="annotations (see above)")
    ep.add_argument(
        "--pred", required=True, metavar="PRED_ROOT", help="one folder of PNGs per sequence"
    )
    ep.add_argument("--out", required=True, metavar="DIR", help="where the CSV files go")
    ep.add_argument(
        "--convention",
        choices=("davis", "sav"),
        default="davis",
        help="davis: DAVIS 2017 semi-supervised (default); sav: the SA-V evaluator",
    )
    ep.add_argument(
        "--sequences", metavar="A,B", help="evaluate only these sequences (comma-separated)"
    )
    ep.add_argument(
        "--bound-th",
        type=float,
        default=0.008,
        help="contour tolerance: fraction of the image diagonal, or pixels if >= 1",
    )
    ep.add_argument("--quiet", action="store_true", help="no progress bar")
    ep.set_defaults(func=cmd_eval)
    return ep
