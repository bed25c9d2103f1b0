"""A script written for the official `sam2` API, run unchanged against both implementations.

`model_surface(model, SAM2ImagePredictor, inp)` calls the official model internals, sub-module
call forms and image-predictor private helpers that public code uses (annotation-tool encoder
services, the "fine-tune SAM 2" tutorial, `tools/vos_inference.py`) and returns every result as
numpy arrays by name. `tests/test_compat_model.py` runs it on `sam2r.compat` objects, and on the
official ones in the reference venv by running this file:

    $REF_PYTHON tests/official_surface.py config.json inputs.npz out.npz [state_dict.pt]

(with `../shared/reference` on PYTHONPATH for `reference.build`). The optional state dict (saved
by sam2r after a fine-tuning step through the compat surface) is loaded strictly into a fresh
official model. Only torch and numpy are imported here: the implementation is passed in.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

# official SAM2Base attributes compared by value
ATTRIBUTES = (
    "image_size", "backbone_stride", "hidden_dim", "mem_dim", "num_maskmem",
    "num_feature_levels", "use_high_res_features_in_sam", "use_obj_ptrs_in_encoder",
    "max_obj_ptrs_in_encoder", "add_tpos_enc_to_obj_ptrs", "proj_tpos_enc_in_obj_ptrs",
    "use_signed_tpos_enc_to_obj_ptrs", "only_obj_ptrs_in_the_past_for_eval",
    "directly_add_no_mem_embed", "sigmoid_scale_for_mem_enc", "sigmoid_bias_for_mem_enc",
    "binarize_mask_from_pts_for_mem_enc", "non_overlap_masks_for_mem_enc",
    "memory_temporal_stride_for_eval", "use_mask_input_as_output_without_sam",
    "multimask_output_in_sam", "multimask_min_pt_num", "multimask_max_pt_num",
    "multimask_output_for_tracking", "use_multimask_token_for_obj_ptr",
    "iou_prediction_use_sigmoid", "pred_obj_scores", "pred_obj_scores_mlp", "fixed_no_obj_ptr",
    "soft_no_obj_ptr", "use_mlp_for_obj_ptr_proj", "max_cond_frames_in_attn",
    "sam_prompt_embed_dim", "sam_image_embedding_size",
)  # fmt: skip


def _put(out: dict[str, np.ndarray], name: str, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        out[name] = value.detach().float().cpu().numpy()
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _put(out, f"{name}.{i}", v)
    elif isinstance(value, dict):
        for k, v in value.items():
            _put(out, f"{name}.{k}", v)
    elif value is not None:
        out[name] = np.asarray(value, dtype=np.float64)


def model_internals(model: Any, inp: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's official internals and sub-module call forms on fixed inputs."""
    out: dict[str, np.ndarray] = {}
    t = {k: torch.from_numpy(v) for k, v in inp.items()}
    for name in ATTRIBUTES:
        _put(out, f"attr.{name}", getattr(model, name))
    _put(out, "attr.extra", dict(model.sam_mask_decoder_extra_args))  # a DictConfig there
    out["state_dict_keys"] = np.array(sorted(model.state_dict()))

    with torch.no_grad():
        x = t["images"][:1]
        enc = model.image_encoder(x)
        _put(out, "image_encoder", enc)
        fwd = model.forward_image(x)
        _put(out, "forward_image", fwd)
        _, feats, pos, sizes = model._prepare_backbone_features(fwd)
        _put(out, "prep.feats", feats)
        _put(out, "prep.pos", pos)
        _put(out, "prep.sizes", sizes)
        b, c = feats[-1].shape[1], model.hidden_dim
        h, w = sizes[-1]
        pix = (feats[-1] + model.no_mem_embed).permute(1, 2, 0).reshape(b, c, h, w)
        high_res = [
            f.permute(1, 2, 0).reshape(b, -1, *s)
            for f, s in zip(feats[:-1], sizes[:-1], strict=True)
        ]

        pe = model.sam_prompt_encoder
        pts = (t["coords"], t["labels"])
        _put(out, "pe.points", pe(points=pts, boxes=None, masks=None))
        _put(out, "pe.points_box", pe(points=pts, boxes=t["boxes"], masks=None))
        _put(out, "pe.box", pe(points=None, boxes=t["boxes"], masks=None))
        _put(out, "pe.mask", pe(points=None, boxes=None, masks=t["mask_logits"]))
        _put(out, "pe.positional", pe(pts, None, None))
        _put(out, "pe.dense_pe", pe.get_dense_pe())

        sparse, dense = pe(points=pts, boxes=t["boxes"], masks=None)
        for multi in (True, False):
            dec = model.sam_mask_decoder(
                image_embeddings=pix,
                image_pe=pe.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=multi,
                repeat_image=True,
                high_res_features=high_res,
            )
            _put(out, f"decoder.multi{int(multi)}", dec)

        all_masks = model.sam_mask_decoder.predict_masks(
            pix, pe.get_dense_pe(), sparse, dense, True, high_res
        )  # the official positional order
        _put(out, "decoder.predict_masks", all_masks)

        point_inputs = {"point_coords": t["coords"][:1], "point_labels": t["labels"][:1]}
        _put(
            out,
            "heads.points",
            model._forward_sam_heads(
                backbone_features=pix,
                point_inputs=point_inputs,
                mask_inputs=None,
                high_res_features=high_res,
                multimask_output=True,
            ),
        )
        _put(
            out,
            "heads.mask",
            model._forward_sam_heads(pix, None, t["mask_logits"][:1], high_res, False),
        )
        _put(out, "heads.as_output", model._use_mask_as_output(pix, high_res, t["binary_mask"]))
        _put(out, "multimask", [model._use_multimask(True, point_inputs),
                                model._use_multimask(False, None)])  # fmt: skip

        mem = model.memory_encoder(pix, t["mask_hr"], skip_mask_sigmoid=False)
        _put(out, "memory_encoder", mem)
        _put(out, "memory_encoder.skip", model.memory_encoder(pix, t["mask_hr"], True))
        _put(
            out,
            "encode_new_memory",
            model._encode_new_memory(feats, sizes, t["mask_hr"], t["obj_scores"], True),
        )
        memory, memory_pos = t["memory"], t["memory_pos"]
        attn = model.memory_attention(
            curr=feats[-1:], curr_pos=pos[-1:], memory=memory, memory_pos=memory_pos,
            num_obj_ptr_tokens=4,
        )  # fmt: skip
        _put(out, "memory_attention", attn)
        _put(out, "non_overlap", model._apply_non_overlapping_constraints(t["overlap"]))
        _put(out, "track", _track(model, t))
        _put(out, "track_train", _track_train(model, t))
    return out


