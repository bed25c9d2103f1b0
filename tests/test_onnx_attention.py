"""Attention exported as ONNX Runtime's fused ops: the nodes are there (MultiHeadAttention with
3-D keys for long key sequences and 4-D for short ones, Attention for Hiera's short windows, the
memory attention's folded cross-attention with narrow values), the plain export is kept on
request, both agree with the torch module, duplicated constants are dropped, and the
export-time patches leave what they patched as they found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_helpers import bundled_model  # noqa: E402

from sam2r.model import hiera  # noqa: E402
from sam2r.onnx.attention import LONG_KEYS, fused_attention, mha_3d, rotary_embedding  # noqa: E402
from sam2r.onnx.exporter import example_inputs, export, graph_module  # noqa: E402
from sam2r.onnx.forms import export_forms  # noqa: E402


def test_context_routes_only_plain_calls_and_restores():
    sdpa = F.scaled_dot_product_attention
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 8, generator=g) for _ in range(3))
    mask = torch.randn(5, 5, generator=g)
    with fused_attention():
        assert F.scaled_dot_product_attention is not sdpa
        plain = F.scaled_dot_product_attention(q, k, v)
        masked = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert F.scaled_dot_product_attention is sdpa
    torch.testing.assert_close(plain, sdpa(q, k, v), rtol=0, atol=0)
    torch.testing.assert_close(masked, sdpa(q, k, v, attn_mask=mask), rtol=0, atol=0)


@pytest.mark.parametrize("fused", [True, False])
def test_image_encoder_fused_and_plain(fused, tmp_path):
    import onnx

    model = bundled_model()
    manifest = export(model, tmp_path, graphs=("image_encoder",), fused_attention=fused)
    assert manifest["fused_attention"] is fused
    graph = onnx.load(str(tmp_path / "image_encoder.onnx"))
    ops = {n.op_type for n in graph.graph.node}
    assert ("MultiHeadAttention" in ops) is fused
    assert ("Attention" in ops) is fused  # micro's windows are short: qkv + attention fused
    assert ("Softmax" in ops) is not fused
    assert "ReduceMax" in ops and "Max" not in ops  # the pooling form, fused or not
    inputs = example_inputs(model, "image_encoder")
    with torch.no_grad():
        want = graph_module(model, "image_encoder")(*inputs.values())
    sess = ort.InferenceSession(str(tmp_path / "image_encoder.onnx"))
    got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=1e-4)


def _producers(graph):
    return {o: n for n in graph.node for o in n.output}


def _export_fused(module, inputs: dict, path, dynamic_axes=None):
    """Export `module` on the named `inputs` with the fused ops on: (graph, ORT session)."""
    import onnx

    with torch.no_grad(), fused_attention():
        torch.onnx.export(
            module,
            tuple(inputs.values()),
            str(path),
            input_names=list(inputs),
            opset_version=17,
            dynamic_axes=dynamic_axes,
            dynamo=False,
        )
    return onnx.load(str(path)).graph, ort.InferenceSession(str(path))


class _SDPA(torch.nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


@pytest.mark.parametrize("keys", [LONG_KEYS // 4, LONG_KEYS])
def test_long_keys_go_3d_short_keys_4d(keys, tmp_path):
    g = torch.Generator().manual_seed(1)
    q = torch.randn(1, 2, 16, 8, generator=g)
    k, v = (torch.randn(1, 2, keys, 8, generator=g) for _ in range(2))
    graph, sess = _export_fused(_SDPA(), {"q": q, "k": k, "v": v}, tmp_path / "a.onnx")
    (mha,) = [n for n in graph.node if n.op_type == "MultiHeadAttention"]
    made = _producers(graph)
    # 3-D keys are reshaped (B, L, heads * hd); 4-D keys are the input itself
    assert (mha.input[1] in made and made[mha.input[1]].op_type == "Reshape") is (keys >= LONG_KEYS)
    got = sess.run(None, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy()})
    np.testing.assert_allclose(got[0], F.scaled_dot_product_attention(q, k, v).numpy(), atol=1e-5)


class _Mha3d(torch.nn.Module):
    def forward(self, q, k, v):
        return mha_3d(q, k, v, 2)


def test_mha_3d_narrow_values_eager_and_exported(tmp_path):
    g = torch.Generator().manual_seed(2)
    q = torch.randn(2, 7, 16, generator=g)
    k = torch.randn(2, 11, 16, generator=g)
    v = torch.randn(2, 11, 6, generator=g)  # values narrower than the keys: 2 heads of 3
    heads = [
        torch.softmax(
            q[..., s * 8 : (s + 1) * 8] @ k[..., s * 8 : (s + 1) * 8].transpose(1, 2) / 8**0.5, -1
        )
        @ v[..., s * 3 : (s + 1) * 3]
        for s in range(2)
    ]
    want = torch.cat(heads, -1)
    torch.testing.assert_close(mha_3d(q, k, v, 2), want)
    _, sess = _export_fused(_Mha3d(), {"q": q, "k": k, "v": v}, tmp_path / "m.onnx")
    got = sess.run(None, {"q": q.numpy(), "k": k.numpy(), "v": v.numpy()})
    np.testing.assert_allclose(got[0], want.numpy(), atol=1e-5)


def test_memory_attention_fused_matches_plain(tmp_path):
    import onnx

    model = bundled_model()
    for fused in (True, False):
        export(model, tmp_path / str(fused), graphs=("memory_attention",), fused_attention=fused)
    graphs = {
        f: onnx.load(str(tmp_path / str(f) / "memory_attention.onnx")).graph for f in (True, False)
    }
    fused_ops = [n.op_type for n in graphs[True].node]
    # self- and cross-attention of every layer fused; no score matrix left; RoPE fused on the
    # queries and keys of both
    layers = len(model.memory_attention.layers)
    assert fused_ops.count("MultiHeadAttention") == 2 * layers
    assert fused_ops.count("RotaryEmbedding") == 4 * layers
    assert "RotaryEmbedding" not in {n.op_type for n in graphs[False].node}
    assert "Softmax" not in fused_ops and "Softmax" in {n.op_type for n in graphs[False].node}
    # no two large constants alike (the RoPE tables were folded once per use before dedupe)
    for graph in graphs.values():
        blobs = [
            bytes(n.attribute[0].t.raw_data)
            for n in graph.node
            if n.op_type == "Constant" and len(n.attribute[0].t.raw_data) >= 1024
        ]
        assert blobs and len(set(blobs)) == len(blobs)
    inputs = example_inputs(model, "memory_attention")
    feed = {k: v.numpy() for k, v in inputs.items()}
    with torch.no_grad():
        want = graph_module(model, "memory_attention")(*inputs.values()).numpy()
    for fused in (True, False):
        sess = ort.InferenceSession(str(tmp_path / str(fused) / "memory_attention.onnx"))
        np.testing.assert_allclose(sess.run(None, feed)[0], want, rtol=0, atol=1e-4)


def test_export_forms_restore_and_keep_results():
    pool, fwd = hiera.pool_channels_last, hiera.MultiScaleAttention.forward
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 8, 5, generator=g)
    mp = torch.nn.MaxPool2d(2, 2)
    attn = hiera.MultiScaleAttention(5, 5, 1).eval()
    xa = torch.randn(3, 4, 4, 5, generator=g)
    with torch.no_grad():
        want_pool, want_attn = pool(x, mp), attn(xa)
        with export_forms(fused=True):
            assert hiera.pool_channels_last is not pool
            torch.testing.assert_close(hiera.pool_channels_last(x, mp), want_pool, rtol=0, atol=0)
            torch.testing.assert_close(attn(xa), want_attn)
    assert hiera.pool_channels_last is pool and hiera.MultiScaleAttention.forward is fwd


class _Rope(torch.nn.Module):
    def __init__(self, cos, sin):
        super().__init__()
        self.register_buffer("cos", cos)
        self.register_buffer("sin", sin)

    def forward(self, x):
        from sam2r.onnx.graphs import _rope_plain

        return rotary_embedding(x, self.cos, self.sin, _rope_plain)


def test_rotary_embedding_node_over_frames_heads_and_batch(tmp_path):
    from sam2r.onnx.graphs import _rope_plain

    g = torch.Generator().manual_seed(4)
    ang = torch.rand(6, 4, generator=g) * 6.0  # 6 positions, 8 channels
    module = _Rope(torch.cos(ang), torch.sin(ang))
    x = torch.randn(2, 2, 3 * 6, 8, generator=g)  # 2 objects, 2 heads, 3 frames of 6 tokens
    want = _rope_plain(x, module.cos, module.sin)
    torch.testing.assert_close(module(x), want, rtol=0, atol=0)  # eager: the plain form
    graph, sess = _export_fused(module, {"x": x}, tmp_path / "r.onnx", {"x": {0: "b", 2: "n"}})
    assert "RotaryEmbedding" in {n.op_type for n in graph.node}
    for frames in (1, 3, 5):  # the frame count is a dynamic axis
        xs = torch.randn(3, 2, frames * 6, 8, generator=g)
        got = sess.run(None, {"x": xs.numpy()})[0]
        np.testing.assert_allclose(got, _rope_plain(xs, module.cos, module.sin).numpy(), atol=1e-5)
