"""The predictors: what turns a model and user prompts into masks.

* `image`: `ImagePredictor`, one image from clicks, boxes and masks;
* `automatic`: `MaskGenerator`, every object of an image from a grid of clicks;
* `video/`: `VideoPredictor`, objects tracked through a video (with its session, memory bank,
  prompt checks and malloc tuning beside it);
* `everything`: the automatic mask generator's objects tracked through a video;
* `inputs`: arrays of numbers users pass, as checked tensors (shared by the prompt checks);
* `precision`: float32 or the opt-in bfloat16 mode, refused where it would be slower;
"""
