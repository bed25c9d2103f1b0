"""The CPU cap of the README's second test pass takes effect, and the kernels it selects agree.

The test command runs the `kernels` tests twice: on the CPU as it is, then with
`MKL_ENABLE_INSTRUCTIONS=AVX2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`, which makes
torch's own kernels, MKL and oneDNN all use AVX2 code, as on a CPU without AVX-512. The checks
here make sure that second pass really runs AVX2 kernels, so a green run proves something.
"""

from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

from sam2r.model import common


def test_the_capability_cap_reaches_torch() -> None:
    cap = os.environ.get("ATEN_CPU_CAPABILITY")
    got = torch.backends.cpu.get_cpu_capability()
    if cap is None:
        assert got in ("DEFAULT", "AVX2", "AVX512", "ZVECTOR", "VSX", "SVE256", "NO AVX")
    else:
        assert got == cap.upper(), f"ATEN_CPU_CAPABILITY={cap} but torch runs {got} kernels"


@pytest.mark.skipif(
    os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() != "AVX2", reason="only under the AVX2 cap"
)
def test_onednn_cap_gives_avx2_numbers_within_tolerance() -> None:
    # under the cap oneDNN still computes the same linear, up to float rounding
    if not common._onednn_linear_available():
        pytest.skip("oneDNN linear unavailable")
    torch.manual_seed(0)
    x, w, b = torch.randn(512, 96), torch.randn(200, 96), torch.randn(200)
    with torch.inference_mode():
        got = common._onednn_linear(x, w, b)
    want = F.linear(x.double(), w.double(), b.double()).float()
    assert float((got - want).abs().max()) < 1e-4
