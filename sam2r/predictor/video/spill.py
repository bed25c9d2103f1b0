"""A RAM budget for a session's stored masks and memories, with the overflow in a temporary file.

Every stored `FrameState` of a video session keeps two large tensors: its low-res mask logits
(256 KB at 1024 px) and its bfloat16 spatial memory (512 KB). A frame reads only a handful of
them (conditioning frames and the last few tracked frames), but a later click or a
re-propagation may need any, so a session on a file keeps them all. `SpillPool` keeps the most
recently used ones in RAM up to `budget_bytes` and writes the others, as raw bytes, to one
anonymous temporary file; touching a spilled tensor reads it back. The small tensors (object
pointer, object score) always stay in RAM: pointers of the last 16 frames are read every frame.

What is stored, and when it is dropped, is the predictor's business (`predictor.py`); this module
only moves bytes.
"""

from __future__ import annotations

import os
import tempfile
import weakref
from collections import OrderedDict
from typing import IO, Protocol

import numpy as np
import torch
from torch import Tensor

# torch dtypes as numpy can store them (bfloat16 travels as its raw 16 bits)
_AS_NUMPY = {torch.float32: np.float32, torch.bfloat16: np.uint16, torch.float16: np.float16}


class Spillable(Protocol):
    """What a pool manages: a stored state whose large tensors can go to the pool's file
    (`FrameState` of `sam2r.predictor.video.session`)."""

    def resident_bytes(self) -> int:
        """Bytes of the large tensors currently in RAM."""
        ...

    def spill(self, pool: SpillPool) -> None:
        """Move the large tensors to the pool's file (`SpillPool.write`)."""
        ...


class SpilledTensor:
    """Where a tensor was written: file offset, shape, dtype and device to restore it to."""

    __slots__ = ("offset", "shape", "dtype", "device")

    def __init__(
        self, offset: int, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
    ):
        self.offset, self.shape, self.dtype, self.device = offset, shape, dtype, device

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape)) * self.dtype.itemsize


def tensor_bytes(t: Tensor | None) -> int:
    return 0 if t is None else t.numel() * t.element_size()


class SpillPool:
    """Keeps at most `budget_bytes` of large state tensors in RAM (least recently used spill).

    Args:
        budget_bytes: RAM for the large tensors of all states of a session.
        directory: where the temporary file goes (default: the system temp dir).
    """

    def __init__(self, budget_bytes: int, directory: str | os.PathLike[str] | None = None) -> None:
        if budget_bytes < 0:
            raise ValueError(f"the state budget must be >= 0 bytes, got {budget_bytes}")
        self.budget_bytes = int(budget_bytes)
        self.directory = None if directory is None else str(directory)
        self._file: IO[bytes] | None = None
        self._end = 0  # next free offset in the file
        self._resident: OrderedDict[int, tuple[weakref.ref[Spillable], int]] = OrderedDict()
        self.resident_bytes = 0
        self.spilled_writes = 0
        self.spilled_reads = 0

    # --- bookkeeping --------------------------------------------------------------------------
    def touch(self, state: Spillable) -> None:
        """Mark a state as just used (its tensors resident); evict others if over budget."""
        key = id(state)
        entry = self._resident.get(key)
        if entry is not None and entry[0]() is state:
            self.resident_bytes -= entry[1]
            self._resident.move_to_end(key)
            ref = entry[0]
        else:
            ref = weakref.ref(state, self._forget(key))
        size = state.resident_bytes()
        self._resident[key] = (ref, size)
        self.resident_bytes += size
        self._evict(keep=state)

    def _forget(self, key: int):  # noqa: ANN202 - a weakref callback
        def callback(ref: weakref.ref) -> None:
            entry = self._resident.get(key)
            if entry is not None and entry[0] is ref:
                del self._resident[key]
                self.resident_bytes -= entry[1]

        return callback

    def _evict(self, keep: Spillable) -> None:
        while self.resident_bytes > self.budget_bytes and len(self._resident) > 1:
            key, (ref, size) = next(iter(self._resident.items()))
            s = ref()
            if s is keep:
                self._resident.move_to_end(key)
                continue
            del self._resident[key]
            self.resident_bytes -= size
            if s is not None:
                s.spill(self)

    # --- file ---------------------------------------------------------------------------------
    def write(self, t: Tensor) -> SpilledTensor:
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self.directory)  # deleted when closed
        cpu = t.detach().to("cpu").contiguous()
        raw = cpu.view(torch.uint16) if cpu.dtype == torch.bfloat16 else cpu
        data = raw.numpy().astype(_AS_NUMPY[cpu.dtype], copy=False).tobytes()
        self._file.seek(self._end)
        self._file.write(data)
        ref = SpilledTensor(self._end, tuple(cpu.shape), cpu.dtype, t.device)
        self._end += len(data)
        self.spilled_writes += 1
        return ref

    def read(self, ref: SpilledTensor) -> Tensor:
        assert self._file is not None
        self._file.seek(ref.offset)
        data = self._file.read(ref.nbytes)
        arr = np.frombuffer(data, dtype=_AS_NUMPY[ref.dtype]).reshape(ref.shape).copy()
        t = torch.from_numpy(arr)
        if ref.dtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        self.spilled_reads += 1
        return t.to(ref.device)

    @property
    def file_bytes(self) -> int:
        """Bytes written to the spill file so far."""
        return self._end

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self._end = 0

    def __del__(self) -> None:
        self.close()
