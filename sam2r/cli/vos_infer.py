"""The `sam2r vos-infer` command: semi-supervised VOS inference over a whole dataset.

    sam2r vos-infer --data DAVIS --out preds/ --checkpoint sam2.1_hiera_tiny.pt
    torchrun --nproc_per_node=4 -m sam2r.cli vos-infer --data DAVIS --out preds/ --device cuda
    sam2r vos-infer --data DAVIS --out preds/ --onnx exported/ [--memory motion]

ROOT is DAVIS-style: `JPEGImages/480p/<seq>/*.jpg`, `Annotations/480p/<seq>/*.png` (palette
PNGs of object ids) and `ImageSets/2017/<split>.txt` (without it: every sequence folder); the
`480p/` level is optional. Each sequence's objects are prompted with their masks on the first
annotated frame and tracked to the end; `OUT/<seq>/<frame>.png` are palette PNGs of object ids
(see `sam2r.eval.vos_infer` for the rules, which are those of the official
`tools/vos_inference.py`: no hole filling, one object per pixel unless `--no-non-overlap`).

Launched by `torchrun` (WORLD_SIZE, RANK and LOCAL_RANK set), each process joins a
`torch.distributed` group (gloo on CPU, nccl on CUDA with device `cuda:LOCAL_RANK`) and runs its
share of the sequences (`shard`: balanced by frame count, longest sequences first); one
all-reduce at the end waits for every process, tells each whether another one failed, and
gives rank 0 the totals it prints. Without those variables it runs in one process and never
touches `torch.distributed`.

With `--onnx DIR` the frames are tracked by the exported model of DIR (`sam2r export onnx`) on
ONNX Runtime's CPU provider (`sam2r.onnx.OnnxVideoTracker`, with the same `--memory` modes);
the dataset walk, prompts, label merging and outputs are the same code. The options that
choose or place the torch model (`--model`, `--checkpoint`, `--config`, `--device` other than
cpu, `--precision bf16`) are refused with it. ONNX Runtime runs on as many threads as torch
would (`torch.get_num_threads()`: the physical cores, or `OMP_NUM_THREADS`, which torchrun
sets to 1 when it starts several processes per node), and a torchrun launch works as without
`--onnx` (gloo).

What is left to others: the dataset, sharding and inference (`sam2r.eval.vos_infer`), the
model (`sam2r.cli.common.load_model`), the ONNX runtime (`sam2r.onnx`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sam2r.cli.common import CliError, load_model, precision_of
from sam2r.cli.export import add_onnx_arg, check_onnx_options
from sam2r.cli.video import add_memory_arg

_DIST_VARS = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@dataclass(frozen=True)
class Dist:
    """Where this process stands in a torchrun launch (world 1, rank 0 without one)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    enabled: bool = False  # a process group is (to be) initialised

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Dist:
        env = dict(os.environ) if env is None else env
        present = [v for v in _DIST_VARS if v in env]
        if not present:
            return cls()
        if len(present) != len(_DIST_VARS):
            missing = [v for v in _DIST_VARS if v not in env]
            raise CliError(
                f"{', '.join(missing)} not set: launch with torchrun, or unset {present}"
            )
        try:
            rank, world, local = (int(env[v]) for v in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
        except ValueError:
            raise CliError(
                f"{_DIST_VARS} must be integers, got {[env[v] for v in _DIST_VARS]}"
            ) from None
        return cls(rank, world, local, enabled=True)


def _device(requested: str, dist: Dist) -> str:
    """The device of this process: `cuda:LOCAL_RANK` for a CUDA run under torchrun."""
    if requested.startswith("cuda"):
        if not torch.cuda.is_available():
            raise CliError(f"--device {requested}: CUDA is not available here; use --device cpu")
        if dist.enabled:
            if dist.local_rank >= torch.cuda.device_count():
                raise CliError(
                    f"LOCAL_RANK {dist.local_rank} but this node has "
                    f"{torch.cuda.device_count()} CUDA device(s): lower --nproc_per_node"
                )
            return f"cuda:{dist.local_rank}"
    return requested


def _start_group(dist: Dist, device: str) -> None:
    import torch.distributed as td

    backend = "nccl" if device.startswith("cuda") else "gloo"
    if device.startswith("cuda"):
        torch.cuda.set_device(torch.device(device))
    td.init_process_group(backend=backend)


def _all_reduce(values: list[float], op: str, device: str) -> list[float]:
    """Sum or max of a few numbers over all processes (also a barrier)."""
    import torch.distributed as td

    t = torch.tensor(values, dtype=torch.float64, device=device)
    td.all_reduce(t, op=td.ReduceOp.SUM if op == "sum" else td.ReduceOp.MAX)
    return t.tolist()


def _progress(total: int, dist: Dist, quiet: bool) -> Any:
    from tqdm import tqdm

    desc = f"vos-infer [{dist.rank}/{dist.world}]" if dist.enabled else "vos-infer"
    return tqdm(
        total=total,
        desc=desc,
        unit="frame",
        position=dist.rank,
        disable=quiet,
        file=sys.stderr,
        dynamic_ncols=True,
    )


def _plan(args: argparse.Namespace) -> tuple[Any, list[str], dict[str, int]]:
    """(dataset, every sequence name to run, frames per sequence); the same on every rank."""
    from sam2r.eval.vos_infer import VosDataset

    dataset = VosDataset.open(args.data)
    if args.sequences:
        names = [s.strip() for s in args.sequences.split(",") if s.strip()]
        if len(set(names)) != len(names):
            raise CliError(f"--sequences {args.sequences!r} names a sequence twice")
        dataset.check_names(names)
    else:
        names = dataset.sequence_names(args.split, args.image_set)
    return dataset, names, dataset.frame_counts(names)


def _predictor(args: argparse.Namespace, device: str) -> Any:
    """The torch `VideoPredictor` of the run, or the `OnnxVideoTracker` of `--onnx DIR`; both
    leave the overlap rule to the label merging."""
    if args.onnx is not None:
        from sam2r.onnx import OnnxVideoTracker

        try:  # as many threads as torch: OMP_NUM_THREADS counts, as torchrun sets it
            return OnnxVideoTracker(
                args.onnx,
                fill_hole_area=args.fill_hole_area,
                non_overlap_masks=False,
                num_threads=torch.get_num_threads(),
                memory=args.memory,
            )
        except (ImportError, FileNotFoundError, ValueError) as e:
            raise CliError(f"--onnx {args.onnx}: {e}") from None
    from sam2r.predictor.video import VideoPredictor

    model = load_model(args.model, args.checkpoint, device, args.config)
    return VideoPredictor(
        model,
        fill_hole_area=args.fill_hole_area,
        non_overlap_masks=False,
        precision=precision_of(args, model.device),
        memory=args.memory,
    )


def _run_shard(
    args: argparse.Namespace, dist: Dist, device: str, dataset: Any, names: list[str],
    counts: dict[str, int],
) -> tuple[int, int, int]:  # fmt: skip
    """Run this process's sequences; (sequences run, sequences skipped, frames written)."""
    from sam2r.eval.vos_infer import run_sequences, shard

    mine = shard(names, dist.rank, dist.world, counts)
    predictor = _predictor(args, device)
    done = skipped = frames = 0
    with _progress(sum(counts[n] for n in mine), dist, args.quiet) as bar:
        on_sequence: Callable[[str], None] = bar.set_postfix_str
        for report in run_sequences(
            predictor,
            dataset,
            mine,
            Path(args.out),
            later_objects=args.track_later_objects,
            score_thresh=args.score_thresh,
            non_overlap=args.non_overlap,
            skip_existing=args.skip_existing,
            on_frame=lambda: bar.update(1),
            on_sequence=on_sequence,
        ):
            skipped += report.skipped
            done += not report.skipped
            frames += report.frames
    return done, skipped, frames


def run_vos(args: argparse.Namespace) -> int:
    """Plan, (join the group,) run this process's shard, report."""
    if args.fill_hole_area < 0:
        raise CliError(f"--fill-hole-area must be >= 0 (0 = off), got {args.fill_hole_area}")
    if args.onnx is not None:
        check_onnx_options(args)
    dist = Dist.from_env()
    device = _device(args.device, dist)
    dataset, names, counts = _plan(args)  # input errors surface here, on every rank alike
    start = time.perf_counter()
    if not dist.enabled:
        done, skipped, frames = _run_shard(args, dist, device, dataset, names, counts)
        seconds = time.perf_counter() - start
    else:
        import torch.distributed as td

        _start_group(dist, device)
        error: BaseException | None = None
        try:
            try:
                done, skipped, frames = _run_shard(args, dist, device, dataset, names, counts)
            except Exception as e:  # still join the reduction, or the others wait forever
                error, done, skipped, frames = e, 0, 0, 0
            done, skipped, frames, failed = (
                int(v)
                for v in _all_reduce([done, skipped, frames, error is not None], "sum", device)
            )
            seconds = _all_reduce([time.perf_counter() - start], "max", device)[0]
        finally:
            td.destroy_process_group()
        if error is not None:
            raise error
        if failed:
            raise CliError(f"{failed} of {dist.world} processes failed (see their messages)")
    if dist.rank == 0:
        skip_note = f" ({skipped} skipped, already written)" if skipped else ""
        procs = f" on {dist.world} processes" if dist.enabled else ""
        rate = frames / seconds if seconds > 0 else 0.0
        print(
            f"vos-infer: {done} sequence(s){skip_note}, {frames} frame(s) in {seconds:.1f} s "
            f"({rate:.2f} frames/s){procs}; masks in {args.out}/"
        )
    return 0


def cmd_vos(args: argparse.Namespace) -> int:
    # errors are reported here: a ValueError (the dataset's checks) as well as a CliError
    try:
        return run_vos(args)
    except (CliError, ValueError) as e:
        print(f"sam2r vos-infer: {e}", file=sys.stderr)
        return 2


def add_vos_parser(
    sub: Any, model_args: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    """Register `sam2r vos-infer` on the subcommand parsers of `sam2r.cli.main.build_parser`."""
    vp = sub.add_parser(
        "vos-infer",
        help="track the first-frame masks of a DAVIS-style dataset (torchrun: sharded)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    vp.add_argument("--data", required=True, metavar="ROOT", help="DAVIS-style dataset root")
    vp.add_argument("--out", required=True, metavar="DIR", help="output root: DIR/<seq>/*.png")
    vp.add_argument(
        "--split", default="val", help="sequence list ROOT/ImageSets/2017/SPLIT.txt (default val)"
    )
    vp.add_argument("--image-set", metavar="PATH", help="sequence list file (overrides --split)")
    vp.add_argument(
        "--sequences", metavar="A,B", help="run these sequences only (instead of the list)"
    )
    vp.add_argument(
        "--track-later-objects",
        action="store_true",
        help="also track objects that first appear in later annotations, each from that frame "
        "(YouTube-VOS, LVOS)",
    )
    vp.add_argument(
        "--non-overlap",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="one object per pixel, the highest logit (default; the official evaluation)",
    )
    vp.add_argument(
        "--score-thresh", type=float, default=0.0, help="mask logit threshold (default 0)"
    )
    vp.add_argument(
        "--fill-hole-area",
        type=int,
        default=0,
        metavar="N",
        help="fill holes up to N low-res pixels (default 0: off, as the official evaluation)",
    )
    vp.add_argument(
        "--skip-existing",
        action="store_true",
        help="skip sequences whose output folder has a PNG for every frame",
    )
    vp.add_argument("--quiet", action="store_true", help="no progress bar")
    add_memory_arg(vp)
    add_onnx_arg(vp)
    model_args(vp)
    vp.set_defaults(func=cmd_vos)
    return vp
