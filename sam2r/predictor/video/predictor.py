"""Video predictor: prompt objects on any frame, then propagate their masks through the video.

    predictor = VideoPredictor(model)
    session = predictor.init_session("frames/")               # folder, array or list of frames
    predictor.add_points(session, frame_idx=0, obj_id=1, points=[[210, 350]], labels=[1])
    for result in predictor.propagate(session):
        result.frame_idx, result.obj_ids, result.masks       # (num_obj, 1, H, W) logits

It reproduces the official `SAM2VideoPredictor` of `sam2==1.1.0` (independent per-object
inference, Dec 2024): the same frames, memories and rounding (bfloat16 memories), with outputs
that agree within the official code's own run-to-run noise (`tests/test_video_parity.py`).
Every object is tracked with its own memory bank, so adding, correcting or removing one object
never changes another's masks. The predictor owns a `SAM2Model`, holds the user's settings and
is the one object users call; each method checks its arguments and hands the work to plain
functions in the modules beside this one (`sam2r.predictor.video.*`):

* `tracking`: propagation passes, a live stream's frames, clearing what tracking produced;
* `bank`: recording a prompt and running one object on one frame (`frame_step`), filing the
  output by the rules of `filing`; `memory` (and an opt-in `selection`): the frames it reads;
* `checks`, `prompts`: user arguments and prompts, checked and mapped to model inputs;
* `session`: the typed dataclasses of a session, `spill`: the RAM budget of their tensors;
* `results`: the masks handed back; `persist`: session files.

`sam2r.compat` maps the official method names onto this class.

Where this differs from the official code (on inputs where that code fails):
* bad inputs (frame out of range, unknown object, points outside the frame, a mask of the wrong
  size) raise `ValueError` before the session is touched;
* a click on a tracked frame of an object that has no conditioning frame left (all its prompts
  were cleared) starts over as an initial prompt; the official code fails an assertion;
* `clear_non_cond_mem_around_input` clears the memories of the prompted object only (the
  official 1.1.0 calls a method that does not exist, later versions do this);
* in a one-frame video the pointer distances are normalised by 1 instead of 0 (the official
  code produces NaN on a correction click there).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from sam2r.io.frames import FrameSource, LiveFrames
from sam2r.io.open import open_frames
from sam2r.model.common import pack_weights as pack_layer_weights
from sam2r.model.sam2 import SAM2Model
from sam2r.predictor.precision import Precision, resolve_precision
from sam2r.predictor.video import persist, tracking
from sam2r.predictor.video.allocator import tune_malloc
from sam2r.predictor.video.bank import prompt_step
from sam2r.predictor.video.checks import check_frame, check_int_at_least, get_track, spill_pool
from sam2r.predictor.video.filing import clear_prompts, latest_outputs, remove_track
from sam2r.predictor.video.ids import check_obj_id
from sam2r.predictor.video.prompts import mask_prompt, point_prompt
from sam2r.predictor.video.results import frame_result
from sam2r.predictor.video.selection import MemorySelection, make_selection
from sam2r.predictor.video.session import FrameResult, FrameState, ObjectTrack, VideoSession


class VideoPredictor:
    """Segment and track objects in a video.

    Args:
        model: a `SAM2Model` in eval mode. Its config supplies the tracking knobs
            (`non_overlap_masks`, `add_all_frames_to_correct_as_cond`,
            `clear_non_cond_mem_around_input`, memory limits).
        fill_hole_area: fill holes of up to this many low-res pixels in every output mask
            (None: the config's `fill_hole_area`, 8 for the released models; 0: off). The
            official code does this only when its CUDA extension is installed.
        non_overlap_masks: keep only the highest-scoring object at each pixel of the returned
            masks (None: the config's value).
        feature_cache_size: image features of this many recently visited frames are kept per
            session (for repeated clicks on a frame).
        check_bounds: raise on points or boxes outside the frame (the official code accepts them).
        pack_weights: on the CPU, keep the model's linear weights in oneDNN's GEMM layout between
            frames (5-10% faster layers, the same results, one more copy of those weights in
            RAM: about 150 MB for the tiny model). False leaves the model as it is.
        precision: "fp32" (default: the official numbers) or "bf16": the image encoder and the
            memory attention in bfloat16 where the CPU has native bfloat16 (AVX512_BF16, AMX)
            or on a CUDA GPU (see `sam2r.predictor.precision` and the README for its speed and
            its agreement with float32); refused with a `ValueError` where it would be slower.
            Results are float32 either way; memories are stored in bfloat16 in both modes, as
            the official code does.
        memory: which frames each tracked frame remembers and which candidate mask it keeps:
            "official" (default: the official numbers), or the opt-in "motion" (Kalman-filtered
            boxes weigh the candidates and gate the memory) or "distractor" (a small bank of
            frames with a look-alike is read too); both keep a lost object's last good
            memories until it re-appears. A `MemorySelection` sets their thresholds. See
            `sam2r.predictor.video.selection`.
    """

    def __init__(
        self,
        model: SAM2Model,
        fill_hole_area: int | None = None,
        non_overlap_masks: bool | None = None,
        feature_cache_size: int = 4,
        check_bounds: bool = True,
        pack_weights: bool = True,
        precision: str | Precision = "fp32",
        memory: str | MemorySelection = "official",
    ) -> None:
        if not isinstance(model, SAM2Model):
            raise TypeError(f"model must be a sam2r SAM2Model, got {type(model).__name__}")
        cfg = model.cfg
        area = cfg.fill_hole_area if fill_hole_area is None else fill_hole_area
        check_int_at_least("fill_hole_area", area, 0, " (0 = off)")
        check_int_at_least("feature_cache_size", feature_cache_size, 1)
        self.precision = resolve_precision(precision, model.device)
        self.selection = make_selection(memory)  # None: the official memory
        self.memory = "official" if self.selection is None else self.selection.mode
        self.model = model
        if model.device.type == "cpu":
            tune_malloc()  # large blocks reused, not page-faulted afresh (see allocator.py)
            if pack_weights:
                pack_layer_weights(model)
        self.fill_hole_area = area
        self.non_overlap_masks = (
            cfg.non_overlap_masks if non_overlap_masks is None else bool(non_overlap_masks)
        )
        self.feature_cache_size = feature_cache_size
        self.check_bounds = check_bounds

    @property
    def device(self) -> torch.device:
        return self.model.device

    # ------------------------------------------------------------------------------------------
    # session
    # ------------------------------------------------------------------------------------------
    def init_session(
        self,
        video: Any,
        *,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        state_budget_mb: float | None = 16,
        spill_dir: str | None = None,
    ) -> VideoSession:
        """Open a video. Frames are decoded only when a step needs them.

        Args:
            video: a folder of frames (`00000.jpg`, ...), a uint8 array (N, H, W, 3), a list of
                uint8 (H, W, 3) arrays / PIL images, or a `sam2r.io.FrameSource`.
            offload_video_to_cpu: accepted for compatibility; decoded frames are never kept on
                the accelerator anyway.
            offload_state_to_cpu: keep the stored masks and memories in CPU memory (slower on
                GPU, frees accelerator memory on long videos).
            state_budget_mb: RAM for the stored masks and memories of all objects; the least
                recently used beyond it go to a temporary file and come back when read (results
                are unchanged). The states tracking reads are used on every frame and stay
                resident; the others are read back from the page-cached file when a prompt or a
                re-propagation needs them. None: keep everything in memory.
            spill_dir: where that temporary file goes (default: the system temp dir).
        """
        del offload_video_to_cpu  # frames are decoded on demand, on the CPU
        source = open_frames(video)
        return self._new_session(source, offload_state_to_cpu, state_budget_mb, spill_dir)

    def init_stream(
        self,
        *,
        offload_state_to_cpu: bool = False,
        keep_frames: int = 2,
    ) -> VideoSession:
        """Start a live session: frames are given one at a time with `track`.

        The session keeps only what the model can still read (conditioning frames, the last
        `num_maskmem - 1` tracked frames, pointers of the last `max_obj_ptrs_in_encoder`
        frames), so it runs for hours in constant memory. Prompts go on the frame just
        returned by `track` (`add_points(session, result.frame_idx, ...)`); the stream behaves
        as a video longer than 16 frames from the start.

        Args:
            offload_state_to_cpu: keep the stored masks and memories in CPU memory.
            keep_frames: how many recent frames stay readable for prompts.
        """
        return self._new_session(LiveFrames(keep_frames), offload_state_to_cpu, None, None)

    def _new_session(
        self,
        source: FrameSource,
        offload_state_to_cpu: bool,
        state_budget_mb: float | None,
        spill_dir: str | None,
    ) -> VideoSession:
        return VideoSession(
            frames=source,
            image_size=self.model.image_size,
            device=self.device,
            storage_device=torch.device("cpu") if offload_state_to_cpu else self.device,
            feature_cache_size=self.feature_cache_size,
            pool=spill_pool(state_budget_mb, spill_dir),
            precision=self.precision,
            live=isinstance(source, LiveFrames),
        )

    @torch.inference_mode()
    def track(self, session: VideoSession, frame: Any) -> FrameResult:
        """Add the next frame of a live session and track every prompted object on it.

        Prompts added since the previous call (on the previous frame) are committed first.
        Objects with no prompt yet are not tracked; a frame with no prompted object returns a
        result without objects.

        Args:
            session: from `init_stream`.
            frame: uint8 (H, W, 3) RGB array or PIL image, the same size as the first.

        Returns:
            the masks and object scores of every object on this frame.
        """
        frame_idx, states = tracking.track_live(
            self.model, session, frame, self.fill_hole_area, self.selection
        )
        return self._result(session, frame_idx, states)

    def track_iter(self, session: VideoSession, frames: Iterable[Any]) -> Iterator[FrameResult]:
        """`track` every frame of an iterator of unknown length (a camera, a URL, a generator).

        Prompts can be added between two results, on the frame just returned.
        """
        for frame in frames:
            yield self.track(session, frame)

    def save_session(
        self,
        session: VideoSession,
        path: str | os.PathLike[str],
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Save a video or live session (prompts, objects, every stored output) to one file.

        `load_session` reopens it over the same video with the same model, and the reopened
        session gives the same masks and the same later tracking, bit for bit. A video's frames
        are not saved; a live session's last `keep_frames` are, so it resumes with no video and
        its file does not grow with the stream. Object ids must be ints or strings; `metadata`
        (a dict of JSON values: an application's names, colours, ...) is saved and read back with
        `VideoPredictor.session_metadata(path)`. Under an opt-in memory mode each object's mode
        state (admitted memories, pointers, distractor frames, Kalman filter) is saved too,
        with the mode and its thresholds. See `sam2r.predictor.video.persist`.
        """
        return persist.save_session(self.model, session, path, metadata, self.selection)

    def load_session(
        self,
        path: str | os.PathLike[str],
        video: Any = None,
        *,
        check_model: bool = True,
        offload_state_to_cpu: bool = False,
        state_budget_mb: float | None = 16,
        spill_dir: str | None = None,
    ) -> VideoSession:
        """Reopen a session saved by `save_session` over its video, or resume a live one.

        Args:
            path: the session file (read with `torch.load(weights_only=True)`: no code runs).
            video: the same video, as for `init_session` (its frame count and size are checked);
                None for a live session's file, whose next `track` frame gets the index after
                the saved ones (`ValueError` for a video where none belongs or the reverse).
            check_model: refuse a file saved with another model (config or weights).
            offload_state_to_cpu, state_budget_mb, spill_dir: as for `init_session` (a live
                session takes only `offload_state_to_cpu`, as `init_stream` does).

        A file saved under another memory mode (or other thresholds) than this predictor's is
        refused with a `ValueError` naming both (`session_memory(path)` tells the file's).
        """
        payload = persist.read_payload(path)  # a bad file is refused before the video opens
        stream = persist.open_stream(payload, path, video)  # None: a video session's file
        if stream is not None:  # a stream's small state stays in memory, as with init_stream
            state_budget_mb = spill_dir = None
        source = open_frames(video) if stream is None else stream
        session = self._new_session(source, offload_state_to_cpu, state_budget_mb, spill_dir)
        return persist.restore_session(self.model, session, payload, check_model, self.selection)

    @staticmethod
    def session_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
        """The `metadata` dict saved with a session file."""
        return persist.read_metadata(path)

    @staticmethod
    def session_memory(path: str | os.PathLike[str]) -> str:
        """The memory mode a session file was saved with ("official" for files before modes)."""
        return persist.read_memory_mode(path)

    def reset(self, session: VideoSession) -> None:
        """Remove every object, prompt and output (the video and its cached features stay)."""
        session.objects.clear()

    @torch.inference_mode()
    def clear_tracking(self, session: VideoSession) -> list[FrameResult]:
        """Drop the outputs of every tracked frame; objects, prompts and prompted frames'
        outputs stay, so the next `propagate` tracks from the prompts alone (e.g. after
        switching to a predictor of another memory mode: a session holds no mode of its own).

        Returns:
            every object's masks on each frame that still holds an output (ascending).
        """
        return [self._consolidated(session, f) for f in tracking.clear_tracking(session)]

    # ------------------------------------------------------------------------------------------
    # prompts
    # ------------------------------------------------------------------------------------------
    @torch.inference_mode()
    def add_points(
        self,
        session: VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> FrameResult:
        """Add clicks and/or a box for one object on one frame; returns all masks of that frame.

        Args:
            session: from `init_session`.
            frame_idx: the frame.
            obj_id: the object (a new id adds an object, also after tracking started).
            points: (P, 2) x, y clicks (video pixels with `normalize_coords`, else in [0, 1]).
            labels: (P,) 1 positive, 0 negative.
            clear_old_points: replace this object's earlier clicks on the frame (else append).
            normalize_coords: coordinates are video pixels (True) or relative (False).
            box: (4,) x0, y0, x1, y1; sent as the first two points (needs clear_old_points).

        Returns:
            the frame's masks of all objects (objects without an output there are -1024).
        """
        frame_idx = check_frame(session, frame_idx)
        obj_id = check_obj_id(obj_id)
        prompt = point_prompt(
            points,
            labels,
            box,
            clear_old_points=clear_old_points,
            normalize_coords=normalize_coords,
            video_hw=session.frames.hw,
            image_size=session.image_size,
            check_bounds=self.check_bounds,
            device=self.device,
        )
        return self._run_prompt(
            session, obj_id, frame_idx, points=prompt, append=not clear_old_points
        )

    @torch.inference_mode()
    def add_mask(
        self, session: VideoSession, frame_idx: int, obj_id: Hashable, mask: Any
    ) -> FrameResult:
        """Give one object's mask on one frame (taken as the output itself, ±10 logits).

        Args:
            session: from `init_session`.
            frame_idx: the frame.
            obj_id: the object (a new id adds an object).
            mask: (H, W) at video resolution (or image_size x image_size); numpy arrays and
                lists are read as booleans (non-zero = object), tensors as given.

        Returns:
            the frame's masks of all objects.
        """
        frame_idx = check_frame(session, frame_idx)
        obj_id = check_obj_id(obj_id)
        mask_input = mask_prompt(
            mask, video_hw=session.frames.hw, image_size=session.image_size, device=self.device
        )
        return self._run_prompt(session, obj_id, frame_idx, mask=mask_input)

    def _run_prompt(
        self, session: VideoSession, obj_id: Hashable, frame_idx: int, **prompt: Any
    ) -> FrameResult:
        """Record a prompt of one object (a new id adds it) and segment the frame, keeping the
        output pending until the next propagation; returns the frame's masks of all objects."""
        track = session.objects.setdefault(obj_id, ObjectTrack(obj_id))
        is_cond = prompt_step(
            self.model,
            session,
            track,
            frame_idx,
            fill_hole_area=self.fill_hole_area,
            selection=self.selection,
            **prompt,
        )
        return self._consolidated(session, frame_idx, is_cond)

    @torch.inference_mode()
    def clear_prompts_in_frame(
        self, session: VideoSession, frame_idx: int, obj_id: Hashable, need_output: bool = True
    ) -> FrameResult | None:
        """Remove one object's clicks, box and mask on a frame.

        The frame's output of that object stays, as a tracked (non-conditioning) frame, until
        the next propagation recomputes it.
        """
        frame_idx = check_frame(session, frame_idx)
        track = get_track(session, obj_id)
        clear_prompts(track, frame_idx)
        return self._consolidated(session, frame_idx) if need_output else None

    @torch.inference_mode()
    def remove_object(
        self,
        session: VideoSession,
        obj_id: Hashable,
        strict: bool = False,
        need_output: bool = True,
    ) -> list[FrameResult]:
        """Remove an object; the other objects' outputs are unchanged.

        Args:
            session: from `init_session`.
            obj_id: the object to remove.
            strict: raise `ValueError` for an unknown id (else do nothing).
            need_output: return the masks of the frames where the object had prompts.

        Returns:
            the remaining objects' masks on each frame the object was prompted on (ascending),
            empty when nothing is left or `need_output` is False.
        """
        obj_id = check_obj_id(obj_id)  # 1.0 is not object 1, as in add_points
        if strict and obj_id not in session.objects:
            session.obj_idx(obj_id)  # raises ValueError naming the known ids
        frames = remove_track(session.objects, obj_id)
        return [self._consolidated(session, f) for f in frames] if need_output else []

    # ------------------------------------------------------------------------------------------
    # propagation
    # ------------------------------------------------------------------------------------------
    def propagate(
        self,
        session: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[FrameResult]:
        """Track every object through the video, one frame per iteration.

        The prompts given so far are committed (their memories encoded) before this returns;
        frames are then processed as the iterator is consumed.

        Args:
            session: from `init_session`.
            start_frame_idx: first frame (default: the earliest prompted frame).
            max_frame_num_to_track: track this many frames after the first (default: all).
            reverse: track towards the first frame.

        Yields:
            `FrameResult` of every object on each frame, in processing order.
        """
        reverse = bool(reverse)
        order = tracking.start_propagation(
            self.model, session, start_frame_idx, max_frame_num_to_track, reverse, self.selection
        )
        return self._track_frames(session, order, reverse)

    @torch.inference_mode()
    def _track_frames(
        self, session: VideoSession, order: list[int], reverse: bool
    ) -> Iterator[FrameResult]:
        tracks = list(session.objects.values())
        for frame_idx in order:
            states = tracking.track_frame(
                self.model, session, tracks, frame_idx, reverse, self.fill_hole_area, self.selection
            )
            yield self._result(session, frame_idx, states)

    # ------------------------------------------------------------------------------------------
    # results
    # ------------------------------------------------------------------------------------------
    def _consolidated(
        self, session: VideoSession, frame_idx: int, is_cond: bool | None = None
    ) -> FrameResult:
        """Every object's newest output on a frame: pending outputs of the given kind first
        (None: pending conditioning outputs when any object has one there)."""
        states = latest_outputs(session.objects.values(), frame_idx, is_cond)
        return self._result(session, frame_idx, states)

    def _result(
        self, session: VideoSession, frame_idx: int, states: list[FrameState | None]
    ) -> FrameResult:
        """Upsample the low-res masks to the video size (-1024 for objects without output)."""
        return frame_result(
            session, frame_idx, states, device=self.device, non_overlap=self.non_overlap_masks
        )
