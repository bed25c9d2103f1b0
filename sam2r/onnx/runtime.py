"""An exported model on ONNX Runtime: the four graphs behind four numpy methods.

    model = OnnxModel("exported/")            # the folder `sam2r.onnx.export` wrote
    feats = model.encode_image(x)             # x: (1, 3, S, S) normalised float32
    out = model.decode(feats["image_embed_no_mem"], feats, coords, labels)

numpy + onnxruntime only (no torch). What is left to others: what to feed the graphs and what to
keep (`sam2r.onnx.image`, `sam2r.onnx.steps`, `sam2r.onnx.tracker`).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from sam2r.onnx.export_names import GRAPHS, MANIFEST


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            "running exported models needs onnxruntime: pip install 'sam2r[onnx]' "
            "(or pip install onnxruntime)"
        ) from e
    return onnxruntime


def file_sha256(path: str | os.PathLike[str]) -> str:
    """The sha256 hex digest of a file's bytes (read in 1 MiB blocks: a graph of the large
    model is ~900 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class OnnxModel:
    """The graphs of an exported model, run with ONNX Runtime.

    Args:
        folder: a folder written by `sam2r.onnx.export` (manifest.json + four .onnx files).
        num_threads: intra-op threads of each graph (None: onnxruntime's default, all cores).
        providers: onnxruntime execution providers (default: the CPU provider).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        num_threads: int | None = None,
        providers: list[str] | None = None,
    ) -> None:
        root = Path(folder)
        path = root / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(
                f"{str(folder)!r} has no {MANIFEST}; export a model first with "
                "`sam2r export onnx --out DIR` or sam2r.onnx.export(model, DIR)"
            )
        self.folder = root
        self.manifest: dict[str, Any] = json.loads(path.read_text())
        if self.manifest.get("format") != "sam2r-onnx":
            raise ValueError(f"{path} is not a sam2r ONNX manifest")
        ort = _import_ort()
        opts = ort.SessionOptions()
        if num_threads is not None:
            opts.intra_op_num_threads = int(num_threads)
            opts.inter_op_num_threads = 1
        # idle threads wait instead of spinning: with as many threads as cores the spinning
        # gains nothing, and on a shared CPU it takes cores from the threads doing the work
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._sessions = {}
        for name in GRAPHS:
            file = root / self.manifest["graphs"][name]["file"]
            self._sessions[name] = ort.InferenceSession(
                str(file), opts, providers=providers or ["CPUExecutionProvider"]
            )
        self.config: dict[str, Any] = self.manifest["config"]
        self.image_size: int = int(self.manifest["image_size"])
        self.hidden_dim: int = int(self.manifest["hidden_dim"])
        self.mem_dim: int = int(self.manifest["mem_dim"])
        consts = self.manifest["constants"]
        self.no_obj_ptr = np.asarray(consts["no_obj_ptr"], dtype=np.float32)  # (C,)
        self.mask_downsample_weight = np.asarray(
            consts["mask_downsample_weight"], dtype=np.float32
        ).reshape(4, 4)
        self.mask_downsample_bias = np.float32(consts["mask_downsample_bias"])
        self._graph_sha256: dict[str, str] | None = None

    def graph_sha256(self) -> dict[str, str]:
        """The sha256 of each graph file (its weights and ops), by graph name, hashed from the
        files once (on the first session saved or loaded) and kept. Where the manifest has the
        digest the exporter wrote (`graphs[name]["sha256"]`; an older export's has none), the
        file must still match it: a graph replaced by hand after export is a `ValueError`,
        not a session tracked on by other weights."""
        if self._graph_sha256 is None:
            graphs = self.manifest["graphs"]
            digests = {}
            for name in GRAPHS:
                path = self.folder / graphs[name]["file"]
                digests[name] = file_sha256(path)
                written = graphs[name].get("sha256")
                if written is not None and written != digests[name]:
                    raise ValueError(
                        f"{path} changed after export: its sha256 is {digests[name]}, the "
                        f"manifest says {written}. Export the model again (sam2r export onnx) "
                        "rather than replacing a graph file"
                    )
            self._graph_sha256 = digests
        return self._graph_sha256

    def _run(self, name: str, **inputs: np.ndarray) -> dict[str, np.ndarray]:
        sess = self._sessions[name]
        outs = sess.run(None, inputs)
        return {o.name: v for o, v in zip(sess.get_outputs(), outs, strict=True)}

    def encode_image(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """image (1, 3, S, S) float32 normalised -> image_embed, image_embed_no_mem, image_pos
        (1, C, h, w), high_res_0 (1, C/8, 4h, 4w), high_res_1 (1, C/4, 2h, 2w)."""
        return self._run("image_encoder", image=np.ascontiguousarray(image, dtype=np.float32))

    def decode(
        self,
        image_embed: np.ndarray,
        feats: dict[str, np.ndarray],
        coords: np.ndarray,
        labels: np.ndarray,
        mask_input: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """The prompt decoder for N prompt sets.

        Args:
            image_embed: (1, C, h, w) embedding to decode (no-memory or memory-conditioned).
            feats: `encode_image` output (for the high-res features).
            coords: (N, P, 2) model-input pixels; labels (N, P) (-1 padding).
            mask_input: (N, 1, S/4, S/4) logits or None.

        Returns:
            masks (N, 4, S/4, S/4), iou (N, 4), object_score_logits (N, 1), obj_ptr (N, 4, C).
        """
        n = coords.shape[0]
        side = self.image_size // 4
        has = np.ones(n, np.float32)
        if mask_input is None:
            mask_input = np.zeros((n, 1, side, side), np.float32)
            has[:] = 0.0
        return self._run(
            "prompt_decoder",
            image_embed=np.ascontiguousarray(image_embed, dtype=np.float32),
            high_res_0=feats["high_res_0"],
            high_res_1=feats["high_res_1"],
            point_coords=np.ascontiguousarray(coords, dtype=np.float32),
            point_labels=np.ascontiguousarray(labels, dtype=np.int64),
            mask_input=np.ascontiguousarray(mask_input, dtype=np.float32),
            has_mask_input=has,
        )

    def attend_memory(
        self,
        feats: dict[str, np.ndarray],
        memory: np.ndarray,
        memory_pos: np.ndarray,
        memory_slot: np.ndarray,
        obj_ptrs: np.ndarray,
        obj_ptr_dist: np.ndarray,
    ) -> np.ndarray:
        """Memory attention: (B, C, h, w) features of the frame conditioned on B objects'
        N memories (B, N, mem_dim, h, w) and P pointers (B, P, C); see `MemoryAttentionGraph`."""
        return self._run(
            "memory_attention",
            image_embed=feats["image_embed"],
            image_pos=feats["image_pos"],
            memory=np.ascontiguousarray(memory, dtype=np.float32),
            memory_pos=memory_pos,
            memory_slot=np.ascontiguousarray(memory_slot, dtype=np.int64),
            obj_ptrs=np.ascontiguousarray(obj_ptrs, dtype=np.float32),
            obj_ptr_dist=np.ascontiguousarray(obj_ptr_dist, dtype=np.float32),
        )["pix_feat"]

    def encode_memory(
        self,
        feats: dict[str, np.ndarray],
        low_res_masks: np.ndarray,
        object_score_logits: np.ndarray,
        from_points: bool,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(B, mem_dim, h, w) memories of B masks (B, 1, S/4, S/4) and their position encoding
        (1, mem_dim, h, w)."""
        out = self._run(
            "memory_encoder",
            image_embed=feats["image_embed"],
            low_res_masks=np.ascontiguousarray(low_res_masks, dtype=np.float32),
            object_score_logits=np.ascontiguousarray(object_score_logits, dtype=np.float32),
            from_points=np.array([1.0 if from_points else 0.0], np.float32),
        )
        return out["maskmem_features"], out["maskmem_pos"]

    def mask_downsample(self, mask: np.ndarray) -> np.ndarray:
        """The model's 4x4 stride-4 conv of a (B, 1, S, S) mask -> (B, 1, S/4, S/4)."""
        b, _, s, _ = mask.shape
        blocks = mask.reshape(b, 1, s // 4, 4, s // 4, 4).astype(np.float32)
        out = np.einsum("bcyixj,ij->bcyx", blocks, self.mask_downsample_weight)
        return (out + self.mask_downsample_bias).astype(np.float32)
