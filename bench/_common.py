"""What the benchmark scripts share: where things are, and running one side in a subprocess.

Each measurement runs in a fresh process (sam2r with this interpreter, the official code with
the reference venv's), so import costs, allocator state and peak memory are per side.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "parity"
DEFAULT_REF = Path.home() / ".cache/sam2r-reference/venv/bin/python"
REFERENCE_DIR = ROOT.parent / "shared" / "reference"


# environment that makes torch, MKL and oneDNN all run AVX2 code, as on a CPU without AVX-512
AVX2_ENV = {
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
}


def cpu_info() -> dict:
    """What the benchmark ran on: the CPU's model name and its SIMD flags that matter here."""
    info: dict = {"model": "unknown", "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    wanted = (
        "avx2",
        "fma",
        "avx512f",
        "avx512bw",
        "avx512_vnni",
        "avx512_bf16",
        "amx_bf16",
        "amx_tile",
        "amx_int8",
    )
    for line in text.splitlines():
        if line.startswith("model name") and info["model"] == "unknown":
            info["model"] = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            info["flags"] = [f for f in wanted if f in have]
            break
    info["logical_cpus"] = os.cpu_count()
    return info


def bf16_available() -> bool:
    """Whether sam2r accepts precision="bf16" on this CPU (native bfloat16 that measures
    faster; see `sam2r.predictor.precision`)."""
    import torch

    from sam2r.predictor.precision import resolve_precision

    try:
        resolve_precision("bf16", torch.device("cpu"))
    except ValueError as e:
        print(f"no bf16 figures: {e}", file=sys.stderr)
        return False
    return True


def run_worker(
    side: str, python: str, worker: str, args: list[str], env_extra: dict | None = None
) -> dict:
    """Run `worker` (Python source) as `python -c worker side *args`; its last stdout line is
    JSON. The reference side gets `../shared/reference` on its path; `env_extra` is added to
    the environment (e.g. `AVX2_ENV`); a failure exits."""
    env = dict(os.environ)
    env.update(env_extra or {})
    if side == "reference":
        env["PYTHONPATH"] = str(REFERENCE_DIR)
    out = subprocess.run(
        [python, "-c", worker, side, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
