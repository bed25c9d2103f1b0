"""A video script written for the official `sam2` API, run unchanged against both
implementations (see `official_surface.py` for the image half).

It does what extensions, real-time forks and Meta's `tools/vos_inference.py` do with the video
predictor: reads the `inference_state` dict (frames, prompts, per-object outputs, memories,
tracked frames), calls the private helpers (`_get_image_feature`, `_obj_id_to_idx`,
`_get_orig_video_res_output`, `_apply_non_overlapping_constraints`), uses the predictor as the
model (`.parameters()`, `.image_encoder`, `.forward_image`), and edits the state the way a
real-time fork bounds its memory (drop old tracked memories, shrink the output size) before
tracking on. `tests/test_compat_video_state.py` runs it on `sam2r.compat` and, by running
this file, on the official code:

    $REF_PYTHON tests/official_video_surface.py config.json video_dir out.npz
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch
from official_surface import _put

OUTPUT_KEYS = (
    "maskmem_features",
    "maskmem_pos_enc",
    "pred_masks",
    "obj_ptr",
    "object_score_logits",
)


def public_names(module: Any) -> np.ndarray:
    """The attribute names of a module and its classes (torch.nn.Module's own excluded)."""
    names = set(vars(module)) | set(module._modules) | set(module._parameters)
    names |= set(module._buffers)
    for cls in type(module).__mro__:
        if cls.__module__.startswith("torch"):
            break
        names |= set(vars(cls))
    torch_names = set(vars(torch.nn.Module())) | set(dir(torch.nn.Module))
    return np.array(sorted(n for n in names if not n.startswith("__") and n not in torch_names))


def video_surface(predictor: Any, video_dir: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    # what the official predictor and its parts answer to, by name (checked with getattr)
    out["names.model"] = public_names(predictor)
    for part in ("image_encoder", "sam_prompt_encoder", "sam_mask_decoder", "memory_attention",
                 "memory_encoder"):  # fmt: skip
        out[f"names.{part}"] = public_names(getattr(predictor, part))
    with torch.inference_mode():
        _put(out, "module.num_params", sum(p.numel() for p in predictor.parameters()))
        assert predictor.to("cpu") is predictor

        state = predictor.init_state(video_dir)
        _put(out, "state.size", [state["num_frames"], state["video_height"], state["video_width"]])
        images = state["images"]
        _put(out, "state.images", [len(images), images[0], images[7]])
        img = images[1].unsqueeze(0).float()
        _put(out, "module.encoder", predictor.image_encoder(img)["vision_features"])
        _put(out, "module.forward_image", predictor.forward_image(img)["backbone_fpn"])

        _, _, m = predictor.add_new_points_or_box(state, 0, 1, points=[[58, 84], [120, 100]],
                                                  labels=[1, 0])  # fmt: skip
        _put(out, "prompt.points", m)
        _, _, m = predictor.add_new_points_or_box(state, 0, 5, box=[150, 90, 270, 200])
        _put(out, "prompt.box", m)
        ids = [list(state["obj_id_to_idx"].items()), list(state["obj_idx_to_id"].items())]
        _put(out, "state.ids", ids + [state["obj_ids"]])
        _put(out, "state.points", state["point_inputs_per_obj"][0][0])
        _put(out, "state.box_points", state["point_inputs_per_obj"][1][0])
        temp = state["temp_output_dict_per_obj"][1]["cond_frame_outputs"][0]
        _put(out, "state.temp", [temp["pred_masks"], temp["obj_ptr"], temp["object_score_logits"]])
        _put(out, "helper.num_obj", predictor._get_obj_num(state))
        _put(out, "helper.image_feature", predictor._get_image_feature(state, 2, 2))
        low = state["temp_output_dict_per_obj"][0]["cond_frame_outputs"][0]["pred_masks"]
        _put(out, "helper.orig_res", predictor._get_orig_video_res_output(state, low))

        first = {f: m for f, _, m in predictor.propagate_in_video(state, max_frame_num_to_track=4)}
        _put(out, "track.first", [first[f] for f in sorted(first)])
        outputs = state["output_dict_per_obj"]
        _put(out, "state.frames", [sorted(outputs[0]["cond_frame_outputs"]),
                                   sorted(outputs[0]["non_cond_frame_outputs"]),
                                   sorted(state["frames_tracked_per_obj"][1])])  # fmt: skip
        _put(
            out,
            "state.reverse",
            [v["reverse"] for v in state["frames_tracked_per_obj"][1].values()],
        )
        stored = outputs[1]["non_cond_frame_outputs"][3]
        _put(out, "state.output", [stored[k] for k in OUTPUT_KEYS])
        _put(
            out, "state.temp_after", len(state["temp_output_dict_per_obj"][0]["cond_frame_outputs"])
        )
        _put(out, "state.constants", state["constants"]["maskmem_pos_enc"])
        cached = state["cached_features"]  # the official state keeps the newest frame's
        _put(out, "state.cached_features", cached[max(cached)])

        # the private helpers of an annotation backend: merge, re-run a frame, re-encode memory
        _put(
            out, "helper.consolidate", predictor._consolidate_temp_output_across_obj(state, 0, True)
        )
        _put(out, "helper.consolidate_video", predictor._consolidate_temp_output_across_obj(
            state, 4, False, consolidate_at_video_res=True))  # fmt: skip
        no_pos = predictor._get_maskmem_pos_enc(state, {"maskmem_pos_enc": None})
        _put(out, "helper.pos_none", no_pos is None)
        compact, gpu = predictor._run_single_frame_inference(
            state, state["output_dict_per_obj"][1], 4, 1, False, None, None, False, True
        )
        _put(out, "helper.single_frame", [compact[k] for k in OUTPUT_KEYS] + [gpu])
        high = torch.nn.functional.interpolate(gpu, size=(256, 256), mode="bilinear")
        _put(out, "helper.memory_encoder", predictor._run_memory_encoder(
            state, 4, 1, high, compact["object_score_logits"], False))  # fmt: skip

        # a real-time fork's edits: keep the two newest tracked memories, masks at half size
        for obj_idx in range(len(state["obj_ids"])):
            non_cond = state["output_dict_per_obj"][obj_idx]["non_cond_frame_outputs"]
            for t in list(non_cond):
                if t < 3:
                    del non_cond[t]
        state["video_height"] = state["video_height"] // 2
        state["video_width"] = state["video_width"] // 2
        rest = {f: m for f, _, m in predictor.propagate_in_video(state, start_frame_idx=5)}
        _put(out, "track.after_edit", [rest[f] for f in sorted(rest)])
        _put(
            out,
            "state.frames_after",
            np.array(sorted(state["output_dict_per_obj"][0]["non_cond_frame_outputs"])),
        )

        # an annotation tool's object handling: a new id gets the next index
        _put(out, "helper.new_idx", predictor._obj_id_to_idx(state, 9))
        _put(out, "helper.idx_to_id", predictor._obj_idx_to_id(state, 1))
        predictor._clear_non_cond_mem_around_input(state, 12)  # frames 5..19: 5, 6, 7 go
        _put(
            out,
            "helper.cleared",
            np.array(sorted(state["output_dict_per_obj"][0]["non_cond_frame_outputs"])),
        )
        predictor._reset_tracking_results(state)
        counts = [len(state["obj_ids"]), len(state["point_inputs_per_obj"][0])]
        counts.append(len(state["output_dict_per_obj"][1]["cond_frame_outputs"]))
        _put(out, "helper.reset", counts)
        _put(out, "vos", _vos_inference(predictor, video_dir))
    return out


def _vos_inference(predictor: Any, video_dir: str) -> list[Any]:
    """`tools/vos_inference.py --track_object_appearing_later_in_video`: each object tracked
    alone from the frame it appears on, then one object per pixel."""
    h, w = 240, 320
    appear = {1: (0, (40, 30, 140, 120)), 2: (3, (150, 90, 270, 200))}
    per_object: dict[int, dict[int, torch.Tensor]] = {}
    state = predictor.init_state(video_dir)
    for obj_id, (frame_idx, (x0, y0, x1, y1)) in appear.items():
        predictor.reset_state(state)
        mask = np.zeros((h, w), bool)
        mask[y0:y1, x0:x1] = True
        predictor.add_new_mask(state, frame_idx, obj_id, mask)
        per_object[obj_id] = {}
        for f, ids, logits in predictor.propagate_in_video(state, start_frame_idx=frame_idx):
            per_object[obj_id][f] = logits[ids.index(obj_id)]
    frames = []
    for f in range(state["num_frames"]):
        scores = torch.full((len(appear), 1, h, w), -1024.0)
        for i, obj_id in enumerate(appear):
            if f in per_object[obj_id]:
                scores[i] = per_object[obj_id][f]
        scores = predictor._apply_non_overlapping_constraints(scores)
        frames.append(scores)
    return frames


if __name__ == "__main__":
    from reference import build  # ../shared/reference

    config, video_dir, output = sys.argv[1:4]
    predictor = build(config, kind="video", extra_overrides=["++model.fill_hole_area=0"])
    np.savez(output, **video_surface(predictor, video_dir))
