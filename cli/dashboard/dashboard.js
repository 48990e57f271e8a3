// The millrace dashboard: reads /events (server-sent snapshots, sent with
// the bearer token when the server wants one) and draws them. No build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, attrs = {}, ...kids) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const kid of kids) node.append(kid);
  return node;
};
/** A count; null (what Redis did not answer: an outage) is shown as unknown, not as 0. */
const fmt = (n) =>
  n === null
    ? "?"
    : n >= 1e6
    ? (n / 1e6).toFixed(1) + "M"
    : n >= 1e4
    ? (n / 1e3).toFixed(1) + "k"
    : String(Math.round(n));
const rate = (n) => n >= 100 ? fmt(n) : n.toFixed(1);

let token = sessionStorage.getItem("millrace-token") || "";
let previous;
let history = [];

$("#login").addEventListener("submit", (e) => {
  e.preventDefault();
  token = $("#token").value;
  sessionStorage.setItem("millrace-token", token);
  $("#login").hidden = true;
  connect();
});

/** EventSource cannot send a header, so the stream is read with fetch. */
async function connect() {
  try {
    const res = await fetch("/events", {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    if (res.status === 401) {
      $("#login").hidden = false;
      $("#state").textContent = "token needed";
      return;
    }
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const chunk = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = chunk.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6))
          .join("\n");
        if (data) draw(JSON.parse(data));
      }
    }
  } catch {
    // the run ended or the network dropped: try again below
  }
  $("#state").textContent = "disconnected";
  setTimeout(connect, 2000);
}

function draw(s) {
  if (s.history) history = s.history;
  const dt = previous ? (Date.parse(s.now) - Date.parse(previous.now)) / 1000 : 0;
  const before = new Map((previous?.stages ?? []).map((st) => [st.id, st]));
  $("#flow").textContent = s.flow;
  $("#mode").textContent = s.durability === "redis" ? "durable (Redis)" : "memory";
  $("#state").textContent = s.state;
  $("#uptime").textContent = s.startedAt
    ? duration(Date.parse(s.now) - Date.parse(s.startedAt))
    : "-";
  $("#tokens").textContent = fmt(s.tokens);
  $("#dead-total").textContent = fmt(s.deadLetters.total);
  drawGraph(s, before, dt);
  drawSources(s.sources);
  drawLetters(s.deadLetters.recent, s.replay);
  drawErrors(s.errors);
  previous = s;
}

function drawGraph(s, before, dt) {
  const graph = $("#graph");
  graph.replaceChildren();
  const sources = el(
    "div",
    { class: "node", "data-node": "sources" },
    el("h3", {}, "sources"),
    el(
      "dl",
      {},
      ...s.sources.flatMap((src) => [el("dt", {}, src.name), el("dd", {}, fmt(src.emitted))]),
    ),
  );
  graph.append(sources);
  for (const st of s.stages) {
    const was = before.get(st.id);
    const inRate = was && dt > 0 ? (st.in - was.in) / dt : 0;
    const outRate = was && dt > 0 ? (st.out - was.out) / dt : 0;
    const batches = was ? st.batches - was.batches : 0;
    const batch = batches > 0 ? (st.in - was.in) / batches : st.batches ? st.in / st.batches : 0;
    const row = (name, value, field, bad) => [
      el("dt", {}, name),
      el("dd", { "data-field": field, class: bad ? "bad" : "" }, value),
    ];
    graph.append(el("div", { class: "arrow" }, "→"));
    graph.append(
      el(
        "div",
        { class: "node", "data-stage": st.id },
        el("h3", {}, st.id, " ", el("small", {}, st.kind === st.id ? "" : st.kind)),
        el(
          "dl",
          {},
          ...row("in", fmt(st.in ?? 0), "in"),
          ...row("out", fmt(st.out ?? 0), "out"),
          ...row("in/s", rate(inRate), "in-rate"),
          ...row("out/s", rate(outRate), "out-rate"),
          ...row("backlog", fmt(st.backlog === undefined ? 0 : st.backlog), "backlog"),
          ...row("pending", fmt(st.pending === undefined ? 0 : st.pending), "pending"),
          ...row("batch size", batch.toFixed(1), "batch"),
          ...row("dropped", fmt(st.dropped ?? 0), "dropped"),
          ...row("dead letters", fmt(st.deadLetters ?? 0), "dead", st.deadLetters > 0),
          ...(st.kind === "embed" ? row("tokens", fmt(st.tokens ?? 0), "tokens") : []),
        ),
        sparkline(`${st.id}:out`),
      ),
    );
  }
}

