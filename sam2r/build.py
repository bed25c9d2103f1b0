"""Build a SAM 2 model from a variant name or config, and read / write its checkpoints.

Checkpoints use the official format, `{"model": state_dict}` with Meta's key names, so the
released `.pt` files load with `strict=True` and no remapping; a bare state dict and
`.safetensors` files are read too. When no variant is given, it is recognised from the keys
and shapes of the file (`detect_variant`), and every mismatch error says which registered
variant the file looks like. `from_pretrained` fetches the released files from the Hugging
Face hub (the `hub` extra), trying the local cache first.

What it leaves to others: the modules (`sam2r.model`), the configs and the registry
(`sam2r.config`), reading official YAML files (`sam2r.configs.yaml`).
"""

from __future__ import annotations

import functools
import os
import pickle
import socket
import urllib.parse
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch

from sam2r.config import (
    BUNDLED_VARIANT,
    HF_MODELS,
    VARIANTS,
    SAM2Config,
    get_config,
    resolve_name,
)
from sam2r.model.sam2 import SAM2Model

__all__ = [
    "LoadResult",
    "build_model",
    "detect_variant",
    "download_checkpoint",
    "from_pretrained",
    "load_checkpoint",
    "official_state_dict",
    "read_state_dict",
    "save_checkpoint",
    "state_dict_shapes",
]

Shapes = dict[str, tuple[int, ...]]
_HUB_HINT = 'pip install "sam2r[hub]"'


class LoadResult(NamedTuple):
    """What `load_checkpoint(strict=False)` could not load (all empty after a strict load)."""

    missing_keys: list[str]  # in the model, not in the file
    unexpected_keys: list[str]  # in the file, not in the model
    mismatched_keys: list[str]  # in both, with different shapes (left as they were)


# ----------------------------------------------------------------------------------------------
# Expected state-dict layouts and variant detection
# ----------------------------------------------------------------------------------------------


@functools.cache
def _shapes_of(cfg: SAM2Config) -> Shapes:
    try:
        with torch.device("meta"):  # no memory, no init cost
            model = SAM2Model(cfg)
    except (RuntimeError, NotImplementedError):  # an init that needs real numbers
        model = SAM2Model(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def state_dict_shapes(variant: str | SAM2Config) -> Shapes:
    """key -> shape of the state dict of a variant (any spelling `resolve_name` accepts) or a
    config, computed once on the meta device and cached."""
    cfg = variant if isinstance(variant, SAM2Config) else get_config(variant)
    return dict(_shapes_of(cfg))


class _Diff(NamedTuple):
    missing: list[str]
    unexpected: list[str]
    mismatched: list[str]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unexpected or self.mismatched)


def _diff(got: Shapes, expected: Shapes) -> _Diff:
    return _Diff(
        missing=[k for k in expected if k not in got],
        unexpected=[k for k in got if k not in expected],
        mismatched=[k for k in expected if k in got and got[k] != expected[k]],
    )


def _agreement(got: Shapes, expected: Shapes) -> tuple[int, int]:
    """(tensors with the same key and shape, size of the union of the two key sets)."""
    same = sum(1 for k, s in expected.items() if got.get(k) == s)
    return same, len(expected.keys() | got.keys())


def _describe(diff: _Diff, got: Shapes, expected: Shapes, limit: int = 10) -> str:
    """A few lines listing up to `limit` keys of each kind of difference, with shapes."""
    lines = []
    for title, keys, show in (
        ("missing from the file", diff.missing, lambda k: f"{k} {list(expected[k])}"),
        ("unexpected in the file", diff.unexpected, lambda k: f"{k} {list(got[k])}"),
        (
            "shape mismatch",
            diff.mismatched,
            lambda k: f"{k}: file {list(got[k])}, model {list(expected[k])}",
        ),
    ):
        if keys:
            more = f" (first {limit})" if len(keys) > limit else ""
            lines.append(f"  {len(keys)} {title}{more}:")
            lines += [f"    {show(k)}" for k in keys[:limit]]
    return "\n".join(lines)


def _as_shapes(state_dict: Mapping[str, Any]) -> Shapes:
    if "model" in state_dict and isinstance(state_dict["model"], Mapping):
        state_dict = state_dict["model"]
    return {k: tuple(v.shape) if hasattr(v, "shape") else tuple(v) for k, v in state_dict.items()}


