"""The synthetic-weight recipe reproduces the weights the parity fixtures were made with."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import CONFIGS, load_json, state_dict_shapes

from sam2r.testing import (
    state_dict_digest,
    synth_noise,
    synth_state_dict,
    synthetic_checkpoint,
    weight_rule,
)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_digest_matches_fixture(cfg: str) -> None:
    digest = load_json(f"{cfg}/weights_digest.json")
    assert digest["recipe"] == "sam2-synth-v1"
    sd = synth_state_dict(state_dict_shapes(cfg), seed=digest["seed"])
    per_key, all_sha = state_dict_digest(sd)
    assert set(per_key) == set(digest["tensors"])
    wrong = [k for k, d in digest["tensors"].items() if per_key[k] != d["sha256_f32le"]]
    assert not wrong, f"{len(wrong)} tensors differ, e.g. {wrong[:3]}"
    assert all_sha == digest["all_sha256"]
    for key, d in list(digest["tensors"].items())[:20]:
        assert sd[key].flatten()[:3].tolist() == d["first"]
        assert float(sd[key].double().sum()) == pytest.approx(d["sum"], rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_rules_match_fixture(cfg: str) -> None:
    tensors = load_json(f"{cfg}/state_dict_shapes.json")["tensors"]
    obj_key = "sam_mask_decoder.pred_obj_score_head.layers.2.bias"
    for key, info in tensors.items():
        rule, mean, std = weight_rule(key, info["shape"], obj_key)
        assert (rule, mean) == (info["rule"], info["mean"]), key
        assert std == pytest.approx(info["std"], rel=1e-12), key


def test_all_float32_and_shapes() -> None:
    shapes = {"a.weight": (4, 3, 2, 2), "b.bias": (7,), "c": (), "d.weight": (5,)}
    sd = synth_state_dict(shapes)
    assert {k: tuple(v.shape) for k, v in sd.items()} == shapes
    assert all(v.dtype == torch.float32 for v in sd.values())


def test_independent_of_other_keys_and_order() -> None:
    shapes = state_dict_shapes("micro")
    full = synth_state_dict(shapes)
    key = "sam_mask_decoder.iou_token.weight"
    alone = synth_state_dict({key: shapes[key]})
    assert torch.equal(full[key], alone[key])
    reversed_sd = synth_state_dict(dict(reversed(list(shapes.items()))))
    assert all(torch.equal(full[k], reversed_sd[k]) for k in shapes)


@pytest.mark.parametrize("seed", [0, 1, 12345])
def test_noise_moments_and_bounds(seed: int) -> None:
    z = synth_noise("some.key", 200_000, seed)
    assert abs(z.mean()) < 0.01
    assert abs(z.var() - 1.0) < 0.01
    assert np.abs(z).max() <= 1.7320508075688772 * 2 + 1e-12


def test_seed_changes_values() -> None:
    a = synth_state_dict({"x.weight": (8, 8)}, seed=0)["x.weight"]
    b = synth_state_dict({"x.weight": (8, 8)}, seed=1)["x.weight"]
    assert not torch.equal(a, b)


@pytest.mark.parametrize("source", ["module", "shapes"])
def test_synthetic_checkpoint_roundtrip(tmp_path, source: str) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    arg = module if source == "module" else {k: v.shape for k, v in module.state_dict().items()}
    path = synthetic_checkpoint(arg, tmp_path / "w.pt", seed=3)
    ckpt = torch.load(path, weights_only=True)
    assert set(ckpt) == {"model"}
    module.load_state_dict(ckpt["model"], strict=True)
    assert torch.equal(module[1].weight, synth_state_dict({"1.weight": (4,)}, seed=3)["1.weight"])


def test_synthetic_checkpoint_rejects_other_types(tmp_path) -> None:
    with pytest.raises(TypeError, match="nn.Module or a mapping"):
        synthetic_checkpoint([1, 2], tmp_path / "w.pt")
