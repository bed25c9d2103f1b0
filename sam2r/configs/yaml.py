"""Read the official Hydra-style model YAML files into a `SAM2Config`, without Hydra or OmegaConf.

The official configs (`configs/sam2.1/sam2.1_hiera_t.yaml`, ...) describe the model as a tree of
`_target_` class names and constructor arguments under a top-level `model:` key. This module
reads that tree with PyYAML, applies Hydra-style overrides (`++model.fill_hole_area=0`) and
`${a.b.c}` interpolations as Hydra would, checks every key, and maps it onto the frozen
dataclasses of `sam2r.config`. `config_to_yaml_dict` writes a config back in the same layout.

What it leaves to others: what each official class accepts (`sam2r.configs.schema`) and how
the tree maps onto the config (`sam2r.configs.tree`), the dataclasses and the variant registry
(`sam2r.config`), building the modules (`sam2r.build`). Training configs
(`trainer.model: SAM2Train`) are not read here.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sam2r.config import VARIANTS, SAM2Config
from sam2r.configs.tree import config_to_yaml_dict, tree_to_config

__all__ = [
    "OFFICIAL_CONFIG_NAMES",
    "config_from_name_or_path",
    "config_from_yaml",
    "config_to_yaml_dict",
    "parse_overrides",
]

# ----------------------------------------------------------------------------------------------
# Official config names -> registry variants
# ----------------------------------------------------------------------------------------------


def _official_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for version in ("sam2", "sam2.1"):
        for size in ("t", "s", "b+", "l"):
            stem = f"{version}_hiera_{size}"
            for spelling in (f"configs/{version}/{stem}", f"{version}/{stem}", stem):
                names[spelling + ".yaml"] = stem
                names[spelling] = stem
    return names


# Every way the official builders accept a released config name (Hydra config names, with or
# without `.yaml`; `sam2_hiera_t.yaml` is also the legacy top-level copy) -> `VARIANTS` key.
OFFICIAL_CONFIG_NAMES: dict[str, str] = _official_names()

# What `build_sam2_video_predictor` always adds (as `++` overrides); applied here to keys the
# YAML and the overrides leave unset.
_BUILDER_DEFAULTS: tuple[tuple[tuple[str, ...], Any], ...] = (
    (("sam_mask_decoder_extra_args", "dynamic_multimask_via_stability"), True),
    (("sam_mask_decoder_extra_args", "dynamic_multimask_stability_delta"), 0.05),
    (("sam_mask_decoder_extra_args", "dynamic_multimask_stability_thresh"), 0.98),
    (("binarize_mask_from_pts_for_mem_enc",), True),
    (("fill_hole_area",), 8),
)

# ----------------------------------------------------------------------------------------------
# YAML loading, overrides, interpolation
# ----------------------------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` that also reads `1e-6` as a float (YAML 1.2, as OmegaConf does)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        raise ValueError(f"{source} is not valid YAML: {e}") from e


_OVERRIDE_RE = re.compile(r"^(\+\+|\+|~)?([A-Za-z_][\w\-]*(?:\.[A-Za-z_0-9][\w\-]*)*)=(.*)$", re.S)


def _parse_override(text: str) -> tuple[str, list[str], Any]:
    if not isinstance(text, str):
        raise TypeError(
            f"an override must be a str such as '++model.fill_hole_area=0', got {text!r}"
        )
    match = _OVERRIDE_RE.match(text.strip())
    if match is None or match.group(1) == "~":
        hint = " (deletions with '~' are not supported)" if text.strip().startswith("~") else ""
        raise ValueError(
            f"bad override {text!r}{hint}: expected Hydra syntax KEY=VALUE, +KEY=VALUE (add a new "
            "key) or ++KEY=VALUE (add or replace), with KEY a dotted path such as "
            "'++model.fill_hole_area=0'"
        )
    prefix, key, raw = match.group(1) or "", match.group(2), match.group(3)
    value = _load_yaml(raw, f"the value of override {text!r}") if raw.strip() else ""
    return prefix, key.split("."), value


def parse_overrides(strings: Sequence[str]) -> list[tuple[list[str], Any]]:
    """Parse Hydra override strings into `(key path, value)` pairs.

    Args:
        strings: e.g. `["++model.fill_hole_area=0", "model.image_size=512"]`. The prefix `+`
            adds a key that must not exist yet, `++` adds or replaces, none replaces an existing
            key. Values are read as YAML (`true`, `0.05`, `[64, 64]`, `null`, strings).

    Returns:
        `[(["model", "fill_hole_area"], 0), ...]`.

    Raises:
        ValueError: when a string is not `[+|++]dotted.key=value`.
    """
    if isinstance(strings, str):
        raise TypeError(f"overrides must be a list of strings, got the string {strings!r}")
    return [(path, value) for _, path, value in map(_parse_override, strings)]


def _apply_override(doc: dict[str, Any], text: str) -> None:
    prefix, path, value = _parse_override(text)
    node = doc
    for i, key in enumerate(path[:-1]):
        if prefix and node.get(key) is None and (key not in node or prefix == "++"):
            node[key] = {}  # Hydra creates missing parents of an added key
        child = node.get(key)
        if not isinstance(child, dict):
            where = ".".join(path[: i + 1])
            problem = "missing; write '++...' to create it" if child is None else "not a mapping"
            raise ValueError(f"override {text!r}: {where} is {problem}")
        node = child
    last, dotted = path[-1], ".".join(path)
    if prefix == "" and last not in node:
        raise ValueError(
            f"override {text!r}: key {dotted} is not in the config; write '++{dotted}=...' "
            "to add it"
        )
    if prefix == "+" and last in node:
        raise ValueError(
            f"override {text!r}: key {dotted} already exists; write '++{dotted}=...' "
            f"or '{dotted}=...' to replace it"
        )
    node[last] = value


_INTERP_RE = re.compile(r"\$\{([^${}]*)\}")


def _resolve(value: Any, root: Any, where: list[str], seen: tuple[str, ...] = ()) -> Any:
    """Replace `${a.b.c}` (absolute) and `${.x}` / `${..x}` (relative) interpolations."""
    if isinstance(value, dict):
        return {k: _resolve(v, root, [*where, str(k)], seen) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, root, [*where, str(i)], seen) for i, v in enumerate(value)]
    if not isinstance(value, str) or "${" not in value:
        return value
    dotted = ".".join(where)

    def lookup(ref: str) -> Any:
        ref = ref.strip()
        if ":" in ref:
            raise ValueError(
                f"{dotted}: interpolation '${{{ref}}}' uses a Hydra resolver, which sam2r does "
                "not evaluate; write the value instead"
            )
        if ref.startswith("."):
            up = len(ref) - len(ref.lstrip("."))
            parts = where[: len(where) - up] + ref[up:].split(".")
        else:
            parts = ref.split(".")
        target = ".".join(parts)
        if target in seen:
            raise ValueError(f"{dotted}: interpolation '${{{ref}}}' is circular")
        node = root
        for part in parts:
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise ValueError(
                    f"{dotted}: interpolation '${{{ref}}}' refers to {target}, which is not in "
                    "the document"
                )
        return _resolve(node, root, parts, (*seen, target))

    whole = _INTERP_RE.fullmatch(value)
    if whole is not None:
        return lookup(whole.group(1))
    out = _INTERP_RE.sub(lambda m: str(lookup(m.group(1))), value)
    if "${" in out:
        raise ValueError(f"{dotted}: unsupported interpolation in {value!r}")
    return out


def _plain(value: Any) -> Any:
    """A deep copy made of dicts and lists (any Mapping / tuple accepted)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _variant_name(cfg: SAM2Config) -> str | None:
    for name, variant in VARIANTS.items():
        if cfg.replace(name=name) == variant:
            return name
    return None


