"""The studio's HTTP API through FastAPI's test client: every endpoint, every refusal.

Runs on the bundled model over a small root folder made per module: the example image, the first
6 frames of the example clip, the same frames as an .mp4, and a symlink that leads out of it.
After each refusal the session must still work.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient  # noqa: E402

from sam2r.build import from_pretrained  # noqa: E402
from sam2r.predictor.video import VideoPredictor  # noqa: E402
from sam2r.studio import build_app  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLIP = EXAMPLES / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
GT = EXAMPLES / "synth_davis" / "Annotations" / "480p" / "val_00000" / "00000.png"


def _centre(label: int) -> tuple[float, float]:
    """A pixel deep inside object `label` of the clip's first frame."""
    from sam2r.io.draw import label_anchor

    x, y = label_anchor(np.array(Image.open(GT)) == label)
    return float(x), float(y)


@pytest.fixture(scope="module")
def model() -> Any:
    return from_pretrained("sam2r_micro")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("root")
    shutil.copy(EXAMPLES / "shapes.png", root / "shapes.png")
    (root / "clip").mkdir()
    for p in sorted(CLIP.glob("*.jpg"))[:6]:
        shutil.copy(p, root / "clip" / p.name)
    (root / "notes.txt").write_text("not media")
    (root / "outside").symlink_to("/etc")
    return root


@pytest.fixture
def client(model: Any, root: Path, tmp_path: Path) -> TestClient:
    app = build_app(root, model, workspace=tmp_path / "ws", max_upload_mb=1, max_sessions=4)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def ok(r: Any) -> Any:
    assert r.status_code == 200, r.text
    return r.json()


def refused(r: Any, status: int, words: str) -> None:
    assert r.status_code == status, r.text
    assert words in r.json()["error"], r.json()


def open_(client: TestClient, **req: Any) -> str:
    return ok(client.post("/api/sessions", json=req))["session"]


def events(client: TestClient, sid: str, **params: Any) -> list[dict[str, Any]]:
    with client.stream("GET", f"/api/s/{sid}/track", params=params) as r:
        assert r.status_code == 200, r.read()
        return [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]


# ----------------------------------------------------------------------------------------------
def test_page_info_browse(client: TestClient) -> None:
    assert "sam2r studio" in client.get("/").text
    assert "startTrack" in client.get("/static/studio.js").text
    refused(client.get("/static/secret.py"), 404, "no static file")
    info = ok(client.get("/api/info"))
    assert info["model"] == "sam2r_micro" and info["initial"] is None
    entries = {e["name"]: e["kind"] for e in ok(client.get("/api/browse"))["entries"]}
    assert entries == {"clip": "video", "shapes.png": "image"}  # no .txt, no symlink out
    refused(client.get("/api/browse", params={"path": "../"}), 400, "'..' is refused")
    refused(client.get("/api/browse", params={"path": "/etc"}), 400, "absolute")
    refused(client.get("/api/browse", params={"path": "outside"}), 400, "outside")
    refused(client.get("/api/browse", params={"path": "nope"}), 404, "no such")


def test_host_header_is_checked(client: TestClient) -> None:
    refused(client.get("/api/info", headers={"host": "evil.example:8000"}), 400, "not served")


