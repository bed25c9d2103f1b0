"""ONNX export: the four graphs of `sam2r.onnx.export` against the torch steps they mirror, on
random inputs with the dynamic axes swept (prompt sets, clicks, objects, 1-7 memories, 0-16
pointers), plus the manifest and argument checks. The bundled micro model runs by default; the
released architectures (random weights) are slow."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx_helpers import bundled_model, exported  # noqa: E402

from sam2r.onnx.exporter import GRAPHS, example_inputs, export  # noqa: E402

TOL = 1e-4  # fp32, absolute, on logits and features


def _sessions(folder):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    return {
        g: ort.InferenceSession(str(folder / f"{g}.onnx"), opts, providers=["CPUExecutionProvider"])
        for g in GRAPHS
    }


@pytest.fixture(scope="module")
def graphs():
    return _sessions(exported("bundled"))


@pytest.fixture(scope="module")
def feats():
    model = bundled_model()
    g = torch.Generator().manual_seed(3)
    with torch.inference_mode():
        image = torch.randn(1, 3, model.image_size, model.image_size, generator=g)
        return image, model.encode_image(image)


def test_manifest_and_files():
    folder = exported("bundled")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["format"] == "sam2r-onnx" and manifest["model"] == "sam2r_micro"
    assert manifest["image_size"] == 256 and manifest["config"]["num_maskmem"] == 7
    for g in GRAPHS:
        assert (folder / f"{g}.onnx").is_file()
        assert manifest["graphs"][g]["file"] == f"{g}.onnx"
    ma = manifest["graphs"]["memory_attention"]["inputs"]
    assert ma["memory"]["shape"][:2] == ["num_objects", "num_memories"]
    assert ma["obj_ptrs"]["shape"][1] == "num_pointers"
    assert len(manifest["constants"]["no_obj_ptr"]) == manifest["hidden_dim"]


def test_image_encoder(graphs, feats):
    model = bundled_model()
    image, f = feats
    out = graphs["image_encoder"].run(None, {"image": image.numpy()})
    with torch.inference_mode():
        ref = [f.embed, model.no_memory(f), f.pos, f.high_res[0], f.high_res[1]]
    for a, b in zip(out, ref, strict=True):
        assert np.abs(a - b.numpy()).max() <= TOL


@pytest.mark.parametrize("n_sets,n_points", [(1, 1), (3, 5), (2, 0)])
def test_prompt_decoder(graphs, feats, n_sets, n_points):
    model = bundled_model()
    _, f = feats
    g = torch.Generator().manual_seed(n_sets * 10 + n_points)
    coords = torch.rand(n_sets, n_points, 2, generator=g) * model.image_size
    labels = torch.randint(-1, 4, (n_sets, n_points), generator=g)
    masks_in = torch.randn(n_sets, 1, 64, 64, generator=g) * 3
    has = torch.tensor([float(i % 2) for i in range(n_sets)])
    with torch.inference_mode():
        emb = model.no_memory(f)
        out = graphs["prompt_decoder"].run(
            None,
            {
                "image_embed": emb.numpy(),
                "high_res_0": f.high_res[0].numpy(),
                "high_res_1": f.high_res[1].numpy(),
                "point_coords": coords.numpy(),
                "point_labels": labels.numpy(),
                "mask_input": masks_in.numpy(),
                "has_mask_input": has.numpy(),
            },
        )
        for i in range(n_sets):
            mask = masks_in[i : i + 1] if has[i] > 0 else None
            t = model.prompt_tokens(emb, coords[i : i + 1], labels[i : i + 1], mask)
            masks = model.sam_mask_decoder.decode_masks(t.image, t.mask_tokens, f.high_res)
            assert np.abs(out[0][i] - masks[0].numpy()).max() <= TOL
            assert np.abs(out[1][i] - t.iou[0].numpy()).max() <= TOL
            assert np.abs(out[2][i] - t.object_score_logits[0].numpy()).max() <= TOL
            for multimask in (False, True):
                fo = model.decode_frame(
                    emb, f.high_res, coords[i : i + 1], labels[i : i + 1], mask, multimask
                )
                token = 1 + int(np.argmax(out[1][i, 1:])) if multimask else 0
                assert np.abs(out[3][i, token] - fo.obj_ptr[0].numpy()).max() <= TOL


@pytest.mark.parametrize(
    "n_obj,n_mem,n_ptr", [(1, 1, 0), (2, 3, 4), (1, 7, 16), (3, 2, 1), (1, 4, 9)]
)
def test_memory_attention(graphs, feats, n_obj, n_mem, n_ptr):
    model = bundled_model()
    _, f = feats
    g = torch.Generator().manual_seed(n_obj * 100 + n_mem * 10 + n_ptr)
    mem_dim, c = model.mem_dim, model.hidden_dim
    memory = torch.randn(n_obj, n_mem, mem_dim, 16, 16, generator=g)
    mpos = torch.randn(1, mem_dim, 16, 16, generator=g)
    slots = torch.tensor([0] + list(range(7 - n_mem + 1, 7)))
    ptrs = torch.randn(n_obj, n_ptr, c, generator=g)
    dist = torch.arange(n_ptr) - 1  # a signed distance among them
    max_ptrs = 16
    out = graphs["memory_attention"].run(
        None,
        {
            "image_embed": f.embed.numpy(),
            "image_pos": f.pos.numpy(),
            "memory": memory.numpy(),
            "memory_pos": mpos.numpy(),
            "memory_slot": slots.numpy(),
            "obj_ptrs": ptrs.numpy(),
            "obj_ptr_dist": (dist.float() / (max_ptrs - 1)).numpy(),
        },
    )[0]
    assert out.shape == (n_obj, c, 16, 16)
    with torch.inference_mode():
        f2 = model.with_memory_queries(f)
        for b in range(n_obj):
            toks, poss = [], []
            for j in range(n_mem):
                t, p = model.spatial_memory_tokens(memory[b : b + 1, j], mpos, int(slots[j]))
                toks.append(t)
                poss.append(p)
            n_tok = 0
            if n_ptr:
                t, p = model.pointer_tokens(ptrs[b : b + 1].transpose(0, 1), dist, max_ptrs)
                toks.append(t)
                poss.append(p)
                n_tok = t.shape[1]
            ref = model.condition_on_memory(f2, torch.cat(toks, 1), torch.cat(poss, 1), n_tok)
            assert np.abs(out[b] - ref[0].numpy()).max() <= TOL


@pytest.mark.parametrize("from_points", [False, True])
def test_memory_encoder(graphs, feats, from_points):
    model = bundled_model()
    _, f = feats
    g = torch.Generator().manual_seed(int(from_points))
    low = torch.randn(3, 1, 64, 64, generator=g) * 5
    score = torch.tensor([[1.0], [-2.0], [0.5]])
    out = graphs["memory_encoder"].run(
        None,
        {
            "image_embed": f.embed.numpy(),
            "low_res_masks": low.numpy(),
            "object_score_logits": score.numpy(),
            "from_points": np.array([float(from_points)], np.float32),
        },
    )
    with torch.inference_mode():
        high = F.interpolate(low, size=(256, 256), mode="bilinear", align_corners=False)
        ref = model.encode_memory(f.embed, high, score, from_points)
    assert np.abs(out[0] - ref.features.numpy()).max() <= TOL
    assert np.abs(out[1] - ref.pos[:1].numpy()).max() <= TOL


def test_export_checks(tmp_path):
    with pytest.raises(TypeError, match="SAM2Model"):
        export(torch.nn.Linear(2, 2), tmp_path)
    with pytest.raises(ValueError, match="opset"):
        export(bundled_model(), tmp_path, opset=11)
    with pytest.raises(ValueError, match="unknown graphs"):
        export(bundled_model(), tmp_path, graphs=("decoder",))


def _export_and_check(name: str, tmp_path, check_graphs: bool) -> None:
    """Build a released architecture with random weights, export it, run every graph once on
    the example inputs and compare the outputs with the torch wrappers."""
    from sam2r import build_model
    from sam2r.onnx.exporter import graph_module

    torch.manual_seed(0)
    model = build_model(name).eval()
    export(model, tmp_path)
    if not check_graphs:
        return
    sessions = _sessions(tmp_path)
    for g in GRAPHS:
        inputs = example_inputs(model, g)
        with torch.inference_mode():
            ref = graph_module(model, g)(*inputs.values())
        ref = (ref,) if isinstance(ref, torch.Tensor) else ref
        out = sessions[g].run(None, {k: v.numpy() for k, v in inputs.items()})
        for a, b in zip(out, ref, strict=True):
            scale = max(1.0, float(b.abs().max()))
            assert np.abs(a - b.numpy()).max() <= TOL * scale, g


@pytest.mark.slow
def test_export_sam21_tiny(tmp_path):
    _export_and_check("sam2.1_hiera_t", tmp_path, check_graphs=True)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    [
        "sam2_hiera_t",
        "sam2_hiera_s",
        "sam2_hiera_b+",
        "sam2_hiera_l",
        "sam2.1_hiera_s",
        "sam2.1_hiera_b+",
        "sam2.1_hiera_l",
    ],
)
def test_export_every_variant(name, tmp_path):
    _export_and_check(name, tmp_path, check_graphs=False)
    sessions = _sessions(tmp_path)  # every graph loads on the CPU provider
    assert set(sessions) == set(GRAPHS)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["sam2.1_hiera_b+", "sam2.1_hiera_l", "sam2_hiera_s"])
def test_image_encoder_numbers_other_variants(name, tmp_path):
    """The fused forms (short windows as one Attention node, long keys 3-D, pooling as ReduceMax)
    on the other Hiera layouts (window sizes, heads, global blocks, stage depths), at 512 px:
    the exported encoder gives the torch encoder's features."""
    from sam2r import build_model
    from sam2r.model.sam2 import SAM2Model
    from sam2r.onnx.exporter import graph_module

    torch.manual_seed(0)
    base = build_model(name)
    model = SAM2Model(base.cfg.replace(image_size=512)).eval()
    model.load_state_dict(base.state_dict(), strict=True)
    export(model, tmp_path, graphs=("image_encoder",))
    import onnx

    ops = {n.op_type for n in onnx.load(str(tmp_path / "image_encoder.onnx")).graph.node}
    assert {"Attention", "MultiHeadAttention", "ReduceMax"} <= ops
    inputs = example_inputs(model, "image_encoder")
    with torch.inference_mode():
        ref = graph_module(model, "image_encoder")(*inputs.values())
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(tmp_path / "image_encoder.onnx"), opts)
    out = sess.run(None, {k: v.numpy() for k, v in inputs.items()})
    for a, b in zip(out, ref, strict=True):
        scale = max(1.0, float(b.abs().max()))
        assert np.abs(a - b.numpy()).max() <= TOL * scale
