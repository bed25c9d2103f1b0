// sam2r studio: the page. Plain JavaScript, no build step, no network beyond its own server.
// State lives in `S`; every server answer that carries masks goes through `showMasks`.
"use strict";

const S = {
  sid: null, kind: null, w: 0, h: 0, n: 1, name: "",
  objects: [], active: null, frame: 0,
  image: null, masks: { objects: [], prompts: [] },
  scores: {}, tracked: new Set(), tracking: null, lastTrackFrame: -1,
  memory: "official", hasTracked: false,
};
const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const ctx = canvas.getContext("2d", { willReadFrequently: true });

// ---------------------------------------------------------------------------------------------
// server
// ---------------------------------------------------------------------------------------------
async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}
const sapi = (method, path, body) => api(method, `/api/s/${S.sid}${path}`, body);

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}
async function guarded(fn) {
  try { return await fn(); } catch (e) { status(e.message, true); }
}

// ---------------------------------------------------------------------------------------------
// masks: run lengths -> pixels; fill, contour, white outer line, id (as sam2r.io.draw does)
// ---------------------------------------------------------------------------------------------
function decode(rle) {
  const [h, w] = rle.size, out = new Uint8Array(h * w);
  let pos = 0, val = 0;
  for (const c of rle.counts) { if (val) out.fill(1, pos, pos + c); pos += c; val ^= 1; }
  return out;
}
function erode(m, w, h) {
  const o = new Uint8Array(m.length);
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const i = y * w + x;
    o[i] = m[i] & m[i - 1] & m[i + 1] & m[i - w] & m[i + w];
  }
  return o;
}
function dilate(m, w, h) {
  const o = new Uint8Array(m.length);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * w + x;
    o[i] = m[i] | (x > 0 && m[i - 1]) | (x < w - 1 && m[i + 1]) | (y > 0 && m[i - w]) | (y < h - 1 && m[i + w]);
  }
  return o;
}
const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16));

function draw(drag) {
  if (!S.image) return;
  ctx.drawImage(S.image, 0, 0, S.w, S.h);
  const img = ctx.getImageData(0, 0, S.w, S.h), px = img.data;
  const visible = S.masks.objects.filter((o) => o.mask && !objectById(o.id)?.hidden);
  const thick = Math.max(2, Math.round(Math.max(S.w, S.h) / 240));
  const decoded = visible.map((o) => [o, decode(o.mask), hex(objectById(o.id)?.color || "#ffffff")]);
  for (const [, m, col] of decoded) {
    for (let i = 0; i < m.length; i++) if (m[i]) {
      const j = 4 * i;
      px[j] = 0.5 * px[j] + 0.5 * col[0]; px[j + 1] = 0.5 * px[j + 1] + 0.5 * col[1]; px[j + 2] = 0.5 * px[j + 2] + 0.5 * col[2];
    }
  }
  for (const [, m, col] of decoded) {
    let inner = m;
    for (let t = 0; t < thick; t++) inner = erode(inner, S.w, S.h);
    const outer = dilate(m, S.w, S.h);
    for (let i = 0; i < m.length; i++) {
      const j = 4 * i;
      if (outer[i] && !m[i]) { px[j] = px[j + 1] = px[j + 2] = 255; }
      else if (m[i] && !inner[i]) { px[j] = col[0]; px[j + 1] = col[1]; px[j + 2] = col[2]; }
    }
  }
  ctx.putImageData(img, 0, 0);
  const size = Math.max(14, Math.round(Math.max(S.w, S.h) / 32));
  ctx.font = `bold ${size}px sans-serif`;
  ctx.textAlign = "center"; ctx.textBaseline = "middle";
  ctx.lineWidth = Math.max(2, size / 6); ctx.strokeStyle = "#000"; ctx.fillStyle = "#fff";
  for (const [o] of decoded) {
    if (!o.mask.anchor) continue;
    const [x, y] = o.mask.anchor;
    ctx.strokeText(String(o.id), x, y); ctx.fillText(String(o.id), x, y);
  }
  drawPrompts();
  if (drag) {
    ctx.strokeStyle = "#fff"; ctx.setLineDash([6, 4]); ctx.lineWidth = 2;
    ctx.strokeRect(drag[0], drag[1], drag[2] - drag[0], drag[3] - drag[1]);
    ctx.setLineDash([]);
  }
}
function drawPrompts() {
  const r = Math.max(4, Math.round(Math.max(S.w, S.h) / 160));
  for (const p of S.masks.prompts || []) {
    if (objectById(p.id)?.hidden) continue;
    const col = objectById(p.id)?.color || "#fff";
    if (p.box) {
      ctx.strokeStyle = col; ctx.lineWidth = 2;
      ctx.strokeRect(p.box[0], p.box[1], p.box[2] - p.box[0], p.box[3] - p.box[1]);
    }
    for (const [x, y, label] of p.points || []) {
      ctx.beginPath(); ctx.arc(x, y, r, 0, 2 * Math.PI);
      ctx.fillStyle = label ? "#2ecc40" : "#ff4136"; ctx.fill();
      ctx.strokeStyle = "#fff"; ctx.lineWidth = 1.5; ctx.stroke();
    }
  }
}

