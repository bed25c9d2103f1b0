"""Training and fine-tuning of SAM 2 models (`sam2r train CONFIG`).

from sam2r.train import train, train_config_from_yaml
train(train_config_from_yaml("configs/train/synth_micro.yaml", ["run.steps=100"]))
"""

from sam2r.train.config import TrainConfig, train_config_from_dict, train_config_from_yaml
from sam2r.train.trainer import train

__all__ = ["TrainConfig", "train", "train_config_from_dict", "train_config_from_yaml"]
