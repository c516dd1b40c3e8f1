// The dashboard's front end: polls /api/stamp, refetches /api/state when it changes, renders with DOM calls
// (never innerHTML: every value comes from the database) and inline SVG charts. No library, nothing fetched from
// elsewhere.
"use strict";

const CSRF = document.querySelector('meta[name="csrf"]').content;
const POLL_MS = 1500;
const COLORS = { formality_level: "#2f6fdb", technical_depth: "#d9822b", mood: "#7a4bc2" };
const MOODS = { joy: "#e0b000", sadness: "#4a7bd0", anger: "#d04545", fear: "#7a4bc2", disgust: "#3f9e5a",
                surprise: "#e07bb0", neutral: "#9aa3b2" };
let state = null, stamp = null, user = null;

const $ = (id) => document.getElementById(id);

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") el.textContent = v;
    else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v !== null && v !== undefined && v !== false) el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) el.append(c);
  return el;
}

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

function show(value) {
  if (value === null || value === undefined) return "–";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function table(id, head, rows) {
  const t = $(id);
  t.replaceChildren(h("tr", {}, ...head.map((c) => h("th", { text: c }))));
  for (const r of rows) t.append(h("tr", {}, ...r.map((c) => (c instanceof Node ? h("td", {}, c) : h("td", { text: show(c) })))));
  if (!rows.length) t.append(h("tr", {}, h("td", { colspan: head.length, class: "muted", text: "nothing here yet" })));
}

function pill(text, cls) { return h("span", { class: "pill " + (cls || ""), text }); }

function say(text, error) {
  $("message").textContent = text;
  $("message").className = error ? "err" : "";
}

// -- talking to the server ---------------------------------------------------------------------------------------
async function act(path, body) {
  const response = await fetch(path, { method: "POST", headers: { "Content-Type": "application/json", "X-CSRF-Token": CSRF },
                                       body: JSON.stringify(body) });
  const out = await response.json();
  if (!response.ok) { say(out.error || response.statusText, true); return null; }
  await refresh(true);
  return out;
}

async function refresh(force) {
  const s = await (await fetch("/api/stamp")).json();
  if (!force && s.stamp === stamp && state && state.user === user) return;
  const q = user ? "?user=" + encodeURIComponent(user) : "";
  state = await (await fetch("/api/state" + q)).json();
  stamp = state.stamp;
  user = state.user;
  render();
}

async function poll() {
  try { await refresh(false); $("updated").textContent = "live · " + new Date().toLocaleTimeString(); }
  catch (e) { $("updated").textContent = "offline: " + e; }
  setTimeout(poll, POLL_MS);
}

// -- rendering ---------------------------------------------------------------------------------------------------
function render() {
  const st = state.status, c = st.controls;
  const sel = $("user");
  sel.replaceChildren(...state.users.map((u) => h("option", { value: u, text: u, selected: u === user })));
  $("safe").textContent = c.safe_mode ? "SAFE MODE" : c.learning ? "learning on" : "learning off";
  $("safe").className = "pill " + (c.safe_mode ? "safe" : "ok");
  $("switch-line").textContent = c.safe_mode
    ? `Safe mode: learning and generative rewriting are stopped (${c.kill_switch ? "kill switch since " + (c.changed_at || "").slice(0, 19).replace("T", " ") + (c.reason ? ": " + c.reason : "") : "learning.kill_switch in the config"}).`
    : `Learning is ${c.learning ? "on" : "off (learning.enabled: false)"}; generative rewriting is on.`;
  $("kill").disabled = c.kill_switch; $("resume").disabled = !c.kill_switch;
  table("models", ["model", "active version", "checksum", "load state", "provider", "detail"], st.models.map((m) => [
    m.name, m.active_version, pill(m.checksum, m.checksum === "ok" ? "ok" : m.checksum === "mismatch" ? "bad" : "warn"),
    pill(m.load_state, m.load_state === "ready" ? "ok" : m.load_state === "blocked" ? "bad" : "warn"), m.provider, m.detail]));
  $("recent-runs").textContent = st.recent_runs;
  table("modules", ["module", "runs", "ok", "fallback", "timeout", "error", "p50 ms", "p95 ms", "p99 ms", "last run"], st.modules.map((m) => [
    m.module, m.runs, m.outcomes.ok, m.outcomes.fallback, m.outcomes.timeout, m.outcomes.error, m.p50, m.p95, m.p99,
    (m.last_at || "").slice(0, 19).replace("T", " ")]));
  $("memory").textContent = `this dashboard process: ${st.memory.rss_mb} MB resident (peak ${st.memory.peak_rss_mb} MB). ` +
    "Penny's own process runs elsewhere; penny-slm bench measures it.";
  renderAlerts();
  renderProfile();
}

function renderAlerts() {
  const open = state.alerts.filter((a) => !a.acknowledged).length;
  $("alert-count").textContent = open || "";
  table("alerts", ["#", "when", "user", "type", "severity", "detail", "examples", "recommendation", ""], state.alerts.map((a) => [
    a.id, (a.at || "").slice(0, 19).replace("T", " "), a.user_id, a.kind,
    pill(a.severity, a.severity === "high" ? "bad" : a.severity === "medium" ? "warn" : ""), a.detail,
    Array.isArray(a.examples) ? h("ul", {}, ...a.examples.map((e) => h("li", { text: show(e) }))) : a.examples, a.recommendation,
    a.acknowledged ? pill("acknowledged", "ok")
      : h("button", { class: "act", "data-ack": a.id, text: "Acknowledge", onclick: () => act("/api/ack", { alert: a.id }) })]));
}

function renderProfile() {
  const p = state.profile;
  const none = !p;
  for (const id of ["delete", "export", "delete-confirm"]) $(id).toggleAttribute("disabled", none);
  if (none) {
    for (const id of ["dimensions", "slang", "log", "pending", "versions"]) table(id, [""], []);
    $("evolution").replaceChildren(h("p", { class: "muted", text: "no user has talked to Penny yet" }));
    return;
  }
  const shown = p.show;
  table("dimensions", ["key", "value", "confidence"], Object.keys(shown.dimensions).sort().map((k) => [
    k, shown.dimensions[k], (shown.confidence[k] ?? 0).toFixed(2)]));
  table("slang", ["term", "gloss", "count", "first seen", "example", "in Penny's voice"], p.slang.map((t) => [
    t.term, t.gloss, t.count, (t.first_seen || "").slice(0, 19).replace("T", " "), t.example, t.adopted ? "yes" : "no"]));
  renderEvolution(p.evolution);
  renderLog();
  table("pending", ["#", "key", "now", "asked", "state", "why", "evidence", ""], p.pending.map((e) => [
    e.id, e.key, e.old, e.new, e.state, e.reason, e.evidence, e.state === "awaiting_approval" ? h("span", {},
      h("button", { class: "act", "data-approve": e.id, text: "Approve", onclick: () => act("/api/approve", { user, id: e.id }) }), " ",
      h("button", { class: "act", "data-reject": e.id, text: "Reject", onclick: () => act("/api/reject", { user, id: e.id }) })) : ""]));
  const latest = p.versions.length ? p.versions[p.versions.length - 1].version : null;
  table("versions", ["version", "when", "what made it", ""], p.versions.slice().reverse().map((v) => [
    "v" + v.version, v.at.slice(0, 19).replace("T", " "), v.note, v.version === latest ? pill("current", "ok")
      : h("button", { class: "act", "data-rollback": v.version, text: "Roll back to v" + v.version,
                      onclick: () => act("/api/rollback", { user, version: v.version }).then((r) => r && say(`restored v${v.version} as v${r.version}`)) })]));
  $("export").href = "/api/export?user=" + encodeURIComponent(user);
  $("delete-user").textContent = user;
  $("delete").disabled = $("delete-confirm").value !== user;
}

function renderLog() {
  const entries = state.profile.log;
  const actions = [...new Set(entries.map((e) => e.action))].sort();
  const select = $("log-action"), chosen = select.value;
  select.replaceChildren(h("option", { value: "", text: "every action" }), ...actions.map((a) => h("option", { value: a, text: a, selected: a === chosen })));
  const needle = $("log-filter").value.toLowerCase();
  const shown = entries.filter((e) => (!select.value || e.action === select.value) &&
    (!needle || [e.key, e.detail, e.evidence, e.message_id].join(" ").toLowerCase().includes(needle))).reverse();
  $("log-count").textContent = `${shown.length} of ${entries.length} entries`;
  table("log", ["#", "when", "key", "change", "action", "detail", "evidence"], shown.map((e) => [
    e.id, e.at.slice(0, 19).replace("T", " "), e.key, (e.old === null ? "" : show(e.old) + " → ") + show(e.new), e.action, e.detail, e.evidence]));
}

function renderEvolution(evo) {
  const pts = evo.points, W = 760, H = 230, top = 24, left = 56, right = 72, lineH = 150, moodY = 205;
  const x = (i) => left + (pts.length < 2 ? (W - left - right) / 2 : (i * (W - left - right)) / (pts.length - 1));
  const y = (v) => top + (1 - v) * lineH;
  const chart = svg("svg", { id: "evolution-chart", viewBox: `0 0 ${W} ${H}`, width: "100%", role: "img",
                              "aria-label": "formality, technical depth and mood at each profile version" });
  for (const v of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: left, x2: W - right, y1: y(v), y2: y(v), stroke: "#eceff3" }));
    chart.append(svg("text", { x: 20, y: y(v) + 4 }, v.toFixed(1)));
  }
  pts.forEach((p, i) => {  // profile versions marked
    chart.append(svg("line", { class: "version-mark", x1: x(i), x2: x(i), y1: top - 6, y2: moodY + 8, stroke: "#c9d1e0", "stroke-dasharray": "3 3" }));
    chart.append(svg("text", { x: x(i) - 8, y: top - 10 }, "v" + p.version));
  });
  chart.append(svg("text", { x: 4, y: moodY + 4 }, "mood"));
  const legend = [];
  for (const key of evo.series) {
    const g = svg("g", { class: "series", "data-series": key, fill: COLORS[key], stroke: COLORS[key] });
    const have = pts.map((p, i) => [p[key], i]).filter(([v]) => v !== null);
    if (key === "mood") {
      for (const [v, i] of have) {
        const dot = svg("circle", { class: "point", cx: x(i), cy: moodY, r: 6, fill: MOODS[v] || COLORS.mood, stroke: "none" });
        dot.append(svg("title", {}, `v${pts[i].version}: ${v}`));
        g.append(dot, svg("text", { x: x(i) + 8, y: moodY + 4, stroke: "none" }, v));
      }
    } else {
      if (have.length > 1) g.append(svg("polyline", { points: have.map(([v, i]) => `${x(i)},${y(v)}`).join(" "), fill: "none", "stroke-width": 2 }));
      for (const [v, i] of have) {
        const dot = svg("circle", { class: "point", cx: x(i), cy: y(v), r: 3.5, stroke: "none" });
        dot.append(svg("title", {}, `v${pts[i].version} ${key} ${v}`));
        g.append(dot);
      }
    }
    chart.append(g);
    legend.push(h("span", {}, h("i", { style: `background:${COLORS[key]}` }), `${key.replace("_", " ")} (${have.length} versions)`));
  }
  $("legend").replaceChildren(...legend);
  $("evolution").replaceChildren(chart);
}

