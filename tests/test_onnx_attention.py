"""The image encoder's attention exported as ONNX Runtime's fused MultiHeadAttention: the node is
there, the plain export is kept on request, both agree with the torch module, and the export-time
patch leaves `F.scaled_dot_product_attention` as it found it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_helpers import bundled_model  # noqa: E402

from sam2r.onnx.attention import fused_attention  # noqa: E402
from sam2r.onnx.exporter import example_inputs, export, graph_module  # noqa: E402


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
    assert ("Softmax" in ops) is not fused
    inputs = example_inputs(model, "image_encoder")
    with torch.no_grad():
        want = graph_module(model, "image_encoder")(*inputs.values())
    sess = ort.InferenceSession(str(tmp_path / "image_encoder.onnx"))
    got = sess.run(None, {k: v.numpy() for k, v in inputs.items()})
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=0, atol=1e-4)
