"""What the subcommands of `sam2r` share: the error a user can fix, the model options and the
model they name, reading an image and drawing masks over it.

The model is `--checkpoint PATH` (variant recognised from the file, or `--model NAME`), else
`--model NAME` from the Hugging Face hub cache (downloaded when online), else the bundled
`sam2r_micro` (a small model trained by sam2r on synthetic videos; see README, "Training").

This module imports none of the subcommands; they import it.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_MODEL = "sam2r_micro"  # bundled in the package: works offline, no download


class CliError(Exception):
    """A problem the user can fix; printed without a traceback."""


def model_args(sp: argparse.ArgumentParser) -> None:
    """Add the options that choose the model (`load_model`'s arguments) to a subcommand."""
    sp.add_argument("--model", help=f"model name or hub id (default {DEFAULT_MODEL})")
    sp.add_argument("--checkpoint", help="official .pt checkpoint (variant recognised)")
    sp.add_argument("--config", help="model YAML (official layout) for a custom checkpoint")
    sp.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps ...")
    sp.add_argument(
        "--precision",
        default="fp32",
        choices=("fp32", "bf16"),
        help="bf16: image encoder and memory attention in bfloat16 (CPUs with AVX512_BF16 or "
        "AMX, CUDA GPUs; refused where slower). Default fp32: the official numbers",
    )


def precision_of(args: argparse.Namespace, device: Any) -> Any:
    """`--precision` checked for a model on `device`: a `sam2r.predictor.precision.Precision`
    for the predictors, or CliError saying why bf16 is refused here."""
    from sam2r.predictor.precision import resolve_precision

    try:
        return resolve_precision(args.precision, device)
    except ValueError as e:
        msg = str(e).replace("precision='bf16'", "--precision bf16")
        raise CliError(msg.replace("precision='fp32'", "--precision fp32")) from None


def load_model(
    model: str | None, checkpoint: str | None, device: str, config: str | None = None
) -> Any:
    """The model from a checkpoint file or the hub cache; CliError with advice on failure."""
    from sam2r.build import build_model, from_pretrained
    from sam2r.configs.yaml import config_from_yaml

    variant: Any = model
    if config is not None:
        if checkpoint is None:
            raise CliError("--config needs --checkpoint (the weights of that model)")
        try:
            variant = config_from_yaml(config)
        except (OSError, ValueError) as e:
            raise CliError(f"--config {config}: {e}") from None
    if checkpoint is not None:
        if not Path(checkpoint).is_file():
            raise CliError(f"--checkpoint {checkpoint}: no such file")
        try:
            return build_model(variant, checkpoint=checkpoint, device=device)
        except ValueError as e:
            raise CliError(str(e)) from None
    name = model or DEFAULT_MODEL
    try:
        return from_pretrained(name, device=device)
    except ImportError as e:
        raise CliError(
            f"{e}\nOr pass a downloaded checkpoint: --checkpoint sam2.1_hiera_tiny.pt"
        ) from None
    except RuntimeError as e:
        raise CliError(str(e)) from None


def overlay(image: np.ndarray, masks: list[np.ndarray], alpha: float = 0.5) -> np.ndarray:
    """Draw masks 1, 2, ... over the image (fill, contour, id: `sam2r.io.draw`): (H, W, 3) uint8."""
    from sam2r.io.draw import draw_masks

    return draw_masks(image, masks, alpha=alpha)


def read_image(path: Path) -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB; CliError when missing or unreadable."""
    from PIL import Image

    if not path.is_file():
        raise CliError(f"{path}: no such image file")
    try:
        with Image.open(path) as im:
            return np.array(im.convert("RGB"))
    except OSError as e:
        raise CliError(f"{path}: not a readable image ({e})") from None
