"""Growing a trained model deeper (`sam2r.train.grow.deepen`): the grown model tracks the example
clip as the trained one does, saves and loads in the official layout, and bad sizes are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from test_video_memory_modes import _propagate

import sam2r
from sam2r.build import build_model
from sam2r.config import VARIANTS
from sam2r.configs.tree import config_to_yaml_dict
from sam2r.configs.yaml import config_from_yaml
from sam2r.predictor.video import VideoPredictor
from sam2r.train.grow import deepen


def _track(model: sam2r.SAM2Model, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    logits, scores, _ = _propagate(VideoPredictor(model), frames)
    return logits, scores


def test_grown_model_tracks_as_the_trained_one(tmp_path: Path) -> None:
    trained = sam2r.from_pretrained("sam2r_micro")
    cfg = trained.cfg
    cfg2, state2 = deepen(cfg, trained.state_dict(), stages=(1, 3, 5, 2), memory_layers=3)
    assert cfg2.hiera.stages == (1, 3, 5, 2) and cfg2.memory_attention.num_layers == 3
    # the global block (4: the middle of stage 3) moved by the block added to stage 2
    assert cfg.hiera.global_att_blocks == (4,) and cfg2.hiera.global_att_blocks == (5,)
    # official layout: the grown state dict is exactly what a model of the grown config holds
    grown = build_model(cfg2)
    grown.load_state_dict(state2, strict=True)
    n1 = sum(p.numel() for p in trained.parameters())
    assert sum(p.numel() for p in grown.parameters()) > n1

    # it is the same function: 4 tracked frames of 2 objects
    before, before_scores = _track(trained, 4)
    after, after_scores = _track(grown, 4)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    torch.testing.assert_close(after_scores, before_scores, atol=1e-5, rtol=0)
    # ... and not because the new blocks were left out: they hold the copied, non-zero inputs
    new_qkv = state2["image_encoder.trunk.blocks.3.attn.qkv.weight"]  # new in stage 2
    old_qkv = trained.state_dict()["image_encoder.trunk.blocks.2.attn.qkv.weight"]
    assert torch.equal(new_qkv, old_qkv)
    assert not state2["memory_attention.layers.2.linear2.weight"].any()
    assert state2["memory_attention.layers.2.linear1.weight"].abs().sum() > 0

    # a saved grown model reloads (strict) from its official-layout YAML and checkpoint
    (tmp_path / "model.yaml").write_text(yaml.safe_dump(config_to_yaml_dict(cfg2)))
    torch.save({"model": state2}, tmp_path / "model.pt")
    again = build_model(config_from_yaml(tmp_path / "model.yaml"), checkpoint=tmp_path / "model.pt")
    for k, v in again.state_dict().items():
        assert torch.equal(v, state2[k]), k


def test_deepen_refuses_to_shrink_or_reshape() -> None:
    cfg = VARIANTS["sam2r_micro"]
    state = build_model(cfg).state_dict()
    with pytest.raises(ValueError, match="each at least the current"):
        deepen(cfg, state, stages=(1, 2, 2, 1))
    with pytest.raises(ValueError, match="4 counts"):
        deepen(cfg, state, stages=(1, 2, 3))
    with pytest.raises(ValueError, match="memory_layers must be at least the current 2"):
        deepen(cfg, state, memory_layers=1)
    same_cfg, same = deepen(cfg, state)
    assert same_cfg == cfg and same.keys() == state.keys()


def test_grow_command_writes_checkpoint_and_yaml(tmp_path: Path) -> None:
    from sam2r.build import read_state_dict
    from sam2r.train.grow import main

    src = tmp_path / "small.pt"
    torch.save({"model": build_model(VARIANTS["sam2r_micro"]).state_dict()}, src)
    out, cfg_out = tmp_path / "big" / "grown.pt", tmp_path / "big.yaml"
    args = [str(src), str(out), "--stages", "1", "2", "4", "1", "--memory-layers", "3"]
    assert main([*args, "--config-out", str(cfg_out)]) == 0
    cfg = config_from_yaml(cfg_out)
    assert cfg.hiera.stages == (1, 2, 4, 1) and cfg.memory_attention.num_layers == 3
    model = build_model(cfg, checkpoint=out)  # strict
    assert model.state_dict().keys() == read_state_dict(out).keys()
    with pytest.raises(SystemExit):
        main([str(src), str(tmp_path / "x.pt"), "--memory-layers", "1"])
    assert not (tmp_path / "x.pt").exists()