def test_image_session(client: TestClient) -> None:
    sid = open_(client, path="shapes.png")
    info = ok(client.get(f"/api/s/{sid}"))
    assert info["kind"] == "image" and info["num_frames"] == 1
    assert client.get(f"/api/s/{sid}/frame/0").headers["content-type"] == "image/jpeg"
    obj = ok(client.post(f"/api/s/{sid}/objects", json={"name": "disc"}))
    assert obj["id"] == 1 and obj["color"] == "#800000"
    one = ok(client.post(f"/api/s/{sid}/click", json={"frame": 0, "obj": 1, "x": 148, "y": 156}))
    o = one["objects"][0]
    assert len(o["candidates"]) == 3 and o["mask"]["area"] > 0  # one click: 3 candidates
    assert o["chosen"] == int(np.argmax(o["candidates"]))
    other = (o["chosen"] + 1) % 3
    assert (
        ok(client.post(f"/api/s/{sid}/candidate", json={"obj": 1, "index": other}))["objects"][0][
            "chosen"
        ]
        == other
    )
    two = ok(
        client.post(
            f"/api/s/{sid}/click", json={"frame": 0, "obj": 1, "x": 20, "y": 20, "label": 0}
        )
    )
    assert len(two["objects"][0]["candidates"]) == 1  # more prompts: the single mask
    back = ok(client.post(f"/api/s/{sid}/undo"))
    assert back["objects"][0]["mask"] == o["mask"]  # undo gives the mask back exactly
    box = ok(
        client.post(f"/api/s/{sid}/box", json={"frame": 0, "obj": 1, "box": [100, 100, 200, 210]})
    )
    assert box["objects"][0]["prompts"]["box"] == [100, 100, 200, 210]
    ok(client.patch(f"/api/s/{sid}/objects/1", json={"name": "ball", "hidden": True}))
    assert ok(client.get(f"/api/s/{sid}"))["objects"][0] == {
        "id": 1, "name": "ball", "hidden": True, "color": "#800000"
    }  # fmt: skip
    found = ok(client.post(f"/api/s/{sid}/everything", json={"points_per_side": 16}))
    assert found["added"] >= 1 and len(found["objects"]) == 1 + found["added"]
    if found["added"]:  # an "everything" object is editable: a click refines it
        oid = found["objects"][-1]["id"]
        x, y = found["objects"][-1]["mask"]["anchor"]
        r = ok(client.post(f"/api/s/{sid}/click", json={"frame": 0, "obj": oid, "x": x, "y": y}))
        assert len(next(o for o in r["objects"] if o["id"] == oid)["prompts"]["points"]) == 2
    ok(client.delete(f"/api/s/{sid}/objects/1"))
    assert all(o["id"] != 1 for o in ok(client.get(f"/api/s/{sid}/masks/0"))["objects"])