def _track(model: Any, t: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """`track_step` over 4 frames for 2 objects, the way the official predictors drive it."""
    output_dict: dict[str, dict[int, Any]] = {
        "cond_frame_outputs": {},
        "non_cond_frame_outputs": {},
    }
    outs = []
    num_frames = 4
    for frame_idx in range(num_frames):
        x = t["images"][frame_idx : frame_idx + 1]
        fwd = model.forward_image(x)
        fwd = {
            k: [v.expand(2, -1, -1, -1) for v in fwd[k]] for k in ("backbone_fpn", "vision_pos_enc")
        }
        _, feats, pos, sizes = model._prepare_backbone_features(fwd)
        is_init = frame_idx == 0
        points = {"point_coords": t["coords"], "point_labels": t["labels"]} if is_init else None
        cur = model.track_step(
            frame_idx=frame_idx,
            is_init_cond_frame=is_init,
            current_vision_feats=feats,
            current_vision_pos_embeds=pos,
            feat_sizes=sizes,
            point_inputs=points,
            mask_inputs=None,
            output_dict=output_dict,
            num_frames=num_frames,
            track_in_reverse=False,
            run_mem_encoder=True,
        )
        kind = "cond_frame_outputs" if is_init else "non_cond_frame_outputs"
        output_dict[kind][frame_idx] = {
            "maskmem_features": cur["maskmem_features"].to(torch.bfloat16),
            "maskmem_pos_enc": cur["maskmem_pos_enc"],
            "pred_masks": cur["pred_masks"],
            "obj_ptr": cur["obj_ptr"],
            "object_score_logits": cur["object_score_logits"],
        }
        outs.append({k: v for k, v in cur.items() if k not in ("point_inputs", "mask_inputs")})
    return outs


def _track_train(model: Any, t: dict[str, torch.Tensor]) -> list[dict[str, Any]]:
    """`track_step` in training mode, as a training loop drives it (dropout off so that both
    implementations draw nothing random): prompts on frames 0 and 3, then frames 1 and 2, which
    read the pointer of the later prompted frame 3 in training (not in evaluation)."""
    frames = []
    for frame_idx in range(4):
        fwd = model.forward_image(t["images"][frame_idx : frame_idx + 1])
        fwd = {
            k: [v.expand(2, -1, -1, -1) for v in fwd[k]] for k in ("backbone_fpn", "vision_pos_enc")
        }
        frames.append(model._prepare_backbone_features(fwd)[1:])
    saved = []
    model.train()
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            saved.append((m, "p", m.p))
            m.p = 0.0
        if hasattr(m, "dropout_p"):
            saved.append((m, "dropout_p", m.dropout_p))
            m.dropout_p = 0.0
    output_dict: dict[str, dict[int, Any]] = {
        "cond_frame_outputs": {},
        "non_cond_frame_outputs": {},
    }
    outs = []
    try:
        for frame_idx in (0, 3, 1, 2):
            feats, pos, sizes = frames[frame_idx]
            prompted = frame_idx in (0, 3)
            points = (
                {"point_coords": t["coords"], "point_labels": t["labels"]} if prompted else None
            )
            cur = model.track_step(frame_idx, frame_idx == 0, feats, pos, sizes, points, None,
                                   output_dict, 4)  # fmt: skip
            kind = "cond_frame_outputs" if prompted else "non_cond_frame_outputs"
            output_dict[kind][frame_idx] = cur
            outs.append({k: v for k, v in cur.items() if k not in ("point_inputs", "mask_inputs")})
    finally:
        model.eval()
        for m, name, value in saved:
            setattr(m, name, value)
    return outs


def image_helpers(
    predictor_cls: Any, model: Any, inp: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """SAM2ImagePredictor's private helpers and the "fine-tune SAM 2" tutorial's step."""
    out: dict[str, np.ndarray] = {}
    t = {k: torch.from_numpy(v) for k, v in inp.items()}
    predictor = predictor_cls(model)
    names = set(vars(predictor))
    for cls in type(predictor).__mro__[:-1]:  # its classes, `object` excluded
        names |= set(vars(cls))
    out["names"] = np.array(sorted(n for n in names if not n.startswith("__")))
    s = model.image_size  # the official predictor assumes 1024; the micro model is 256
    predictor._bb_feat_sizes = [(s // 4, s // 4), (s // 8, s // 8), (s // 16, s // 16)]
    image = inp["rgb"]
    predictor.set_image(image)
    orig_hw = predictor._orig_hw[-1]
    _put(out, "orig_hw", orig_hw)
    _put(out, "features", predictor._features)
    _put(
        out,
        "prep",
        predictor._prep_prompts(
            inp["px_coords"], inp["px_labels"], inp["px_box"], inp["mask_logits"][0], True
        ),
    )
    _put(out, "prep.no_norm", predictor._prep_prompts(inp["rel_coords"], inp["px_labels"],
                                                      None, None, False))  # fmt: skip
    tr = predictor._transforms
    _put(out, "tr.coords", tr.transform_coords(t["px_coords"].float(), normalize=True,
                                               orig_hw=orig_hw))  # fmt: skip
    _put(out, "tr.coords_rel", tr.transform_coords(t["rel_coords"].float()))
    _put(out, "tr.boxes", tr.transform_boxes(t["px_box"].float(), True, orig_hw))
    _put(out, "tr.post", tr.postprocess_masks(t["mask_logits"], orig_hw))

    # the tutorial's training step (mask decoder and prompt encoder trained)
    predictor.model.sam_mask_decoder.train(True)
    predictor.model.sam_prompt_encoder.train(True)
    mask_input, coords, labels, box = predictor._prep_prompts(
        inp["px_coords"][:1], inp["px_labels"][:1], box=None, mask_logits=None,
        normalize_coords=True,
    )  # fmt: skip
    sparse, dense = predictor.model.sam_prompt_encoder(
        points=(coords, labels), boxes=None, masks=None
    )
    batched = coords.shape[0] > 1
    high_res = [level[-1].unsqueeze(0) for level in predictor._features["high_res_feats"]]
    low_res, scores, _, _ = predictor.model.sam_mask_decoder(
        image_embeddings=predictor._features["image_embed"][-1].unsqueeze(0),
        image_pe=predictor.model.sam_prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
        repeat_image=batched,
        high_res_features=high_res,
    )
    masks = predictor._transforms.postprocess_masks(low_res, orig_hw)
    gt = t["gt"]
    prd = torch.sigmoid(masks[:, 0])
    seg = (-gt * torch.log(prd + 1e-5) - (1 - gt) * torch.log(1 - prd + 1e-5)).mean()
    inter = (gt * (prd > 0.5)).sum(1).sum(1)
    iou = inter / (gt.sum(1).sum(1) + (prd > 0.5).sum(1).sum(1) - inter)
    loss = seg + torch.abs(scores[:, 0] - iou).mean() * 0.05
    predictor.model.zero_grad()
    loss.backward()
    _put(out, "ft.loss", loss)
    for name, p in predictor.model.named_parameters():
        if p.grad is not None:
            _put(out, f"ft.grad.{name}", p.grad)
    predictor.model.zero_grad()
    predictor.model.eval()
    return out


def utils_surface(
    misc: Any, amg: Any, transforms_cls: Any, inp: dict[str, np.ndarray], video_dir: str
) -> dict[str, np.ndarray]:
    """`sam2.utils.misc` / `.amg` / `.transforms` helpers (those that need no CUDA extension,
    OpenCV or pycocotools)."""
    out: dict[str, np.ndarray] = {}
    masks = torch.from_numpy(inp["overlap"] > 4)  # (3, 1, 32, 32) bool
    _put(out, "misc.mask_to_box", misc.mask_to_box(masks))
    _put(out, "misc.mask_to_box_empty", misc.mask_to_box(torch.zeros(1, 1, 5, 7, dtype=torch.bool)))
    pts = misc.concat_points(None, torch.ones(1, 1, 2), torch.ones(1, 1, dtype=torch.int32))
    _put(out, "misc.concat", misc.concat_points(pts, torch.zeros(1, 2, 2), torch.zeros(1, 2)))
    images, h, w = misc.load_video_frames(video_dir, 256, offload_video_to_cpu=True,
                                          compute_device=torch.device("cpu"))  # fmt: skip
    _put(out, "misc.video", [images[:3], h, w])
    rles = amg.mask_to_rle_pytorch(masks[:, 0])
    for i, r in enumerate(rles):
        _put(out, f"amg.rle.{i}", [r["size"], r["counts"], amg.area_from_rle(r),
                                   amg.rle_to_mask(r)])  # fmt: skip
    logits = torch.from_numpy(inp["overlap"])
    _put(out, "amg.stability", amg.calculate_stability_score(logits, 0.0, 1.0))
    _put(out, "amg.grids", amg.build_all_layer_point_grids(4, 2, 2))
    boxes, layers = amg.generate_crop_boxes((480, 640), 2, 512 / 1500)
    _put(out, "amg.crops", [boxes, layers])
    b = torch.tensor([[10, 20, 200, 300], [0, 0, 50, 60]])
    _put(out, "amg.uncrop", [amg.uncrop_boxes_xyxy(b, [5, 7, 300, 400]),
                             amg.uncrop_points(b[:, :2], [5, 7, 300, 400]),
                             amg.uncrop_masks(masks.float(), [3, 4, 35, 36], 40, 44)])  # fmt: skip
    _put(
        out,
        "amg.near_edge",
        amg.is_box_near_crop_edge(b.float(), [0, 0, 210, 300], [0, 0, 640, 480]),
    )
    _put(out, "amg.xywh", amg.box_xyxy_to_xywh(b[0]))
    _put(out, "amg.batched_box", amg.batched_mask_to_box(masks[:, 0]))
    _put(out, "amg.batches", list(amg.batch_iterator(2, list(range(5)), list(range(5, 10)))))
    tr = transforms_cls(256, 0.0)
    _put(out, "tr.call", tr(inp["rgb"]))
    _put(out, "tr.batch", tr.forward_batch([inp["rgb"], inp["rgb"][:200, :300]]))
    return out


if __name__ == "__main__":
    from reference import build  # ../shared/reference
    from sam2.sam2_image_predictor import SAM2ImagePredictor

    config, inputs, output = sys.argv[1:4]
    data = dict(np.load(inputs))
    torch.manual_seed(0)
    model = build(config, kind="image")
    result = model_internals(model, data)
    result.update(
        {f"img.{k}": v for k, v in image_helpers(SAM2ImagePredictor, model, data).items()}
    )
    from sam2.utils import amg, misc
    from sam2.utils.transforms import SAM2Transforms

    video_dir = str(__import__("pathlib").Path(config).parents[1] / "inputs" / "video")
    result.update(utils_surface(misc, amg, SAM2Transforms, data, video_dir))
    if len(sys.argv) > 4:
        fresh = build(config, kind="image")
        missing = fresh.load_state_dict(torch.load(sys.argv[4]), strict=True)
        result["loaded.ok"] = np.array(not missing.missing_keys and not missing.unexpected_keys)
        result["loaded.sum"] = np.array(
            sum(float(p.double().sum()) for p in fresh.state_dict().values())
        )
    np.savez(output, **result)