// ---------------------------------------------------------------------------------------------
// objects panel
// ---------------------------------------------------------------------------------------------
const objectById = (id) => S.objects.find((o) => o.id === id);

function renderObjects() {
  const ul = $("objects");
  ul.innerHTML = "";
  for (const o of S.objects) {
    const li = document.createElement("li");
    li.dataset.id = o.id;
    li.className = o.id === S.active ? "active" : "";
    li.innerHTML = `<span class="swatch" style="background:${o.color}"></span><span>#${o.id}</span>`;
    const name = document.createElement("input");
    name.value = o.name; name.title = "rename";
    name.onchange = () => guarded(async () => { Object.assign(o, await sapi("PATCH", `/objects/${o.id}`, { name: name.value })); });
    const eye = document.createElement("button");
    eye.textContent = o.hidden ? "show" : "hide"; eye.className = "hide-btn";
    eye.onclick = (e) => { e.stopPropagation(); guarded(async () => { Object.assign(o, await sapi("PATCH", `/objects/${o.id}`, { hidden: !o.hidden })); renderObjects(); draw(); drawScores(); }); };
    const del = document.createElement("button");
    del.textContent = "×"; del.title = "remove"; del.className = "remove-btn";
    del.onclick = (e) => { e.stopPropagation(); guarded(() => removeObject(o.id)); };
    li.append(name, eye, del);
    li.onclick = () => { S.active = o.id; renderObjects(); };
    ul.append(li);
  }
  renderCandidates();
}
function renderCandidates() {
  const box = $("candidates");
  box.innerHTML = "";
  const m = S.masks.objects.find((o) => o.id === S.active);
  if (S.kind !== "image" || !m || !m.candidates || m.candidates.length < 2) return;
  m.candidates.forEach((score, i) => {
    const b = document.createElement("button");
    b.textContent = `mask ${i + 1} (${score.toFixed(2)})`;
    b.className = i === m.chosen ? "chosen" : "";
    b.onclick = () => guarded(async () => showMasks(await sapi("POST", "/candidate", { obj: S.active, index: i })));
    box.append(b);
  });
}
async function newObject() {
  const o = await sapi("POST", "/objects", {});
  S.objects.push(o); S.active = o.id; renderObjects();
  return o;
}
async function removeObject(id) {
  await sapi("DELETE", `/objects/${id}`);
  S.objects = S.objects.filter((o) => o.id !== id);
  if (S.active === id) S.active = S.objects.length ? S.objects[S.objects.length - 1].id : null;
  for (const f of Object.keys(S.scores)) delete S.scores[f][id];
  renderObjects();
  await loadMasks(S.frame);
  drawScores();
}

