"""Synthetic training and test data: procedural videos and images with exact masks, DAVIS files.

`make_video` / `make_image` draw a deterministic sample from a seed and a `SynthConfig`;
`write_dataset` writes train and val splits in the DAVIS 2017 layout; `make_scenario_video`
draws the hard cases (occlusion, distractor, fast, cut) of `sam2r.data.scenarios`. See
`sam2r.data.synthetic` for what the videos contain and `sam2r.data.looks` for the "train" and
"unseen" looks.
"""

from sam2r.data.davis_io import read_sequence, read_split, write_dataset, write_davis, write_images
from sam2r.data.looks import LOOKS, Look
from sam2r.data.scenarios import SCENARIOS, make_scenario_video
from sam2r.data.scene import Scene, render_scene
from sam2r.data.synthetic import (
    SynthConfig,
    SynthImage,
    SynthVideo,
    make_image,
    make_video,
    sample_image_scene,
    sample_scene,
    split_seed,
)

__all__ = [
    "LOOKS",
    "Look",
    "SCENARIOS",
    "Scene",
    "SynthConfig",
    "SynthImage",
    "SynthVideo",
    "make_image",
    "make_scenario_video",
    "make_video",
    "read_sequence",
    "read_split",
    "render_scene",
    "sample_image_scene",
    "sample_scene",
    "split_seed",
    "write_dataset",
    "write_davis",
    "write_images",
]
