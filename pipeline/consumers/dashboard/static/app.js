// affectstream dashboard: renders the snapshots that /events streams (server-sent events).
// Plain DOM, SVG and canvas, no libraries; values from Redis go in through textContent and attributes only.
"use strict";

const COLOURS = {  // same colours as `affectstream render` (pipeline/render.py)
  neutral: "#c8c8c8", happiness: "#3cc83c", happy: "#3cc83c", surprise: "#ffd700",
  sadness: "#2878c8", sad: "#2878c8", anger: "#e62828", disgust: "#5a8c28",
  fear: "#b43cb4", contempt: "#a05a5a", other: "#969696",
};
const V_COLOUR = "#e6a01e", A_COLOUR = "#e63c3c";
const ACTIVE = new Set(["live", "starting", "reconnecting"]);
const SNAPSHOT_EVERY_MS = 3000;
// A worker writes a source's first snapshot within `snapshots.every_s` (5 s by default) of the page's first
// request; until then "none yet" means "coming", not "off": the server's explanation is shown only after this.
const FIRST_SNAPSHOT_WAIT_MS = 12000;
const SCALES = [0.1, 0.2, 0.25, 0.5, 0.75, 1];  // circumplex and timeline axes: the smallest that fits
const MAX_TIMELINES = 6;
const SVG = "http://www.w3.org/2000/svg";
const cameras = new Map();  // source -> {card, img, note, faces, timer, url}
let selected = "";
let last = null;