// ---------------------------------------------------------------------------------------------
// documents and frames
// ---------------------------------------------------------------------------------------------
async function openDoc(request) {
  if (S.tracking) await cancelTrack();
  if (S.sid) navigator.sendBeacon(`/api/s/${S.sid}/close`);
  const info = await api("POST", "/api/sessions", request);
  Object.assign(S, {
    sid: info.session, kind: info.kind, w: info.width, h: info.height, n: info.num_frames,
    name: info.name, objects: info.objects, frame: 0, scores: {}, tracked: new Set(),
    active: info.objects.length ? info.objects[0].id : null,
    memory: info.memory || S.memory, hasTracked: !!info.has_tracked,
  });
  $("memory").value = S.memory;
  canvas.width = S.w; canvas.height = S.h;
  fitCanvas();
  $("doc-name").textContent = `${info.name} (${info.kind}${info.kind === "video" ? `, ${info.num_frames} frames` : ""})`;
  for (const id of ["new-obj", "undo-btn", "save-btn", "export-btn"]) $(id).disabled = false;
  $("everything-btn").hidden = $("everything-btn").disabled = info.kind !== "image";
  $("video-controls").hidden = info.kind !== "video";
  fitCanvas();
  $("scrubber").max = S.n - 1;
  $("exports").innerHTML = "";
  if (info.kind === "video") {
    const sc = await sapi("GET", "/scores");
    S.scores = sc.scores;
    S.tracked = new Set(Object.keys(sc.scores).map(Number));
  }
  renderObjects();
  await gotoFrame(0);
  status(`Opened ${info.name}. Click on an object to segment it.`);
}
function loadImage(url) {
  return new Promise((ok, fail) => {
    const im = new Image();
    im.onload = () => ok(im);
    im.onerror = () => fail(new Error(`cannot load ${url}`));
    im.src = url;
  });
}
async function loadMasks(f) { S.masks = await sapi("GET", `/masks/${f}`); renderCandidates(); draw(); }
async function gotoFrame(f, masks) {
  f = Math.max(0, Math.min(S.n - 1, f));
  S.frame = f;
  $("scrubber").value = f;
  $("frame-label").textContent = `frame ${f} / ${S.n - 1}`;
  const im = await loadImage(`/api/s/${S.sid}/frame/${f}`);
  if (S.frame !== f) return; // a later request won
  S.image = im;
  if (masks) { S.masks = masks; renderCandidates(); draw(); } else await loadMasks(f);
  if (S.kind === "video") { renderStrip(); drawScores(); }
}
function showMasks(m) {
  if (m.frame !== S.frame) return gotoFrame(m.frame, m);
  S.masks = m; renderCandidates(); draw();
}
function renderStrip() {
  const strip = $("strip"), k = 5;
  strip.innerHTML = "";
  for (let f = Math.max(0, S.frame - k); f <= Math.min(S.n - 1, S.frame + k); f++) {
    const im = document.createElement("img");
    im.src = `/api/s/${S.sid}/frame/${f}?width=96`;
    im.title = `frame ${f}`; im.className = f === S.frame ? "current" : "";
    im.onclick = () => guarded(() => gotoFrame(f));
    strip.append(im);
  }
}
function drawScores() {
  const c = $("scoretrack"), g = c.getContext("2d");
  c.width = c.clientWidth || 600;
  const objs = S.objects.filter((o) => !o.hidden);
  const rowH = Math.max(3, Math.floor(24 / Math.max(1, objs.length)));
  c.height = Math.max(24, rowH * objs.length);
  g.clearRect(0, 0, c.width, c.height);
  const fw = c.width / S.n;
  objs.forEach((o, r) => {
    for (const [f, sc] of Object.entries(S.scores)) {
      const s = sc[o.id];
      if (s === undefined) continue;
      g.fillStyle = s > 0 ? o.color : "#555"; // grey: the object is occluded / absent here
      g.fillRect(Math.floor(f * fw), r * rowH, Math.max(1, Math.ceil(fw)), rowH - 1);
    }
  });
  g.fillStyle = "#fff";
  g.fillRect(Math.floor((S.frame + 0.5) * fw) - 1, 0, 2, c.height);
}

