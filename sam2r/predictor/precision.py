"""The predictors' arithmetic precision: float32 (the default, the official numbers) or an
opt-in bfloat16 mode for speed.

    precision = resolve_precision("bf16", torch.device("cpu"))   # ValueError where it is slower
    feats = precision.run(model.encode_image, images)            # float32 out either way

In bf16 mode the two parts where a frame spends nearly all its time, the image encoder and the
memory attention, run under `torch.autocast(dtype=torch.bfloat16)`: their linear layers,
convolutions and attention take bfloat16 weights and activations, while the elementwise work
around them (norms, softmax, residual adds, position encodings) stays float32, as with the
official code's `torch.autocast("cuda", dtype=torch.bfloat16)`. Their outputs come back as
float32, and the cheap heads that turn features into masks (prompt encoder, mask decoder,
memory encoder: a few percent of a frame) always run in float32: in bf16 they gained 30 ms a
frame and cost a third of the mask agreement with float32. The predictors hand back float32
results either way.

bf16 is only faster where the hardware multiplies bfloat16 natively: CUDA GPUs that support
it, and x86 CPUs with AVX512_BF16 or AMX. Elsewhere oneDNN emulates it, and it is slower than
float32. So the CPU mode is measured, not assumed: the first request times a bfloat16 and a
float32 GEMM of the model's size, and refuses bf16 (with a message that says so) unless it is
at least `MIN_SPEEDUP` times faster. The result is kept for the process.

What is left to others: running the encoder and the memory attention through `Precision.run`
(`sam2r.predictor.image`, `sam2r.predictor.automatic`, `sam2r.predictor.video.frame_step`).
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

PRECISIONS = ("fp32", "bf16")
_ALIASES = {
    "fp32": "fp32",
    "float32": "fp32",
    "float": "fp32",
    "bf16": "bf16",
    "bfloat16": "bf16",
}
# bf16 must beat float32 by this factor on the probe GEMM to be accepted on a CPU
MIN_SPEEDUP = 1.3


@dataclass(frozen=True)
class Precision:
    """How a predictor runs its model.

    name: "fp32" or "bf16".
    device_type: "cpu" or "cuda" (where autocast applies).
    """

    name: str = "fp32"
    device_type: str = "cpu"

    @property
    def is_bf16(self) -> bool:
        return self.name == "bf16"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The region where the model runs: bfloat16 autocast in bf16 mode, else nothing."""
        if not self.is_bf16:
            yield
            return
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            yield

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` in the `autocast` region, its tensors handed back as float32
        (`float32`; nothing to convert in fp32 mode)."""
        with self.autocast():
            return float32(fn(*args, **kwargs))


def float32(x: Any) -> Any:
    """x with every floating tensor in it (tuples and NamedTuples too) as float32."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() else x
    if isinstance(x, tuple):
        items = [float32(v) for v in x]
        return type(x)(*items) if hasattr(x, "_fields") else type(x)(items)
    return x


def cpu_flags() -> set[str]:
    """The CPU feature flags of /proc/cpuinfo (empty where there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _best_time(fn, reps: int = 3) -> float:
    fn()  # warm-up: primitive creation, weight reorders
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


@functools.cache
def cpu_bf16_speedup() -> float:
    """float32 time / bfloat16 time of a 2048 x 1024 x 1024 linear on this CPU (> 1: bf16
    faster), as the model's layers run it (autocast, current thread count)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2048, 1024, generator=g)
    w = torch.randn(1024, 1024, generator=g)
    xb, wb = x.bfloat16(), w.bfloat16()
    with torch.inference_mode():
        fp32 = _best_time(lambda: F.linear(x, w))
        bf16 = _best_time(lambda: F.linear(xb, wb))
    return fp32 / bf16


def resolve_precision(precision: str | Precision, device: torch.device) -> Precision:
    """Check a `precision=` argument for a model on `device`.

    Raises:
        ValueError: an unknown name, or bf16 where it would be slower than float32 (a CPU
            without native bfloat16, a GPU without bf16 support, other devices).
    """
    if isinstance(precision, Precision):
        return precision
    name = _ALIASES.get(str(precision).lower()) if isinstance(precision, str) else None
    if name is None:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if name == "fp32":
        return Precision("fp32", device.type)
    if device.type == "cuda":
        if not torch.cuda.is_bf16_supported():
            raise ValueError(
                "precision='bf16' needs a GPU with bfloat16 support (Ampere or newer); "
                "this one has none: use precision='fp32'"
            )
        return Precision("bf16", "cuda")
    if device.type != "cpu":
        raise ValueError(
            f"precision='bf16' runs on CPUs and CUDA GPUs, not on {device.type!r}; "
            "use precision='fp32'"
        )
    flags = cpu_flags()
    native = {"avx512_bf16", "amx_bf16"} & flags
    if flags and not native:
        raise ValueError(
            "precision='bf16' would be slower than float32 on this CPU: it has no native "
            "bfloat16 arithmetic (AVX512_BF16 or AMX), so bfloat16 is emulated. "
            "Use precision='fp32' (the default)."
        )
    speedup = cpu_bf16_speedup()
    if speedup < MIN_SPEEDUP:
        have = ", ".join(sorted(native)) or "unknown flags"
        raise ValueError(
            f"precision='bf16' would not pay off on this CPU ({have}): a bfloat16 GEMM measured "
            f"{speedup:.2f}x the speed of float32 here, below the {MIN_SPEEDUP}x needed "
            "(is oneDNN capped, e.g. ONEDNN_MAX_CPU_ISA=AVX2?). Use precision='fp32'."
        )
    return Precision("bf16", "cpu")