/** Items out per minute over the last 24 h, as a small SVG line. */
function sparkline(key) {
  const now = Math.floor(Date.now() / 60000);
  const values = new Map(history.map((m) => [m.t, m.counts[key] ?? 0]));
  // At least the last hour, at most the last 24 h.
  const first = Math.max(now - 1439, Math.min(now - 59, history[0]?.t ?? now));
  const points = [];
  for (let t = first; t <= now; t++) points.push(values.get(t) ?? 0);
  const max = Math.max(1, ...points);
  const w = 150, h = 28;
  const step = points.length > 1 ? w / (points.length - 1) : w;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark");
  svg.setAttribute("width", w);
  svg.setAttribute("height", h);
  svg.setAttribute("data-points", String(points.length));
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute(
    "points",
    points.map((v, i) => `${(i * step).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`)
      .join(" "),
  );
  const title = document.createElementNS(ns, "title");
  title.textContent = `${key}: ${
    points.reduce((a, b) => a + b, 0)
  } in the last ${points.length} min`;
  svg.append(title, line);
  return svg;
}

function drawSources(sources) {
  const body = $("#sources tbody");
  body.replaceChildren(
    ...sources.map((s) =>
      el(
        "tr",
        { "data-source": s.name },
        el("td", {}, s.name),
        el("td", {}, s.kind),
        el("td", {}, s.state),
        el("td", {}, s.lastRead ? new Date(s.lastRead).toLocaleTimeString() : "-"),
        el("td", { class: "num" }, fmt(s.reads)),
        el("td", { class: "num" }, fmt(s.emitted)),
        el("td", { class: "num" }, fmt(s.errors)),
        el("td", { class: "reason" }, s.lastError ?? ""),
      )
    ),
  );
  if (!sources.length) {
    body.append(el("tr", {}, el("td", { class: "empty", colSpan: 8 }, "none yet")));
  }
}

function drawLetters(letters, replay) {
  const body = $("#dead-letters tbody");
  body.replaceChildren(
    ...letters.slice(0, 20).map((d) =>
      el(
        "tr",
        { "data-letter": d.id },
        el("td", {}, el("time", {}, d.time ? new Date(d.time).toLocaleTimeString() : "")),
        el("td", {}, d.stage),
        el("td", { class: "reason" }, d.reason),
        el("td", { class: "num" }, String(d.attempts)),
        el("td", {}, el("code", {}, `${d.item} ${d.payload}`)),
        el("td", {}, replay ? replayButton(d.id) : ""),
      )
    ),
  );
  if (!letters.length) body.append(el("tr", {}, el("td", { class: "empty", colSpan: 6 }, "none")));
}

/**
 * What a replay said, by dead letter id: the table is drawn again with each
 * snapshot, and a button's answer would vanish with it (or land on a button
 * already replaced), before anyone read it.
 */
const replaySaid = new Map();

function replayButton(id) {
  const said = replaySaid.get(id);
  const button = el("button", { type: "button" }, said ?? "replay");
  if (said !== undefined) button.disabled = true;
  button.addEventListener("click", async () => {
    button.disabled = true;
    const res = await fetch("/api/replay", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ ids: [id] }),
    });
    // The server answers 200 whether or not it put the letter back (gone, already replayed, a
    // stage no longer in the flow): it says which in the body.
    let answer = `failed (${res.status})`;
    if (res.ok) {
      const body = await res.json().catch(() => ({}));
      const n = Object.values(body.replayed ?? {}).reduce((a, b) => a + b, 0);
      answer = n > 0
        ? "replayed"
        : `not replayed: ${body.skipped?.[0]?.reason ?? "nothing to replay"}`;
    }
    replaySaid.set(id, answer);
    // The table may have been drawn again meanwhile: the button there says it.
    for (const b of document.querySelectorAll(`#dead-letters tr[data-letter="${id}"] button`)) {
      b.textContent = answer;
      b.disabled = true;
    }
    button.textContent = answer;
  });
  return button;
}

function drawErrors(errors) {
  const list = $("#errors");
  list.replaceChildren(
    ...errors.slice(0, 30).map((e) =>
      el(
        "li",
        { class: e.level },
        el("time", {}, new Date(e.time).toLocaleTimeString()),
        " ",
        e.message,
      )
    ),
  );
  if (!errors.length) list.append(el("li", { class: "empty" }, "none"));
}

function duration(ms) {
  const s = Math.floor(ms / 1000);
  return s < 60
    ? `${s}s`
    : s < 3600
    ? `${Math.floor(s / 60)}m ${s % 60}s`
    : `${Math.floor(s / 3600)}h ${Math.floor(s / 60) % 60}m`;
}

connect();
