"""Building models, variant detection, checkpoint reading / loading / saving, and the hub."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from conftest import FIXTURES, state_dict_shapes

from sam2r.build import (
    build_model,
    detect_variant,
    from_pretrained,
    load_checkpoint,
    read_state_dict,
    save_checkpoint,
)
from sam2r.build import state_dict_shapes as variant_shapes
from sam2r.config import VARIANTS, SAM2Config
from sam2r.configs.yaml import config_from_yaml
from sam2r.model.sam2 import SAM2Model
from sam2r.testing import synth_state_dict

MICRO: SAM2Config = config_from_yaml(FIXTURES / "configs" / "micro.json")

# (tensors, elements) of the official implementation's state dict (sam2==1.1.0, counted once
# with the official builder), and the published parameter count in millions (SAM 2.1 model card)
LAYOUT = {
    "sam2_hiera_t": (468, 38_946_242, 38.9),
    "sam2_hiera_s": (516, 46_044_098, 46.0),
    "sam2_hiera_b+": (612, 80_833_922, 80.8),
    "sam2_hiera_l": (900, 224_430_386, 224.4),
    "sam2.1_hiera_t": (471, 38_962_754, 38.9),
    "sam2.1_hiera_s": (519, 46_060_610, 46.0),
    "sam2.1_hiera_b+": (615, 80_850_434, 80.8),
    "sam2.1_hiera_l": (903, 224_446_898, 224.4),
}
SAM21_ONLY = {"no_obj_embed_spatial", "obj_ptr_tpos_proj.weight", "obj_ptr_tpos_proj.bias"}


def zeros_checkpoint(shapes: dict[str, tuple[int, ...]], path: Path) -> Path:
    """An official-format checkpoint of zeros that takes a few bytes per tensor on disk
    (expanded tensors keep their 1-element storage)."""
    sd = {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}
    torch.save({"model": sd}, path)
    return path


@pytest.fixture(scope="module")
def micro_weights() -> dict[str, torch.Tensor]:
    return synth_state_dict(state_dict_shapes("micro"), seed=0)


@pytest.fixture
def micro_ckpt(tmp_path: Path, micro_weights: dict[str, torch.Tensor]) -> Path:
    path = tmp_path / "micro.pt"
    torch.save({"model": micro_weights}, path)
    return path


# ----------------------------------------------------------------------------------------------
# the state-dict layout of every variant
# ----------------------------------------------------------------------------------------------


def test_model_builds_on_meta_device() -> None:
    """Variant detection builds all 8 layouts; on the meta device that costs nothing."""
    with torch.device("meta"):
        model = SAM2Model(VARIANTS["sam2.1_hiera_l"])
    assert all(p.is_meta for p in model.parameters())


@pytest.mark.parametrize("cfg_name", ["micro", "sam2.1_hiera_t", "sam2_hiera_t"])
def test_layout_equals_parity_fixture(cfg_name: str) -> None:
    cfg = MICRO if cfg_name == "micro" else VARIANTS[cfg_name]
    assert variant_shapes(cfg) == state_dict_shapes(cfg_name)


@pytest.mark.parametrize("variant", sorted(LAYOUT))
def test_layout_size(variant: str) -> None:
    shapes = variant_shapes(variant)
    tensors, elements, published_m = LAYOUT[variant]
    assert len(shapes) == tensors
    numel = sum(math.prod(s) for s in shapes.values())
    assert numel == elements
    assert abs(numel / 1e6 - published_m) <= 0.005 * published_m


@pytest.mark.parametrize("size", ["t", "s", "b+", "l"])
def test_sam21_adds_three_tensors(size: str) -> None:
    old, new = variant_shapes(f"sam2_hiera_{size}"), variant_shapes(f"sam2.1_hiera_{size}")
    assert set(new) - set(old) == SAM21_ONLY
    assert set(old) <= set(new)
    assert all(new[k] == s for k, s in old.items())


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_detect_variant(variant: str) -> None:
    shapes = variant_shapes(variant)
    meta_sd = {k: torch.empty(s, device="meta") for k, s in shapes.items()}
    assert detect_variant(meta_sd) == variant
    assert detect_variant({"model": meta_sd}) == variant
    assert detect_variant(shapes) == variant


def test_detect_variant_names_the_closest() -> None:
    shapes = variant_shapes("sam2.1_hiera_b+")
    del shapes["no_obj_embed_spatial"]
    shapes["obj_ptr_tpos_proj.bias"] = (65,)
    with pytest.raises(ValueError) as info:
        detect_variant(shapes)
    msg = str(info.value)
    assert "closest is 'sam2.1_hiera_b+'" in msg
    assert "no_obj_embed_spatial [1, 64]" in msg
    assert "obj_ptr_tpos_proj.bias: file [65], model [64]" in msg


def test_detect_variant_rejects_a_custom_model() -> None:
    assert detect_variant(state_dict_shapes("micro")) == "sam2r_micro"  # the bundled model
    shapes = dict(state_dict_shapes("micro"))
    shapes["memory_attention.layers.0.linear1.weight"] = (256, 64)  # a wider MLP
    with pytest.raises(ValueError, match="(?s)matches no registered variant.*build_model\\(config"):
        detect_variant(shapes)


# ----------------------------------------------------------------------------------------------
# building, saving and loading
# ----------------------------------------------------------------------------------------------


def test_build_model_names_and_configs() -> None:
    model = build_model(MICRO)
    assert isinstance(model, SAM2Model) and not model.training
    assert model.cfg == MICRO
    with torch.device("meta"):  # names in any spelling
        for name in ("sam2.1-tiny", "facebook/sam2.1-hiera-tiny", "sam2.1_hiera_t"):
            assert build_model(name, device="meta").cfg is VARIANTS["sam2.1_hiera_t"]


def test_build_model_dtype() -> None:
    model = build_model(MICRO, dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_official_checkpoint_loads(micro_ckpt: Path, micro_weights: dict) -> None:
    model = build_model(MICRO, checkpoint=micro_ckpt)
    sd = model.state_dict()
    assert sd.keys() == micro_weights.keys()
    assert all(torch.equal(sd[k], v) for k, v in micro_weights.items())


def test_save_load_round_trip(tmp_path: Path, micro_ckpt: Path) -> None:
    model = build_model(MICRO, checkpoint=micro_ckpt)
    path = save_checkpoint(model, tmp_path / "sub" / "saved.pt")
    raw = torch.load(path, map_location="cpu", weights_only=True)
    assert list(raw) == ["model"]  # the official format
    again = build_model(MICRO, checkpoint=path)
    for (k1, v1), (k2, v2) in zip(
        model.state_dict().items(), again.state_dict().items(), strict=True
    ):
        assert k1 == k2 and torch.equal(v1, v2)


def test_save_writes_cpu_float32(tmp_path: Path, micro_ckpt: Path) -> None:
    model = build_model(MICRO, checkpoint=micro_ckpt, dtype=torch.bfloat16)
    sd = read_state_dict(save_checkpoint(model, tmp_path / "bf16.pt"))
    assert {v.dtype for v in sd.values()} == {torch.float32}
    assert {v.device.type for v in sd.values()} == {"cpu"}


def test_bare_state_dict_loads(tmp_path: Path, micro_weights: dict) -> None:
    torch.save(micro_weights, tmp_path / "bare.pth")
    model = build_model(MICRO)
    result = load_checkpoint(model, tmp_path / "bare.pth")
    assert result == ([], [], [])
    assert torch.equal(model.no_mem_embed, micro_weights["no_mem_embed"])


def test_safetensors_round_trip(tmp_path: Path, micro_ckpt: Path) -> None:
    pytest.importorskip("safetensors")
    model = build_model(MICRO, checkpoint=micro_ckpt)
    path = save_checkpoint(model, tmp_path / "micro.safetensors")
    again = build_model(MICRO, checkpoint=path)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def test_non_strict_load_reports(tmp_path: Path, micro_weights: dict) -> None:
    sd = dict(micro_weights)
    del sd["no_mem_embed"]
    sd["extra.weight"] = torch.zeros(2)
    sd["no_obj_ptr"] = torch.zeros(3)
    torch.save({"model": sd}, tmp_path / "partial.pt")
    model = build_model(MICRO)
    result = load_checkpoint(model, tmp_path / "partial.pt", strict=False)
    assert result.missing_keys == ["no_mem_embed"]
    assert result.unexpected_keys == ["extra.weight"]
    assert result.mismatched_keys == ["no_obj_ptr"]
    assert torch.equal(model.maskmem_tpos_enc, micro_weights["maskmem_tpos_enc"])


def test_variant_detected_from_checkpoint(tmp_path: Path) -> None:
    path = zeros_checkpoint(variant_shapes("sam2_hiera_t"), tmp_path / "some_file.pt")
    model = build_model(checkpoint=path)
    assert model.cfg is VARIANTS["sam2_hiera_t"]
    assert float(model.no_obj_ptr.detach().abs().sum()) == 0.0


# ----------------------------------------------------------------------------------------------
# bad checkpoints: every message says what is wrong and what the file looks like
# ----------------------------------------------------------------------------------------------


def _with(change: Callable[[dict], object]) -> Callable[[Path, dict], Path]:
    def make(path: Path, weights: dict) -> Path:
        sd = dict(weights)
        change(sd)
        torch.save({"model": sd}, path)
        return path

    return make


def _truncated(path: Path, weights: dict) -> Path:
    torch.save({"model": weights}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _raw(obj: object) -> Callable[[Path, dict], Path]:
    def make(path: Path, weights: dict) -> Path:
        torch.save(obj, path)
        return path

    return make


def _bytes(path: Path, weights: dict) -> Path:
    path.write_bytes(bytes(range(256)) * 64)
    return path


class Opaque:  # a pickled Python object that weights_only=True refuses
    pass


BAD_MICRO_CHECKPOINTS = [
    (
        "missing key",
        _with(lambda sd: sd.pop("no_mem_embed")),
        ["1 missing from the file", "no_mem_embed [1, 1, 64]", "looks most like 'sam2r_micro'"],
    ),
    (
        "extra key",
        _with(lambda sd: sd.update({"foo.weight": torch.zeros(3)})),
        ["1 unexpected in the file", "foo.weight [3]", "looks most like 'sam2r_micro'"],
    ),
    (
        "wrong shape",
        _with(lambda sd: sd.update({"no_obj_ptr": torch.zeros(1, 32)})),
        ["shape mismatch", "no_obj_ptr: file [1, 32], model [1, 64]", "'sam2r_micro'"],
    ),
    ("truncated file", _truncated, ["cannot read checkpoint", "truncated", "bad.pt"]),
    ("not a dict", _raw([1, 2, 3]), ["holds a list", "{'model': state_dict}", "bad.pt"]),
    ("random bytes", _bytes, ["cannot read checkpoint", "bad.pt"]),
    ("model is not a dict", _raw({"model": 3}), ["['model'] is a int, not a state dict"]),
    ("no tensors", _raw({"epoch": 3, "step": 10}), ["holds no tensors", "epoch"]),
    ("non-tensor entries", _raw({"a": torch.zeros(1), "b": "x"}), ["not tensors: ['b']"]),
    ("python object", _raw({"model": {"a": Opaque()}}), ["weights_only=True"]),
]


@pytest.mark.parametrize(
    "make, fragments",
    [row[1:] for row in BAD_MICRO_CHECKPOINTS],
    ids=[row[0] for row in BAD_MICRO_CHECKPOINTS],
)
def test_bad_checkpoint(
    make: Callable[[Path, dict], Path],
    fragments: list[str],
    tmp_path: Path,
    micro_weights: dict,
) -> None:
    path = make(tmp_path / "bad.pt", micro_weights)
    model = build_model(MICRO)
    with pytest.raises(ValueError) as info:
        load_checkpoint(model, path)
    for fragment in fragments:
        assert fragment in str(info.value)


def test_missing_checkpoint_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_model(MICRO, checkpoint=tmp_path / "nope.pt")


def test_wrong_variant_requested(tmp_path: Path) -> None:
    path = zeros_checkpoint(variant_shapes("sam2_hiera_t"), tmp_path / "tiny20.pt")
    with pytest.raises(ValueError) as info:
        build_model("sam2.1_hiera_t", checkpoint=path)
    msg = str(info.value)
    assert "does not fit the 'sam2.1_hiera_t' model" in msg
    assert "3 missing from the file" in msg and "obj_ptr_tpos_proj.weight [64, 256]" in msg
    assert "is a 'sam2_hiera_t' checkpoint" in msg
    assert "build_model('sam2_hiera_t', checkpoint=PATH)" in msg


def test_damaged_released_checkpoint_names_the_variant(tmp_path: Path) -> None:
    shapes = variant_shapes("sam2.1_hiera_s")
    del shapes["sam_mask_decoder.iou_token.weight"]
    path = zeros_checkpoint(shapes, tmp_path / "damaged.pt")
    with torch.device("meta"):
        model = SAM2Model(VARIANTS["sam2.1_hiera_s"])
    with pytest.raises(ValueError, match="looks most like 'sam2.1_hiera_s'"):
        load_checkpoint(model, path)
    with pytest.raises(ValueError, match="cannot tell which model.*closest is 'sam2.1_hiera_s'"):
        build_model(checkpoint=path)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        ({}, ValueError, "needs a variant"),
        ({"variant": 3}, TypeError, "variant must be"),
        ({"variant": "sam3-tiny"}, ValueError, "unknown model name"),
    ],
)
def test_build_model_bad_arguments(kwargs: dict, error: type[Exception], fragment: str) -> None:
    with pytest.raises(error, match=fragment):
        build_model(**kwargs)


# ----------------------------------------------------------------------------------------------
# the Hugging Face hub
# ----------------------------------------------------------------------------------------------


def test_from_pretrained_offline_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        from_pretrained("facebook/sam2.1-hiera-tiny", cache_dir=tmp_path)
    assert time.monotonic() - start < 5.0
    msg = str(info.value)
    assert "could not download sam2.1_hiera_tiny.pt" in msg and "HF_HUB_OFFLINE" in msg
    assert "not in the local cache" in msg
    assert "--checkpoint PATH" in msg and "checkpoint=PATH" in msg


def test_from_pretrained_without_network_fails_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub = pytest.importorskip("huggingface_hub")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hub.constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    for var in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    start = time.monotonic()
    with pytest.raises(RuntimeError) as info:
        from_pretrained("sam2-large", cache_dir=tmp_path)
    assert time.monotonic() - start < 5.0
    msg = str(info.value)
    assert "cannot reach 127.0.0.1:9" in msg and "sam2_hiera_large.pt" in msg
    assert "--checkpoint PATH" in msg


def test_from_pretrained_finds_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("huggingface_hub")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--facebook--sam2.1-hiera-tiny"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    zeros_checkpoint(variant_shapes("sam2.1_hiera_t"), snapshot / "sam2.1_hiera_tiny.pt")
    model = from_pretrained("sam2.1-tiny", cache_dir=tmp_path)
    assert model.cfg is VARIANTS["sam2.1_hiera_t"] and not model.training
    assert float(model.no_mem_embed.detach().abs().sum()) == 0.0


def test_from_pretrained_without_huggingface_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r'pip install "sam2r\[hub\]"'):
        from_pretrained("sam2.1-tiny")
