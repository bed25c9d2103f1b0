"""The training forward pass over one clip: SAM 2's interactive, memory-driven rollout.

For a clip of T frames and O objects (`Sample`), `rollout` simulates a user the way the paper's
training does:

* frame 0 (and, with some probability, a second random frame) is an initial conditioning
  frame prompted with the ground-truth mask, one click or a jittered box;
* the remaining frames are tracked in order: memory attention reads the memories of the
  conditioning frames and of the `num_maskmem - 1` previous frames, plus the object pointers
  of the conditioning frames and up to `max_obj_ptrs_in_encoder - 1` previous frames;
* on the clicked frames (initial ones, and up to `correct_frames` tracked ones) corrective
  clicks are drawn from the error region of the current prediction, one per round, each round
  feeding the previous low-res logits back as the mask prompt; corrected frames become
  conditioning frames;
* every prediction step of every frame is supervised (`sam2r.train.loss`), and gradients flow
  through the memories across the clip.

`TrainStep` wraps the model so that `torch.nn.parallel.DistributedDataParallel` can wrap the
whole rollout (its forward is the loss of a list of samples).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sam2r.model.sam2 import FrameOutput, ImageFeatures, SAM2Model
from sam2r.train.config import LossSection, PromptSection
from sam2r.train.loss import LossTerms, prediction_loss
from sam2r.train.prompts import click_inside, correction_click, jittered_box


@dataclass
class Sample:
    """One training sample: a clip (T frames) or an image (T = 1) with O objects."""

    images: Tensor  # (T, 3, S, S) normalised model input
    masks: Tensor  # (O, T, S, S) bool ground truth per object
    is_image: bool = False


@dataclass
class _Stored:
    """What a processed frame leaves in the memory bank (batch O)."""

    features: Tensor  # (O, mem_dim, h, w)
    pos: Tensor  # (O, mem_dim, h, w)
    obj_ptr: Tensor  # (O, C)
    is_cond: bool


def _frame(feats: ImageFeatures, t: int, o: int) -> ImageFeatures:
    """Frame t of clip features, broadcast to O objects."""

    def pick(x: Tensor) -> Tensor:
        return x[t : t + 1].expand(o, -1, -1, -1)

    return ImageFeatures(pick(feats.embed), pick(feats.pos), tuple(map(pick, feats.high_res)))


def _read_memory(model: SAM2Model, feats: ImageFeatures, bank: dict[int, _Stored], t: int, n: int):
    """Memory attention of frame t on the bank (training: every conditioning frame is read,
    past or future, and its pointer too)."""
    cfg = model.cfg
    tokens, pos = [], []
    cond = [s for s, m in bank.items() if m.is_cond]
    for s in cond:
        tok, p = model.spatial_memory_tokens(bank[s].features, bank[s].pos, 0)
        tokens.append(tok)
        pos.append(p)
    for t_pos in range(1, cfg.num_maskmem):
        prev = t - (cfg.num_maskmem - t_pos)
        m = bank.get(prev)
        if m is not None and not m.is_cond:
            tok, p = model.spatial_memory_tokens(m.features, m.pos, t_pos)
            tokens.append(tok)
            pos.append(p)
    max_ptrs = min(n, cfg.max_obj_ptrs_in_encoder)
    ptrs, dist = [], []
    for s in cond:
        ptrs.append(bank[s].obj_ptr)
        dist.append(t - s if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(t - s))
    for d in range(1, max_ptrs):
        m = bank.get(t - d)
        if m is not None and not m.is_cond:
            ptrs.append(m.obj_ptr)
            dist.append(d)
    tok, p = model.pointer_tokens(torch.stack(ptrs), torch.tensor(dist), max(max_ptrs, 2))
    tokens.append(tok)
    pos.append(p)
    memory, memory_pos = torch.cat(tokens, dim=1), torch.cat(pos, dim=1)
    return model.condition_on_memory(feats, memory, memory_pos, tok.shape[1])


def _supervise(model: SAM2Model, out: FrameOutput, gt: Tensor, w: LossSection) -> LossTerms:
    size = model.image_size
    logits = F.interpolate(
        out.low_res_multimasks, size=(size, size), mode="bilinear", align_corners=False
    )
    return prediction_loss(logits, out.iou, out.object_score_logits, gt[:, None].float(), w)


def rollout(
    model: SAM2Model,
    sample: Sample,
    prompts: PromptSection,
    weights: LossSection,
    gen: torch.Generator,
    encoder_grad: bool = True,
) -> tuple[Tensor, dict[str, float]]:
    """The loss of one sample (averaged over frames) and its terms for logging."""
    images, gt = sample.images, sample.masks
    t_len, o = images.shape[0], gt.shape[0]
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        feats = model.encode_image(images)

    def rand() -> float:
        return float(torch.rand(1, generator=gen))

    init = [0]
    if t_len > 1 and rand() < prompts.second_cond_prob:
        init.append(1 + int(torch.randint(t_len - 1, (1,), generator=gen)))
    rest = [t for t in range(t_len) if t not in init]
    n_corr = int(torch.randint(prompts.correct_frames + 1, (1,), generator=gen)) if rest else 0
    perm = torch.randperm(len(rest), generator=gen)[:n_corr].tolist()
    correct = {rest[i] for i in perm}
    use_mask = not sample.is_image and rand() < prompts.mask_prob
    use_box = rand() < prompts.box_prob

    bank: dict[int, _Stored] = {}
    steps: list[LossTerms] = []
    for t in init + rest:
        f = _frame(feats, t, o)
        g = gt[:, t]
        is_init = t in init
        coords = labels = None
        if is_init and use_mask:
            out = model.mask_as_output(f.embed, f.high_res, g[:, None].float())
        else:
            if is_init:
                pix = model.no_memory(f)
                prompt = jittered_box(g, prompts.box_noise, gen) if use_box else None
                coords, labels = prompt if prompt is not None else click_inside(g, gen)
            else:
                pix = _read_memory(model, f, bank, t, t_len)
            n_pts = 0 if labels is None else labels.shape[1]
            out = model.decode_frame(
                pix, f.high_res, coords, labels, None, model.use_multimask(is_init, n_pts)
            )
            steps.append(_supervise(model, out, g, weights))
            if is_init or t in correct:
                for _ in range(prompts.correction_clicks):
                    pred = out.high_res_masks[:, 0].detach() > 0
                    c, lab = correction_click(pred, g, gen)
                    coords = c if coords is None else torch.cat([coords, c], dim=1)
                    labels = lab if labels is None else torch.cat([labels, lab], dim=1)
                    n_pts = labels.shape[1]
                    out = model.decode_frame(
                        pix,
                        f.high_res,
                        coords,
                        labels,
                        out.low_res_masks.detach(),
                        model.use_multimask(is_init, n_pts),
                    )
                    steps.append(_supervise(model, out, g, weights))
        if t_len > 1:
            mem = model.encode_memory(
                f.embed, out.high_res_masks, out.object_score_logits, coords is not None
            )
            bank[t] = _Stored(mem.features, mem.pos, out.obj_ptr, is_init or t in correct)

    if not steps:  # only mask-prompted frames: nothing to learn, a zero that backpropagates
        param = next(p for p in model.parameters() if p.requires_grad)
        return param.sum() * 0.0, {}
    total = torch.stack([s.total for s in steps]).sum() / t_len
    logs = {
        name: float(torch.stack([getattr(s, name).detach() for s in steps]).sum()) / t_len
        for name in LossTerms._fields
    }
    return total, logs


class TrainStep(nn.Module):
    """`forward(samples)` = the mean loss of a list of samples (one optimiser step's batch).

    Args:
        model: the SAM 2 model being trained (in train mode).
        prompts: prompt-simulation settings.
        weights: loss weights.
        seed: seeds the prompt simulation (add the rank under DDP).
        encoder_grad: False when the image encoder is frozen (features computed without grad).
    """

    def __init__(
        self,
        model: SAM2Model,
        prompts: PromptSection,
        weights: LossSection,
        seed: int = 0,
        encoder_grad: bool = True,
    ) -> None:
        super().__init__()
        self.model = model
        self.prompts = prompts
        self.weights = weights
        self.encoder_grad = encoder_grad
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, samples: list[Sample]) -> tuple[Tensor, dict[str, float]]:
        total = None
        logs: dict[str, float] = {}
        for s in samples:
            loss, terms = rollout(
                self.model, s, self.prompts, self.weights, self.gen, self.encoder_grad
            )
            total = loss if total is None else total + loss
            for k, v in terms.items():
                logs[k] = logs.get(k, 0.0) + v / len(samples)
        assert total is not None
        return total / len(samples), logs