def _closest(got: Shapes, extra: Mapping[str, Shapes] | None = None) -> tuple[str, int, int]:
    """(name, tensors that agree, union size) of the candidate layout closest to `got`."""
    candidates = {name: _shapes_of(cfg) for name, cfg in VARIANTS.items()}
    candidates.update(extra or {})
    scored = [(name, *_agreement(got, exp)) for name, exp in candidates.items()]
    return max(scored, key=lambda t: (t[1] / max(t[2], 1), t[1]))


def detect_variant(state_dict: Mapping[str, Any]) -> str:
    """The registered variant whose state dict has exactly these keys and shapes.

    Args:
        state_dict: key -> tensor (or shape); an official `{"model": state_dict}` is accepted.

    Returns:
        A `VARIANTS` key such as `"sam2.1_hiera_t"`.

    Raises:
        ValueError: no variant matches exactly; the message names the closest one and the first
            differences.
    """
    got = _as_shapes(state_dict)
    for name, cfg in VARIANTS.items():
        if _diff(got, _shapes_of(cfg)).ok:
            return name
    name, same, union = _closest(got)
    expected = _shapes_of(VARIANTS[name])
    raise ValueError(
        f"the state dict ({len(got)} tensors) matches no registered variant exactly; the closest "
        f"is {name!r} ({same} of {union} tensors agree):\n"
        f"{_describe(_diff(got, expected), got, expected)}\n"
        "For a model with a custom config, pass the config: build_model(config, checkpoint=PATH)."
    )


# ----------------------------------------------------------------------------------------------
# Reading, loading and saving checkpoints
# ----------------------------------------------------------------------------------------------


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The state dict stored in a checkpoint file, as CPU tensors.

    Reads `torch.save` files with `weights_only=True` (the official `{"model": state_dict}`, or
    a bare state dict) and `.safetensors` files (needs the `hub` extra).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file is truncated or not a checkpoint, or holds no state dict.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(
            f"checkpoint {str(path)!r} does not exist; download a released one with "
            "sam2r.from_pretrained('facebook/sam2.1-hiera-tiny') or pass the right path"
        )
    if path.is_dir():
        raise ValueError(f"checkpoint {str(path)!r} is a directory; pass the .pt file inside it")
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file
        except ImportError as e:
            raise ImportError(f"reading .safetensors files needs safetensors: {_HUB_HINT}") from e
        try:
            obj: Any = load_file(str(path), device="cpu")
        except Exception as e:  # safetensors raises its own error types
            raise ValueError(f"cannot read checkpoint {str(path)!r}: {e}") from e
    else:
        try:
            obj = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise ValueError(
                f"cannot read checkpoint {str(path)!r}: it is not a PyTorch file, or it holds "
                "Python objects besides tensors, which sam2r refuses to unpickle "
                f"(weights_only=True). Official checkpoints hold only tensors. ({e})"
            ) from e
        except (RuntimeError, EOFError, OSError, ValueError) as e:
            raise ValueError(
                f"cannot read checkpoint {str(path)!r}: {type(e).__name__}: {e}. The file may "
                "be truncated (an interrupted download?) or not a checkpoint; download it again"
            ) from e
    return _extract_state_dict(obj, path)


def _extract_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    where = f"checkpoint {str(path)!r}"
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{where} holds a {type(obj).__name__}; expected a dict {{'model': state_dict}} "
            "(the official format) or a state dict"
        )
    if "model" in obj:
        state_dict = obj["model"]
        where += "['model']"
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"{where} is a {type(state_dict).__name__}, not a state dict")
    else:
        state_dict = obj
    others = [k for k, v in state_dict.items() if not isinstance(v, torch.Tensor)]
    if len(others) == len(state_dict):
        raise ValueError(
            f"{where} holds no tensors (keys: {sorted(map(str, state_dict))[:10]}); expected "
            "{'model': state_dict} (the official format) or a state dict"
        )
    if others:
        raise ValueError(f"{where} has entries that are not tensors: {others[:10]}")
    return dict(state_dict)


def _model_name(model: torch.nn.Module) -> str:
    cfg = getattr(model, "cfg", None)
    return cfg.name if isinstance(cfg, SAM2Config) else type(model).__name__


