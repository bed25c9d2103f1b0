"""Shared test helpers: where the parity fixtures live and small loaders for them."""

from __future__ import annotations

import os

# Tests run many small ops on 2 shared cores: busy-waiting OpenMP threads slow them down by
# an order of magnitude when anything else runs. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import json  # noqa: E402
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "parity"
# the tests whose numbers depend on the CPU's kernels (the fast paths and the parity replays):
# marked `kernels`, so that the README's test command runs them again with the CPU capped at
# AVX2 (`-m kernels`), which shows on any machine what an AVX2-only CPU computes
KERNEL_TESTS = (
    "test_cpu_isa.py",
    "test_fast_paths.py",
    "test_image_parity.py",
    "test_video_parity.py",
    "test_amg_parity.py",
    "test_precision.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in KERNEL_TESTS:
            item.add_marker(pytest.mark.kernels)


CONFIGS = ("micro", "sam2.1_hiera_t", "sam2_hiera_t")


def load_json(relpath: str) -> Any:
    """A JSON file of the fixtures tree, e.g. `load_json("micro/image_index.json")`."""
    with open(FIXTURES / relpath) as f:
        return json.load(f)


def state_dict_shapes(cfg: str) -> dict[str, tuple[int, ...]]:
    """key -> shape of the official state dict of a fixture config (`micro`, ...)."""
    tensors = load_json(f"{cfg}/state_dict_shapes.json")["tensors"]
    return {k: tuple(v["shape"]) for k, v in tensors.items()}


def synthetic_model(cfg_name: str, overrides: Sequence[str] = ()) -> Any:
    """A fixture config's `SAM2Model` with the synthetic weights (seed 0), in eval mode.

    `overrides` are official `++model.x=value` strings (e.g. a session's extra overrides).
    """
    from sam2r import SAM2Model, config_from_yaml
    from sam2r.testing import synth_state_dict

    cfg = config_from_yaml(FIXTURES / "configs" / f"{cfg_name}.json", overrides)
    model = SAM2Model(cfg).eval()
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    model.load_state_dict(synth_state_dict(shapes, seed=0), strict=True)
    return model


@pytest.fixture(scope="module")
def model() -> Any:
    """The `micro` model with the synthetic weights (one per test module)."""
    return synthetic_model("micro")


def micro_shapes() -> dict[str, tuple[int, ...]]:
    """key -> shape of the `micro` config's state dict."""
    return state_dict_shapes("micro")


@pytest.fixture
def fixtures_dir() -> Path:
    """Root of the copied parity fixtures (`tests/fixtures/parity`)."""
    return FIXTURES
