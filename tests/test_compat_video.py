"""`sam2r.compat` video half: the official builder (added overrides, user overrides), the
official return values, a fixture session replayed through the official method names, and the
official README's video example running with only its import changed.

Micro config with the synthetic checkpoint; the fixtures have no hole filling, so replays build
with `++model.fill_hole_area=0` (an official override string).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, load_json
from PIL import Image
from test_video_parity import Report

from sam2r import build_model, config_from_yaml
from sam2r.compat import SAM2VideoPredictor, build_sam2_video_predictor
from sam2r.compat.video_predictor import InferenceState
from sam2r.predictor.video.session import VideoSession
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
VIDEO = str(FIXTURES / "inputs" / "video")
H, W = 240, 320


@pytest.fixture(scope="module")
def micro_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path, seed=0)
    return str(path)


@pytest.fixture(scope="module")
def predictor(micro_ckpt: str) -> SAM2VideoPredictor:
    return build_sam2_video_predictor(
        MICRO, micro_ckpt, device="cpu", hydra_overrides_extra=["++model.fill_hole_area=0"]
    )


@pytest.fixture(scope="module")
def npz() -> Any:
    return np.load(FIXTURES / "micro" / "video.npz")


# ----------------------------------------------------------------------------------------------
# a fixture session replayed through the official method names
# ----------------------------------------------------------------------------------------------
def _upsampled(lows: list[np.ndarray]) -> np.ndarray:
    """Reference video-resolution masks: bilinear upsampling of the stored low-res logits."""
    low = torch.from_numpy(np.concatenate(lows).astype(np.float32))
    return F.interpolate(low, size=(H, W), mode="bilinear", align_corners=False).numpy()


def _video_res(report: Report, where: str, masks: torch.Tensor, ref: dict, npz: Any) -> None:
    report.check(isinstance(masks, torch.Tensor), f"{where}: masks are {type(masks).__name__}")
    report.check(masks.dtype == torch.float32, f"{where}: dtype {masks.dtype}")
    ours = masks.cpu().numpy()
    if ref.get("video_res_masks") is not None:
        report.masks(f"{where} video_res", ours, npz[ref["video_res_masks"]], f16=True)
    elif "per_obj" in ref:
        lows = [npz[p["low_res_masks"]] for p in ref["per_obj"]]
        report.masks(f"{where} upsampled", ours, _upsampled(lows))


def replay(predictor: SAM2VideoPredictor, spec: dict[str, Any], npz: Any) -> Report:
    """Replay a fixture session the way a script calls the official predictor."""
    report = Report()
    state: Any = None
    for i, step in enumerate(spec["steps"]):
        op, where = step["op"], f"{spec['name']}/step{i}:{step['op']}"
        if op == "init_state":
            state = predictor.init_state(video_path=str(FIXTURES / step["video_path"]))
            got = (state["num_frames"], state["video_height"], state["video_width"])
            want = (step["num_frames"], step["video_height"], step["video_width"])
            report.check(got == want, f"{where}: {got} != {want}")
            continue
        if op in ("add_new_points_or_box", "add_new_mask"):
            if op == "add_new_mask":
                frame_idx, obj_ids, masks = predictor.add_new_mask(
                    inference_state=state,
                    frame_idx=step["frame_idx"],
                    obj_id=step["obj_id"],
                    mask=npz[step["mask_array"]],
                )
            else:
                frame_idx, obj_ids, masks = predictor.add_new_points_or_box(
                    inference_state=state,
                    frame_idx=step["frame_idx"],
                    obj_id=step["obj_id"],
                    points=step.get("points"),
                    labels=step.get("labels"),
                    clear_old_points=step["clear_old_points"],
                    normalize_coords=step["normalize_coords"],
                    box=step.get("box"),
                )
            ret = step["returned"]
            report.check(frame_idx == ret["frame_idx"], f"{where}: frame_idx {frame_idx}")
            report.check(obj_ids == ret["obj_ids"], f"{where}: obj_ids {obj_ids}")
            _video_res(report, where, masks, ret, npz)
            # the interacted object's stored output, read through the typed session
            out = step["interacted_object_output"]
            track = state.session.objects[step["obj_id"]]
            is_cond = step["frame_idx"] in track.temp_cond_outputs
            report.check(is_cond == out["is_cond_frame_output"], f"{where}: is_cond")
            stored = track.temp_outputs(is_cond)[step["frame_idx"]]
            report.state(f"{where} obj{step['obj_id']}", stored, out, npz)
        elif op == "propagate_in_video":
            frames = []
            for frame_idx, obj_ids, masks in predictor.propagate_in_video(
                state,
                start_frame_idx=step["start_frame_idx"],
                max_frame_num_to_track=step["max_frame_num_to_track"],
                reverse=step["reverse"],
            ):
                k = len(frames)
                frames.append(frame_idx)
                if k >= len(step["yields"]):
                    continue
                ref = step["yields"][k]
                report.check(obj_ids == ref["obj_ids"], f"{where}/f{frame_idx}: ids {obj_ids}")
                _video_res(report, f"{where}/f{frame_idx}", masks, ref, npz)
            expected = [y["frame_idx"] for y in step["yields"]]
            report.check(frames == expected, f"{where}: frames {frames} != {expected}")
        elif op == "remove_object":
            obj_ids, updated = predictor.remove_object(state, step["obj_id"])
            ret = step["returned"]
            report.check(obj_ids == ret["obj_ids"], f"{where}: obj_ids {obj_ids}")
            got_frames = [f for f, _ in updated]
            want_frames = [u["frame_idx"] for u in ret["updated_frames"]]
            report.check(got_frames == want_frames, f"{where}: updated {got_frames}")
            for (f, masks), ref in zip(updated, ret["updated_frames"], strict=False):
                _video_res(report, f"{where}/f{f}", masks, ref, npz)
        else:
            raise NotImplementedError(op)
    return report


@pytest.mark.parametrize("name", ["main", "mask_prompts", "correct_as_cond"])
def test_fixture_session_through_official_api(micro_ckpt: str, npz: Any, name: str) -> None:
    spec = next(s for s in load_json("micro/video_index.json")["sessions"] if s["name"] == name)
    # the session's own official overrides (e.g. add_all_frames_to_correct_as_cond) go through
    # the builder as strings, like the fixture generator passed them
    predictor = build_sam2_video_predictor(
        MICRO,
        micro_ckpt,
        device="cpu",
        hydra_overrides_extra=["++model.fill_hole_area=0", *spec["hydra_overrides_extra"]],
    )
    torch.manual_seed(0)
    report = replay(predictor, spec, npz)
    assert not report.failures, "\n".join(report.failures[:20])
    assert report.counts["masks"] > 10 and report.counts["states"] > 0


# ----------------------------------------------------------------------------------------------
# a script written for the official package
# ----------------------------------------------------------------------------------------------
def test_official_readme_script_runs_unchanged(micro_ckpt: str, npz: Any) -> None:
    # the official README's video example; only `from sam2.build_sam` became `from sam2r.compat`
    checkpoint, model_cfg, video = micro_ckpt, MICRO, VIDEO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CUDA absent: the builder and autocast warn
        predictor = build_sam2_video_predictor(model_cfg, checkpoint)
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
            state = predictor.init_state(video)
            frame_idx, object_ids, masks = predictor.add_new_points_or_box(
                state, frame_idx=0, obj_id=1, points=np.array([[58, 84]]), labels=np.array([1])
            )
            video_segments = {}
            for out_frame_idx, out_obj_ids, out_mask_logits in predictor.propagate_in_video(state):
                video_segments[out_frame_idx] = {
                    out_obj_id: (out_mask_logits[i] > 0.0).cpu().numpy()
                    for i, out_obj_id in enumerate(out_obj_ids)
                }
    assert frame_idx == 0 and object_ids == [1]
    assert masks.shape == (1, 1, H, W) and masks.dtype == torch.float32
    assert masks.device == predictor.device
    assert sorted(video_segments) == list(range(8))
    assert video_segments[7][1].shape == (1, H, W) and video_segments[7][1].dtype == bool
    # the default build fills holes (fill_hole_area=8, +0.1 logits) that the fixture (official
    # code without its CUDA extension) leaves: masks only grow, and only a little
    step = load_json("micro/video_index.json")["sessions"][0]["steps"][1]
    ref = npz[step["returned"]["video_res_masks"]].astype(np.float32) > 0
    ours = masks.numpy() > 0
    assert (ref & ~ours).mean() < 1e-3
    assert 0 < (ours & ~ref).mean() < 0.1


# ----------------------------------------------------------------------------------------------
# the builder
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        (
            {},
            {
                "fill_hole_area": 8,
                "binarize_mask_from_pts_for_mem_enc": True,
                "dynamic_multimask_via_stability": True,
                "non_overlap_masks": False,
            },
        ),
        (  # without post-processing: the official constructor defaults
            {"apply_postprocessing": False},
            {
                "fill_hole_area": 0,
                "binarize_mask_from_pts_for_mem_enc": False,
                "dynamic_multimask_via_stability": False,
            },
        ),
        (
            {
                "hydra_overrides_extra": [
                    "++model.fill_hole_area=0",
                    "++model.non_overlap_masks=true",
                    "++model.add_all_frames_to_correct_as_cond=true",
                    "++model.max_cond_frames_in_attn=2",
                    "++model.clear_non_cond_mem_around_input=true",
                ]
            },
            {
                "fill_hole_area": 0,
                "non_overlap_masks": True,
                "add_all_frames_to_correct_as_cond": True,
                "max_cond_frames_in_attn": 2,
                "clear_non_cond_mem_around_input": True,
            },
        ),
        (  # the user's overrides come after the post-processing ones
            {"hydra_overrides_extra": ["++model.fill_hole_area=3"], "vos_optimized": True},
            {"fill_hole_area": 3},
        ),
    ],
)
def test_builder_adds_official_overrides_then_the_users(
    micro_ckpt: str, kwargs: dict[str, Any], expected: dict[str, Any]
) -> None:
    predictor = build_sam2_video_predictor(MICRO, micro_ckpt, device="cpu", **kwargs)
    cfg = predictor.model.cfg
    for key, value in expected.items():
        assert getattr(cfg, key) == value, key
        assert getattr(predictor, key) == value, key  # the official attributes
    assert isinstance(predictor, SAM2VideoPredictor) and not predictor.model.training
    assert predictor.image_size == 256 and predictor.device == torch.device("cpu")


def test_official_config_name_and_bad_arguments() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        predictor = build_sam2_video_predictor(
            "configs/sam2.1/sam2.1_hiera_t.yaml", hydra_overrides_extra=["++model.num_maskmem=5"]
        )
    assert predictor.model.cfg.num_maskmem == 5 and predictor.num_maskmem == 5
    with pytest.raises(ValueError, match="mode"):
        build_sam2_video_predictor("configs/sam2.1/sam2.1_hiera_t.yaml", device="cpu", mode="x")
    with pytest.raises(ValueError, match="fill_hole_area_typo"):
        build_sam2_video_predictor(
            "configs/sam2.1/sam2.1_hiera_t.yaml",
            device="cpu",
            hydra_overrides_extra=["++model.fill_hole_area_typo=0"],
        )
    with pytest.raises(AttributeError, match="no_such_flag"):
        predictor.no_such_flag  # noqa: B018


def test_from_pretrained_downloads_and_forwards_kwargs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sam2r.build
    import sam2r.compat.video_predictor as video_predictor

    calls: list[tuple[Any, ...]] = []
    monkeypatch.setattr(sam2r.build, "download_checkpoint", lambda name: tmp_path / "c.pt")
    monkeypatch.setattr(
        video_predictor,
        "build_sam2_video_predictor",
        lambda *a, **k: calls.append((a, k)) or "built",
    )
    out = SAM2VideoPredictor.from_pretrained(
        "facebook/sam2.1-hiera-tiny", device="cpu", hydra_overrides_extra=["++model.x=1"]
    )
    assert out == "built"
    assert calls == [
        (
            ("sam2.1_hiera_t", str(tmp_path / "c.pt")),
            {"device": "cpu", "hydra_overrides_extra": ["++model.x=1"]},
        )
    ]


# ----------------------------------------------------------------------------------------------
# return values and state, as the official predictor gives them
# ----------------------------------------------------------------------------------------------
def test_official_return_values(predictor: SAM2VideoPredictor) -> None:
    state = predictor.init_state(VIDEO)
    assert isinstance(state, InferenceState) and isinstance(state.session, VideoSession)
    assert dict(state)["obj_ids"] == [] and state["num_frames"] == 8
    images = state["images"]  # lazy: a frame is decoded when indexed
    assert len(images) == 8 and images[-1].shape == (3, 256, 256)
    assert predictor.init_state(VIDEO, offload_state_to_cpu=True)["offload_state_to_cpu"]
    # propagation is a lazy generator: nothing runs (or fails) before the first item
    gen = predictor.propagate_in_video(state)
    with pytest.raises(RuntimeError, match="no object"):
        next(gen)
    with pytest.raises(RuntimeError, match="no object"):
        predictor.propagate_in_video_preflight(state)

    f, ids, masks = predictor.add_new_points(state, 0, 1, points=[[58, 84]], labels=[1])
    assert (f, ids, masks.shape) == (0, [1], (1, 1, H, W))
    mask = np.zeros((H, W), bool)
    mask[100:180, 150:260] = True
    f, ids, masks = predictor.add_new_mask(state, np.int64(2), 2, mask)
    assert type(f) is int and f == 2 and ids == [1, 2] and masks.shape == (2, 1, H, W)
    assert state["obj_id_to_idx"] == {1: 0, 2: 1} and state["obj_idx_to_id"] == {0: 1, 1: 2}
    # clicks outside the frame are accepted, as the official predictor does
    predictor.add_new_points_or_box(state, 0, 3, points=[[W + 5, -3]], labels=[1])

    predictor.propagate_in_video_preflight(state)
    assert 0 in state.session.objects[1].cond_outputs  # committed
    yields = list(predictor.propagate_in_video(state, start_frame_idx=2, max_frame_num_to_track=1))
    assert [(f, ids) for f, ids, _ in yields] == [(2, [1, 2, 3]), (3, [1, 2, 3])]
    assert all(type(f) is int and m.shape == (3, 1, H, W) for f, _, m in yields)

    assert predictor.clear_all_prompts_in_frame(state, 2, 2, need_output=False) is None
    f, ids, masks = predictor.clear_all_prompts_in_frame(state, 0, 3)
    assert (f, ids, masks.shape) == (0, [1, 2, 3], (3, 1, H, W))

    ids, updated = predictor.remove_object(state, 1)
    assert ids == [2, 3] and [f for f, _ in updated] == [0]
    assert updated[0][1].shape == (2, 1, H, W)
    assert predictor.remove_object(state, 99) == ([2, 3], [])
    with pytest.raises(RuntimeError, match="Cannot remove object id 99"):
        predictor.remove_object(state, 99, strict=True)
    assert predictor.remove_object(state, 2, need_output=False) == ([3], [])
    predictor.reset_state(state)
    assert state["obj_ids"] == []
    with pytest.raises(TypeError, match="init_state"):
        predictor.add_new_points_or_box({"num_frames": 8}, 0, 1, points=[[1, 1]], labels=[1])


def test_settable_options_and_bare_sessions(predictor: SAM2VideoPredictor) -> None:
    fresh = SAM2VideoPredictor(predictor.model, fill_hole_area=0)
    session = fresh.init_state(VIDEO).session  # a bare VideoSession works too
    _, _, a = fresh.add_new_points_or_box(session, 0, 1, box=[20, 20, 300, 220])
    _, _, b = fresh.add_new_points_or_box(session, 0, 2, box=[20, 20, 300, 220])
    fresh.non_overlap_masks = True
    _, _, c = fresh.add_new_points_or_box(session, 0, 2, box=[20, 20, 300, 220])
    assert torch.equal(b[0], b[1])  # same prompt, same mask
    assert not ((c[0] > 0) & (c[1] > 0)).any()  # one object per pixel
    fresh.fill_hole_area = 4
    assert fresh._predictor.fill_hole_area == 4
    with pytest.raises(ValueError, match="fill_hole_area"):
        fresh.fill_hole_area = -1
    assert a.shape == (1, 1, H, W)


def test_init_state_reads_a_video_file(predictor: SAM2VideoPredictor, tmp_path: Path) -> None:
    pytest.importorskip("av")
    from sam2r.io.video_file import VideoSink

    path = tmp_path / "clip.mp4"
    with VideoSink(path, fps=10) as sink:
        for p in sorted(Path(VIDEO).glob("*.jpg")):
            sink.write(np.array(Image.open(p).convert("RGB")))
    state = predictor.init_state(str(path))
    assert (state["num_frames"], state["video_height"], state["video_width"]) == (8, H, W)
    f, ids, masks = predictor.add_new_points_or_box(state, 7, 1, points=[[58, 84]], labels=[1])
    assert (f, ids, masks.shape) == (7, [1], (1, 1, H, W))
