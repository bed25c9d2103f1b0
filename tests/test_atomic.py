"""`sam2r.atomic.write_atomic`: a file is replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from sam2r.atomic import write_atomic


def test_write_atomic_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    assert write_atomic(path, lambda fh: fh.write(b"first")) == path
    write_atomic(str(path), lambda fh: fh.write(b"second"))
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")

    def fail(fh: object) -> None:
        fh.write(b"half")  # type: ignore[attr-defined]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_atomic(path, fail)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]
