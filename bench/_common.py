"""What the benchmark scripts share: where things are, and running one side in a subprocess.

Each measurement runs in a fresh process (sam2r with this interpreter, the official code with
the reference venv's), so import costs, allocator state and peak memory are per side.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "parity"
DEFAULT_REF = Path.home() / ".cache/sam2r-reference/venv/bin/python"
REFERENCE_DIR = ROOT.parent / "shared" / "reference"


def run_worker(side: str, python: str, worker: str, args: list[str]) -> dict:
    """Run `worker` (Python source) as `python -c worker side *args`; its last stdout line is
    JSON. The reference side gets `../shared/reference` on its path; a failure exits."""
    env = dict(os.environ)
    if side == "reference":
        env["PYTHONPATH"] = str(REFERENCE_DIR)
    out = subprocess.run(
        [python, "-c", worker, side, *args], env=env, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(f"{side} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])