def test_image_refusals_leave_the_session_usable(client: TestClient) -> None:
    sid = open_(client, path="shapes.png")
    ok(client.post(f"/api/s/{sid}/objects", json={}))
    url = f"/api/s/{sid}"
    bad = [
        (client.post(f"{url}/click", content=b"{not json"), 400, "malformed JSON"),
        (client.post(f"{url}/click", json=[1, 2]), 400, "JSON object"),
        (client.post(f"{url}/click", json={"frame": 0, "obj": 1}), 400, "missing"),
        (
            client.post(f"{url}/click", json={"frame": 0, "obj": 9, "x": 5, "y": 5}),
            404,
            "unknown object",
        ),
        (
            client.post(f"{url}/click", json={"frame": 0, "obj": "a", "x": 5, "y": 5}),
            400,
            "bad object id",
        ),
        (
            client.post(f"{url}/click", json={"frame": 1, "obj": 1, "x": 5, "y": 5}),
            404,
            "out of range",
        ),
        (
            client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": 5000, "y": 5}),
            400,
            "outside",
        ),
        (
            client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": 5, "y": 5, "label": 3}),
            400,
            "label",
        ),
        (client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": "5", "y": 5}), 400, "number"),
        (
            client.post(f"{url}/box", json={"frame": 0, "obj": 1, "box": [50, 50, 10, 10]}),
            400,
            "x0 < x1",
        ),
        (
            client.post(f"{url}/box", json={"frame": 0, "obj": 1, "box": [1, 2]}),
            400,
            "[x0, y0, x1, y1]",
        ),
        (client.post(f"{url}/candidate", json={"obj": 1, "index": 0}), 400, "does not exist"),
        (client.post(f"{url}/undo"), 409, "nothing to undo"),
        (client.post(f"{url}/everything", json={"points_per_side": 1000}), 400, "points_per_side"),
        (client.post(f"{url}/everything", json={"pred_iou_thresh": 7}), 400, "pred_iou_thresh"),
        (client.patch(f"{url}/objects/1", json={"name": ""}), 400, "non-empty"),
        (client.patch(f"{url}/objects/1", json={"hidden": "yes"}), 400, "true or false"),
        (client.get(f"{url}/frame/3"), 404, "out of range"),
        (client.get(f"{url}/track"), 400, "videos"),
        (client.post(f"{url}/save", json={"name": "../x"}), 400, "bad project name"),
        (client.post(f"{url}/export", json={"formats": ["gif"]}), 400, "unknown export"),
        (client.get("/api/s/nope/masks/0"), 404, "unknown session"),
        (client.post("/api/sessions", json={"path": "notes.txt"}), 415, "neither"),
        (client.post("/api/sessions", json={"path": "../etc/passwd"}), 400, "'..'"),
        (client.post("/api/sessions", json={"path": "outside/passwd"}), 400, "outside"),
        (client.post("/api/sessions", json={"path": "a", "upload": "b"}), 400, "exactly one"),
        (client.post("/api/sessions", json={"project": "missing"}), 404, "no project"),
    ]
    for r, status, words in bad:
        refused(r, status, words)
    r = ok(client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": 148, "y": 156}))
    assert r["objects"][0]["mask"]["area"] > 0


def test_image_export_and_project(client: TestClient, tmp_path: Path) -> None:
    sid = open_(client, path="shapes.png")
    ok(client.post(f"/api/s/{sid}/objects", json={"name": "disc"}))
    ok(client.post(f"/api/s/{sid}/click", json={"frame": 0, "obj": 1, "x": 148, "y": 156}))
    ok(client.post(f"/api/s/{sid}/candidate", json={"obj": 1, "index": 0}))
    before = ok(client.get(f"/api/s/{sid}/masks/0"))
    out = ok(client.post(f"/api/s/{sid}/export", json={"formats": ["png", "coco", "mp4"]}))
    names = sorted(Path(f["name"]).name for f in out["files"])
    assert names == ["masks.json", "shapes.png", "shapes_overlay.png"]
    coco = ok(client.get(next(f["url"] for f in out["files"] if f["name"].endswith("json"))))
    assert coco["annotations"][0]["name"] == "disc" and coco["annotations"][0]["area"] > 0
    png = client.get(next(f["url"] for f in out["files"] if f["name"].endswith("/shapes.png")))
    labels = np.array(Image.open(__import__("io").BytesIO(png.content)))
    assert (labels == 1).sum() == coco["annotations"][0]["area"]
    refused(client.get("/api/files/..%2Fws%2Fx"), 400, "'..'")
    refused(client.get("/api/files/%2Fetc%2Fpasswd"), 400, "absolute")
    ok(client.post(f"/api/s/{sid}/save", json={"name": "img1"}))
    assert ok(client.get("/api/projects"))["projects"][0]["name"] == "img1"
    again = open_(client, project="img1")
    assert ok(client.get(f"/api/s/{again}/masks/0"))["objects"] == before["objects"]


def test_two_tabs_are_separate_and_sessions_are_bounded(client: TestClient) -> None:
    a, b = open_(client, path="shapes.png"), open_(client, path="shapes.png")
    ok(client.post(f"/api/s/{a}/objects", json={}))
    assert ok(client.get(f"/api/s/{b}"))["objects"] == []
    open_(client, path="shapes.png"), open_(client, path="shapes.png")
    refused(client.post("/api/sessions", json={"path": "shapes.png"}), 429, "limit")
    ok(client.delete(f"/api/s/{b}"))
    refused(client.get(f"/api/s/{b}"), 404, "unknown session")
    open_(client, path="shapes.png")


def test_uploads_checked_by_content_and_size(client: TestClient, tmp_path: Path) -> None:
    import io

    buf = io.BytesIO()
    Image.fromarray(np.full((40, 60, 3), 90, np.uint8)).save(buf, format="PNG")
    up = ok(client.post("/api/upload", params={"name": "photo.png"}, content=buf.getvalue()))
    assert up["kind"] == "image"
    assert ok(client.get(f"/api/s/{open_(client, upload=up['upload'])}"))["width"] == 60
    refused(
        client.post("/api/upload", params={"name": "evil.png"}, content=b"MZ\x90\x00" * 100),
        415,
        "content",
    )
    refused(
        client.post("/api/upload", params={"name": "big.png"}, content=b"\0" * (2 << 20)),
        413,
        "limit",
    )
    refused(
        client.post("/api/upload", params={"name": "../x.png"}, content=buf.getvalue()),
        400,
        "bad file name",
    )
    refused(client.post("/api/upload", params={"name": "empty.png"}, content=b""), 400, "empty")
    refused(client.post("/api/sessions", json={"upload": "../../etc/passwd"}), 400, "'..'")


def test_video_upload(client: TestClient) -> None:
    pytest.importorskip("av")
    from sam2r.io.video_file import VideoSink

    path = Path(client.app.state.studio.workspace) / "clip.mp4"
    with VideoSink(path, fps=8) as sink:
        for p in sorted(CLIP.glob("*.jpg"))[:4]:
            sink.write(np.array(Image.open(p).convert("RGB")))
    up = ok(client.post("/api/upload", params={"name": "clip.bin"}, content=path.read_bytes()))
    assert up["kind"] == "video" and up["upload"].endswith(".mp4")
    info = ok(client.post("/api/sessions", json={"upload": up["upload"]}))
    assert info["kind"] == "video" and info["num_frames"] == 4


def test_video_session_tracking_correction_export_project(client: TestClient) -> None:
    sid = open_(client, path="clip")
    url = f"/api/s/{sid}"
    refused(client.get(f"{url}/track"), 400, "nothing to track")
    for name in ("ball", "other"):
        ok(client.post(f"{url}/objects", json={"name": name}))
    (x1, y1), (x2, y2) = _centre(1), _centre(2)
    r = ok(client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": x1, "y": y1}))
    assert [o["id"] for o in r["objects"]] == [1]
    ok(
        client.post(
            f"{url}/box", json={"frame": 0, "obj": 2, "box": [x2 - 20, y2 - 20, x2 + 20, y2 + 20]}
        )
    )
    evs = events(client, sid, direction="forward")
    assert [e["type"] for e in evs] == ["start"] + ["frame"] * 6 + ["done"]
    assert [e["frame"] for e in evs[1:-1]] == list(range(6)) and evs[0]["total"] == 6
    assert all(len(e["objects"]) == 2 for e in evs[1:-1])
    scores = ok(client.get(f"{url}/scores"))["scores"]
    assert sorted(map(int, scores)) == list(range(6)) and set(scores["5"]) == {"1", "2"}
    tracked3 = ok(client.get(f"{url}/masks/3"))
    # a correction on frame 3 refines object 1 there, and re-tracking goes on from frame 3
    fix = ok(client.post(f"{url}/click", json={"frame": 3, "obj": 1, "x": x2, "y": y2, "label": 0}))
    assert fix["objects"][0]["mask"] != tracked3["objects"][0]["mask"]
    evs = events(client, sid, direction="forward", start=3)
    assert [e["frame"] for e in evs if e["type"] == "frame"] == [3, 4, 5]
    evs = events(client, sid, direction="backward", start=5)
    assert [e["frame"] for e in evs if e["type"] == "frame"] == [5, 4, 3, 2, 1, 0]
    refused(client.get(f"{url}/track", params={"direction": "sideways"}), 400, "direction")
    refused(client.get(f"{url}/track", params={"start": 99}), 404, "out of range")
    refused(client.post(f"{url}/candidate", json={"obj": 1, "index": 0}), 400, "videos")

    out = ok(client.post(f"{url}/export", json={"formats": ["png", "coco", "mp4"]}))
    names = [f["name"] for f in out["files"]]
    assert sum(n.endswith(".png") for n in names) == 6
    coco = ok(client.get(next(f["url"] for f in out["files"] if f["name"].endswith("json"))))
    assert [f["frame_idx"] for f in coco["frames"]] == list(range(6))
    assert {o["name"] for o in coco["frames"][0]["objects"]} == {"ball", "other"}
    if any(n.endswith("overlay.mp4") for n in names):
        assert (
            len(
                client.get(
                    next(f["url"] for f in out["files"] if f["name"].endswith("mp4"))
                ).content
            )
            > 1000
        )

    before = {f: ok(client.get(f"{url}/masks/{f}")) for f in range(6)}
    ok(client.post(f"{url}/save", json={"name": "clip1"}))
    again = open_(client, project="clip1")
    assert ok(client.get(f"/api/s/{again}"))["objects"] == ok(client.get(url))["objects"]
    for f in range(6):
        assert ok(client.get(f"/api/s/{again}/masks/{f}")) == before[f]
    assert ok(client.get(f"/api/s/{again}/scores")) == ok(client.get(f"{url}/scores"))
    # the reopened session goes on exactly as the original
    a = ok(client.post(f"{url}/click", json={"frame": 2, "obj": 2, "x": x2, "y": y2}))
    b = ok(client.post(f"/api/s/{again}/click", json={"frame": 2, "obj": 2, "x": x2, "y": y2}))
    assert a == b
    assert events(client, sid, start=2) == events(client, again, start=2)
    ok(client.post(f"/api/s/{again}/undo"))
    ok(client.delete(f"{url}/objects/2"))
    assert [o["id"] for o in ok(client.get(f"{url}/masks/4"))["objects"]] == [1]
    refused(client.delete(f"{url}/objects/2"), 404, "unknown object")


def test_cancel_and_busy(client: TestClient) -> None:
    sid = open_(client, path="clip")
    url = f"/api/s/{sid}"
    ok(client.post(f"{url}/objects", json={}))
    x, y = _centre(1)
    ok(client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": x, "y": y}))
    got = []
    with client.stream("GET", f"{url}/track") as r:
        for line in r.iter_lines():
            if not line.startswith("data: "):
                continue
            got.append(json.loads(line[6:]))
            if got[-1]["type"] == "frame" and got[-1]["frame"] == 1:
                refused(
                    client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": x, "y": y}),
                    409,
                    "tracking is running",
                )
                refused(client.get(f"{url}/track"), 409, "tracking is running")
                assert ok(client.post(f"{url}/cancel"))["cancelled"] is True
    assert got[-1]["type"] == "cancelled" and got[-1]["done"] < 6
    assert ok(client.post(f"{url}/cancel"))["cancelled"] is False
    ok(client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": x, "y": y}))  # usable again


def _direct(model: Any, folder: Path, mode: str, **prompt: Any) -> dict[int, Any]:
    """frame -> (mask, score) of object 1 from `VideoPredictor(memory=mode)`, one prompt."""
    predictor = VideoPredictor(model, memory=mode)
    s = predictor.init_session(str(folder))
    predictor.add_points(s, 0, 1, **prompt)
    out = {}
    for r in predictor.propagate(s):
        score = float(r.object_score_logits[0])
        out[r.frame_idx] = ((r.masks[0, 0] > 0).numpy() & (score > 0), round(score, 4))
    return out


def _same_as_direct(client: TestClient, sid: str, direct: dict[int, Any]) -> None:
    doc = client.app.state.studio.doc(sid)
    assert sorted(direct) == doc.tracked_frames() == list(range(len(direct)))
    for f, (mask, score) in direct.items():
        [(oid, got, got_score)] = doc.frame_masks(f)
        assert oid == 1 and np.array_equal(got, mask) and got_score == score, f


@pytest.mark.parametrize("mode", ["official", "motion", "distractor"])
def test_video_memory_mode_is_used_saved_and_reopened(
    client: TestClient, model: Any, root: Path, mode: str
) -> None:
    sid = open_(client, path="clip", memory=mode)
    url = f"/api/s/{sid}"
    info = ok(client.get(url))
    assert info["memory"] == mode and info["has_tracked"] is False
    ok(client.post(f"{url}/objects", json={}))
    x, y = _centre(1)
    ok(client.post(f"{url}/click", json={"frame": 0, "obj": 1, "x": x, "y": y}))
    assert events(client, sid)[-1]["type"] == "done"
    assert ok(client.get(url))["has_tracked"] is True
    doc = client.app.state.studio.doc(sid)
    assert doc.predictor.memory == mode
    state = doc.session.objects[1].selection  # the opt-in mode's per-object memory
    assert (state is None) == (mode == "official")
    if state is not None:
        assert state.memories and state.pointers
    click = {"points": [[x, y]], "labels": [1], "clear_old_points": False}
    _same_as_direct(client, sid, _direct(model, root / "clip", mode, **click))

    ok(client.post(f"{url}/save", json={"name": f"memory_{mode}"}))
    refused(
        client.post("/api/sessions", json={"project": f"memory_{mode}", "memory": "motion"}),
        400,
        "the memory mode it was saved with",
    )
    again = open_(client, project=f"memory_{mode}")
    assert ok(client.get(f"/api/s/{again}"))["memory"] == mode
    restored = client.app.state.studio.doc(again).session.objects[1].selection
    if state is not None:
        assert [f for f, _ in restored.memories] == [f for f, _ in state.memories]
    for f in range(6):
        assert ok(client.get(f"/api/s/{again}/masks/{f}")) == ok(client.get(f"{url}/masks/{f}"))
    # the reopened project goes on exactly as the original: a correction, then re-tracking
    fix = {"frame": 2, "obj": 1, "x": x + 15, "y": y, "label": 0}
    assert ok(client.post(f"{url}/click", json=fix)) == ok(
        client.post(f"/api/s/{again}/click", json=fix)
    )
    assert events(client, sid, start=2) == events(client, again, start=2)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[float]]:
    """A hard-case clip (8 frames; a look-alike crosses the target) on which the "motion"
    memory tracks differently from the official one, and a box around its target."""
    from sam2r.data.scenarios import make_scenario_video
    from sam2r.data.synthetic import SynthConfig

    video = make_scenario_video(0, "distractor", SynthConfig(num_frames=8))
    root = tmp_path_factory.mktemp("scenario")
    (root / "clip").mkdir()
    for i, frame in enumerate(video.frames):
        Image.fromarray(frame).save(root / "clip" / f"{i:05d}.png")
    ys, xs = np.nonzero(video.masks[0])
    return root, [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


def test_changing_the_memory_mode(
    model: Any, scenario: tuple[Path, list[float]], tmp_path: Path
) -> None:
    root, box = scenario
    app = build_app(root, model, workspace=tmp_path / "ws")
    with TestClient(app, base_url="http://127.0.0.1") as client:
        sid = open_(client, path="clip")
        url = f"/api/s/{sid}"
        assert ok(client.get(url))["memory"] == "official"  # the studio's default
        ok(client.post(f"{url}/objects", json={}))
        ok(client.post(f"{url}/box", json={"frame": 0, "obj": 1, "box": box}))
        # before tracking: changed freely (and back)
        r = ok(client.post(f"{url}/memory", json={"memory": "distractor"}))
        assert r == {"memory": "distractor", "cleared": False, "tracked": [0]}
        ok(client.post(f"{url}/memory", json={"memory": "official"}))
        events(client, sid)
        official = _direct(model, root / "clip", "official", box=box)
        _same_as_direct(client, sid, official)
        # after tracking: only when the caller confirms that the tracked masks go
        refused(client.post(f"{url}/memory", json={"memory": "motion"}), 409, "clears the tracked")
        refused(client.post(f"{url}/memory", json={"memory": "fast"}), 400, "must be one of")
        refused(client.post(f"{url}/memory", json={}), 400, "missing")
        wrong = {"memory": "motion", "clear": "yes"}
        refused(client.post(f"{url}/memory", json=wrong), 400, "clear")
        assert ok(client.get(url))["memory"] == "official"
        prompted = ok(client.get(f"{url}/masks/0"))
        r = ok(client.post(f"{url}/memory", json={"memory": "motion", "clear": True}))
        assert r == {"memory": "motion", "cleared": True, "tracked": [0]}
        assert ok(client.get(f"{url}/masks/0")) == prompted  # the prompted frame keeps its mask
        assert ok(client.get(f"{url}/masks/3"))["objects"] == []
        assert list(ok(client.get(f"{url}/scores"))["scores"]) == ["0"]
        info = ok(client.get(url))
        assert info["memory"] == "motion" and info["has_tracked"] is False
        events(client, sid)  # tracked again: as VideoPredictor(memory="motion") tracks
        motion = _direct(model, root / "clip", "motion", box=box)
        _same_as_direct(client, sid, motion)
        assert any(not np.array_equal(motion[f][0], official[f][0]) for f in motion)
        image = open_(client, path="clip/00000.png", memory="motion")  # images have none
        refused(client.post(f"/api/s/{image}/memory", json={"memory": "motion"}), 400, "video")
        refused(client.post("/api/sessions", json={"path": "clip", "memory": "x"}), 400, "memory")


def test_the_studio_default_memory_mode(model: Any, root: Path, tmp_path: Path) -> None:
    app = build_app(root, model, workspace=tmp_path / "ws", memory="motion")
    with TestClient(app, base_url="http://127.0.0.1") as c:
        assert ok(c.get("/api/info"))["memory"] == "motion"
        sid = open_(c, path="clip")
        assert ok(c.get(f"/api/s/{sid}"))["memory"] == "motion"
        info = ok(c.post("/api/sessions", json={"path": "clip", "memory": "official"}))
        assert info["memory"] == "official"
    with pytest.raises(ValueError, match="memory must be one of"):
        build_app(root, model, workspace=tmp_path / "ws", memory="fast")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"])
def test_the_command_serves_and_warns_off_loopback(host: str, tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    import httpx

    port = _free_port()
    cmd = [sys.executable, "-m", "sam2r", "studio", str(EXAMPLES / "shapes.png"), "--host", host]
    cmd += ["--port", str(port), "--workspace", str(tmp_path / "ws")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(300):
            try:
                info = httpx.get(f"http://127.0.0.1:{port}/api/info").json()
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("the studio did not start")
        assert info["initial"] == "shapes.png" and info["model"] == "sam2r_micro"
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    assert f":{port}/" in out
    assert ("warning" in err) == (host != "127.0.0.1")


def test_the_command_refuses_bad_options(tmp_path: Path) -> None:
    from sam2r.cli.main import main

    assert main(["studio", str(tmp_path / "missing.png"), "--workspace", str(tmp_path)]) == 2
    assert main(["studio", ".", "--port", "70000"]) == 2
    with pytest.raises(SystemExit):  # argparse: not one of the choices
        main(["studio", ".", "--memory", "fast"])