function colour(label) {
  const known = COLOURS[String(label).toLowerCase()];
  if (known) return known;
  let h = 0;
  for (const c of String(label)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return `hsl(${h % 360} 55% 60%)`;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

const signed = (x) => (x == null ? "n/a" : (x >= 0 ? "+" : "\u2212") + Math.abs(x).toFixed(2));
const num = (x, digits = 1) => (x == null ? "\u2013" : Number(x).toFixed(digits));
const pct = (x) => (x == null ? "" : `${(100 * x).toFixed(x > 0 && x < 0.01 ? 1 : 0)}%`);
const scaleFor = (m) => SCALES.find((s) => s >= m * 1.05) ?? 1;

function ago(seconds, ts) {
  if (seconds == null) return "\u2013";
  if (seconds < 3) return "now";
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  const clock = new Date(ts * 1000).toLocaleTimeString();
  return seconds < 5400 ? `${clock} (${Math.round(seconds / 60)} min ago)` : `${clock} (${(seconds / 3600).toFixed(1)} h ago)`;
}

// -- sources table ---------------------------------------------------------------------------------
function cell(label, cls, ...children) {
  return el("td", { class: cls, "data-label": label }, ...children);
}

function sourceRow(s, threshold) {
  const status = cell("status", "status-cell",
    el("span", { class: `status status-${s.status}`, text: s.status }),
    s.detail ? el("span", { class: "detail", text: s.detail }) : null,
    s.dropping ? el("span", { class: "warn", text: `dropping ${pct(s.drop_share)}` ,
                              title: `over ${pct(threshold)} of decoded frames dropped in the last minute` }) : null);
  const owner = s.worker ? [el("span", { text: s.worker }), s.member ? el("span", { class: "muted", text: ` @ ${s.member}` }) : null] : ["\u2013"];
  const drops = s.dropped_1m == null ? "\u2013" : `${s.dropped_1m} (${pct(s.drop_share)})`;
  const kind = s.kind ? el("span", { class: "kind", text: s.kind }) : null;
  return el("tr", { class: `source row-${s.status}${s.dropping ? " dropping" : ""}`, "data-source": s.name, "data-status": s.status },
    cell("source", "source-name", el("span", { class: "name", text: s.name }), kind),
    status,
    cell("owner", "owner", ...owner),
    cell("input fps", "num input-fps", num(s.input_fps)),
    cell("processed fps", "num fps", num(s.fps)),
    cell("dropped 1 min", "num drops", drops),
    cell("p50 / p95 ms", "num latency", `${num(s.latency_p50_ms, 0)} / ${num(s.latency_p95_ms, 0)}`),
    cell("reconnects", "num reconnects", s.reconnects == null ? "\u2013" : String(s.reconnects)),
    cell("faces", "num faces", String(s.faces.length)),
    cell("last seen", "last-seen", ago(s.last_age_s, s.last_seen)));
}

function renderSources(snap) {
  const body = document.querySelector("#sources tbody");
  const threshold = snap.settings.drop_warning;
  body.replaceChildren(...snap.sources.map((s) => sourceRow(s, threshold)));
  document.getElementById("no-sources").hidden = snap.sources.length > 0;
  const dropping = snap.sources.filter((s) => s.dropping);
  const banner = document.getElementById("drop-warning");
  banner.hidden = dropping.length === 0;
  banner.textContent = dropping.length ? `Dropping frames: ${dropping.map((s) => `${s.name} ${pct(s.drop_share)}`).join(", ")} ` +
    `of its input in the last minute (warning above ${pct(threshold)}): the worker cannot keep up.` : "";
}

// -- filter ----------------------------------------------------------------------------------------
function renderFilter(sources) {
  const select = document.getElementById("filter");
  const names = sources.map((s) => s.name);
  const have = [...select.options].slice(1).map((o) => o.value);
  if (have.join("\n") !== names.join("\n")) {
    select.replaceChildren(el("option", { value: "", text: "all sources" }),
      ...names.map((n) => el("option", { value: n, text: n })));
    if (selected && !names.includes(selected)) selected = "";
    select.value = selected;
  }
}

// -- cameras ---------------------------------------------------------------------------------------
async function refreshSnapshot(name) {
  const cam = cameras.get(name);
  if (!cam || cam.status === "reconnecting") return;
  try {
    const response = await fetch(`api/snapshot/${encodeURIComponent(name)}`, { cache: "no-store" });
    if (!cameras.has(name)) return;
    if (response.ok) {
      const url = URL.createObjectURL(await response.blob());
      cam.img.onload = () => { if (cam.url && cam.url !== url) URL.revokeObjectURL(cam.url); cam.url = url; };
      cam.img.src = url;
      cam.img.hidden = false;
      cam.note.hidden = true;
    } else if (!cam.img.hidden) {
      // keep showing the last picture; the next request brings a newer one
    } else {
      cam.note.hidden = false;
      const waiting = response.status === 404 && Date.now() - cam.askedAt < FIRST_SNAPSHOT_WAIT_MS;
      cam.note.textContent = waiting ? "waiting for the first snapshot\u2026" : await response.text();
    }
  } catch (err) {
    cam.note.hidden = false;
    cam.note.textContent = "snapshot request failed";
  }
}

function faceLine(f) {
  return el("div", { class: "face", "data-track": String(f.track) },
    el("span", { class: "face-track", text: `#${f.track}` }),
    el("span", { class: "face-expr", style: `color:${colour(f.expr)}`, text: f.expr }),
    el("span", { class: "num muted", text: `${(100 * f.conf).toFixed(0)}%` }),
    el("span", { class: "num va-v", title: "valence", text: signed(f.valence) }),
    el("span", { class: "num va-a", title: "arousal", text: signed(f.arousal) }));
}

function renderCameras(sources) {
  const box = document.getElementById("cameras");
  const active = sources.filter((s) => ACTIVE.has(s.status));
  for (const [name, cam] of cameras) {
    if (!active.some((s) => s.name === name)) {
      clearInterval(cam.timer);
      if (cam.url) URL.revokeObjectURL(cam.url);
      cameras.delete(name);
    }
  }
  const cards = active.map((s) => {
    let cam = cameras.get(s.name);
    if (!cam) {
      const img = el("img", { class: "snapshot", alt: `latest frame of ${s.name}` });
      img.hidden = true;
      const note = el("p", { class: "note muted", text: "asking for a snapshot\u2026" });
      const faces = el("div", { class: "faces" });
      const title = el("h3", {}, el("span", { class: "cam-name", text: s.name }), el("span", { class: "status-dot" }));
      const card = el("div", { class: "camera", "data-source": s.name }, title, el("div", { class: "frame" }, img, note), faces);
      cam = { card, img, note, faces, title, url: null, status: s.status, askedAt: Date.now() };
      cameras.set(s.name, cam);
      cam.timer = setInterval(() => refreshSnapshot(s.name), SNAPSHOT_EVERY_MS);
      setTimeout(() => refreshSnapshot(s.name), 0);
    }
    cam.status = s.status;
    cam.card.dataset.status = s.status;
    cam.card.classList.toggle("selected", s.name === selected);
    cam.title.lastChild.className = `status-dot status-${s.status}`;
    cam.title.lastChild.textContent = s.status;
    if (s.status === "reconnecting") {
      cam.img.hidden = true;
      cam.note.hidden = false;
      cam.note.textContent = `no picture while reconnecting${s.detail ? ": " + s.detail : ""}`;
    }
    cam.faces.replaceChildren(...(s.faces.length ? s.faces.map(faceLine) : [el("p", { class: "muted", text: "no face in view" })]));
    return cam.card;
  });
  if (cards.length) box.replaceChildren(...cards);
  else box.replaceChildren(el("p", { class: "muted", text: "No live source." }));
}

// -- expression shares -----------------------------------------------------------------------------
function renderShares(shares) {
  const box = document.getElementById("shares");
  const counts = selected ? (shares.by_source[selected] || {}) : shares.counts;
  const entries = Object.entries(counts).sort((a, b) => b[1] - a[1]);
  const total = entries.reduce((n, [, c]) => n + c, 0);
  document.getElementById("shares-scope").textContent = `${selected || "all sources"} \u00b7 ${total} faces`;
  if (!total) {
    box.replaceChildren(el("p", { class: "muted", text: "No faces in the last minute." }));
    return;
  }
  box.replaceChildren(...entries.map(([label, n]) => {
    const share = (100 * n) / total;
    return el("div", { class: "share", "data-expr": label },
      el("span", { text: label }),
      el("div", { class: "track" }, el("div", { class: "fill", style: `width:${share}%;background:${colour(label)}` })),
      el("span", { class: "num", text: `${share.toFixed(0)}%` }));
  }));
}

// -- circumplex ------------------------------------------------------------------------------------
function renderCircumplex(points, now, windowS) {
  const canvas = document.getElementById("circumplex");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, c = w / 2, r = w / 2 - 28;
  const m = points.reduce((acc, p) => Math.max(acc, Math.abs(p.v), Math.abs(p.a)), 0);
  const scale = scaleFor(m);
  document.getElementById("circumplex-scale").textContent =
    `${selected || "all sources"} \u00b7 ${points.length} points \u00b7 axes \u00b1${scale}`;
  ctx.clearRect(0, 0, w, w);
  ctx.strokeStyle = "#3a3f48"; ctx.lineWidth = 1;
  for (const f of [0.5, 1]) { ctx.beginPath(); ctx.arc(c, c, r * f, 0, 2 * Math.PI); ctx.stroke(); }
  ctx.beginPath(); ctx.moveTo(c - r, c); ctx.lineTo(c + r, c); ctx.moveTo(c, c - r); ctx.lineTo(c, c + r); ctx.stroke();
  for (const p of points) {
    const x = c + Math.max(-1, Math.min(1, p.v / scale)) * r, y = c - Math.max(-1, Math.min(1, p.a / scale)) * r;
    ctx.globalAlpha = Math.max(0.12, 1 - (now - p.ts) / windowS);
    ctx.fillStyle = colour(p.expr);
    ctx.beginPath(); ctx.arc(x, y, 4, 0, 2 * Math.PI); ctx.fill();
  }
  ctx.globalAlpha = 1;
  // labels last, outlined in the card colour, so the points never hide them
  ctx.font = "12px system-ui"; ctx.lineWidth = 3; ctx.strokeStyle = "#1d2026";
  const label = (text, x, y, align, fill) => {
    ctx.textAlign = align; ctx.fillStyle = fill;
    ctx.strokeText(text, x, y); ctx.fillText(text, x, y);
  };
  const grey = "#8a8f98";
  label(`arousal +${scale}`, c, 14, "center", grey); label(`arousal \u2212${scale}`, c, w - 4, "center", grey);
  label(`valence +${scale}`, c + r - 4, c + 16, "right", grey); label(`valence \u2212${scale}`, c - r + 4, c + 16, "left", grey);
  label(`\u00b1${scale / 2}`, c + r * 0.5 + 3, c - 4, "left", "#6d727b");
  const q = r * 0.62;
  label("tense", c - q, c - q, "center", "#6d727b"); label("excited", c + q, c - q, "center", "#6d727b");
  label("sad / tired", c - q, c + q, "center", "#6d727b"); label("calm", c + q, c + q, "center", "#6d727b");
}

// -- per-track timelines ---------------------------------------------------------------------------
function timeline(track, points, now, windowS, scale) {
  const W = 360, H = 90, pad = 4;
  const x = (ts) => pad + ((ts - (now - windowS)) / windowS) * (W - 2 * pad);
  const y = (v) => H / 2 - Math.max(-1, Math.min(1, v / scale)) * (H / 2 - pad);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline", role: "img",
                             "aria-label": `valence and arousal of track ${track}` });
  chart.append(svg("line", { x1: 0, x2: W, y1: H / 2, y2: H / 2, class: "axis" }));
  for (const [key, stroke] of [["v", V_COLOUR], ["a", A_COLOUR]]) {
    let d = "", prev = null;
    for (const p of points) {
      // a gap of more than 2 s (the face left, or frames were dropped) breaks the line
      d += `${prev != null && p.ts - prev <= 2 ? "L" : "M"}${x(p.ts).toFixed(1)},${y(p[key]).toFixed(1)}`;
      prev = p.ts;
    }
    chart.append(svg("path", { d, stroke, class: `line line-${key}`, fill: "none" }));
  }
  const lastP = points[points.length - 1];
  return el("div", { class: "timeline-row", "data-track": String(track) },
    el("div", { class: "timeline-title" },
      el("span", { text: `track #${track}` }),
      el("span", { class: "face-expr", style: `color:${colour(lastP.expr)}`, text: lastP.expr }),
      el("span", { class: "num", style: `color:${V_COLOUR}`, text: `V ${signed(lastP.v)}` }),
      el("span", { class: "num", style: `color:${A_COLOUR}`, text: `A ${signed(lastP.a)}` })),
    chart);
}

