"""`sam2r.compat` model surface against the official code: `tests/official_surface.py` (a
script using the official internals, sub-module call forms and image-predictor private helpers)
runs on `sam2r.compat` here and on the official `sam2==1.1.0` in the reference venv, on the
same synthetic micro checkpoint and inputs; every output is compared by name.

The oracle run is skipped where the reference venv (`~/.cache/sam2r-reference`) or
`../shared/reference` is absent; the checks that need no oracle (a fine-tuning step through the
compat surface against the same step through sam2r's own API, parameter sharing, the saved
state dict loading in sam2r) run everywhere.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import FIXTURES
from official_surface import image_helpers, model_internals, utils_surface
from PIL import Image

from sam2r import build_model, config_from_yaml
from sam2r.compat import SAM2ImagePredictor, build_sam2
from sam2r.compat.modeling.sam2_base import SAM2Base
from sam2r.ops.transforms import postprocess_masks, preprocess_image, transform_coords
from sam2r.testing import synthetic_checkpoint

MICRO = str(FIXTURES / "configs" / "micro.json")
REF_PYTHON = Path(
    os.environ.get("SAM2R_REF_PYTHON", Path.home() / ".cache/sam2r-reference/venv/bin/python")
)
REF_DIR = Path(__file__).resolve().parents[2] / "shared" / "reference"
TESTS = Path(__file__).resolve().parent

ATOL = 1e-4  # one image step, float32 (the image parity tolerance is 5e-4 on low-res logits)
TRACK_ATOL = 2e-3  # track_step over 4 frames: errors compound through the memory


def make_inputs() -> dict[str, np.ndarray]:
    """Fixed inputs for `official_surface` (micro model: 256 x 256 input, C = 64, mem 32)."""
    g = torch.Generator().manual_seed(0)
    rgb = np.array(Image.open(FIXTURES / "inputs" / "image_main.png").convert("RGB"))
    gt = np.zeros((1, 480, 640), np.float32)
    gt[0, 100:260, 90:300] = 1.0

    def randn(*shape: int) -> np.ndarray:
        return torch.randn(*shape, generator=g).numpy()

    return {
        "images": randn(4, 3, 256, 256),
        "coords": np.array([[[40.0, 60.0], [120.0, 90.0]], [[200.0, 30.0], [10.0, 250.0]]],
                           np.float32),
        "labels": np.array([[1, 0], [1, 1]], np.int32),
        "boxes": np.array([[20.0, 30.0, 150.0, 160.0], [60.0, 10.0, 250.0, 200.0]], np.float32),
        "mask_logits": randn(2, 1, 64, 64) * 4,
        "binary_mask": (randn(1, 1, 256, 256) > 0.5).astype(np.float32),
        "mask_hr": randn(1, 1, 256, 256) * 5,
        "obj_scores": np.array([[-1.5]], np.float32),
        "memory": randn(260, 1, 32),
        "memory_pos": randn(260, 1, 32),
        "overlap": randn(3, 1, 32, 32) * 8,
        "rgb": rgb,
        "px_coords": np.array([[148.0, 156.0], [400.0, 300.0]], np.float32),
        "px_labels": np.array([1, 0], np.int32),
        "px_box": np.array([90.0, 100.0, 300.0, 260.0], np.float32),
        "rel_coords": np.array([[0.25, 0.5], [0.75, 0.125]], np.float32),
        "gt": gt,
    }  # fmt: skip


@pytest.fixture(scope="module")
def micro_ckpt(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ckpt") / "micro.pt"
    synthetic_checkpoint(build_model(config_from_yaml(MICRO), device="meta"), path, seed=0)
    return str(path)


@pytest.fixture(scope="module")
def compat_model(micro_ckpt: str) -> SAM2Base:
    return build_sam2(MICRO, micro_ckpt, device="cpu")


@pytest.fixture(scope="module")
def inputs() -> dict[str, np.ndarray]:
    return make_inputs()


@pytest.fixture(scope="module")
def ours(compat_model: SAM2Base, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = model_internals(compat_model, inputs)
    img = image_helpers(SAM2ImagePredictor, compat_model, inputs)
    out.update({f"img.{k}": v for k, v in img.items()})
    from sam2r.compat.utils import amg, misc
    from sam2r.compat.utils.transforms import SAM2Transforms

    out.update(utils_surface(misc, amg, SAM2Transforms, inputs, str(FIXTURES / "inputs" / "video")))
    return out


@pytest.fixture(scope="module")
def finetuned_state_dict(
    micro_ckpt: str, inputs: dict[str, np.ndarray], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A state dict saved with `torch.save(model.state_dict())` after two SGD steps through the
    compat surface (prompt encoder + mask decoder)."""
    model = build_sam2(MICRO, micro_ckpt, device="cpu")
    predictor = SAM2ImagePredictor(model)
    predictor.set_image(inputs["rgb"])
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(2):
        _, coords, labels, _ = predictor._prep_prompts(
            inputs["px_coords"], inputs["px_labels"], None, None, True
        )
        sparse, dense = model.sam_prompt_encoder(points=(coords, labels), boxes=None, masks=None)
        low, iou, _, _ = model.sam_mask_decoder(
            image_embeddings=predictor._features["image_embed"],
            image_pe=model.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=True,
            repeat_image=False,
            high_res_features=predictor._features["high_res_feats"],
        )
        loss = low.sigmoid().mean() + iou.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    path = tmp_path_factory.mktemp("ft") / "finetuned.pt"
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def official(
    inputs: dict[str, np.ndarray], finetuned_state_dict: Path, tmp_path_factory: Any
) -> Any:
    if not REF_PYTHON.is_file() or not (REF_DIR / "reference.py").is_file():
        pytest.skip("the official reference venv (../shared/reference/setup.sh) is not installed")
    tmp = tmp_path_factory.mktemp("oracle")
    np.savez(tmp / "in.npz", **inputs)
    env = dict(os.environ, PYTHONPATH=str(REF_DIR), OMP_NUM_THREADS="2")
    cmd = [str(REF_PYTHON), str(TESTS / "official_surface.py"), MICRO, str(tmp / "in.npz"),
           str(tmp / "out.npz"), str(finetuned_state_dict)]  # fmt: skip
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if run.returncode != 0:
        raise AssertionError(f"the official run failed:\n{run.stderr[-3000:]}")
    return dict(np.load(tmp / "out.npz"))


