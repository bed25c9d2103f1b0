"""Tiny random zero-shot detectors (OWLv2, OWL-ViT, (MM-)Grounding DINO), built offline.

    folder = save_tiny_detector("grounding-dino", "/tmp/tiny-gdino")
    detector = load_detector(folder)

For tests and benchmarks of the text-prompt plumbing with no download: each model is built
from a tiny config with random weights (a few hundred kB), its processor from a tokenizer whose
vocabulary is written here (single letters and a few words), and both are saved as a
`save_pretrained` folder, read back as a user's offline copy would be. Their scores and boxes
mean nothing; OWL's box heads are zeroed so that each patch proposes its own square (random
ones give degenerate boxes).

What is left to others: loading and running them (`sam2r.text.transformers_detector`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from sam2r.text.transformers_detector import require_transformers

KINDS = ("owlv2", "owlvit", "grounding-dino", "mm-grounding-dino")

WORDS = ["a", "cat", "dog", "red", "car", "person", "ball", "star"]


def _clip_tokenizer(tf: Any, folder: Path) -> Any:
    """A CLIP BPE tokenizer over single letters and the words above (no merges needed)."""
    vocab: dict[str, int] = {}
    for c in ["!", "."] + [chr(i) for i in range(97, 123)]:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    for w in WORDS:
        vocab[w + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return tf.CLIPTokenizer(
        str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=16
    )  # OWL pads every query to 16 tokens, as the released processors do


def _save_owl(tf: Any, folder: Path, kind: str) -> None:
    torch.manual_seed(0)
    tok = _clip_tokenizer(tf, folder)
    text = dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=37, num_hidden_layers=1,
        num_attention_heads=4, max_position_embeddings=16,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
    )  # fmt: skip
    vision = dict(
        hidden_size=32, intermediate_size=37, num_hidden_layers=1, num_attention_heads=4,
        image_size=64, patch_size=16,
    )  # fmt: skip
    if kind == "owlv2":
        config = tf.Owlv2Config(text_config=text, vision_config=vision, projection_dim=32)
        model = tf.Owlv2ForObjectDetection(config)
        images = tf.Owlv2ImageProcessor(size={"height": 64, "width": 64})
        processor = tf.Owlv2Processor(image_processor=images, tokenizer=tok)
    else:
        config = tf.OwlViTConfig(text_config=text, vision_config=vision, projection_dim=32)
        model = tf.OwlViTForObjectDetection(config)
        images = tf.OwlViTImageProcessor(
            size={"height": 64, "width": 64}, crop_size={"height": 64, "width": 64}
        )
        processor = tf.OwlViTProcessor(image_processor=images, tokenizer=tok)
    with torch.no_grad():  # random box heads give degenerate boxes; zero: one box per patch
        model.box_head.dense2.weight.zero_()
        model.box_head.dense2.bias.zero_()
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def _save_grounding_dino(tf: Any, folder: Path, kind: str) -> None:
    torch.manual_seed(0)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    tok = tf.BertTokenizer(str(folder / "vocab.txt"))
    mm = kind == "mm-grounding-dino"
    config = (tf.MMGroundingDinoConfig if mm else tf.GroundingDinoConfig)(
        backbone_config=tf.SwinConfig(
            image_size=64, patch_size=4, embed_dim=8, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
            window_size=4, out_features=["stage2", "stage3", "stage4"],
        ),
        text_config=tf.BertConfig(
            vocab_size=len(vocab), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=37, max_position_embeddings=64,
        ),
        d_model=32, encoder_layers=1, decoder_layers=2, encoder_ffn_dim=32, decoder_ffn_dim=32,
        encoder_attention_heads=2, decoder_attention_heads=2, num_queries=20,
        num_feature_levels=3, encoder_n_points=2, decoder_n_points=2, max_text_len=32,
        use_timm_backbone=False,
    )  # fmt: skip
    model = (tf.MMGroundingDinoForObjectDetection if mm else tf.GroundingDinoForObjectDetection)(
        config
    )
    images = tf.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96})
    processor = tf.GroundingDinoProcessor(image_processor=images, tokenizer=tok)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)


def save_tiny_detector(kind: str, folder: str | Path) -> Path:
    """Build a tiny random detector of `kind` (one of `KINDS`) and save it with its processor
    into `folder` (created); returns the folder."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    tf = require_transformers()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if kind.endswith("grounding-dino"):
        _save_grounding_dino(tf, folder, kind)
    else:
        _save_owl(tf, folder, kind)
    return folder