// -- wiring ------------------------------------------------------------------------------------------------------
function view(name) {
  for (const b of document.querySelectorAll("nav button")) b.classList.toggle("on", b.dataset.view === name);
  for (const s of document.querySelectorAll("section.view")) s.classList.toggle("on", s.id === "view-" + name);
}
for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => { location.hash = b.dataset.view; });
window.addEventListener("hashchange", () => view(location.hash.slice(1) || "status"));
view(location.hash.slice(1) || "status");

$("user").addEventListener("change", (e) => { user = e.target.value; refresh(true); });
$("kill").addEventListener("click", () => act("/api/kill", { reason: $("reason").value }));
$("resume").addEventListener("click", () => act("/api/resume", { reason: $("reason").value }));
$("log-filter").addEventListener("input", renderLog);
$("log-action").addEventListener("change", renderLog);
$("delete-confirm").addEventListener("input", () => { $("delete").disabled = $("delete-confirm").value !== user; });
$("delete").addEventListener("click", async () => {
  const gone = user, out = await act("/api/delete", { user: gone, confirm: $("delete-confirm").value });
  if (out) {
    $("delete-confirm").value = "";
    user = null;
    await refresh(true);
    say(`deleted ${Object.values(out.rows).reduce((a, b) => a + b, 0)} rows about ${gone}`);
  }
});
poll();