# ----------------------------------------------------------------------------------------------
# against the official code
# ----------------------------------------------------------------------------------------------
def _tolerance(name: str) -> float:
    return TRACK_ATOL if name.startswith("track.") else ATOL


def test_every_official_output_matches(ours: dict, official: dict, compat_model: SAM2Base) -> None:
    # every attribute name of the official image predictor resolves here
    predictor = SAM2ImagePredictor(compat_model)
    missing = [n for n in official["img.names"] if not hasattr(predictor, n)]
    assert not missing, f"official SAM2ImagePredictor attributes missing here: {missing}"
    names = [k for k in official if not k.startswith(("loaded.", "img.names"))]
    ours = {k: v for k, v in ours.items() if k != "img.names"}
    assert set(names) == set(ours), (
        f"only official: {sorted(set(names) - set(ours))[:10]}; "
        f"only compat: {sorted(set(ours) - set(names))[:10]}"
    )
    bad = []
    for name in names:
        a, b = ours[name], official[name]
        if a.shape != b.shape:
            bad.append(f"{name}: shape {a.shape} vs {b.shape}")
        elif a.dtype.kind in "US":
            if not np.array_equal(a, b):
                bad.append(f"{name}: differs")
        elif a.size and np.abs(a - b).max() > _tolerance(name) * max(1.0, np.abs(b).max()):
            bad.append(f"{name}: max|d| {np.abs(a - b).max():.3g}")
    assert not bad, "\n".join(bad)


