"""The SAM 2 training losses: focal + dice on the masks, L1 on the predicted IoU, and a binary
cross-entropy on the object score, with the paper's weights 20 : 1 : 1 : 1.

With several candidate masks only the best one (lowest focal + dice) is supervised, while the
IoU head is supervised on every candidate. Mask and IoU terms count only where the object is
present; every term is summed over objects and divided by their number.

One term is ours and off by default (`loss.iou_rank = 0`): a pairwise ranking loss on the
predicted IoUs of the candidates. L1 alone teaches the head how good a prompt's masks are on
the whole more than which of them is best, and the best-scored mask is what a 1-click user
gets.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from sam2r.train.config import LossSection


class LossTerms(NamedTuple):
    """Per-term losses of one prediction (scalars), and their weighted sum."""

    total: Tensor
    focal: Tensor
    dice: Tensor
    iou: Tensor
    object_score: Tensor
    iou_rank: Tensor


def focal_loss(logits: Tensor, target: Tensor, alpha: float, gamma: float) -> Tensor:
    """Sigmoid focal loss averaged over pixels: (O, M, H, W) logits, (O, 1, H, W) -> (O, M)."""
    target = target.expand_as(logits)
    prob = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = prob * target + (1 - prob) * (1 - target)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * target + (1 - alpha) * (1 - target)) * loss
    return loss.flatten(2).mean(-1)


def dice_loss(logits: Tensor, target: Tensor) -> Tensor:
    """1 - soft Dice with +1 smoothing: (O, M, H, W) logits, (O, 1, H, W) -> (O, M)."""
    prob = torch.sigmoid(logits).flatten(2)
    t = target.expand_as(logits).flatten(2)
    inter = (prob * t).sum(-1)
    return 1 - (2 * inter + 1) / (prob.sum(-1) + t.sum(-1) + 1)


def mask_iou(logits: Tensor, target: Tensor) -> Tensor:
    """IoU of the binarised masks with the target: (O, M, H, W), (O, 1, H, W) -> (O, M)."""
    pred = (logits > 0).flatten(2)
    t = target.expand_as(logits).flatten(2) > 0.5
    inter = (pred & t).sum(-1).float()
    union = (pred | t).sum(-1).float()
    return inter / union.clamp(min=1.0)


def iou_rank_loss(
    iou_pred: Tensor, actual: Tensor, temperature: float = 0.05, margin: float = 0.02
) -> Tensor:
    """Pairwise logistic ranking loss of predicted IoUs: (O, M), (O, M) -> (O,).

    For every pair of candidates whose true IoUs differ by more than `margin`, the loss is
    softplus(-(p_better - p_worse) / temperature), averaged over such pairs (0 where none).
    """
    gap = actual[:, :, None] - actual[:, None, :]
    pairs = (gap > margin).float()
    pred_gap = (iou_pred[:, :, None] - iou_pred[:, None, :]) / temperature
    loss = F.softplus(-pred_gap) * pairs
    return loss.sum((1, 2)) / pairs.sum((1, 2)).clamp(min=1.0)


def prediction_loss(
    multimask_logits: Tensor,
    iou_pred: Tensor,
    object_score_logits: Tensor,
    target: Tensor,
    w: LossSection,
) -> LossTerms:
    """The losses of one prediction step on one frame.

    Args:
        multimask_logits: (O, M, H, W) candidate mask logits at the target's resolution.
        iou_pred: (O, M) predicted IoUs.
        object_score_logits: (O, 1).
        target: (O, 1, H, W) float ground truth.
        w: loss weights and focal parameters.
    """
    o = target.shape[0]
    present = (target.flatten(1).amax(1) > 0.5).float()  # (O,)
    focal = focal_loss(multimask_logits, target, w.focal_alpha, w.focal_gamma)
    dice = dice_loss(multimask_logits, target)
    with torch.no_grad():
        actual = mask_iou(multimask_logits, target)
    best = torch.argmin(focal * w.focal + dice * w.dice, dim=1)
    rows = torch.arange(o, device=target.device)
    focal_best = focal[rows, best]
    dice_best = dice[rows, best]
    iou_l1 = (iou_pred.float() - actual).abs().mean(1)
    rank = iou_rank_loss(iou_pred.float(), actual)
    score = F.binary_cross_entropy_with_logits(
        object_score_logits.float().squeeze(1), present, reduction="none"
    )
    terms = [
        (focal_best * present).sum() / o,
        (dice_best * present).sum() / o,
        (iou_l1 * present).sum() / o,
        score.sum() / o,
        (rank * present).sum() / o,
    ]
    total = w.focal * terms[0] + w.dice * terms[1] + w.iou * terms[2] + w.object_score * terms[3]
    if w.iou_rank:
        total = total + w.iou_rank * terms[4]
    return LossTerms(total, *terms)