def config_from_yaml(
    path_or_dict: str | os.PathLike[str] | Mapping[str, Any],
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
) -> SAM2Config:
    """Read an official Hydra-style model config into a `SAM2Config`.

    Accepts a YAML or JSON file (or an already loaded dict) whose top level has a `model:`
    mapping (other top-level keys are ignored, but may be the target of `${...}`
    interpolations); a bare model mapping (one with `_target_` at the top) is accepted too.

    The tree is read as the official code would build it:

    * `overrides` (Hydra syntax: `key=v` replaces, `+key=v` adds, `++key=v` adds or replaces;
      `v` read as YAML) are applied first, then `${a.b.c}` / `${.x}` interpolations resolved;
    * keys absent from the tree take the official constructor defaults (`SAM2Base`,
      `SAM2VideoPredictor`, `Hiera`, `FpnNeck`, ...), EXCEPT the inference settings that the
      official `build_sam2_video_predictor` always adds: unless the tree sets them,
      `sam_mask_decoder_extra_args` gets `dynamic_multimask_via_stability: true`,
      `dynamic_multimask_stability_delta: 0.05`, `dynamic_multimask_stability_thresh: 0.98`,
      and `binarize_mask_from_pts_for_mem_enc: true`, `fill_hole_area: 8` are set. (An
      explicit `sam_mask_decoder_extra_args: null` keeps the MaskDecoder defaults.)
    * architecture flags that every released checkpoint shares (`use_high_res_features_in_sam`,
      `pred_obj_scores`, RoPE attention, ...) must have the released value;
      `compile_image_encoder` is accepted and ignored (torch.compile is opt-in in sam2r).

    Floats such as `1e-6` are read as numbers (YAML 1.2, as OmegaConf does).

    Args:
        path_or_dict: a `.yaml`/`.json` path, or a dict of the same structure (not modified).
        overrides: Hydra override strings, e.g. `["++model.fill_hole_area=0"]`.
        name: the config's `name`; by default the registered variant's name when the result
            equals one, else the file stem (`"custom"` for a dict).

    Returns:
        The config.

    Raises:
        FileNotFoundError: the path does not exist.
        ValueError: bad YAML, an unknown key or `_target_` (the message gives the key path and
            the known keys), a value of the wrong type, an unsupported architecture flag, or a
            bad override.
    """
    if isinstance(path_or_dict, Mapping):
        doc: Any = _plain(path_or_dict)
        source, stem = "config dict", "custom"
    elif isinstance(path_or_dict, (str, os.PathLike)):
        path = Path(path_or_dict)
        if not path.is_file():
            raise FileNotFoundError(
                f"config file {str(path)!r} does not exist; for a released model pass a name "
                "such as 'configs/sam2.1/sam2.1_hiera_t.yaml' to config_from_name_or_path"
            )
        doc = _load_yaml(path.read_text(encoding="utf-8"), str(path))
        source, stem = str(path), path.stem
    else:
        raise TypeError(
            f"config_from_yaml expects a path or a dict, got {type(path_or_dict).__name__}"
        )
    if isinstance(overrides, str):
        raise TypeError(f"overrides must be a list of strings, got the string {overrides!r}")
    if not isinstance(doc, dict):
        raise ValueError(
            f"{source}: expected a mapping with a top-level 'model:' key, got {type(doc).__name__}"
        )
    if "model" not in doc:
        if "_target_" not in doc:
            hint = (
                " (a training config? its model is under 'trainer.model')"
                if "trainer" in doc
                else ""
            )
            raise ValueError(
                f"{source}: no top-level 'model:' key{hint}; found keys {sorted(map(str, doc))}"
            )
        doc = {"model": doc}
    for text in overrides:
        _apply_override(doc, text)
    try:
        model = _resolve(doc["model"], doc, ["model"])
        if not isinstance(model, dict):
            raise ValueError(f"'model' must be a mapping, got {type(model).__name__}")
        for keys, value in _BUILDER_DEFAULTS:
            node = model
            for key in keys[:-1]:
                node = node.setdefault(key, {})
            if isinstance(node, dict):
                node.setdefault(keys[-1], value)
        cfg = tree_to_config(model, name or stem)
    except ValueError as e:
        raise ValueError(f"{source}: {e}") from None
    if name is None:
        cfg = cfg.replace(name=_variant_name(cfg) or stem)
    return cfg


def config_from_name_or_path(
    config_file: str | os.PathLike[str], overrides: Sequence[str] = ()
) -> SAM2Config:
    """A config from an official config name or from a YAML/JSON file.

    Args:
        config_file: an official name as the official builders take it
            (`"configs/sam2.1/sam2.1_hiera_t.yaml"`, `"sam2.1_hiera_t.yaml"`, legacy
            `"sam2_hiera_l.yaml"`, ...; see `OFFICIAL_CONFIG_NAMES`), which resolves to the
            registered variant without reading any file, or a path read by `config_from_yaml`.
        overrides: Hydra override strings applied to the variant's YAML form
            (`config_to_yaml_dict`) or to the file.

    Returns:
        The config; for an official name its `name` stays the variant's name.
    """
    if isinstance(config_file, str) and config_file.strip() in OFFICIAL_CONFIG_NAMES:
        variant = VARIANTS[OFFICIAL_CONFIG_NAMES[config_file.strip()]]
        if not overrides:
            return variant
        return config_from_yaml(config_to_yaml_dict(variant), overrides, name=variant.name)
    return config_from_yaml(config_file, overrides)