def test_surfaces_cover_what_scripts_read(official: dict) -> None:
    # the comparison above is not vacuous: the main outputs are there and non-trivial
    for key in ("image_encoder.vision_features", "forward_image.backbone_fpn.0",
                "pe.points_box.0", "decoder.multi1.0", "heads.points.5", "track.3.pred_masks",
                "track.3.maskmem_features", "img.ft.loss", "memory_attention"):  # fmt: skip
        assert key in official and np.abs(official[key]).max() > 0, key
    assert sum(k.startswith("img.ft.grad.") for k in official) > 20
    assert len(official["state_dict_keys"]) > 300


def test_finetuned_state_dict_loads_in_the_official_code(
    official: dict, finetuned_state_dict: Path
) -> None:
    assert bool(official["loaded.ok"])
    sd = torch.load(finetuned_state_dict)
    assert (
        abs(float(official["loaded.sum"]) - sum(float(v.double().sum()) for v in sd.values()))
        < 1e-6
    )


# ----------------------------------------------------------------------------------------------
# no oracle needed
# ----------------------------------------------------------------------------------------------
def test_parameters_are_the_sam2r_models_own(compat_model: SAM2Base) -> None:
    core = compat_model.sam2r
    assert set(compat_model.state_dict()) == set(core.state_dict())
    ours = {id(p) for p in compat_model.parameters()}
    assert ours == {id(p) for p in core.parameters()}
    assert compat_model.image_encoder.trunk is core.image_encoder.trunk
    assert compat_model.no_mem_embed is core.no_mem_embed


def test_finetuned_state_dict_loads_in_sam2r(micro_ckpt: str, finetuned_state_dict: Path) -> None:
    sd = torch.load(finetuned_state_dict)
    model = build_model(config_from_yaml(MICRO), device="cpu")
    model.load_state_dict(sd, strict=True)
    before = torch.load(micro_ckpt)["model"]
    changed = [k for k in sd if not torch.equal(sd[k], before[k])]
    # the step trained the prompt encoder and mask decoder, nothing else
    assert changed and all(
        k.startswith(("sam_mask_decoder.", "sam_prompt_encoder.")) for k in changed
    )


def test_finetuning_step_equals_the_same_step_through_sam2rs_api(
    ours: dict, compat_model: SAM2Base, inputs: dict[str, np.ndarray]
) -> None:
    core = compat_model.sam2r
    core.sam_mask_decoder.train(True)
    core.sam_prompt_encoder.train(True)
    rgb = inputs["rgb"]
    hw = rgb.shape[:2]
    with torch.no_grad():
        feats = core.encode_image(preprocess_image(rgb, core.image_size))
        embed = core.no_memory(feats)
    coords = transform_coords(inputs["px_coords"][:1], hw, core.image_size)[None]
    labels = torch.from_numpy(inputs["px_labels"][:1])[None]
    out = core.prompt_and_decode(embed, feats.high_res, coords, labels, None, True)
    masks = postprocess_masks(out.masks, hw)
    gt = torch.from_numpy(inputs["gt"])
    prd = torch.sigmoid(masks[:, 0])
    seg = (-gt * torch.log(prd + 1e-5) - (1 - gt) * torch.log(1 - prd + 1e-5)).mean()
    inter = (gt * (prd > 0.5)).sum(1).sum(1)
    iou = inter / (gt.sum(1).sum(1) + (prd > 0.5).sum(1).sum(1) - inter)
    loss = seg + torch.abs(out.iou[:, 0] - iou).mean() * 0.05
    core.zero_grad()
    loss.backward()
    core.eval()
    assert abs(float(loss.detach()) - float(ours["img.ft.loss"])) < 1e-6
    grads = {n: p.grad for n, p in core.named_parameters() if p.grad is not None}
    core.zero_grad()
    assert {f"img.ft.grad.{n}" for n in grads} == {k for k in ours if k.startswith("img.ft.grad.")}
    for name, g in grads.items():
        ref = ours[f"img.ft.grad.{name}"]
        assert np.abs(g.numpy() - ref).max() <= 1e-6 * max(1.0, np.abs(ref).max()), name


