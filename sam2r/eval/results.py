"""The results of a J&F evaluation: per-object scores, dataset statistics, CSV files, a table.

* `ObjectResult`: one object of one sequence, its per-frame J and F (T,) and their statistics;
* `EvalResult`: all objects, the dataset means (`global_stats`), `per_sequence` means,
  `write_csv(out_dir)` and `table()`.

The CSV files are written as the DAVIS 2017 toolkit's `evaluation_method.py` writes its own
(pandas `to_csv(index=False, float_format="%.3f")`, values in [0, 1], NaN as an empty field):
* `global_results.csv` (the toolkit: `global_results-<set>.csv`), one row under
  `J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay`; each column the mean over all
  objects of the dataset of the per-object statistic, and J&F-Mean = (J-Mean + F-Mean) / 2;
* `per-object_results.csv` (the toolkit: `per-sequence_results-<set>.csv`, though its rows are
  objects), `Sequence,J-Mean,F-Mean`, one row per object named `<seq>_<obj>`.

What is left to others: computing the scores (`sam2r.eval.davis`, `sam2r.eval.metrics`).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2r.eval.metrics import Statistics, statistics

GLOBAL_COLUMNS = ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay")
PER_OBJECT_COLUMNS = ("Sequence", "J-Mean", "F-Mean")
GLOBAL_CSV = "global_results.csv"
PER_OBJECT_CSV = "per-object_results.csv"


def format_value(value: float) -> str:
    """A CSV number as the toolkit writes it: "%.3f", NaN as an empty field."""
    return "" if math.isnan(value) else f"{value:.3f}"


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else float("nan")


@dataclass
class ObjectResult:
    """One object of one sequence: per-frame scores over its scored frames.

    The statistics are computed once, from `j` and `f`, when the result is made.
    """

    sequence: str  # the sequence (folder) name
    object_id: str  # "1", "2", ... (label maps) or the object's folder name ("000", SA-V)
    frames: tuple[str, ...]  # the scored frames' file names, in order
    j: np.ndarray  # (T,) float64 region similarity per scored frame
    f: np.ndarray  # (T,) float64 contour accuracy per scored frame
    j_stats: Statistics = field(init=False)
    f_stats: Statistics = field(init=False)

    def __post_init__(self) -> None:
        self.j = np.asarray(self.j, dtype=np.float64)
        self.f = np.asarray(self.f, dtype=np.float64)
        if not (self.j.shape == self.f.shape == (len(self.frames),)):
            raise ValueError(
                f"{self.name}: j {self.j.shape} and f {self.f.shape} must both have shape "
                f"({len(self.frames)},), one value per scored frame"
            )
        self.j_stats = statistics(self.j)
        self.f_stats = statistics(self.f)

    @property
    def name(self) -> str:
        """`<seq>_<obj>`, the toolkit's row name."""
        return f"{self.sequence}_{self.object_id}"

    @property
    def jf_mean(self) -> float:
        return (self.j_stats.mean + self.f_stats.mean) / 2


@dataclass
class EvalResult:
    """Every scored object of a dataset, in evaluation order (sequence by sequence)."""

    convention: str  # "davis" or "sav"
    objects: list[ObjectResult]
    # prediction files that were absent and scored as empty masks, as "<seq>/<frame>.png" (or
    # "<seq>/<obj>/<frame>.png"); the DAVIS toolkit and the SA-V evaluator stop on these instead
    missing_predictions: list[str] = field(default_factory=list)

    def global_stats(self) -> dict[str, float]:
        """GLOBAL_COLUMNS -> the mean over all objects of each per-object statistic."""
        j = [o.j_stats for o in self.objects]
        f = [o.f_stats for o in self.objects]
        j_mean, f_mean = _mean([s.mean for s in j]), _mean([s.mean for s in f])
        values = (
            (j_mean + f_mean) / 2,
            j_mean,
            _mean([s.recall for s in j]),
            _mean([s.decay for s in j]),
            f_mean,
            _mean([s.recall for s in f]),
            _mean([s.decay for s in f]),
        )
        return dict(zip(GLOBAL_COLUMNS, values, strict=True))

    @property
    def jf_mean(self) -> float:
        """The headline number: (J-Mean + F-Mean) / 2 over all objects."""
        return self.global_stats()["J&F-Mean"]

    def per_sequence(self) -> dict[str, tuple[float, float, float]]:
        """sequence -> (J&F, J, F), each the mean over the sequence's objects."""
        by_seq: dict[str, list[ObjectResult]] = {}
        for o in self.objects:
            by_seq.setdefault(o.sequence, []).append(o)
        out = {}
        for seq, objs in by_seq.items():
            j = _mean([o.j_stats.mean for o in objs])
            f = _mean([o.f_stats.mean for o in objs])
            out[seq] = ((j + f) / 2, j, f)
        return out

    def write_csv(self, out_dir: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write GLOBAL_CSV and PER_OBJECT_CSV into `out_dir` (created); returns their paths."""
        out = Path(out_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"output {out} exists and is not a folder; pass a folder path")
        out.mkdir(parents=True, exist_ok=True)
        global_path, object_path = out / GLOBAL_CSV, out / PER_OBJECT_CSV
        stats = self.global_stats()
        with open(global_path, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(GLOBAL_COLUMNS)
            writer.writerow([format_value(stats[c]) for c in GLOBAL_COLUMNS])
        with open(object_path, "w", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\n")
            writer.writerow(PER_OBJECT_COLUMNS)
            for o in self.objects:
                writer.writerow(
                    [o.name, format_value(o.j_stats.mean), format_value(o.f_stats.mean)]
                )
        return global_path, object_path

    def table(self) -> str:
        """A plain-text report: global statistics, then J&F / J / F per sequence and per
        object (values in [0, 1], three decimals, as in the CSV files)."""
        stats = self.global_stats()
        widths = [max(len(c), 8) for c in GLOBAL_COLUMNS]
        lines = [f"Global results ({self.convention} convention, {len(self.objects)} objects)"]
        lines.append("  ".join(c.rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths, strict=True)))
        lines.append(
            "  ".join(
                format_value(stats[c]).rjust(w) for c, w in zip(GLOBAL_COLUMNS, widths, strict=True)
            )
        )
        per_seq = self.per_sequence()
        names = list(per_seq) + [o.name for o in self.objects]
        width = max([len("Sequence"), *map(len, names)])

        def row(name: str, jf: float, j: float, f: float) -> str:
            cells = [format_value(v).rjust(8) for v in (jf, j, f)]
            return f"{name.ljust(width)}  " + "  ".join(cells)

        header = f"{'Sequence'.ljust(width)}  " + "  ".join(
            h.rjust(8) for h in ("J&F-Mean", "J-Mean", "F-Mean")
        )
        lines += ["", "Per sequence (mean over its objects)", header]
        lines += [row(seq, *v) for seq, v in per_seq.items()]
        lines += ["", "Per object", header]
        lines += [row(o.name, o.jf_mean, o.j_stats.mean, o.f_stats.mean) for o in self.objects]
        if self.missing_predictions:
            shown = ", ".join(self.missing_predictions[:5])
            more = len(self.missing_predictions) - 5
            lines += [
                "",
                f"warning: {len(self.missing_predictions)} prediction file(s) missing, scored "
                f"as empty masks: {shown}" + (f" and {more} more" if more > 0 else ""),
            ]
        return "\n".join(lines)