function renderTimelines(va, now, windowS) {
  const box = document.getElementById("timelines");
  const scope = document.getElementById("timelines-scope");
  if (!selected) {
    scope.textContent = "";
    box.replaceChildren(el("p", { class: "muted", text: "Choose a source above for its per-track timelines." }));
    return;
  }
  const tracks = new Map();
  for (const p of va) if (p.source === selected) {
    if (!tracks.has(p.track)) tracks.set(p.track, []);
    tracks.get(p.track).push(p);
  }
  const shown = [...tracks.entries()].sort((a, b) => b[1][b[1].length - 1].ts - a[1][a[1].length - 1].ts).slice(0, MAX_TIMELINES);
  const m = shown.reduce((acc, [, ps]) => ps.reduce((n, p) => Math.max(n, Math.abs(p.v), Math.abs(p.a)), acc), 0);
  const scale = scaleFor(m);
  scope.textContent = `${selected} \u00b7 last ${windowS} s \u00b7 y axis \u00b1${scale}`;
  if (!shown.length) {
    box.replaceChildren(el("p", { class: "muted", text: `No tracked face of ${selected} in the last ${windowS} s.` }));
    return;
  }
  box.replaceChildren(
    el("div", { class: "legend" }, el("span", { style: `color:${V_COLOUR}`, text: "\u2014 valence" }),
       el("span", { style: `color:${A_COLOUR}`, text: "\u2014 arousal" })),
    ...shown.map(([track, ps]) => timeline(track, ps, now, windowS, scale)));
}

// -- main ------------------------------------------------------------------------------------------
function render(snap) {
  last = snap;
  renderFilter(snap.sources);
  renderSources(snap);
  renderCameras(snap.sources);
  renderShares(snap.shares);
  const va = selected ? snap.va.filter((p) => p.source === selected) : snap.va;
  renderCircumplex(va, snap.now, snap.va_window_s);
  renderTimelines(snap.va, snap.now, snap.va_window_s);
  document.getElementById("clock").textContent = new Date(snap.now * 1000).toLocaleTimeString();
}

function connect() {
  const conn = document.getElementById("conn");
  const source = new EventSource("events");
  source.addEventListener("snapshot", (ev) => {
    conn.textContent = "live"; conn.className = "conn conn-ok";
    render(JSON.parse(ev.data));
  });
  source.onerror = () => { conn.textContent = "reconnecting\u2026"; conn.className = "conn conn-wait"; };
}

document.getElementById("filter").addEventListener("change", (ev) => {
  selected = ev.target.value;
  if (last) render(last);
});
connect();
