"""Model configs as the official YAML files write them: reading, checking and writing them.

* `yaml`: files, config names, Hydra-style overrides and `${...}` interpolation, the official
  builders' inference defaults (`config_from_yaml`, `config_from_name_or_path`);
* `tree`: the official `model:` tree <-> `SAM2Config` (`tree_to_config`, `config_to_yaml_dict`);
* `schema`: what each official class accepts (keys, defaults, `_target_` names).

The dataclasses and the variant registry stay in `sam2r.config`; training configs are
`sam2r.train.config`'s.
"""

from sam2r.configs.yaml import (
    OFFICIAL_CONFIG_NAMES,
    config_from_name_or_path,
    config_from_yaml,
    config_to_yaml_dict,
    parse_overrides,
)

__all__ = [
    "OFFICIAL_CONFIG_NAMES",
    "config_from_name_or_path",
    "config_from_yaml",
    "config_to_yaml_dict",
    "parse_overrides",
]
