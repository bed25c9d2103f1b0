"""Keep the memory of large CPU tensors in the process instead of returning it to the kernel.

glibc's malloc serves each block above its mmap threshold (128 KB, adapting up to 32 MB) with
a fresh `mmap` and unmaps it again on `free`. A tracked 1024-px frame allocates and frees about
1.2 GB of such blocks (Hiera's 65536 x 384 activations, the memory attention's scores and MLP),
and the kernel hands every one back as zeroed pages: 2.4 million page faults over 7 frames of
`sam2.1_hiera_t` on our 2-core benchmark machine, about 15% of the time. With the mmap and trim
thresholds at 1 GB those blocks come from malloc's heap and go back to it, and the next frame
reuses them: 0.27 million page faults.

This is a process-wide setting. It is made once, when the first video predictor holding a CPU
model is created. The image predictor leaves malloc alone: one `set_image` gains less, and
with the thresholds raised its peak RSS was 16% higher than with glibc's defaults. Freed
memory stays with the process for reuse instead of going back to the OS between frames, so a
video session's RSS stays near its peak. On the 256-px bench the peak went from 284 MB to
324 MB with this and the other CPU changes made at the same time (official: 364 MB).
`SAM2R_MALLOC_TUNING=0` leaves malloc alone. The function does nothing on any C library other
than glibc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 1 << 30


@functools.cache
def tune_malloc() -> bool:
    """Raise glibc's mmap and trim thresholds to 1 GB, once per process.

    Returns:
        True when the thresholds are (or were already) set by this function.
    """
    if os.environ.get("SAM2R_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.gnu_get_libc_version  # noqa: B018 - present only in glibc
    except (OSError, AttributeError):
        return False
    ok = libc.mallopt(_M_MMAP_THRESHOLD, _THRESHOLD) == 1
    return libc.mallopt(_M_TRIM_THRESHOLD, _THRESHOLD) == 1 and ok
