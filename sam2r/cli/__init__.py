"""The `sam2r` command line: one module per subcommand.

* `main`: the parser and `main` (the `sam2r` console script; `python -m sam2r.cli` and
  `python -m sam2r` run it too);
* `common`: what the subcommands share (`CliError`, the model options, `load_model`, reading
  an image, drawing masks); it imports none of them;
* `image`, `everything`: one image, from clicks and boxes or the automatic mask generator;
* `video` (with `video_prompts` and `video_outputs`): tracking through a video or a stream;
* `synth`, `train`, `eval`, `vos_infer`: synthetic data, training, J&F scoring, dataset inference.
"""
