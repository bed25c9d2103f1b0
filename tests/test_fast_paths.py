"""The CPU inference fast paths compute what the plain modules compute.

oneDNN linears (bias and activation fused), the memory cross-attention over raw values, 1x1
convolutions as linears, max pooling on channels-last blocks, the cached Hiera position
embedding, the shared first memory-attention step, packed weights, the channels-last patch
embedding, and the malloc tuning of the predictors.
"""

from __future__ import annotations

import copy
import gc
import io
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from sam2r.config import VARIANTS
from sam2r.model import common, memory_attention
from sam2r.model.common import MLP, Linear, conv1x1, linear, pack_weights, use_onednn
from sam2r.model.hiera import Hiera, PatchEmbed, pool_channels_last
from sam2r.model.memory_attention import MemoryAttention, RoPEAttention

needs_onednn = pytest.mark.skipif(
    not common._onednn_linear_available(), reason="oneDNN linear needs an x86 torch build"
)


@pytest.fixture
def onednn_off(monkeypatch: pytest.MonkeyPatch):
    """Run with SAM2R_ONEDNN=0 (the plain torch path)."""
    monkeypatch.setenv("SAM2R_ONEDNN", "0")
    common._onednn_linear_available.cache_clear()
    yield
    monkeypatch.delenv("SAM2R_ONEDNN")
    common._onednn_linear_available.cache_clear()


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