// ---------------------------------------------------------------------------------------------
// prompts
// ---------------------------------------------------------------------------------------------
function toImage(e) {
  const r = canvas.getBoundingClientRect();
  return [(e.clientX - r.left) * S.w / r.width, (e.clientY - r.top) * S.h / r.height];
}
let down = null;
canvas.addEventListener("contextmenu", (e) => e.preventDefault());
canvas.addEventListener("mousedown", (e) => { if (S.sid) down = { p: toImage(e), e }; });
canvas.addEventListener("mousemove", (e) => {
  if (!down) return;
  const [x, y] = toImage(e);
  if (Math.hypot(x - down.p[0], y - down.p[1]) > 5 * S.w / canvas.getBoundingClientRect().width) {
    draw([Math.min(down.p[0], x), Math.min(down.p[1], y), Math.max(down.p[0], x), Math.max(down.p[1], y)]);
  }
});
canvas.addEventListener("mouseup", (e) => {
  if (!down) return;
  const start = down; down = null;
  const [x, y] = toImage(e);
  const far = Math.hypot(x - start.p[0], y - start.p[1]) > 5 * S.w / canvas.getBoundingClientRect().width;
  const clamp = (v, m) => Math.max(0, Math.min(m, v));
  if (far) {
    const box = [clamp(Math.min(start.p[0], x), S.w), clamp(Math.min(start.p[1], y), S.h),
      clamp(Math.max(start.p[0], x), S.w), clamp(Math.max(start.p[1], y), S.h)];
    guarded(() => sendPrompt("/box", { box }));
  } else {
    const label = e.shiftKey || e.button === 2 ? 0 : 1;
    guarded(() => sendPrompt("/click", { x: clamp(start.p[0], S.w), y: clamp(start.p[1], S.h), label }));
  }
});
async function sendPrompt(path, body) {
  if (S.tracking) await cancelTrack();
  if (S.active === null) await newObject();
  const t0 = performance.now();
  const m = await sapi("POST", path, { frame: S.frame, obj: S.active, ...body });
  showMasks(m);
  status(`mask in ${Math.round(performance.now() - t0)} ms`);
  if (S.kind === "video") {
    const mine = m.objects.find((o) => o.id === S.active);
    if (mine) { (S.scores[S.frame] ||= {})[S.active] = mine.score; drawScores(); }
    const later = [...S.tracked].some((f) => f > S.frame);
    if ($("retrack").checked && S.tracked.has(S.frame) && later) startTrack("forward", S.frame);
  }
}
async function undo() {
  if (S.tracking) await cancelTrack();
  showMasks(await sapi("POST", "/undo"));
  status("undone");
}

