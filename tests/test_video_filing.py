"""The filing rules shared by the torch video predictor and the ONNX tracker
(`sam2r.predictor.video.filing`), on a stub track: no model, no torch."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Hashable
from dataclasses import dataclass, field, fields
from typing import Any

import pytest

from sam2r.predictor.video.filing import (
    FiledTrack,
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


@dataclass(eq=False)
class Out:
    name: str
    memory: bool = False

    @property
    def has_memory(self) -> bool:
        return self.memory


@dataclass(eq=False)
class Stub(FiledTrack[Out]):
    obj_id: Hashable
    points: dict[int, Any] = field(default_factory=dict)
    masks: dict[int, Any] = field(default_factory=dict)
    cond_outputs: dict[int, Out] = field(default_factory=dict)
    non_cond_outputs: dict[int, Out] = field(default_factory=dict)
    temp_cond_outputs: dict[int, Out] = field(default_factory=dict)
    temp_non_cond_outputs: dict[int, Out] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)


def cfg(**kw: Any) -> FilingConfig:
    base = dict(
        num_maskmem=3,
        memory_temporal_stride_for_eval=1,
        max_obj_ptrs_in_encoder=4,
        add_all_frames_to_correct_as_cond=False,
        clear_non_cond_mem_around_input=False,
    )
    return FilingConfig(**{**base, **kw})


def test_config_reads_sam2config_and_manifest_alike() -> None:
    from sam2r.config import get_config

    c = get_config("sam2.1_hiera_t")
    manifest = {f.name: getattr(c, f.name) for f in fields(FilingConfig)}
    assert FilingConfig.of(c) == FilingConfig.of(manifest)
    assert FilingConfig.of(c).num_maskmem == c.num_maskmem == 7
    with pytest.raises(ValueError, match="num_maskmem"):
        FilingConfig.of({k: v for k, v in manifest.items() if k != "num_maskmem"})


def test_both_tracks_share_the_fields() -> None:
    pytest.importorskip("torch")
    from sam2r.onnx.bank import Track
    from sam2r.predictor.video.session import ObjectTrack

    assert issubclass(Track, FiledTrack) and issubclass(ObjectTrack, FiledTrack)
    assert [f.name for f in fields(Track)] == [f.name for f in fields(ObjectTrack)]
    assert "obj_id" in FiledTrack.__annotations__
    assert set(FiledTrack.__annotations__) <= {f.name for f in fields(Track)}


@pytest.mark.parametrize(
    "tracked, cond, add_all, want_mode, want_cond",
    [
        ({}, {}, False, (True, False), True),  # first prompt: an initial, conditioning frame
        ({5: True}, {}, False, (True, False), True),  # tracked, but no conditioning frame left
        ({5: True}, {0: Out("c")}, False, (False, True), False),  # correction, reverse-tracked
        ({5: False}, {0: Out("c")}, True, (False, False), True),  # correction made conditioning
        ({4: False}, {0: Out("c")}, False, (True, False), True),  # another, untracked frame
    ],
)
def test_interaction_mode(tracked, cond, add_all, want_mode, want_cond) -> None:
    track = Stub(1, cond_outputs=dict(cond), tracked=dict(tracked))
    assert interaction_mode(track, 5) == want_mode
    assert prompt_is_cond(track, 5, cfg(add_all_frames_to_correct_as_cond=add_all)) is want_cond


def test_latest_output_prefers_pending_of_the_kind() -> None:
    a, b, c, d = Out("a"), Out("b"), Out("c"), Out("d")
    track = Stub(1, cond_outputs={2: b}, non_cond_outputs={2: c, 3: d}, temp_cond_outputs={2: a})
    assert track.latest_output(2, True) is a and track.latest_output(2, False) is b
    assert track.latest_output(3, True) is d and track.latest_output(4, True) is None
    track.points[7], track.masks[1] = "click", "mask"
    assert track.prompted_frames() == [1, 7]


def test_latest_outputs_take_pending_cond_when_any_object_has_one() -> None:
    a, b, c = Out("a"), Out("b"), Out("c")
    one = Stub(1, temp_cond_outputs={2: a}, non_cond_outputs={3: c})
    two = Stub(2, cond_outputs={2: b}, temp_non_cond_outputs={2: Out("u"), 3: Out("v")})
    assert latest_outputs([one, two], 2) == [a, b]  # `one` pends a prompt there: cond first
    assert latest_outputs([one, two], 2, is_cond=False)[1].name == "u"
    assert latest_outputs([one, two], 3)[0] is c and latest_outputs([one, two], 3)[1].name == "v"
    assert latest_outputs([one, two], 4) == [None, None]


@pytest.mark.parametrize(
    "obj_id, others, want",
    [(1, [2], [1, 7]), (1, [], []), (3, [2], [])],  # prompted frames; last one; unknown
)
def test_remove_track(obj_id: int, others: list[int], want: list[int]) -> None:
    objects = {1: Stub(1, points={7: "p"}, masks={1: "m"})} | {i: Stub(i) for i in others}
    assert remove_track(objects, obj_id) == want
    assert list(objects) == [i for i in [1, *others] if i != obj_id]


def test_clear_prompts_keeps_the_output_as_tracked() -> None:
    c = Out("c")
    track = Stub(
        1,
        points={3: "p"},
        masks={3: "m"},
        cond_outputs={3: c},
        temp_cond_outputs={3: Out("t")},
        temp_non_cond_outputs={3: Out("u")},
        tracked={3: False, 4: False},
    )
    clear_prompts(track, 3)
    assert not (track.points or track.masks or track.cond_outputs)
    assert not (track.temp_cond_outputs or track.temp_non_cond_outputs)
    assert track.non_cond_outputs == {3: c} and track.tracked == {4: False}


@pytest.mark.parametrize("stride, left", [(1, [0, 1, 9, 10, 12]), (2, [12])])
def test_clear_memory_around(stride: int, left: list[int]) -> None:
    """Frames within stride * num_maskmem of the prompt (both sides) lose their memories."""
    track = Stub(1, non_cond_outputs={t: Out(str(t)) for t in (0, 1, 2, 5, 8, 9, 10, 12)})
    clear_memory_around(track, 5, cfg(num_maskmem=3, memory_temporal_stride_for_eval=stride))
    assert sorted(track.non_cond_outputs) == left


@pytest.mark.parametrize("clear_around", [False, True])
def test_commit_pending(clear_around: bool) -> None:
    near, far, old = Out("near"), Out("far"), Out("old")
    p2, p4 = Out("p2"), Out("p4", memory=True)
    track = Stub(
        1,
        non_cond_outputs={2: old, 4: near, 30: far},
        temp_cond_outputs={2: p2},
        temp_non_cond_outputs={4: p4},
    )
    encoded: list[tuple[int, str]] = []

    def encode(t: int, out: Out) -> None:
        encoded.append((t, out.name))
        out.memory = True

    commit_pending([track], encode, cfg(clear_non_cond_mem_around_input=clear_around))
    assert encoded == [(2, "p2")]  # p4 had its memory already
    assert track.cond_outputs == {2: p2} and p2.has_memory
    assert not track.temp_cond_outputs and not track.temp_non_cond_outputs
    # a conditioning frame leaves the tracked ones; a nearby prompt drops their memories
    want = {30: far} if clear_around else {4: p4, 30: far}
    assert track.non_cond_outputs == want


def test_commit_pending_refuses_an_object_without_a_start() -> None:
    with pytest.raises(RuntimeError, match="no object has prompts"):
        commit_pending([], lambda t, o: None, cfg())
    ok, lost = Stub(1, temp_cond_outputs={0: Out("a")}), Stub(2, non_cond_outputs={0: Out("b")})
    with pytest.raises(RuntimeError, match="object 2 has no prompt"):
        commit_pending([ok, lost], lambda t, o: None, cfg())
    assert ok.temp_cond_outputs  # nothing was filed


def test_prune_forgets_what_no_later_frame_reads() -> None:
    c = cfg(num_maskmem=3, memory_temporal_stride_for_eval=2, max_obj_ptrs_in_encoder=5)
    window = max(5, 3 * 2 + 2)  # 8: frames before 20 - 8 = 12 are out
    tracks = [
        Stub(
            o,
            points={t: "p" for t in (0, 5, 11, 12, 20)},
            masks={t: "m" for t in (5, 19, 20)},
            cond_outputs={0: Out("c")},
            non_cond_outputs={t: Out(str(t)) for t in (0, 11, 12, 20)},
            tracked={t: False for t in (0, 11, 12, 20)},
        )
        for o in (1, 2)
    ]
    prune(iter(tracks), 20, c)  # any iterable of tracks
    for track in tracks:
        assert sorted(track.non_cond_outputs) == sorted(track.tracked) == [12, 20]
        assert sorted(track.masks) == [20]  # mask prompts of past frames are spent
        assert sorted(track.points) == [0, 12, 20]  # 0 keeps its clicks: still conditioning
    assert 20 - window == 12  # the oldest frame a later frame can read


def test_filing_imports_no_torch() -> None:
    script = (
        "import sys, sam2r.predictor.video.filing, sam2r.onnx.bank\nprint('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
