// affectstream dashboard: renders the snapshots that /events streams (server-sent events).
// Plain DOM and canvas, no libraries; values from Redis go in through textContent only.
"use strict";

const COLOURS = {  // same colours as `affectstream render` (pipeline/render.py)
  neutral: "#c8c8c8", happiness: "#3cc83c", happy: "#3cc83c", surprise: "#ffd700",
  sadness: "#2878c8", sad: "#2878c8", anger: "#e62828", disgust: "#5a8c28",
  fear: "#b43cb4", contempt: "#a05a5a", other: "#969696",
};
const HISTORY = 240;  // samples per sparkline (2 min at 0.5 s)
const history = new Map();  // source -> [{fps, latency}]

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

const signed = (x) => (x == null ? "n/a" : (x >= 0 ? "+" : "\u2212") + Math.abs(x).toFixed(2));
const num = (x, digits = 1) => (x == null ? "\u2013" : Number(x).toFixed(digits));

function sparkline(name) {
  const canvas = el("canvas", { class: "spark", width: 220, height: 34 });
  const samples = history.get(name) || [];
  const ctx = canvas.getContext("2d");
  const draw = (key, stroke) => {
    const values = samples.map((s) => s[key]).filter((v) => v != null);
    const top = Math.max(1e-6, ...values);
    ctx.strokeStyle = stroke;
    ctx.beginPath();
    let started = false;
    samples.forEach((s, i) => {
      if (s[key] == null) { started = false; return; }
      const x = (i / (HISTORY - 1)) * canvas.width;
      const y = canvas.height - 2 - (s[key] / top) * (canvas.height - 4);
      if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
    });
    ctx.stroke();
  };
  draw("fps", "#4ea1ff");
  draw("latency", "#f0a050");
  return canvas;
}

function renderSources(sources) {
  const body = document.querySelector("#sources tbody");
  body.replaceChildren();
  document.getElementById("no-sources").hidden = sources.length > 0;
  for (const s of sources) {
    const h = history.get(s.name) || [];
    h.push({ fps: s.fps, latency: s.latency_ms });
    if (h.length > HISTORY) h.shift();
    history.set(s.name, h);
    const status = el("td", {},
      el("span", { class: `status status-${s.status}`, text: s.status }),
      s.detail ? el("span", { class: "detail", text: s.detail }) : null);
    body.append(el("tr", { class: "source", "data-source": s.name, "data-status": s.status },
      el("td", { class: "source-name", text: s.name }), status,
      el("td", { class: "num fps", text: num(s.fps) }),
      el("td", { class: "num latency", text: num(s.latency_ms) }),
      el("td", { class: "num", text: String(s.frames) }),
      el("td", { class: "num", text: String(s.faces.length) }),
      el("td", { class: "muted", text: s.model || "" }),
      el("td", {}, sparkline(s.name))));
  }
}

function bar(name, value, fill) {
  const span = el("span", { style: `background:${fill}` });
  if (value != null) {
    const v = Math.max(-1, Math.min(1, value));
    span.style.left = `${50 + Math.min(0, v) * 50}%`;
    span.style.width = `${Math.abs(v) * 50}%`;
  }
  return [el("span", { text: name }), el("div", { class: "bar" }, span),
          el("span", { class: `num va-${name.toLowerCase()}`, text: signed(value) })];
}

function renderFaces(sources) {
  const box = document.getElementById("faces");
  const cards = [];
  for (const s of sources) {
    for (const f of s.faces) {
      cards.push(el("div", { class: "face", "data-source": s.name, "data-track": String(f.track) },
        el("span", { class: "face-title" }, el("span", { class: "face-source", text: s.name }),
          document.createTextNode(` \u00b7 track #${f.track}`)),
        el("span", {}, el("span", { class: "face-expr", style: `color:${colour(f.expr)}`, text: f.expr }),
          document.createTextNode(` ${(100 * f.conf).toFixed(0)}%`)),
        el("div", { class: "bars" }, ...bar("V", f.valence, "#e6a01e"), ...bar("A", f.arousal, "#e63c3c"))));
    }
  }
  if (cards.length) box.replaceChildren(...cards);
  else box.replaceChildren(el("p", { class: "muted", text: "No face in view." }));
}

function renderCircumplex(points, windowS) {
  const canvas = document.getElementById("circumplex");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, c = w / 2, r = w / 2 - 28;
  ctx.clearRect(0, 0, w, w);
  ctx.strokeStyle = "#3a3f48"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.arc(c, c, r, 0, 2 * Math.PI); ctx.stroke();
  ctx.beginPath(); ctx.moveTo(c - r, c); ctx.lineTo(c + r, c); ctx.moveTo(c, c - r); ctx.lineTo(c, c + r); ctx.stroke();
  for (const p of points) {
    const x = c + Math.max(-1, Math.min(1, p.v)) * r, y = c - Math.max(-1, Math.min(1, p.a)) * r;
    ctx.globalAlpha = Math.max(0.12, 1 - p.age / windowS);
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
  label("arousal +", c, 14, "center", "#8a8f98"); label("arousal \u2212", c, w - 4, "center", "#8a8f98");
  label("valence +", c + r - 4, c + 16, "right", "#8a8f98"); label("valence \u2212", c - r + 4, c + 16, "left", "#8a8f98");
  const q = r * 0.62;
  label("tense", c - q, c - q, "center", "#6d727b"); label("excited", c + q, c - q, "center", "#6d727b");
  label("sad / tired", c - q, c + q, "center", "#6d727b"); label("calm", c + q, c + q, "center", "#6d727b");
}

function renderShares(shares) {
  const box = document.getElementById("shares");
  const entries = Object.entries(shares.counts);
  if (!shares.total) {
    box.replaceChildren(el("p", { class: "muted", text: "No faces in the last minute." }));
    return;
  }
  box.replaceChildren(...entries.map(([label, n]) => {
    const pct = (100 * n) / shares.total;
    return el("div", { class: "share", "data-expr": label },
      el("span", { text: label }),
      el("div", { class: "track" }, el("div", { class: "fill", style: `width:${pct}%;background:${colour(label)}` })),
      el("span", { class: "num", text: `${pct.toFixed(0)}%` }));
  }));
}

function render(snapshot) {
  renderSources(snapshot.sources);
  renderFaces(snapshot.sources);
  renderCircumplex(snapshot.va, 30);
  renderShares(snapshot.shares);
  document.getElementById("clock").textContent = new Date(snapshot.now * 1000).toLocaleTimeString();
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

connect();
