"""Every released variant builds, runs and round-trips its state dict.

Random (default-init) weights, a 256-px input so the large variants stay cheap on a CPU: checks
output shapes and finiteness of every head, the parameter count against the published one, and
that `state_dict` -> `load_state_dict(strict=True)` reproduces the outputs exactly.
"""

from __future__ import annotations

import pytest
import torch

from sam2r import VARIANTS, SAM2Model

# published parameter counts (millions) of the SAM 2.1 checkpoints
PUBLISHED_M = {"t": 38.9, "s": 46.0, "b+": 80.8, "l": 224.4}


def _run_heads(model: SAM2Model) -> dict[str, torch.Tensor]:
    s = model.image_size
    torch.manual_seed(0)
    x = torch.randn(1, 3, s, s)
    with torch.inference_mode():
        feats = model.encode_image(x)
        pix = model.no_memory(feats)
        pts = torch.tensor([[[s * 0.3, s * 0.4]]])
        out = model.decode_frame(pix, feats.high_res, pts, torch.tensor([[1]]), None, True)
        mem = model.encode_memory(feats.embed, out.high_res_masks, out.object_score_logits, True)
        mem_tokens, mem_pos = model.spatial_memory_tokens(mem.features, mem.pos, t_pos=0)
        ptr_tokens, ptr_pos = model.pointer_tokens(
            out.obj_ptr[None], torch.tensor([1.0]), max_ptrs=16
        )
        memory = torch.cat([mem_tokens, ptr_tokens], dim=1)
        memory_pos = torch.cat([mem_pos, ptr_pos], dim=1)
        cond = model.condition_on_memory(feats, memory, memory_pos, ptr_tokens.shape[1])
    return {
        "embed": feats.embed,
        "masks": out.low_res_masks,
        "ptr": out.obj_ptr,
        "mem": mem.features,
        "cond": cond,
    }


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_variant_builds_runs_and_round_trips(name: str) -> None:
    cfg = VARIANTS[name].replace(image_size=256)
    torch.manual_seed(0)
    model = SAM2Model(cfg).eval()
    n_params = sum(p.numel() for p in model.parameters())
    size = name.rsplit("_", 1)[1]
    if name.startswith("sam2.1"):
        assert abs(n_params / 1e6 - PUBLISHED_M[size]) / PUBLISHED_M[size] < 0.005, n_params
    out = _run_heads(model)
    side = 256 // 16
    assert out["embed"].shape == (1, cfg.hidden_dim, side, side)
    assert out["masks"].shape == (1, 1, 64, 64)
    assert out["ptr"].shape == (1, cfg.hidden_dim)
    assert out["mem"].shape == (1, cfg.mem_dim, side, side)
    assert out["cond"].shape == (1, cfg.hidden_dim, side, side)
    assert all(bool(torch.isfinite(v).all()) for v in out.values())

    torch.manual_seed(1)
    other = SAM2Model(cfg).eval()
    other.load_state_dict(model.state_dict(), strict=True)
    again = _run_heads(other)
    for k, v in out.items():
        assert torch.equal(v, again[k]), k


def test_sam21_adds_exactly_three_tensors() -> None:
    for size in ("t", "s", "b+", "l"):
        with torch.device("meta"):
            k20 = set(SAM2Model(VARIANTS[f"sam2_hiera_{size}"]).state_dict())
            k21 = set(SAM2Model(VARIANTS[f"sam2.1_hiera_{size}"]).state_dict())
        assert k21 - k20 == {
            "no_obj_embed_spatial",
            "obj_ptr_tpos_proj.weight",
            "obj_ptr_tpos_proj.bias",
        }
        assert not k20 - k21
