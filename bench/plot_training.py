"""Draw the training curve of a multi-stage run (the README's figure of the bundled model).

    python bench/plot_training.py runs/synth_micro_images/log.csv runs/synth_micro/log.csv \
        --out docs/training_curve.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sam2r.cli.train import plot_curve


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="plot log.csv files of consecutive training stages")
    ap.add_argument("logs", nargs="+", type=Path, help="log.csv of each stage, in order")
    ap.add_argument("--out", type=Path, default=Path("docs/training_curve.png"))
    args = ap.parse_args(argv)
    print(f"wrote {plot_curve(args.logs, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
