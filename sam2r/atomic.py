"""Writing a file so that a crash or an error mid-write never leaves half a file under its name.

    write_atomic(path, lambda fh: np.savez(fh, **arrays))

The bytes go to `<name>.tmp` beside the file, which then replaces the file in one step
(`os.replace`); a write that fails removes the temporary file and leaves any earlier file as it
was. Used by the session files (torch and ONNX), the studio's projects and the trainer's
checkpoints. Standard library only, so the torch-free ONNX runtime imports it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call `write` on a binary file object, then move what it wrote to `path`; returns it."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
