"""Hugging Face `transformers` zero-shot object detectors as sam2r text-prompt detectors.

    detector = load_detector("IDEA-Research/grounding-dino-tiny")       # hub id (online/cached)
    detector = load_detector("google/owlv2-base-patch16-ensemble")
    detector = load_detector("/models/grounding-dino-tiny")            # a save_pretrained folder
    dets = detector(image, ["red car", "person"])                      # Detections

Two families are read, through `AutoModelForZeroShotObjectDetection` and `AutoProcessor`:

* OWL-ViT / OWLv2 (`owlvit`, `owlv2`): one logit per image patch and query; a box's label is
  its best query. OWLv2 pads the image to a square at the bottom right, so its boxes are
  relative to that square; OWL-ViT stretches the image, so its boxes are relative to the image.
* Grounding DINO (`grounding-dino`, `mm-grounding-dino`): the queries are one caption,
  `"red car. person."`, and each box has a logit per caption token. A box's score for a query
  is its best token inside that query's span (the tokens between two full stops); its label is
  the query with the best score. That is the processor's `post_process_grounded_object_detection`
  score, with the label tied to the queries asked for instead of decoded from tokens (which
  gives sub-phrases like "car" for "red car", and differs across transformers versions).

The raw outputs are read here (`logits`, `pred_boxes` in normalised cx, cy, w, h), not through
the processors' post-processing, whose signatures changed between transformers releases.
Thresholds, clipping and NMS are `sam2r.text.detections.detect`'s.

What is left to others: the models themselves (`transformers`, the `text` extra), checking the
answer (`sam2r.text.detections`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sam2r.text.detections import Detections

OWL_TYPES = ("owlvit", "owlv2")
GROUNDING_TYPES = ("grounding-dino", "mm-grounding-dino")
INSTALL_HINT = (
    "text prompts with a Hugging Face detector need the `text` extra: pip install "
    "'sam2r[text]' (installs transformers); or pass any callable "
    "detector(image, queries) -> (boxes, scores, labels)"
)


def require_transformers() -> Any:
    """The `transformers` module, or ImportError naming the extra to install."""
    try:
        import transformers
    except ImportError as e:
        raise ImportError(f"{INSTALL_HINT} ({e})") from None
    return transformers


class TransformersDetector:
    """A `transformers` zero-shot detector (model + processor) as a `Detector`.

    Args:
        model: an OWL-ViT, OWLv2 or Grounding DINO `...ForObjectDetection` in eval mode.
        processor: its `AutoProcessor` (image processor + tokenizer).
        device: where the model runs (default: where it is).
    """

    def __init__(self, model: Any, processor: Any, device: str | torch.device | None = None):
        kind = getattr(getattr(model, "config", None), "model_type", None)
        if kind not in OWL_TYPES + GROUNDING_TYPES:
            raise ValueError(
                f"unsupported detector type {kind!r}: expected a zero-shot detector of type "
                f"{', '.join(OWL_TYPES + GROUNDING_TYPES)} (OWL-ViT, OWLv2, Grounding DINO); "
                "wrap any other detector in a callable detector(image, queries)"
            )
        self.kind = kind
        self.model = model.eval() if device is None else model.to(device).eval()
        self.processor = processor

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path,
        *,
        device: str | torch.device = "cpu",
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> TransformersDetector:
        """Load by hub id (downloaded when online, else from the hub cache) or from a folder
        written by `model.save_pretrained(dir)` and `processor.save_pretrained(dir)`.

        Args:
            name_or_path: a hub id (`"IDEA-Research/grounding-dino-tiny"`) or a folder.
            device: where the model runs.
            local_files_only: never reach the network (default: True for a folder).
            **kwargs: passed to both `from_pretrained` calls (e.g. `cache_dir`, `revision`).

        Raises:
            ImportError: transformers is missing (`pip install 'sam2r[text]'`).
            RuntimeError: neither found locally nor downloadable; says how to get it.
        """
        transformers = require_transformers()
        path = Path(name_or_path).expanduser()
        if path.is_file():
            raise ValueError(
                f"{str(name_or_path)!r} is a file; give a hub id or the folder the model and "
                "its processor were saved to (save_pretrained)"
            )
        local = path.is_dir()
        if local_files_only is None:
            local_files_only = local
        name = str(path) if local else str(name_or_path)
        try:
            processor = transformers.AutoProcessor.from_pretrained(
                name, local_files_only=local_files_only, **kwargs
            )
            model = transformers.AutoModelForZeroShotObjectDetection.from_pretrained(
                name, local_files_only=local_files_only, **kwargs
            )
        except (OSError, ValueError) as e:
            where = (
                f"the folder {name!r}"
                if local
                else f"{name!r} (a hub id: downloaded when online, else read from the hub cache)"
            )
            raise RuntimeError(
                f"could not load the detector from {where}: {e}\nOffline, save it once where "
                "you have network (AutoModelForZeroShotObjectDetection.from_pretrained(ID)"
                ".save_pretrained(DIR), the same for AutoProcessor) and pass DIR."
            ) from None
        return cls(model, processor, device=device)

    @torch.inference_mode()
    def __call__(self, image: np.ndarray, queries: list[str]) -> Detections:
        """Every box the model predicts for the queries on a uint8 (H, W, 3) image (no
        threshold: `detect` applies it)."""
        h, w = image.shape[:2]
        if self.kind in OWL_TYPES:
            inputs = self.processor(text=[list(queries)], images=image, return_tensors="pt")
            out = self.model(**inputs.to(self.device))
            probs = torch.sigmoid(out.logits[0].float())  # (P, Q) patches x queries
            scores, labels = probs.max(dim=-1)
            # OWLv2 pads to a square at the bottom right; OWL-ViT stretches to a square
            scale = (max(h, w),) * 2 if self.kind == "owlv2" else (w, h)
        else:
            caption = ". ".join(queries) + "."
            inputs = self.processor(images=image, text=caption, return_tensors="pt")
            out = self.model(**inputs.to(self.device))
            ids = inputs["input_ids"][0].cpu()
            spans = self._query_spans(ids, len(queries))  # (Q, L) bool
            probs = torch.sigmoid(out.logits[0, :, : ids.numel()].float())  # (B, L) tokens
            per_query = torch.where(spans[None].to(probs.device), probs[:, None], 0.0).amax(-1)
            scores, labels = per_query.max(dim=-1)  # (B,)
            scale = (w, h)
        boxes = _corners(out.pred_boxes[0].float()) * torch.tensor(scale * 2).to(scores)
        return Detections(
            boxes.cpu().numpy().astype(np.float32),
            scores.cpu().numpy().astype(np.float32),
            [queries[i] for i in labels.cpu().tolist()],
        )

    def _query_spans(self, input_ids: torch.Tensor, num_queries: int) -> torch.Tensor:
        """(Q, L) bool: which caption tokens belong to each query (full stops separate them)."""
        tok = self.processor.tokenizer
        dot = tok.convert_tokens_to_ids(".")
        special = set(tok.all_special_ids)
        spans = torch.zeros(num_queries, input_ids.numel(), dtype=torch.bool)
        q = 0
        for i, t in enumerate(input_ids.tolist()):
            if t == dot:
                q += 1
            elif t not in special and q < num_queries:
                spans[q, i] = True
        return spans


def load_detector(
    name_or_path: str | Path,
    *,
    device: str | torch.device = "cpu",
    local_files_only: bool | None = None,
    **kwargs: Any,
) -> TransformersDetector:
    """`TransformersDetector.from_pretrained`: a hub id or a local folder."""
    return TransformersDetector.from_pretrained(
        name_or_path, device=device, local_files_only=local_files_only, **kwargs
    )


def _corners(cxcywh: torch.Tensor) -> torch.Tensor:
    """(N, 4) normalised cx, cy, w, h -> (N, 4) x0, y0, x1, y1 (still normalised)."""
    c, s = cxcywh[:, :2], cxcywh[:, 2:] / 2
    return torch.cat([c - s, c + s], dim=1)