@needs_onednn
@pytest.mark.parametrize("act", ["none", "relu", "gelu"])
@pytest.mark.parametrize("shape", [(512, 96), (2, 16, 16, 384), (300, 64)])
def test_onednn_linear_matches_plain(act: str, shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    layer = Linear(shape[-1], 200)
    x = torch.randn(shape)
    with torch.inference_mode():
        assert use_onednn(x, layer.weight)
        got = linear(x, layer, act)
    want = F.linear(x, layer.weight, layer.bias)
    want = {"none": want, "relu": F.relu(want), "gelu": F.gelu(want)}[act]
    assert got.shape == want.shape
    assert _rel_err(got, want) < 1e-5


@needs_onednn
def test_onednn_is_skipped_where_it_must_be() -> None:
    layer = Linear(64, 64)
    big, small = torch.randn(1024, 64), torch.randn(8, 64)
    assert not use_onednn(big, layer.weight)  # autograd on: the weight needs a gradient
    with torch.no_grad():
        assert use_onednn(big, layer.weight)
        assert not use_onednn(small, layer.weight)  # too few rows to pay off
        assert not use_onednn(big.double(), layer.weight.double())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert not use_onednn(big, layer.weight)
    # training still gets gradients through the plain path
    out = layer(big).sum()
    out.backward()
    assert layer.weight.grad is not None


def test_env_switch_turns_the_fast_path_off(onednn_off) -> None:
    layer = Linear(64, 64)
    with torch.no_grad():
        assert not use_onednn(torch.randn(1024, 64), layer.weight)


@needs_onednn
def test_mlp_fuses_its_activation() -> None:
    torch.manual_seed(0)
    mlp = MLP(96, 384, 96, num_layers=3, activation=nn.GELU)
    x = torch.randn(4, 128, 96)
    with torch.no_grad():
        fused = mlp(x)
    plain = x
    for i, layer in enumerate(mlp.layers):
        plain = F.linear(plain, layer.weight, layer.bias)
        if i < 2:
            plain = F.gelu(plain)
    assert _rel_err(fused, plain) < 1e-5


@needs_onednn
@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("n_ptr", [0, 16])
@pytest.mark.parametrize("score_bytes", [64 << 20, 1])  # one block of queries; 128-row blocks
def test_cross_attention_over_raw_values_matches_sdpa(
    heads: int, n_ptr: int, score_bytes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(memory_attention, "_SCORE_BYTES", score_bytes)
    torch.manual_seed(0)
    attn = RoPEAttention(256, heads, feat_sizes=(16, 16), rope_k_repeat=True, kv_in_dim=64).eval()
    q = torch.randn(2, 256, 256)
    mem = torch.randn(2, 3 * 256 + n_ptr, 64)
    pos = torch.randn_like(mem)
    with torch.inference_mode():
        assert attn._fold_values(q, mem)
        folded = attn(q, mem + pos, mem, num_k_exclude_rope=n_ptr)
    # the same module with the fast paths off: projected values through SDPA
    monkeypatch.setenv("SAM2R_ONEDNN", "0")
    common._onednn_linear_available.cache_clear()
    try:
        with torch.inference_mode():
            assert not attn._fold_values(q, mem)
            want = attn(q, mem + pos, mem, num_k_exclude_rope=n_ptr)
    finally:
        monkeypatch.delenv("SAM2R_ONEDNN")
        common._onednn_linear_available.cache_clear()
    assert _rel_err(folded, want) < 1e-5


def test_query_blocks_keep_the_scores_within_their_budget() -> None:
    block = memory_attention._query_block
    assert block(7 * 4096 + 64) == 512  # a full bank at 1024 px
    assert block(26 * 4096) == 128  # many prompted frames: never below 128 rows
    for keys in (1, 1000, 40_000, 90_000):
        rows = block(keys)
        assert rows % 64 == 0 and 128 <= rows <= 512
        assert rows == 128 or rows * keys * 4 <= memory_attention._SCORE_BYTES


def test_cross_attention_folds_only_for_inference() -> None:
    attn = RoPEAttention(256, 1, feat_sizes=(16, 16), rope_k_repeat=True, kv_in_dim=64)
    q, mem = torch.randn(1, 256, 256), torch.randn(1, 512, 64)
    assert not attn._fold_values(q, mem)  # parameters need gradients
    wide = RoPEAttention(256, 1, feat_sizes=(16, 16), rope_k_repeat=True, kv_in_dim=256)
    with torch.no_grad():
        assert not wide._fold_values(q, torch.randn(1, 512, 256))  # nothing to save


@needs_onednn
@pytest.mark.parametrize("channels_last", [False, True])
def test_conv1x1_matches_conv(channels_last: bool) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(96, 32, kernel_size=1)
    x = torch.randn(2, 96, 24, 20)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got = conv1x1(x, conv)
        want = conv(x)
    assert got.shape == want.shape == (2, 32, 24, 20)
    assert _rel_err(got, want) < 1e-5


@pytest.mark.parametrize("hw", [(8, 8), (9, 7), (2, 2)])
def test_block_max_pool_matches_max_pool2d(hw: tuple[int, int]) -> None:
    torch.manual_seed(0)
    pool = nn.MaxPool2d(kernel_size=(2, 2), stride=(2, 2))
    x = torch.randn(2, *hw, 5)
    with torch.no_grad():
        got = pool_channels_last(x, pool)
    want = pool(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert torch.equal(got, want)


def test_hiera_position_embedding_cache_follows_the_parameters() -> None:
    trunk = Hiera(VARIANTS["sam2r_micro"].hiera).eval()
    with torch.no_grad():
        nn.init.normal_(trunk.pos_embed)
        first = trunk._pos_embed((16, 16))
        assert trunk._pos_embed((16, 16)) is first  # cached
        trunk.pos_embed.add_(1.0)  # as load_state_dict does: in place
        second = trunk._pos_embed((16, 16))
        assert torch.equal(second, trunk._compute_pos_embed((16, 16)))
        assert not torch.equal(first, second)
    # with autograd the embedding is recomputed, so gradients reach the parameters
    trunk._pos_embed((16, 16)).sum().backward()
    assert trunk.pos_embed.grad is not None


def test_shared_first_step_gives_the_same_memory_attention() -> None:
    torch.manual_seed(0)
    cfg = VARIANTS["sam2r_micro"].memory_attention
    ma = MemoryAttention(cfg).eval()
    hw = cfg.feat_sizes[0] * cfg.feat_sizes[1]
    curr = torch.randn(1, hw, cfg.d_model)
    pos = torch.randn(1, hw, cfg.d_model)
    memory = torch.randn(3, 2 * hw + 4, cfg.kv_in_dim)
    memory_pos = torch.randn_like(memory)
    with torch.inference_mode():
        plain = ma(curr.expand(3, -1, -1), pos.expand(3, -1, -1), memory, memory_pos, 4)
        first = ma.first_self_attention(curr, pos)  # batch 1, shared by the 3 objects
        shared = ma(curr, pos, memory, memory_pos, 4, first=first)
    assert torch.allclose(shared, plain, atol=1e-6, rtol=0)


def test_patch_embed_writes_contiguous_tokens() -> None:
    torch.manual_seed(0)
    embed = PatchEmbed(32).eval()
    x = torch.randn(2, 3, 64, 48)
    with torch.no_grad():
        got = embed(x)
        want = embed.proj(x).permute(0, 2, 3, 1)
    assert got.shape == (2, 16, 12, 32)
    assert got.is_contiguous()  # the trunk's first LayerNorm and linears need no copy
    # a channels-last convolution is another kernel: on AVX2 it sums in another order
    assert _rel_err(got, want) < 1e-5


@needs_onednn
def test_packed_weights_give_the_same_numbers_and_follow_the_weights() -> None:
    torch.manual_seed(0)
    layer = Linear(64, 96)
    conv = nn.Conv2d(64, 16, kernel_size=1)
    x = torch.randn(300, 64)
    img = torch.randn(1, 64, 20, 20)
    with torch.inference_mode():
        plain, plain_conv = linear(x, layer, "relu"), conv1x1(img, conv)
        pack_weights(nn.Sequential(layer, conv))
        assert layer.pack_weight and conv.pack_weight
        # the packed layout is made for 4096 rows, the call's own reorder for 300: oneDNN may
        # block the sums differently on another CPU, so this is a tolerance, not bit-equality
        assert _rel_err(linear(x, layer, "relu"), plain) < 1e-6
        assert _rel_err(conv1x1(img, conv), plain_conv) < 1e-6
        assert common._PACKED.get(layer.weight) is not None
    with torch.no_grad():
        layer.weight.mul_(-2.0)  # an optimizer step or load_state_dict: in place
    with torch.inference_mode():
        assert _rel_err(layer(x), F.linear(x, layer.weight, layer.bias)) < 1e-5
    # the packed copy is no part of the module's state: it copies, saves and frees as before
    clone = copy.deepcopy(layer)
    torch.save(layer, io.BytesIO())
    assert set(layer.state_dict()) == {"weight", "bias"}
    with torch.inference_mode():
        assert torch.equal(clone(x), layer(x))
    pack_weights(layer, False)
    assert common._PACKED.get(layer.weight) is None
    with torch.inference_mode():
        clone(x)
    n = len(common._PACKED)
    del clone
    gc.collect()
    assert len(common._PACKED) == n - 1


@needs_onednn
def test_traced_and_compiled_graphs_take_the_portable_linear() -> None:
    torch.manual_seed(0)
    layer = pack_weights(Linear(64, 96)).eval()
    x = torch.randn(300, 64)
    with torch.no_grad():
        graph = str(torch.export.export(layer, (x,)).graph)
        assert "mkldnn" not in graph and "aten.linear" in graph
        compiled = torch.compile(layer, backend="eager", fullgraph=True)  # no graph break
        assert _rel_err(compiled(x), F.linear(x, layer.weight, layer.bias)) < 1e-5


def test_packed_weights_leave_training_alone() -> None:
    torch.manual_seed(0)
    layer = pack_weights(Linear(64, 96))
    x = torch.randn(300, 64, requires_grad=True)
    layer(x).sum().backward()  # plain F.linear: nothing packed, gradients flow
    assert layer.weight.grad is not None and x.grad is not None
    assert common._PACKED.get(layer.weight) is None


_FAULTS = r"""
import resource, sys, torch
# as in a real run, where VideoPredictor() tunes malloc once the predictor is loaded (how much
# heap the imports left decides whether a few 64 MB blocks still come from fresh pages)
import sam2r.predictor.video.predictor
from sam2r.predictor.video.allocator import tune_malloc
if sys.argv[1] == "tuned":
    assert tune_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(3):  # warm up
    torch.ones(64 << 18)
before = faults()
for _ in range(20):
    torch.ones(64 << 18)  # 64 MB, freed at once
print(faults() - before)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc")
def test_malloc_tuning_stops_page_faults_on_large_blocks() -> None:
    def run(mode: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _FAULTS, mode], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip().splitlines()[-1])

    plain, tuned = run("plain"), run("tuned")
    # each 64 MB block is 16k fresh pages when it comes from mmap; from the heap, none
    assert plain > 20 * 10_000
    assert tuned < plain / 10
