"""A DAVIS-style video dataset on disk, as the dataset tools read it (no decoding up front).

    dataset = VosDataset.open("DAVIS")          # ROOT/JPEGImages[/480p]/<seq>/*.jpg
    seq = dataset.sequence("bear")              # frames listed, annotations found
    seq.annotated_frames()                      # indices with ROOT/Annotations[/480p]/<seq>/*.png

Used by dataset inference (`sam2r.eval.vos_infer`) and by training on DAVIS-style folders
(`sam2r.train.data`). What is left to others: decoding frames (`sam2r.io.frames`), the palette
PNG codec (`sam2r.io.masks`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sam2r.io.frames import FolderFrames


@dataclass(frozen=True)
class VosSequence:
    """One video of a dataset: its frame folder, its annotation folder and its frame names."""

    name: str
    frames: FolderFrames  # the JPEGs, in frame order
    ann_dir: Path  # <frame name>.png annotations (any subset of the frames)

    @property
    def frame_names(self) -> list[str]:
        """File stems of the frames, in order (`00000`, `00001`, ...)."""
        return [p.stem for p in self.frames.paths]

    def __len__(self) -> int:
        return len(self.frames)

    def annotated_frames(self) -> list[int]:
        """Indices of the frames that have an annotation PNG, ascending."""
        return [i for i, n in enumerate(self.frame_names) if (self.ann_dir / f"{n}.png").is_file()]


@dataclass(frozen=True)
class VosDataset:
    """A DAVIS-style dataset: `JPEGImages[/480p]/<seq>/`, `Annotations[/480p]/<seq>/`,
    `ImageSets/2017/<split>.txt` (optional)."""

    root: Path
    frames_root: Path
    ann_root: Path

    @classmethod
    def open(cls, root: str | os.PathLike[str], resolution: str = "480p") -> VosDataset:
        """Find the frame and annotation folders of a dataset root (with or without the
        `480p` level, as DAVIS and YouTube-VOS lay them out)."""
        base = Path(root)
        if not base.is_dir():
            raise ValueError(f"{base}: no such dataset folder (expected DAVIS-style ROOT)")
        found = []
        for sub in ("JPEGImages", "Annotations"):
            top = base / sub
            if not top.is_dir():
                raise ValueError(
                    f"{top}: missing; a dataset root holds JPEGImages/{resolution}/<seq>/*.jpg "
                    f"and Annotations/{resolution}/<seq>/*.png (or the same without "
                    f"{resolution}/)"
                )
            found.append(top / resolution if (top / resolution).is_dir() else top)
        return cls(base, found[0], found[1])

    def image_set(self, split: str) -> Path:
        """The sequence list of a split: `ROOT/ImageSets/2017/<split>.txt`."""
        return self.root / "ImageSets" / "2017" / f"{split}.txt"

    def sequence_names(self, split: str = "val", image_set: str | None = None) -> list[str]:
        """Sequence names: from `image_set` if given, else the split's list, else every folder
        under the frames root (sorted). Each name must have a frame folder."""
        path = Path(image_set) if image_set is not None else self.image_set(split)
        if path.is_file():
            names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        elif image_set is not None:
            raise ValueError(f"--image-set {path}: no such file (one sequence name per line)")
        else:
            names = sorted(p.name for p in self.frames_root.iterdir() if p.is_dir())
        if not names:
            raise ValueError(
                f"no sequences: {path if path.is_file() else self.frames_root} is empty"
            )
        self.check_names(names)
        return names

    def check_names(self, names: Sequence[str]) -> None:
        """ValueError naming the sequences that have no frame or annotation folder."""
        for kind, top in (("frame", self.frames_root), ("annotation", self.ann_root)):
            missing = [n for n in names if not (top / n).is_dir()]
            if missing:
                shown = ", ".join(str(top / n) for n in missing[:5])
                more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
                raise ValueError(f"no {kind} folder for {len(missing)} sequence(s): {shown}{more}")

    def sequence(self, name: str) -> VosSequence:
        """One sequence (its frames are listed, not decoded)."""
        self.check_names([name])
        return VosSequence(name, FolderFrames(self.frames_root / name), self.ann_root / name)

    def frame_counts(self, names: Sequence[str]) -> dict[str, int]:
        """name -> number of JPEG frames (a directory listing, no decoding)."""
        exts = (".jpg", ".jpeg")
        return {
            n: sum(1 for p in (self.frames_root / n).iterdir() if p.suffix.lower() in exts)
            for n in names
        }