// ---------------------------------------------------------------------------------------------
// tracking: a streamed response of server-sent events, read with fetch (no auto-reconnect)
// ---------------------------------------------------------------------------------------------
async function startTrack(direction, start) {
  if (S.tracking) return;
  const ctl = new AbortController();
  S.tracking = ctl;
  $("cancel-btn").disabled = false;
  const q = new URLSearchParams({ direction });
  if (start !== undefined) q.set("start", start);
  const t0 = performance.now();
  let done = 0;
  try {
    const r = await fetch(`/api/s/${S.sid}/track?${q}`, { signal: ctl.signal });
    if (!r.ok) throw new Error((await r.json().catch(() => ({}))).error || r.statusText);
    const reader = r.body.getReader(), dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done: end } = await reader.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let k;
      while ((k = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, k); buf = buf.slice(k + 2);
        if (!line.startsWith("data: ")) continue;
        const ev = JSON.parse(line.slice(6));
        done = ev.done ?? done;
        onTrackEvent(ev, t0);
      }
    }
  } catch (e) {
    if (e.name !== "AbortError") status(e.message, true);
  } finally {
    S.tracking = null;
    $("cancel-btn").disabled = true;
  }
}
function onTrackEvent(ev, t0) {
  const p = $("progress");
  if (ev.type === "start") { p.max = Math.max(1, ev.total); p.value = 0; status(`tracking ${ev.total} frames…`); return; }
  if (ev.type === "frame") {
    p.value = ev.done;
    S.hasTracked = true;
    S.tracked.add(ev.frame);
    const sc = (S.scores[ev.frame] = {});
    for (const o of ev.objects) sc[o.id] = o.score;
    S.lastTrackFrame = ev.frame;
    const fps = ev.done / ((performance.now() - t0) / 1000);
    status(`tracking: ${ev.done} / ${ev.total} frames (${fps.toFixed(1)} frames/s)`);
    gotoFrame(ev.frame, { frame: ev.frame, objects: ev.objects, prompts: ev.prompts });
    return;
  }
  if (ev.type === "done") status(`tracked ${ev.done} frames in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  if (ev.type === "cancelled") status(`tracking cancelled after ${ev.done} frames`);
  if (ev.type === "error") status(`tracking failed: ${ev.message}`, true);
}
async function cancelTrack() {
  if (!S.tracking) return;
  const ctl = S.tracking;
  await sapi("POST", "/cancel").catch(() => {});
  for (let i = 0; i < 200 && S.tracking === ctl; i++) await new Promise((r) => setTimeout(r, 25));
  if (S.tracking === ctl) ctl.abort();
}

// the memory mode of the video: changed before tracking freely; after tracking it clears the
// tracked masks (prompts stay), once the person confirms
async function setMemory(mode) {
  const sel = $("memory");
  if (!S.sid || S.kind !== "video" || mode === S.memory) return;
  if (S.tracking) await cancelTrack();
  const clear = S.hasTracked;
  if (clear && !window.confirm(`Track with the "${mode}" memory instead of "${S.memory}"?\n\n` +
      "The tracked masks of this video are cleared (your prompts stay); track again afterwards.")) {
    sel.value = S.memory;
    return;
  }
  let r;
  try { r = await sapi("POST", "/memory", { memory: mode, clear }); } catch (e) { sel.value = S.memory; throw e; }
  S.memory = r.memory;
  if (r.cleared) {
    S.hasTracked = false;
    S.scores = (await sapi("GET", "/scores")).scores;
    S.tracked = new Set(r.tracked);
    await loadMasks(S.frame);
    drawScores();
  }
  status(`memory: ${r.memory}${r.cleared ? " (tracked masks cleared: track again)" : ""}`);
}

// ---------------------------------------------------------------------------------------------
// files, projects, exports
// ---------------------------------------------------------------------------------------------
async function browse(path) {
  const [listing, projects] = await Promise.all([
    api("GET", `/api/browse?path=${encodeURIComponent(path)}`), api("GET", "/api/projects")]);
  $("crumbs").textContent = `folder: /${path}`;
  const ul = $("entries");
  ul.innerHTML = "";
  if (path) {
    const up = document.createElement("li");
    up.textContent = "⬑ ..";
    up.onclick = () => guarded(() => browse(path.split("/").slice(0, -1).join("/")));
    ul.append(up);
  }
  for (const e of listing.entries) {
    const li = document.createElement("li");
    li.innerHTML = `${e.name}<span class="kind">${e.kind === "video" && !/\.\w+$/.test(e.name) ? "frame folder" : e.kind}</span>`;
    li.onclick = () => guarded(async () => {
      if (e.kind === "folder") return browse(e.path);
      $("open-dialog").close();
      await openDoc({ path: e.path, memory: $("memory").value });
    });
    ul.append(li);
  }
  const pl = $("project-list");
  pl.innerHTML = projects.projects.length ? "" : "<li>(none saved yet)</li>";
  for (const p of projects.projects) {
    const li = document.createElement("li");
    li.innerHTML = `${p.name}<span class="kind">${p.kind} project</span>`;
    li.onclick = () => guarded(async () => { $("open-dialog").close(); await openDoc({ project: p.name }); status(`reopened project ${p.name}`); });
    pl.append(li);
  }
}
async function upload(file) {
  status(`uploading ${file.name}…`);
  const r = await fetch(`/api/upload?name=${encodeURIComponent(file.name.replace(/[^A-Za-z0-9_.-]/g, "_"))}`, { method: "POST", body: file });
  const data = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(data.error);
  await openDoc({ upload: data.upload, memory: $("memory").value });
}
async function exportDoc() {
  const formats = [...document.querySelectorAll(".fmt:checked")].map((c) => c.value);
  status("exporting…");
  const r = await sapi("POST", "/export", { formats });
  const div = $("exports");
  div.innerHTML = `<b>Exported to</b> ${r.path}`;
  for (const f of r.files.slice(0, 40)) {
    const a = document.createElement("a");
    a.href = f.url; a.textContent = f.name; a.download = "";
    div.append(a);
  }
  status(`exported ${r.files.length} file(s)`);
}
async function saveProject() {
  const name = window.prompt("Project name", S.name);
  if (!name) return;
  const r = await sapi("POST", "/save", { name });
  status(`saved project ${r.project} (${(r.bytes / 1024).toFixed(0)} KB)`);
}

// ---------------------------------------------------------------------------------------------
// wiring
// ---------------------------------------------------------------------------------------------
$("open-btn").onclick = () => guarded(async () => { await browse(""); $("open-dialog").showModal(); });
$("close-dialog").onclick = () => $("open-dialog").close();
$("upload").onchange = (e) => guarded(() => upload(e.target.files[0]));
$("new-obj").onclick = () => guarded(newObject);
$("undo-btn").onclick = () => guarded(undo);
$("everything-btn").onclick = () => guarded(async () => {
  status("segmenting everything…");
  const r = await sapi("POST", "/everything", { points_per_side: 16 });
  S.objects = (await sapi("GET", "")).objects;
  renderObjects(); showMasks(r);
  status(`everything: ${r.added} mask(s) added as objects`);
});
$("export-btn").onclick = () => guarded(exportDoc);
$("save-btn").onclick = () => guarded(saveProject);
$("scrubber").oninput = (e) => guarded(() => gotoFrame(Number(e.target.value)));
$("prev-btn").onclick = () => guarded(() => gotoFrame(S.frame - 1));
$("next-btn").onclick = () => guarded(() => gotoFrame(S.frame + 1));
$("track-fwd").onclick = () => guarded(() => startTrack("forward"));
$("track-back").onclick = () => guarded(() => startTrack("backward", S.frame));
$("track-both").onclick = () => guarded(() => startTrack("both"));
$("cancel-btn").onclick = () => guarded(cancelTrack);
$("memory").onchange = (e) => guarded(() => setMemory(e.target.value));
document.addEventListener("keydown", (e) => {
  if (!S.sid || e.target.tagName === "INPUT" || e.target.tagName === "SELECT") return;
  if (e.key === "ArrowLeft") guarded(() => gotoFrame(S.frame - 1));
  else if (e.key === "ArrowRight") guarded(() => gotoFrame(S.frame + 1));
  else if (e.key === "z" && (e.ctrlKey || e.metaKey)) guarded(undo);
  else if (e.key === "n") guarded(newObject);
});
window.addEventListener("pagehide", () => { if (S.sid) navigator.sendBeacon(`/api/s/${S.sid}/close`); });
window.addEventListener("resize", () => { fitCanvas(); if (S.kind === "video") drawScores(); });
function fitCanvas() {
  // scale the canvas (its pixels are the image's) to fill the stage, small images included
  const st = $("stage"), k = Math.min(st.clientWidth / S.w, st.clientHeight / S.h);
  if (!(k > 0)) return;
  canvas.style.width = `${Math.floor(S.w * k)}px`;
  canvas.style.height = `${Math.floor(S.h * k)}px`;
}

(async () => {
  const info = await api("GET", "/api/info");
  $("model-name").textContent = `${info.model} · sam2r ${info.version}`;
  S.memory = $("memory").value = info.memory || "official";
  if (info.initial !== null) await guarded(() => openDoc({ path: info.initial }));
})();