def _load_into(
    model: torch.nn.Module,
    state_dict: dict[str, torch.Tensor],
    strict: bool,
    source: str,
    assign: bool = False,
) -> LoadResult:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state_dict.items()}
    diff = _diff(got, expected)
    if strict and not diff.ok:
        mine = _model_name(model)
        extra = {} if mine in VARIANTS else {mine: expected}
        like, same, union = _closest(got, extra)
        if same == union:
            verdict = (
                f"The file is a {like!r} checkpoint: build that model, "
                f"build_model({like!r}, checkpoint=PATH), or let build_model(checkpoint=PATH) "
                "detect it."
            )
        else:
            verdict = (
                f"The file matches no registered variant exactly; it looks most like {like!r} "
                f"({same} of {union} tensors agree). Is it a {like!r} checkpoint that is damaged "
                "or from another model?"
            )
        raise ValueError(
            f"checkpoint {source} does not fit the {mine!r} model:\n"
            f"{_describe(diff, got, expected)}\n{verdict}"
        )
    skip = set(diff.unexpected) | set(diff.mismatched)
    kept = {k: v for k, v in state_dict.items() if k not in skip}
    if assign:
        # the model was built on the meta device: adopt the file's tensors (as float32, like a
        # copy into freshly initialised parameters would give) instead of copying into them
        kept = {k: v.float().contiguous() if v.is_floating_point() else v for k, v in kept.items()}
    model.load_state_dict(kept, strict=strict, assign=assign)
    return LoadResult(diff.missing, diff.unexpected, diff.mismatched)


def load_checkpoint(
    model: torch.nn.Module, path: str | os.PathLike[str], strict: bool = True
) -> LoadResult:
    """Load a checkpoint file into a model (values are copied to the model's device and dtype).

    Args:
        model: a `SAM2Model` (any module works).
        path: an official `.pt` file (`{"model": state_dict}`), a bare state dict saved with
            `torch.save`, or a `.safetensors` file.
        strict: every key of the model and of the file must match, with the same shapes. With
            False, the matching tensors are loaded and the rest is reported.

    Returns:
        The keys that were not loaded (all empty for a strict load).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the file cannot be read, or (strict) its keys or shapes differ from the
            model's; the message lists the differences and the variant the file looks like.
    """
    return _load_into(model, read_state_dict(path), strict, repr(str(path)))