def test_settable_knobs_and_fixed_switches(compat_model: SAM2Base) -> None:
    core = compat_model.sam2r
    compat_model.max_cond_frames_in_attn = 2
    assert core.cfg.max_cond_frames_in_attn == 2 and compat_model.max_cond_frames_in_attn == 2
    compat_model.max_cond_frames_in_attn = -1
    compat_model.directly_add_no_mem_embed = True  # the value it has: accepted
    with pytest.raises(AttributeError, match="soft_no_obj_ptr"):
        compat_model.soft_no_obj_ptr = True
    with pytest.raises(NotImplementedError, match="SAM2VideoPredictor"):
        compat_model(torch.zeros(1))


def test_remove_small_regions() -> None:
    from sam2r.compat.utils.amg import remove_small_regions

    mask = np.zeros((20, 20), bool)
    mask[2:10, 2:10] = True
    mask[4, 4] = False  # a 1-pixel hole
    mask[15, 15] = True  # a 1-pixel island
    filled, changed = remove_small_regions(mask, 4, "holes")
    assert changed and filled[4, 4] and filled[15, 15] and filled.sum() == mask.sum() + 1
    cleaned, changed = remove_small_regions(mask, 4, "islands")
    assert changed and not cleaned[15, 15] and cleaned.sum() == mask.sum() - 1
    only_small = np.zeros((8, 8), bool)
    only_small[1, 1] = only_small[5, 5] = only_small[5, 6] = True
    kept, _ = remove_small_regions(only_small, 10, "islands")  # the largest island stays
    assert kept.sum() == 2 and kept[5, 5] and kept[5, 6]
    assert remove_small_regions(mask, 1, "holes") == (mask, False)
    with pytest.raises(ValueError, match="islands"):
        remove_small_regions(mask, 4, "specks")


def test_the_official_module_paths_import() -> None:
    import importlib

    for module, names in {
        "sam2r.compat.build_sam": ["build_sam2", "build_sam2_video_predictor"],
        "sam2r.compat.sam2_image_predictor": ["SAM2ImagePredictor"],
        "sam2r.compat.sam2_video_predictor": ["SAM2VideoPredictor"],
        "sam2r.compat.automatic_mask_generator": ["SAM2AutomaticMaskGenerator"],
        "sam2r.compat.modeling.sam2_base": ["SAM2Base", "NO_OBJ_SCORE"],
        "sam2r.compat.utils.transforms": ["SAM2Transforms"],
        "sam2r.compat.utils.misc": ["get_connected_components", "mask_to_box",
                                    "fill_holes_in_mask_scores", "load_video_frames"],
        "sam2r.compat.utils.amg": ["rle_to_mask", "area_from_rle", "coco_encode_rle",
                                   "build_all_layer_point_grids", "remove_small_regions"],
    }.items():  # fmt: skip
        mod = importlib.import_module(module)
        for name in names:
            assert hasattr(mod, name), f"{module}.{name}"


def test_deepcopy_keeps_the_sharing(compat_model: SAM2Base) -> None:
    import copy

    twin = copy.deepcopy(compat_model)  # e.g. an EMA copy in a training script
    assert twin.no_mem_embed is twin.sam2r.no_mem_embed
    assert twin.sam_mask_decoder.iou_token is twin.sam2r.sam_mask_decoder.iou_token
    assert twin.no_mem_embed is not compat_model.no_mem_embed


def test_to_and_train_reach_the_sam2r_model(micro_ckpt: str) -> None:
    model = build_sam2(MICRO, micro_ckpt, device="cpu")
    core = model.sam2r
    model.to(torch.float64)
    assert core.no_mem_embed.dtype == torch.float64
    assert (
        core.sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix.dtype == torch.float64
    )
    assert (
        model.state_dict()["sam_prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"].dtype
        == torch.float64
    )
    model.train()
    assert core.training and core.memory_attention.layers[0].training
    model.eval()
    assert not core.training
