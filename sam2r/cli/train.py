"""`sam2r train CONFIG [section.key=value ...]`: train or fine-tune a SAM 2 model.

    sam2r train configs/train/synth_micro.yaml
    sam2r train configs/train/finetune_davis.yaml model.checkpoint=sam2.1_hiera_tiny.pt \
        data.root=/data/MyVideos run.steps=2000
    torchrun --nproc_per_node=8 -m sam2r.cli train configs/train/finetune_davis.yaml

Resumes from `run.out_dir/checkpoints/checkpoint.pt` when it exists (unless `--no-resume`);
`--plot` draws the training curve of a run (`log.csv` -> `curve.png`, needs matplotlib).
"""

from __future__ import annotations

import argparse
import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.cli.common import CliError


def cmd_train(args: argparse.Namespace) -> int:
    from sam2r.train.config import train_config_from_yaml
    from sam2r.train.trainer import train

    if args.config is not None and "=" in args.config and not Path(args.config).exists():
        args.overrides = [args.config, *args.overrides]  # no YAML, only overrides
        args.config = None
    if args.config is not None and not Path(args.config).is_file():
        raise CliError(f"training config {args.config}: no such file")
    try:
        cfg = train_config_from_yaml(args.config, args.overrides)
    except ValueError as e:
        raise CliError(str(e)) from None
    try:
        final = train(cfg, resume=args.resume)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    print(f"wrote {final}")
    if args.plot:
        png = plot_curve(Path(cfg.run.out_dir) / "log.csv")
        print(f"wrote {png}")
    return 0


def plot_curve(logs: Path | list[Path], out: Path | None = None) -> Path:
    """Plot the loss terms of one run's `log.csv` (or of consecutive stages, each continuing
    the step count of the previous one) against the step; a PNG next to the last log."""

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("plotting needs matplotlib: pip install 'sam2r[plot]'") from None
    logs = [Path(logs)] if isinstance(logs, (str, Path)) else [Path(p) for p in logs]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    colours = {"loss": "C0", "focal": "C1", "dice": "C2", "iou": "C3", "object_score": "C4"}
    offset = 0
    for k, log_csv in enumerate(logs):
        with open(log_csv) as f:
            rows = list(csv.DictReader(f))
        if not rows:
            raise CliError(f"{log_csv} has no logged steps yet")
        steps = [offset + int(r["step"]) for r in rows]
        for ax, keys in ((axes[0], ("loss",)), (axes[1], ("focal", "dice", "iou", "object_score"))):
            for key in keys:
                values = np.array([float(r[key]) for r in rows])
                smooth = (
                    np.convolve(values, np.ones(10) / 10, mode="valid")
                    if len(rows) > 20
                    else values
                )
                ax.plot(steps, values, color=colours[key], alpha=0.25, lw=0.7)
                label = ("total (weighted)" if key == "loss" else key) if k == 0 else None
                ax.plot(steps[len(steps) - len(smooth) :], smooth, color=colours[key], label=label)
        offset = steps[-1]
        if len(logs) > 1 and k < len(logs) - 1:
            for ax in axes:
                ax.axvline(offset, color="grey", lw=0.8, ls="--")
    for ax, title in zip(axes, ("training loss", "loss terms (unweighted)"), strict=True):
        ax.set_yscale("log")
        ax.set_xlabel("step" if len(logs) == 1 else "step (dashed: next stage)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out = Path(out) if out is not None else logs[-1].with_name("curve.png")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def add_train_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r train` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    tp = sub.add_parser("train", help="train or fine-tune a model (SAM 2's recipe)")
    tp.add_argument("config", nargs="?", help="training YAML (see configs/train/); none = defaults")
    tp.add_argument(
        "overrides", nargs="*", metavar="SECTION.KEY=VALUE", help="e.g. optim.lr=3e-4 run.steps=10"
    )
    tp.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="continue from OUT_DIR/checkpoints/checkpoint.pt when present (default on)",
    )
    tp.add_argument("--plot", action="store_true", help="write OUT_DIR/curve.png at the end")
    tp.set_defaults(func=cmd_train)
    return tp