def official_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict as official checkpoints store it: CPU float32 tensors."""
    return {
        k: v.detach().to(device="cpu", dtype=torch.float32).contiguous()
        for k, v in model.state_dict().items()
    }


def save_checkpoint(model: torch.nn.Module, path: str | os.PathLike[str]) -> Path:
    """Write `{"model": state_dict}` (CPU float32 tensors, the official format) with torch.save.

    A path ending in `.safetensors` writes a safetensors file of the bare state dict instead.
    Returns the path written.
    """
    path = Path(path)
    state_dict = official_state_dict(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".safetensors":
        try:
            from safetensors.torch import save_file
        except ImportError as e:
            raise ImportError(f"writing .safetensors files needs safetensors: {_HUB_HINT}") from e
        save_file({k: v.clone() for k, v in state_dict.items()}, str(path))
    else:
        torch.save({"model": state_dict}, path)
    return path


# ----------------------------------------------------------------------------------------------
# Building
# ----------------------------------------------------------------------------------------------


def build_model(
    variant: str | SAM2Config | None = None,
    *,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> SAM2Model:
    """Build a SAM 2 model, optionally loading a checkpoint (strict), in eval mode.

    Args:
        variant: a registered name in any spelling `sam2r.config.resolve_name` accepts
            (`"sam2.1_hiera_t"`, `"facebook/sam2.1-hiera-tiny"`, `"sam2.1-tiny"`), or a
            `SAM2Config`. None: recognised from the checkpoint's keys and shapes.
        checkpoint: a checkpoint file (see `load_checkpoint`); None leaves random weights.
        device: where the model goes.
        dtype: parameter dtype (e.g. `torch.bfloat16`); None keeps float32.

    Returns:
        The model, in eval mode.
    """
    state_dict = None
    if variant is None:
        if checkpoint is None:
            raise ValueError(
                "build_model needs a variant (e.g. 'sam2.1_hiera_t' or a SAM2Config) or a "
                "checkpoint to recognise the variant from"
            )
        state_dict = read_state_dict(checkpoint)
        try:
            cfg = VARIANTS[detect_variant(state_dict)]
        except ValueError as e:
            raise ValueError(
                f"cannot tell which model checkpoint {str(checkpoint)!r} holds: {e}"
            ) from None
    elif isinstance(variant, SAM2Config):
        cfg = variant
    elif isinstance(variant, str):
        cfg = get_config(variant)
    else:
        raise TypeError(
            f"variant must be a model name, a SAM2Config or None, got {type(variant).__name__}"
        )
    if checkpoint is None:
        model = SAM2Model(cfg)
    else:
        if state_dict is None:
            state_dict = read_state_dict(checkpoint)
        # no random initialisation of weights that the checkpoint replaces at once
        with torch.device("meta"):
            model = SAM2Model(cfg)
        _load_into(model, state_dict, strict=True, source=repr(str(checkpoint)), assign=True)
    return model.to(device=device, dtype=dtype).eval()


def _hub_file(name: str) -> tuple[str, str, str]:
    """(variant, repo id, file name) for a hub id or any accepted model name."""
    variant = resolve_name(name)
    repo_id, filename = next((r, f) for r, (v, f) in HF_MODELS.items() if v == variant)
    return variant, repo_id, filename


def _hub_offline() -> bool:
    from huggingface_hub import constants

    flag = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return flag in ("1", "ON", "YES", "TRUE") or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _hub_unreachable(timeout: float) -> str | None:
    """Why no TCP connection to the hub (or the configured proxy) opens in time; None if one does.

    huggingface_hub retries failed requests with back-off when the file is not cached, which
    takes minutes without network; one plain connection attempt answers in `timeout` seconds.
    """
    from huggingface_hub import constants

    url = urllib.parse.urlsplit(getattr(constants, "ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (80 if url.scheme == "http" else 443)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host):
        parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = parsed.hostname or host, parsed.port or 80
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        return f"cannot reach {host}:{port}: {e}"
    return None


def download_checkpoint(name: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The local path of a released checkpoint, downloaded from the hub unless it is cached.

    The cache is tried first (no network); then, unless `HF_HUB_OFFLINE` is set, the hub, after
    checking that it can be reached within `HF_HUB_ETAG_TIMEOUT` seconds (5 by default), so that
    a machine without network fails in seconds rather than after the hub client's retries.

    Raises:
        ImportError: huggingface_hub is not installed.
        RuntimeError: not cached and not downloadable (offline, no network, ...).
    """
    variant, repo_id, filename = _hub_file(name)
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as e:
        raise ImportError(
            f"downloading checkpoints needs huggingface_hub: {_HUB_HINT}; or pass a local file: "
            f"build_model({variant!r}, checkpoint=PATH)"
        ) from e
    cache = None if cache_dir is None else str(cache_dir)
    try:
        return Path(hf_hub_download(repo_id, filename, cache_dir=cache, local_files_only=True))
    except (FileNotFoundError, ValueError, OSError) as e:  # LocalEntryNotFoundError and kin
        cache_miss: Exception = e
    timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", "5"))
    if _hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    elif unreachable := _hub_unreachable(timeout):
        reason = unreachable
    else:
        try:
            return Path(hf_hub_download(repo_id, filename, cache_dir=cache, etag_timeout=timeout))
        except Exception as e:  # network, HTTP and hub errors of every kind
            reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            cache_miss = e
    raise RuntimeError(
        f"could not download {filename} of {repo_id} from the Hugging Face hub ({reason}), "
        f"and it is not in the local cache ({cache or 'the default hub cache'}). Download it "
        f"where you have network (https://huggingface.co/{repo_id}) and pass the file: "
        f"build_model({variant!r}, checkpoint=PATH) in Python, or --checkpoint PATH on the "
        "command line."
    ) from cache_miss


def from_pretrained(
    name: str,
    *,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> SAM2Model:
    """A released model with its official weights, from the Hugging Face hub (or its cache),
    or sam2r's bundled small model (`"sam2r_micro"`, no download: it ships in the package).

    Args:
        name: a hub id (`"facebook/sam2.1-hiera-tiny"`) or any name `resolve_name` accepts
            (`"sam2.1-tiny"`, `"sam2.1_hiera_t"`, `"sam2r_micro"`).
        device: where the model goes.
        cache_dir: the hub cache directory (default: the hub's own, `HF_HUB_CACHE`).
        **kwargs: passed to `build_model` (e.g. `dtype`).

    Raises:
        ImportError: huggingface_hub is not installed (`pip install "sam2r[hub]"`).
        RuntimeError: the file is neither cached nor downloadable; the message says how to pass
            a local checkpoint instead.
    """
    variant = resolve_name(name)
    if variant == BUNDLED_VARIANT:
        return build_model(variant, checkpoint=bundled_checkpoint(), device=device, **kwargs)
    path = download_checkpoint(name, cache_dir=cache_dir)
    return build_model(variant, checkpoint=path, device=device, **kwargs)


def bundled_checkpoint() -> Path:
    """Path of the bundled `sam2r_micro` weights (official format, inside the package)."""
    path = Path(__file__).parent / "assets" / "sam2r_micro.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"the bundled model {str(path)!r} is missing: reinstall sam2r, or train it again "
            "with `sam2r train configs/train/synth_micro.yaml` and copy runs/synth_micro/model.pt"
        )
    return path
