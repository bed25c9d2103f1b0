"""Export a `SAM2Model` to four ONNX graphs plus a JSON manifest.

    sam2r.onnx.export(model, "exported/")         # image_encoder.onnx, prompt_decoder.onnx,
                                                  # memory_attention.onnx, memory_encoder.onnx,
                                                  # manifest.json

The graphs are the wrappers of `sam2r.onnx.graphs`, exported with the TorchScript-based exporter
(`torch.onnx.export(..., dynamo=False)`): it takes `dynamic_axes` directly and gives one plain
graph per module. (The dynamo exporter also runs on these wrappers, but specialises the
dynamic memory / pointer counts of the memory attention on the example's values unless every
count is described with `torch.export.Dim` ranges, and takes several times longer.)

The manifest holds what the numpy runtime needs besides the graphs: the model config, the
input / output names and shapes and the sha256 of each graph file (which tells exports of other
weights apart), and three small parameters used outside them (`no_obj_ptr`, the mask-prompt
downsampler `mask_downsample`).

What is left to others: running the graphs (`sam2r.onnx.image`, `sam2r.onnx.tracker`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from sam2r.model.sam2 import SAM2Model
from sam2r.onnx.attention import fused_attention as fused_attention_export
from sam2r.onnx.export_names import GRAPHS, MANIFEST
from sam2r.onnx.forms import export_forms
from sam2r.onnx.graphs import (
    ImageEncoderGraph,
    MemoryAttentionGraph,
    MemoryEncoderGraph,
    PromptDecoderGraph,
)
from sam2r.onnx.runtime import file_sha256

DEFAULT_OPSET = 17

# graphs whose attention is exported as ONNX Runtime's fused MultiHeadAttention (with long keys
# handed over 3-D, its flash kernel: faster on both; sam2r.onnx.attention)
FUSED_ATTENTION_GRAPHS = ("image_encoder", "memory_attention")


def example_inputs(model: SAM2Model, name: str) -> dict[str, Tensor]:
    """Random inputs of a graph, with the dynamic axes at sizes above 1 (so that nothing is
    specialised to 1 while tracing): the names and shapes the graph takes."""
    s = model.image_size
    c, mem = model.hidden_dim, model.mem_dim
    h = s // model.cfg.backbone_stride
    g = torch.Generator().manual_seed(0)

    def rnd(*shape: int) -> Tensor:
        return torch.randn(*shape, generator=g)

    if name == "image_encoder":
        return {"image": rnd(1, 3, s, s)}
    feats = {
        "image_embed": rnd(1, c, h, h),
        "high_res_0": rnd(1, c // 8, 4 * h, 4 * h),
        "high_res_1": rnd(1, c // 4, 2 * h, 2 * h),
    }
    if name == "prompt_decoder":
        return {
            **feats,
            "point_coords": torch.rand(2, 3, 2, generator=g) * s,
            "point_labels": torch.tensor([[1, 0, -1], [2, 3, 1]], dtype=torch.int64),
            "mask_input": rnd(2, 1, 4 * h, 4 * h),
            "has_mask_input": torch.tensor([1.0, 0.0]),
        }
    if name == "memory_attention":
        return {
            "image_embed": feats["image_embed"],
            "image_pos": rnd(1, c, h, h),
            "memory": rnd(2, 3, mem, h, h),
            "memory_pos": rnd(1, mem, h, h),
            "memory_slot": torch.tensor([0, 5, 6], dtype=torch.int64),
            "obj_ptrs": rnd(2, 4, c),
            "obj_ptr_dist": torch.tensor([0.0, 1.0, 2.0, 3.0]) / 15.0,
        }
    if name == "memory_encoder":
        return {
            "image_embed": feats["image_embed"],
            "low_res_masks": rnd(2, 1, 4 * h, 4 * h) * 5,
            "object_score_logits": torch.tensor([[1.0], [-1.0]]),
            "from_points": torch.tensor([1.0]),
        }
    raise ValueError(f"unknown graph {name!r}; expected one of {GRAPHS}")


OUTPUTS: dict[str, tuple[str, ...]] = {
    "image_encoder": ("image_embed", "image_embed_no_mem", "image_pos", "high_res_0", "high_res_1"),
    "prompt_decoder": ("masks", "iou", "object_score_logits", "obj_ptr"),
    "memory_attention": ("pix_feat",),
    "memory_encoder": ("maskmem_features", "maskmem_pos"),
}

# axis -> name, per input / output: the dynamic axes of each graph
DYNAMIC: dict[str, dict[str, dict[int, str]]] = {
    "image_encoder": {k: {0: "batch"} for k in ("image", *OUTPUTS["image_encoder"])},
    "prompt_decoder": {
        "image_embed": {0: "num_images"},  # 1 (shared) or num_sets
        "point_coords": {0: "num_sets", 1: "num_points"},
        "point_labels": {0: "num_sets", 1: "num_points"},
        "mask_input": {0: "num_sets"},
        "has_mask_input": {0: "num_sets"},
        **{k: {0: "num_sets"} for k in OUTPUTS["prompt_decoder"]},
    },
    "memory_attention": {
        "memory": {0: "num_objects", 1: "num_memories"},
        "memory_slot": {0: "num_memories"},
        "obj_ptrs": {0: "num_objects", 1: "num_pointers"},
        "obj_ptr_dist": {0: "num_pointers"},
        "pix_feat": {0: "num_objects"},
    },
    "memory_encoder": {
        "low_res_masks": {0: "num_objects"},
        "object_score_logits": {0: "num_objects"},
        "maskmem_features": {0: "num_objects"},
    },
}


def graph_module(model: SAM2Model, name: str) -> nn.Module:
    """The exportable wrapper of one graph."""
    cls = {
        "image_encoder": ImageEncoderGraph,
        "prompt_decoder": PromptDecoderGraph,
        "memory_attention": MemoryAttentionGraph,
        "memory_encoder": MemoryEncoderGraph,
    }[name]
    return cls(model).eval()


def _shape_spec(t: Tensor, axes: dict[int, str]) -> list[int | str]:
    return [axes.get(i, int(d)) for i, d in enumerate(t.shape)]


def export(
    model: SAM2Model,
    out_dir: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    graphs: tuple[str, ...] = GRAPHS,
    fused_attention: bool = True,
) -> dict[str, Any]:
    """Write the ONNX graphs of `model` and `manifest.json` to `out_dir`.

    Args:
        model: a `SAM2Model` (exported in eval mode, float32, on the CPU; it is not changed).
        out_dir: the folder (created if missing).
        opset: the ONNX opset (>= 14: scaled_dot_product_attention needs it).
        graphs: which graphs to write (default all four).
        fused_attention: write the attention of the image encoder and of the memory attention
            as ONNX Runtime's `com.microsoft.MultiHeadAttention` (one fused kernel on its CPU
            provider, faster; see `sam2r.onnx.attention`, and Hiera's short windows as its
            `com.microsoft.Attention`, `sam2r.onnx.forms`); False keeps standard ONNX ops
            (MatMul, Softmax) for runtimes other than ONNX Runtime.

    Returns:
        the manifest (also written as `out_dir/manifest.json`).
    """
    try:
        import onnx  # noqa: F401
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx extra: pip install 'sam2r[onnx]'") from e
    if not isinstance(model, SAM2Model):
        raise TypeError(f"model must be a sam2r SAM2Model, got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < 14:
        raise ValueError(f"opset must be an int >= 14 (attention needs it), got {opset!r}")
    bad = [g for g in graphs if g not in GRAPHS]
    if bad:
        raise ValueError(f"unknown graphs {bad}; expected some of {GRAPHS}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    device = model.device
    model.eval().float()
    if device.type != "cpu":
        model.cpu()
    io: dict[str, Any] = {}
    try:
        for name in graphs:
            inputs = example_inputs(model, name)
            axes = DYNAMIC[name]
            module = graph_module(model, name)
            fuse = fused_attention and name in FUSED_ATTENTION_GRAPHS
            fused = fused_attention_export() if fuse else contextlib.nullcontext()
            with torch.no_grad(), warnings.catch_warnings(), fused, export_forms(fuse):
                warnings.simplefilter("ignore")  # tracer warnings on shape arithmetic
                outputs = module(*inputs.values())
                torch.onnx.export(
                    module,
                    tuple(inputs.values()),
                    str(out / f"{name}.onnx"),
                    input_names=list(inputs),
                    output_names=list(OUTPUTS[name]),
                    dynamic_axes=axes,
                    opset_version=opset,
                    dynamo=False,
                    do_constant_folding=True,
                )
            _dedupe_constants(out / f"{name}.onnx")
            if isinstance(outputs, Tensor):
                outputs = (outputs,)
            io[name] = {
                "file": f"{name}.onnx",
                # the graph's identity (its weights included) for the runtime, read from here
                # instead of hashing the file again (sam2r.onnx.persist: session files)
                "sha256": file_sha256(out / f"{name}.onnx"),
                "inputs": {
                    k: {"shape": _shape_spec(v, axes.get(k, {})), "dtype": str(v.dtype)[6:]}
                    for k, v in inputs.items()
                },
                "outputs": {
                    k: {"shape": _shape_spec(v, axes.get(k, {})), "dtype": str(v.dtype)[6:]}
                    for k, v in zip(OUTPUTS[name], outputs, strict=True)
                },
            }
    finally:
        model.to(device)
        model.train(was_training)
    manifest = _manifest(model, opset, io)
    manifest["fused_attention"] = bool(fused_attention)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _dedupe_constants(path: Path) -> None:
    """Drop repeated copies of large constant tensors from an exported graph (in place).

    The tracer folds each use of a buffer separately: the memory attention's RoPE tables came out
    as 64 copies of 2 MB (134 MB of a 158 MB file at 1024 px). Every Constant node of 1 KB or more
    whose value equals an earlier one's is removed and its readers read the earlier one.
    """
    import hashlib

    import onnx

    m = onnx.load(str(path))
    if any(
        a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
        for n in m.graph.node
        for a in n.attribute
    ):
        return  # subgraphs may read the outer names: leave such a graph as it is
    first: dict[tuple[int, tuple[int, ...], str], str] = {}
    alias: dict[str, str] = {}
    kept = []
    for node in m.graph.node:
        if node.op_type == "Constant" and [a.name for a in node.attribute] == ["value"]:
            t = node.attribute[0].t
            if len(t.raw_data) >= 1024:
                key = (t.data_type, tuple(t.dims), hashlib.sha256(t.raw_data).hexdigest())
                if key in first:
                    alias[node.output[0]] = first[key]
                    continue
                first[key] = node.output[0]
        for i, name in enumerate(node.input):
            if name in alias:
                node.input[i] = alias[name]
        kept.append(node)
    if not alias:
        return
    if any(o.name in alias for o in m.graph.output):
        return  # a graph output is one of the copies: keep the graph as exported
    del m.graph.node[:]
    m.graph.node.extend(kept)
    onnx.save(m, str(path))


def _manifest(model: SAM2Model, opset: int, io: dict[str, Any]) -> dict[str, Any]:
    from sam2r import __version__

    conv = model.mask_downsample
    return {
        "format": "sam2r-onnx",
        "format_version": 1,
        "sam2r_version": __version__,
        "opset": opset,
        "model": model.cfg.name,
        "image_size": model.image_size,
        "hidden_dim": model.hidden_dim,
        "mem_dim": model.mem_dim,
        "config": dataclasses.asdict(model.cfg),
        "graphs": io,
        "constants": {
            "no_obj_ptr": model.no_obj_ptr.detach().float().view(-1).tolist(),
            "mask_downsample_weight": conv.weight.detach().float().view(-1).tolist(),
            "mask_downsample_bias": float(conv.bias.detach().float().item()),
        },
    }
