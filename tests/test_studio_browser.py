"""The studio driven in a real browser: headless Chromium (Debian's package) through Playwright.

A person's session on the bundled example: open the clip from the Open dialog, click an object
and see its mask drawn on the canvas (pixels checked), track it, correct a frame (which
re-tracks from there), export, save a project, reload the page and reopen the project with the
same masks; then the image view: a click, the multimask candidates, "everything".
Skipped where Chromium or Playwright is missing (`.ci/run` installs both). With
`SAM2R_SCREENSHOTS=DIR` it saves screenshots of both views there (the README's come from it).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api")
if not CHROMIUM.exists():
    pytest.skip("no /usr/bin/chromium (apt-get install chromium)", allow_module_level=True)

from sam2r.build import from_pretrained  # noqa: E402
from sam2r.io.draw import label_anchor  # noqa: E402
from sam2r.studio import build_app  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLIP = EXAMPLES / "synth_davis" / "JPEGImages" / "480p" / "val_00000"
GT = EXAMPLES / "synth_davis" / "Annotations" / "480p" / "val_00000" / "00000.png"
RED = [128, 0, 0]  # object 1's colour: its contour is drawn solid in it
SHOTS = os.environ.get("SAM2R_SCREENSHOTS")
STUDIOS: dict[str, Any] = {}  # the server's URL -> its `Studio` (to look behind the page)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    root = tmp_path_factory.mktemp("root")
    shutil.copytree(CLIP, root / "clip")
    shutil.copy(EXAMPLES / "shapes.png", root / "shapes.png")
    app = build_app(root, from_pretrained("sam2r_micro"), workspace=root.parent / "ws")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    STUDIOS[f"http://127.0.0.1:{port}/"] = app.state.studio
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        yield b
        b.close()


def _page(browser: Any, url: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.errors = errors
    page.goto(url)
    page.wait_for_function("() => document.getElementById('model-name').textContent !== ''")
    return page


def _status(page: Any, prefix: str, timeout: float = 60_000) -> str:
    try:
        page.wait_for_function(
            "p => document.getElementById('status').textContent.startsWith(p)", arg=prefix,
            timeout=timeout,
        )  # fmt: skip
    except sync_api.TimeoutError:
        raise AssertionError(
            f"waited for status {prefix!r}; it says {page.locator('#status').text_content()!r}"
        ) from None
    return page.locator("#status").text_content()


def _open(page: Any, entry: str) -> None:
    page.click("#open-btn")
    page.locator("#entries li", has_text=entry).first.click()
    _status(page, "Opened")


def _click(page: Any, x: float, y: float, w: int, h: int, shift: bool = False) -> None:
    box = page.locator("#canvas").bounding_box()
    if shift:
        page.keyboard.down("Shift")
    page.mouse.click(
        box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h
    )
    if shift:
        page.keyboard.up("Shift")


def _at_frame(page: Any, n: int) -> None:
    page.wait_for_function(
        "n => document.getElementById('frame-label').textContent === `frame ${n} / 15`", arg=n
    )


def _pixel(page: Any, x: int, y: int) -> list[int]:
    return page.evaluate(
        "([x, y]) => Array.from(document.getElementById('canvas').getContext('2d')"
        ".getImageData(x, y, 1, 1).data.slice(0, 3))",
        [x, y],
    )


def _count(page: Any, rgb: list[int], canvas: str = "canvas") -> int:
    """Pixels of exactly this colour on a canvas."""
    return page.evaluate(
        """([id, c]) => { const cv = document.getElementById(id);
        const d = cv.getContext('2d').getImageData(0, 0, cv.width, cv.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4)
          if (d[i] === c[0] && d[i + 1] === c[1] && d[i + 2] === c[2]) n++;
        return n; }""",
        [canvas, rgb],
    )


def _object_1() -> tuple[int, int, int, int]:
    """A pixel x, y deep inside the clip's object 1 on frame 0, and the frame's w, h."""
    gt = np.array(Image.open(GT))
    x, y = label_anchor(gt == 1)
    return x, y, gt.shape[1], gt.shape[0]


def test_annotate_the_example_clip_end_to_end(server: str, browser: Any) -> None:
    x, y, w, h = _object_1()
    page = _page(browser, server)
    _open(page, "clip")
    assert "16 frames" in page.locator("#doc-name").text_content()
    before = _pixel(page, x, y)
    assert _count(page, RED) == 0

    _click(page, x, y, w, h)  # a click creates object 1 and segments it
    assert _status(page, "mask in").endswith("ms")
    after = _pixel(page, x, y)
    assert after != before  # the mask is filled over the frame there
    assert _count(page, RED) > 20  # its contour, in object 1's colour
    assert page.locator("#objects li").count() == 1

    page.click("#track-fwd")
    assert _status(page, "tracked 16 frames").startswith("tracked")
    assert page.locator("#frame-label").text_content() == "frame 15 / 15"
    assert _count(page, RED, "scoretrack") > 0  # the object-score track under the strip
    assert _count(page, RED) > 20  # the last frame shows the tracked mask

    # correction on frame 8: a negative click, then tracking starts again from there by itself
    page.locator("#scrubber").fill("8")
    page.wait_for_function(
        "() => document.getElementById('frame-label').textContent === 'frame 8 / 15'"
    )
    red8 = _count(page, RED)
    _click(page, x, y, w, h, shift=True)
    _status(page, "tracked 8 frames")
    page.locator("#scrubber").fill("8")
    page.wait_for_function(
        "() => document.getElementById('frame-label').textContent === 'frame 8 / 15'"
    )
    page.wait_for_timeout(300)
    assert _count(page, RED) != red8  # the correction changed the mask there

    page.click("#export-btn")
    _status(page, "exported")
    links = page.locator("#exports a").all_text_contents()
    assert any(s.endswith("masks.json") for s in links)
    assert sum(s.endswith(".png") for s in links) == 16

    page.on("dialog", lambda d: d.accept("e2e"))
    page.click("#save-btn")
    _status(page, "saved project e2e")
    if SHOTS:
        page.locator("#scrubber").fill("5")
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(SHOTS) / "studio_video.png"))
    red_frame0 = None
    page.locator("#scrubber").fill("0")
    page.wait_for_function(
        "() => document.getElementById('frame-label').textContent === 'frame 0 / 15'"
    )
    page.wait_for_timeout(300)
    red_frame0 = _count(page, RED)

    page.reload()  # a new session: nothing drawn, then the project brings everything back
    page.wait_for_function("() => document.getElementById('model-name').textContent !== ''")
    page.click("#open-btn")
    page.locator("#project-list li", has_text="e2e").click()
    _status(page, "reopened project e2e")
    page.wait_for_timeout(300)
    assert _count(page, RED) == red_frame0
    assert _count(page, RED, "scoretrack") > 0
    assert page.locator("#objects li").count() == 1
    assert page.errors == []


def test_image_view(server: str, browser: Any) -> None:
    page = _page(browser, server)
    page.set_input_files("#upload", str(EXAMPLES / "shapes.png"))  # opened by upload
    _status(page, "Opened shapes")
    assert page.locator("#video-controls").is_hidden()
    with Image.open(EXAMPLES / "shapes.png") as im:
        w, h = im.size
    _click(page, 148, 156, w, h)
    _status(page, "mask in")
    assert _count(page, RED) > 20
    assert page.locator("#candidates button").count() == 3  # one click: choose among 3
    page.locator("#candidates button").nth(0).click()
    page.wait_for_function(
        "() => document.querySelector('#candidates button').className === 'chosen'"
    )
    assert page.locator("#candidates button.chosen").count() == 1
    page.locator("#objects li .hide-btn").click()  # hidden: not drawn, still there
    page.wait_for_function(
        "() => document.querySelector('#objects .hide-btn').textContent === 'show'"
    )
    assert _count(page, RED) == 0
    page.locator("#objects li .hide-btn").click()
    page.wait_for_function(
        "() => document.querySelector('#objects .hide-btn').textContent === 'hide'"
    )
    assert _count(page, RED) > 20
    page.locator("#objects li input").fill("disc")
    page.locator("#objects li input").press("Enter")
    page.wait_for_timeout(300)
    page.click("#undo-btn")
    _status(page, "undone")
    assert _count(page, RED) == 0
    page.click("#everything-btn")
    found = _status(page, "everything:", timeout=120_000)
    assert int(found.split()[1]) >= 1  # the bundled model finds the shapes
    assert page.locator("#objects li").count() == 1 + int(found.split()[1])
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / "studio_image.png"))
    assert page.locator("#objects li input").first.input_value() == "disc"  # renamed
    page.locator("#objects li .remove-btn").first.click()
    left = int(found.split()[1])  # the objects "everything" added (as many as the model finds)
    page.wait_for_function(f"() => document.querySelectorAll('#objects li').length === {left}")
    assert page.errors == []


def test_memory_mode_chosen_in_the_page(server: str, browser: Any) -> None:
    x, y, w, h = _object_1()
    page = _page(browser, server)
    _open(page, "clip")
    assert page.locator("#memory").input_value() == "official"  # the studio's default
    page.select_option("#memory", "motion")  # before tracking: no question asked
    _status(page, "memory: motion")
    _click(page, x, y, w, h)
    _status(page, "mask in")
    page.click("#track-fwd")
    _status(page, "tracked 16 frames")
    docs = [d for d in STUDIOS[server].docs.values() if getattr(d, "memory", None) == "motion"]
    assert len(docs) == 1 and docs[0].session.objects[1].selection is not None  # applied
    assert _count(page, RED, "scoretrack") > 0
    if SHOTS:
        page.locator("#scrubber").fill("5")
        page.wait_for_timeout(500)
        page.screenshot(path=str(Path(SHOTS) / "studio_memory.png"))
    tracked_track = _count(page, RED, "scoretrack")

    # after tracking the page asks first: dismissed, nothing changes
    page.once("dialog", lambda d: d.dismiss())
    page.select_option("#memory", "distractor")
    page.wait_for_function("() => document.getElementById('memory').value === 'motion'")
    assert docs[0].memory == "motion" and docs[0].session.has_tracked
    # accepted: the tracked masks are cleared, the prompt stays; tracking again uses the mode
    messages: list[str] = []
    page.once("dialog", lambda d: (messages.append(d.message), d.accept()))
    page.select_option("#memory", "distractor")
    _status(page, "memory: distractor (tracked masks cleared")
    assert "cleared" in messages[0] and docs[0].memory == "distractor"
    assert 0 < _count(page, RED, "scoretrack") < tracked_track  # only the prompted frame left
    page.click("#track-fwd")
    _status(page, "tracked 16 frames")
    assert docs[0].session.objects[1].selection is not None
    assert _count(page, RED, "scoretrack") == tracked_track
    assert page.errors == []
