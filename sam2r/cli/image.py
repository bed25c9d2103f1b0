"""The `sam2r image` command: segment objects in one image from clicks or boxes.

    sam2r image IMAGE --point X,Y [--point X,Y,0 ...] [--box X0,Y0,X1,Y1 ...] [--out DIR]

Writes, for each prompt set, the best mask as a PNG, an overlay PNG of all masks, and a JSON
summary (scores, areas, boxes).

What is left to others: the predictor (`sam2r.predictor.image`), the model, reading the image
and drawing the overlay (`sam2r.cli.common`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.cli.common import CliError, load_model, overlay, precision_of, read_image
from sam2r.cli.export import add_onnx_arg, onnx_image_predictor
from sam2r.cli.text import add_text_args, run_image_text


def _numbers(text: str, n: tuple[int, ...], what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise CliError(f"{what} {text!r}: expected comma-separated numbers") from None
    if len(vals) not in n:
        forms = {2: "X,Y", 3: "X,Y,LABEL", 4: "X0,Y0,X1,Y1"}
        raise CliError(f"{what} {text!r}: expected {' or '.join(forms[k] for k in n)}")
    return vals


def cmd_image(args: argparse.Namespace) -> int:
    from PIL import Image

    from sam2r.predictor.image import ImagePredictor

    if args.text is not None:
        return run_image_text(args)  # a detector finds the boxes (sam2r.cli.text)
    path = Path(args.image)
    image = read_image(path)
    points = [_numbers(p, (2, 3), "--point") for p in args.point]
    boxes = [_numbers(b, (4,), "--box") for b in args.box]
    if not points and not boxes:
        raise CliError("give at least one --point X,Y or --box X0,Y0,X1,Y1")

    if args.onnx is not None:  # an exported model on ONNX Runtime (sam2r.cli.export)
        predictor, model_name = onnx_image_predictor(args)
    else:
        model = load_model(args.model, args.checkpoint, args.device, args.config)
        precision = precision_of(args, model.device)
        predictor = ImagePredictor(model, max_hole_area=args.max_hole_area, precision=precision)
        model_name = model.cfg.name
    predictor.set_image(image)

    coords = np.array([p[:2] for p in points], dtype=np.float32) if points else None
    labels = np.array([int(p[2]) if len(p) == 3 else 1 for p in points]) if points else None
    try:
        if boxes:
            # each box is one object; the clicks (if any) refine every box
            pred = predictor.predict(coords, labels, np.array(boxes), multimask_output=False)
            masks = list(pred.masks.reshape(len(boxes), -1, *image.shape[:2])[:, 0])
            scores = pred.scores.reshape(len(boxes), -1)[:, 0].tolist()
        else:
            multi = len(points) == 1 if args.multimask is None else args.multimask
            pred = predictor.predict(coords, labels, multimask_output=multi)
            best = int(np.argmax(pred.scores))
            masks, scores = [pred.masks[best]], [float(pred.scores[best])]
    except ValueError as e:
        raise CliError(str(e)) from None

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    records = []
    for i, (m, s) in enumerate(zip(masks, scores, strict=True), start=1):
        Image.fromarray((m * 255).astype(np.uint8)).save(out / f"{path.stem}_mask{i}.png")
        ys, xs = np.nonzero(m)
        bbox = [int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())] if len(xs) else None
        records.append(
            {"object": i, "score": round(float(s), 6), "area": int(m.sum()), "bbox_xyxy": bbox}
        )
    Image.fromarray(overlay(image, masks)).save(out / f"{path.stem}_overlay.png")
    summary = {"image": str(path), "model": model_name, "masks": records}
    (out / f"{path.stem}_masks.json").write_text(json.dumps(summary, indent=1))
    for r in records:
        print(
            f"mask {r['object']}: score {r['score']:.3f}, area {r['area']} px, box {r['bbox_xyxy']}"
        )
    print(f"wrote {len(records)} mask(s), an overlay and a JSON summary to {out}/")
    return 0


def add_image_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r image` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    im = sub.add_parser("image", help="segment objects in one image from clicks or boxes")
    im.add_argument("image", help="image file (PNG, JPEG, ...)")
    im.add_argument(
        "--point",
        action="append",
        default=[],
        metavar="X,Y[,LABEL]",
        help="a click in pixels; LABEL 1 foreground (default) or 0 background",
    )
    im.add_argument(
        "--box",
        action="append",
        default=[],
        metavar="X0,Y0,X1,Y1",
        help="a box in pixels; several boxes segment several objects",
    )
    im.add_argument(
        "--multimask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="predict 3 masks and keep the best (default: for a single click)",
    )
    im.add_argument("--max-hole-area", type=int, default=0, help="fill holes up to this area")
    im.add_argument("--out", default="sam2r_out", help="output directory")
    add_text_args(im, video=False)
    add_onnx_arg(im)
    model_args(im)
    im.set_defaults(func=cmd_image)
    return im
