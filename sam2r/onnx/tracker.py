"""The video tracker on ONNX Runtime: prompts on any frame, several objects, propagation in both
directions and live streams, with numpy and onnxruntime only (no torch).

    tracker = OnnxVideoTracker("exported/")
    session = tracker.init_session("frames/")        # folder, uint8 array or list of frames
    tracker.add_points(session, 0, obj_id=1, points=[[210, 350]], labels=[1])
    for result in tracker.propagate(session):
        result.frame_idx, result.obj_ids, result.masks   # (num_obj, 1, H, W) logits

It reproduces `sam2r.VideoPredictor` (and so the official `SAM2VideoPredictor`) step for step: the
same frames (`sam2r.predictor.video.order`), the same memory selection (`sam2r.onnx.bank`), memories
rounded to bfloat16 as the official code stores them, hole filling, the same prompt semantics
(clicks, boxes, masks, correction clicks on tracked frames) and the same filing of outputs, by the
torch predictor's own rules (`sam2r.predictor.video.filing`). Objects tracked on a frame whose
memories have the same layout attend in one batch (the torch predictor runs them one by one; the
numbers agree to float rounding). What stays as in the torch predictor: a streaming session
(`init_stream` + `track`) keeps only what later frames can read, so its memory is bounded.

The opt-in memory modes of `VideoPredictor(memory=...)` ("motion", "distractor", with the same
knobs) run here by the same numpy rules (`sam2r.predictor.video.policy`, which imports no
torch): the candidate kept among the multimask outputs, which frames are admitted to the
memory, the distractor bank, re-detection, and the memory each tracked frame reads.

This module orders the work and files the outputs. What is left to others: running each graph
(`sam2r.onnx.steps`), the memory bank (`sam2r.onnx.bank`), the session and its results
(`sam2r.onnx.session`), session files (`sam2r.onnx.persist`).
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from sam2r.onnx import steps
from sam2r.onnx.bank import Plan, State, Track, object_memory, plan_memory, plan_selection
from sam2r.onnx.frames import Frames, LiveFrames
from sam2r.onnx.numpy_ops import fill_holes
from sam2r.onnx.runtime import OnnxModel
from sam2r.onnx.session import (
    OnnxFrameResult,
    OnnxSession,
    check_frame,
    frame_result,
    get_track,
    mask_prompt,
    point_prompt,
)
from sam2r.predictor.video.filing import (
    FilingConfig,
    clear_memory_around,
    clear_prompts,
    commit_pending,
    interaction_mode,
    latest_outputs,
    prompt_is_cond,
    prune,
    remove_track,
)
from sam2r.predictor.video.ids import check_obj_id
from sam2r.predictor.video.order import check_max_frames, propagation_order
from sam2r.predictor.video.policy import Choice, MemoryPolicy, make_policy


class OnnxVideoTracker:
    """Segment and track objects in a video with an exported model.

    Args:
        model: a folder written by `sam2r.onnx.export`, or an `OnnxModel`.
        fill_hole_area: fill holes up to this many low-res pixels (None: the config's, 0: off).
        non_overlap_masks: keep only the best object at each pixel (None: the config's).
        num_threads: onnxruntime intra-op threads (None: all cores).
        feature_cache_size: image features of this many recent frames are kept.
        memory: "official" (default), or the opt-in "motion" / "distractor" memory modes of
            `VideoPredictor` (see `sam2r.predictor.video.selection`); a `MemoryPolicy` (or the
            torch side's `MemorySelection`) sets their thresholds.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | OnnxModel,
        fill_hole_area: int | None = None,
        non_overlap_masks: bool | None = None,
        num_threads: int | None = None,
        feature_cache_size: int = 4,
        memory: str | MemoryPolicy = "official",
    ) -> None:
        self.policy = make_policy(memory)  # None: the official memory
        self.memory = "official" if self.policy is None else self.policy.mode
        self.model = model if isinstance(model, OnnxModel) else OnnxModel(model, num_threads)
        self.cfg = self.model.config
        self.filing = FilingConfig.of(self.cfg)  # the settings of the shared filing rules
        area = self.cfg["fill_hole_area"] if fill_hole_area is None else fill_hole_area
        if isinstance(area, bool) or not isinstance(area, int) or area < 0:
            raise ValueError(f"fill_hole_area must be an int >= 0 (0 = off), got {area!r}")
        self.fill_hole_area = area
        self.non_overlap = bool(
            self.cfg["non_overlap_masks"] if non_overlap_masks is None else non_overlap_masks
        )
        self.feature_cache_size = max(int(feature_cache_size), 1)

    # ------------------------------------------------------------------------------------------
    # sessions
    # ------------------------------------------------------------------------------------------
    def init_session(self, video: Any) -> OnnxSession:
        """Open a video: a folder of frames, a uint8 array (N, H, W, 3) or a list of frames."""
        return OnnxSession(Frames(video), cache_size=self.feature_cache_size)

    def init_stream(self, keep_frames: int = 2) -> OnnxSession:
        """Start a live session; give frames one at a time with `track`."""
        return OnnxSession(LiveFrames(keep_frames), live=True, cache_size=self.feature_cache_size)

    def save_session(
        self,
        session: OnnxSession,
        path: str | os.PathLike[str],
        metadata: dict[str, Any] | None = None,
    ) -> Path:
        """Write a session (video or live) to one file, to reopen with `load_session`
        (`sam2r.onnx.persist`: numpy + json, no pickle). Object ids must be ints or strings;
        `metadata` holds JSON values of the application's own. Returns the path."""
        from sam2r.onnx import persist

        return persist.save_session(self.model, self.policy, session, path, metadata)

    def load_session(self, path: str | os.PathLike[str], video: Any = None) -> OnnxSession:
        """Reopen a saved session: a video session over the same `video` (frame count and size
        checked), a live one without a video (the next `track` goes on at the saved count).
        The tracker must run the same exported model and memory mode; anything else (another
        model or mode, a foreign or damaged file, a video given to a live file or missing for
        a video file) is a `ValueError` saying what differs or which call to make."""
        from sam2r.onnx import persist

        header, arrays = persist.read_file(path)
        persist.check_file(header, path, self.model, self.policy, video)
        if video is None:
            frames = persist.live_frames(header, arrays)
            session = OnnxSession(frames, live=True, cache_size=self.feature_cache_size)
        else:
            session = self.init_session(video)
            persist.check_video(header, session)
        return persist.restore(session, header, arrays, self.policy, self.cfg)

    def reset(self, session: OnnxSession) -> None:
        """Remove every object, prompt and output."""
        session.objects.clear()

    def remove_object(
        self,
        session: OnnxSession,
        obj_id: Hashable,
        strict: bool = False,
        need_output: bool = True,
    ) -> list[OnnxFrameResult]:
        """Remove an object; the other objects' outputs are unchanged (as
        `VideoPredictor.remove_object`).

        Args:
            session: from `init_session` or `init_stream`.
            obj_id: the object to remove.
            strict: raise `ValueError` for an unknown id (else do nothing).
            need_output: return the masks of the frames where the object had prompts.

        Returns:
            the remaining objects' masks on each frame the object was prompted on (ascending),
            empty when nothing is left or `need_output` is False.
        """
        obj_id = check_obj_id(obj_id)
        if strict and obj_id not in session.objects:
            get_track(session, obj_id)  # raises ValueError naming the known ids
        frames = remove_track(session.objects, obj_id)
        return [self._consolidated(session, t) for t in frames] if need_output else []

    def clear_prompts_in_frame(
        self, session: OnnxSession, frame_idx: int, obj_id: Hashable, need_output: bool = True
    ) -> OnnxFrameResult | None:
        """Remove one object's clicks, box and mask on a frame (as
        `VideoPredictor.clear_prompts_in_frame`).

        The frame's output of that object stays, as a tracked (non-conditioning) frame, until
        the next propagation recomputes it. Returns every object's masks on the frame (None
        when `need_output` is False).
        """
        frame_idx = check_frame(session, frame_idx)
        clear_prompts(get_track(session, obj_id), frame_idx)
        return self._consolidated(session, frame_idx) if need_output else None

    def _consolidated(
        self, session: OnnxSession, frame_idx: int, is_cond: bool | None = None
    ) -> OnnxFrameResult:
        """Every object's newest output on a frame: pending outputs of the given kind first
        (None: pending conditioning outputs when any object has one there)."""
        states = latest_outputs(session.objects.values(), frame_idx, is_cond)
        return frame_result(session, frame_idx, states, self.non_overlap)

    def track(self, session: OnnxSession, frame: np.ndarray | Image.Image) -> OnnxFrameResult:
        """Add the next frame of a stream and track every prompted object on it."""
        if not session.live:
            raise ValueError("track() takes a session from init_stream(); use propagate()")
        assert isinstance(session.frames, LiveFrames)
        idx = session.frames.append(frame)
        if not session.objects:
            return frame_result(session, idx, [], self.non_overlap)
        self._commit(session)
        states = self._track_frame(session, idx, list(session.objects.values()), False)
        prune(session.objects.values(), idx, self.filing)
        for t in [t for t in session.features if t < idx - 1]:
            del session.features[t]
        return frame_result(session, idx, states, self.non_overlap)

    # ------------------------------------------------------------------------------------------
    # prompts
    # ------------------------------------------------------------------------------------------
    def add_points(
        self,
        session: OnnxSession,
        frame_idx: int,
        obj_id: Hashable,
        points: Any = None,
        labels: Any = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: Any = None,
    ) -> OnnxFrameResult:
        """Clicks and / or a box for one object on one frame (as `VideoPredictor.add_points`);
        returns every object's masks on that frame."""
        frame_idx = check_frame(session, frame_idx)
        obj_id = check_obj_id(obj_id)
        coords, labs = point_prompt(
            session, self.model.image_size, points, labels, box, clear_old_points, normalize_coords
        )
        track = session.objects.setdefault(obj_id, Track(obj_id))
        old = track.points.get(frame_idx)
        if not clear_old_points and old is not None:
            coords = np.concatenate([old[0], coords])
            labs = np.concatenate([old[1], labs])
        track.points[frame_idx] = (coords, labs)
        track.masks.pop(frame_idx, None)
        prev = track.latest_output(frame_idx, prompt_is_cond(track, frame_idx, self.filing))
        prev_logits = None if prev is None else np.clip(prev.low_res, -32.0, 32.0)
        return self._prompt(session, track, frame_idx, points=(coords, labs), prev=prev_logits)

    def add_mask(
        self, session: OnnxSession, frame_idx: int, obj_id: Hashable, mask: Any
    ) -> OnnxFrameResult:
        """A mask (H, W) for one object on one frame, taken as the output itself."""
        frame_idx = check_frame(session, frame_idx)
        obj_id = check_obj_id(obj_id)
        m = mask_prompt(session, self.model.image_size, mask)
        track = session.objects.setdefault(obj_id, Track(obj_id))
        track.masks[frame_idx] = m[0, 0]
        track.points.pop(frame_idx, None)
        return self._prompt(session, track, frame_idx, mask=m)

    def _prompt(self, session: OnnxSession, track: Track, frame_idx: int, **prompt: Any):
        is_init, reverse = interaction_mode(track, frame_idx)
        is_cond = prompt_is_cond(track, frame_idx, self.filing)
        state = self._run(session, track, frame_idx, is_init, reverse, **prompt)
        track.temp_outputs(is_cond)[frame_idx] = state
        return self._consolidated(session, frame_idx, is_cond)

    def _run(
        self,
        session: OnnxSession,
        track: Track,
        frame_idx: int,
        is_init: bool,
        reverse: bool,
        points: tuple[np.ndarray, np.ndarray] | None = None,
        mask: np.ndarray | None = None,
        prev: np.ndarray | None = None,
    ) -> State:
        """One object on a prompted frame (no memory encoded yet)."""
        feats = steps.features(self.model, session, frame_idx)
        if mask is not None:
            low, ptr, score = steps.mask_as_output(self.model, feats, mask)
        else:
            if is_init:
                pix = feats["image_embed_no_mem"]
            else:
                horizon = session.memory_horizon
                if self.policy is not None and track.selection is not None:
                    # a correction reads what the mode kept in its last pass (as in torch)
                    plan = plan_selection(self.policy, track, frame_idx, reverse, horizon, self.cfg)
                else:
                    plan = plan_memory(track, frame_idx, reverse, horizon, self.cfg)
                pix = steps.condition(self.model, session, feats, [plan])
            if points is None:
                coords, labels = steps.no_points(1)
            else:
                coords, labels = points[0][None], points[1][None]
            multi = steps.multimask(self.cfg, is_init, 0 if points is None else len(points[1]))
            low, ptr, score, _ = steps.decode(self.model, pix, feats, coords, labels, prev, multi)
        low = fill_holes(low, self.fill_hole_area)
        return State(low, ptr[0], float(score[0, 0]))

    # ------------------------------------------------------------------------------------------
    # propagation
    # ------------------------------------------------------------------------------------------
    def propagate(
        self,
        session: OnnxSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[OnnxFrameResult]:
        """Track every object through the video, one frame per iteration, as
        `VideoPredictor.propagate`: the arguments are checked before the prompts given so far
        are committed, and the frames follow the same rule (`sam2r.predictor.video.order`)."""
        reverse = bool(reverse)
        if start_frame_idx is not None:
            start_frame_idx = check_frame(session, start_frame_idx)
        check_max_frames(max_frame_num_to_track)
        self._commit(session)
        order = propagation_order(session, start_frame_idx, max_frame_num_to_track, reverse)
        if self.policy is not None:
            self.policy.new_pass(session.objects.values(), order, reverse)
        return self._frames(session, order, reverse)

    def _frames(
        self, session: OnnxSession, order: list[int], reverse: bool
    ) -> Iterator[OnnxFrameResult]:
        tracks = list(session.objects.values())
        for frame_idx in order:
            if list(session.objects.values()) != tracks:  # tracks compare by identity
                raise RuntimeError(
                    "objects were added or removed while propagating; call propagate() again"
                )
            states = self._track_frame(session, frame_idx, tracks, reverse)
            yield frame_result(session, frame_idx, states, self.non_overlap)

    def _commit(self, session: OnnxSession) -> None:
        """Pending prompt outputs into the bank, with their memories encoded (`commit_pending`,
        with the exported memory encoder)."""

        def encode(frame_idx: int, state: State) -> None:
            feats = steps.features(self.model, session, frame_idx)
            score = np.array([[state.score]], np.float32)
            state.maskmem = steps.encode(self.model, session, feats, state.low_res, score, True)[0]

        commit_pending(session.objects.values(), encode, self.filing)

    def _track_frame(
        self, session: OnnxSession, frame_idx: int, tracks: list[Track], reverse: bool
    ) -> list[State]:
        """Every object's output on a propagated frame; objects whose memories have the same
        layout run as one batch. An opt-in memory mode plans the memory read, chooses the
        candidate and files each output (as `sam2r.predictor.video.frame_step` drives it)."""
        states: dict[int, State] = {}
        groups: dict[tuple[Any, ...], list[tuple[int, Plan]]] = {}
        policy = self.policy
        for i, track in enumerate(tracks):
            if frame_idx in track.cond_outputs:
                state = states[i] = track.cond_outputs[frame_idx]
                if self.filing.clear_non_cond_mem_around_input:
                    clear_memory_around(track, frame_idx, self.filing)
                if policy is not None:
                    ms = object_memory(policy, track, self.cfg)
                    policy.restart(ms, state.low_res[0, 0] > 0)
            else:
                horizon = session.memory_horizon
                if policy is None:
                    plan = plan_memory(track, frame_idx, reverse, horizon, self.cfg)
                else:
                    plan = plan_selection(policy, track, frame_idx, reverse, horizon, self.cfg)
                groups.setdefault(plan.key(), []).append((i, plan))
        feats = steps.features(self.model, session, frame_idx) if groups else None
        for members in groups.values():
            assert feats is not None
            pix = steps.condition(self.model, session, feats, [p for _, p in members])
            b = len(members)
            coords, labels = steps.no_points(b)
            choices: list[Choice | None] = [None] * b
            select = None
            if policy is not None:
                select = steps.chooser(policy, [tracks[i] for i, _ in members], choices, self.cfg)
            multi = steps.multimask(self.cfg, False, 0)
            low, ptr, score, iou = steps.decode(
                self.model, pix, feats, coords, labels, None, multi, select
            )
            mem = steps.encode(self.model, session, feats, low, score, False)
            filled = fill_holes(low, self.fill_hole_area)
            for j, (i, _) in enumerate(members):
                state = State(filled[j : j + 1], ptr[j], float(score[j, 0]), mem[j])
                tracks[i].non_cond_outputs[frame_idx] = state
                states[i] = state
                if policy is not None:
                    choice = choices[j]
                    if choice is None:  # single-mask output: the chooser was not asked
                        choice = policy.pick(low[j] > 0, iou[j, :1].astype(np.float64), None)
                    ms = object_memory(policy, tracks[i], self.cfg)
                    policy.file(ms, frame_idx, choice, state.score, state)
        for track in tracks:
            track.tracked[frame_idx] = reverse
        return [states[i] for i in range(len(tracks))]
